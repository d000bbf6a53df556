#include "core/rfc3339.hpp"

#include <cstdio>
#include <ctime>

namespace netnsd::core
{

void append_rfc3339(std::string& out, std::chrono::system_clock::time_point when)
{
    using namespace std::chrono;
    const auto since = when.time_since_epoch();
    const auto secs = floor<seconds>(since);
    const auto millis = duration_cast<milliseconds>(since - secs).count();
    const std::time_t t = static_cast<std::time_t>(secs.count());
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[40];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    out.append(buf, n);
    char frac[8];
    const int m = std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(millis));
    out.append(frac, static_cast<std::size_t>(m));
}

std::string rfc3339(std::chrono::system_clock::time_point when)
{
    std::string out;
    append_rfc3339(out, when);
    return out;
}

} // namespace netnsd::core
