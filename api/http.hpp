// The HTTP exchange as the api layer sees it: no sockets, no Beast. The server's session fills
// a request from the wire and writes the response back. Plain data; any thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace netnsd::api
{

struct request
{
    std::string peer;   // the client's address, for the audit log
    std::string method; // as sent: "GET", "POST", ...
    std::string target; // the raw request-target: path and query, still percent-encoded
    std::string body;
    bool has_body = false; // a body was sent, even an empty chunked one
    std::vector<std::pair<std::string, std::string>> headers;

    // The first header of that name (case-insensitive), or empty.
    std::string_view header(std::string_view name) const noexcept;
};

struct response
{
    unsigned status = 200;
    std::string content_type;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers; // beyond Content-Type/Length
    std::string audit_name; // the namespace an admin request was about (logged, not sent)
};

// Work that must not run on the loop (it blocks, or changes a thread's namespaces). The
// transport runs `work` on a worker thread of the given pool, then runs what it returns on the
// loop thread, which produces the response.
struct deferred
{
    enum class pool
    {
        admin, // add, delete, set: milliseconds
        exec,  // exec: up to its timeout; its own pool so it never starves the others
    };
    pool where = pool::admin;
    std::function<std::function<response()>()> work;
};

} // namespace netnsd::api
