// Request-target handling: split path and query, percent-decode path segments and query
// values, percent-encode names for links. Names are bytes, not text: decoding may produce any
// byte, NUL included, and the caller validates. Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace netnsd::api
{

struct target_parts
{
    std::string_view path;
    std::string_view query; // without the '?'
};

target_parts split_target(std::string_view target) noexcept;

// "/a/b%20c/" -> {"a", "b%20c", ""}: raw segments, not decoded (an encoded '/' stays inside).
std::vector<std::string_view> split_path(std::string_view path);

// nullopt for a malformed escape ("%", "%4", "%zz").
std::optional<std::string> percent_decode(std::string_view text);
// Like percent_decode, and '+' means a space (application/x-www-form-urlencoded).
std::optional<std::string> query_decode(std::string_view text);

// Encodes every byte except the unreserved ones (RFC 3986 §2.3), so any name round-trips.
std::string percent_encode(std::string_view bytes);

// The value of the first `key=` in a query string, decoded; nullopt when absent or malformed.
struct query_param
{
    std::string key;
    std::string value;
};
std::optional<std::vector<query_param>> parse_query(std::string_view query);

} // namespace netnsd::api
