// A tiny blocking HTTP/1.1 client for tests: one request per connection, or raw bytes in and
// raw bytes out. No Beast, so test TUs stay fast to compile. Test thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace netnsd::test
{

struct http_reply
{
    unsigned status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // The first header of that name (case-insensitive), or empty.
    std::string header(const std::string& name) const;
};

// A TCP address (IPv4) or, when `unix_path` is set, a Unix socket.
struct endpoint
{
    std::string host = "127.0.0.1";
    std::uint16_t port = 9321;
    std::string unix_path;
};

// A connected blocking socket (close-on-exec), or -1.
int connect_to(const endpoint& to);

// Sends `method target` with the body (if any) and reads one reply. nullopt when the
// connection fails or the reply is malformed.
std::optional<http_reply>
http(const endpoint& to, const std::string& method, const std::string& target,
     const std::string& body = {},
     const std::vector<std::pair<std::string, std::string>>& headers = {});

inline std::optional<http_reply> http_get(const endpoint& to, const std::string& target)
{
    return http(to, "GET", target);
}

// Writes `bytes`, then reads until the server closes or `timeout` passes. Returns what came.
std::string exchange_raw(const endpoint& to, const std::string& bytes,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

// Parses one HTTP/1.1 response from the front of `bytes`; the consumed length goes to `used`.
std::optional<http_reply> parse_reply(const std::string& bytes, std::size_t* used = nullptr);

} // namespace netnsd::test
