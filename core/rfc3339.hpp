// RFC 3339 times as netnsd writes them everywhere (API, events, logs): UTC, milliseconds, "Z":
// "2026-11-29T17:44:57.289Z". Pure; any thread.
#pragma once

#include <chrono>
#include <string>

namespace netnsd::core
{

void append_rfc3339(std::string& out, std::chrono::system_clock::time_point when);
std::string rfc3339(std::chrono::system_clock::time_point when);

} // namespace netnsd::core
