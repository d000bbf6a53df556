// The HTTP exchange as the api layer sees it: no sockets, no Beast. The server's session fills
// a request from the wire and writes the response back. Plain data; any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace netnsd::api
{

// Who is on the other end of a Unix socket, as the kernel says (SO_PEERCRED, SO_PEERGROUPS):
// taken when the connection was accepted, so a process cannot lend its socket to another.
struct peer_credentials
{
    std::uint32_t pid = 0;
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;
    std::vector<std::uint32_t> groups; // supplementary groups
};

// How the request came: the listener's kind and what the transport proved about the client.
struct transport_info
{
    bool unix_socket = false;                    // a Unix socket listener (any Host is fine there)
    bool tls = false;                            // HTTPS
    std::optional<peer_credentials> credentials; // on a Unix socket
    std::string client_subject; // a verified TLS client certificate's subject (mutual TLS)
};

struct request
{
    std::string peer; // the client's address, for the audit log
    transport_info transport;
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
    // A media type from a constant (never a string made for the response): no allocation.
    std::string_view content_type;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers; // beyond Content-Type/Length
    std::string audit_name; // the namespace an admin request was about (logged, not sent)
    // A body shared with the cache that made it (the list of every entry); when set, it is the
    // body and `body` is empty.
    std::shared_ptr<const std::string> shared_body;
    // Sent after the body, shared with the cache that made it (GET /metrics: the per-interface
    // families, megabytes at a thousand namespaces): never copied into `body`.
    std::shared_ptr<const std::string> shared_tail;

    std::string_view payload() const noexcept { return shared_body ? *shared_body : body; }
    std::string_view tail() const noexcept
    {
        return shared_tail ? std::string_view(*shared_tail) : std::string_view{};
    }
};

// An answer with a body of that media type (a constant: the response keeps only a view).
inline response make_response(unsigned status, std::string_view content_type, std::string body)
{
    response r;
    r.status = status;
    r.content_type = content_type;
    r.body = std::move(body);
    return r;
}

inline response json_response(unsigned status, std::string body)
{
    return make_response(status, "application/json", std::move(body));
}

// Work that must not run on the loop (it blocks, or changes a thread's namespaces). The
// transport runs `work` on a worker thread of the given pool, then has the model look at the
// names in `refresh` (the ones the work changed), then runs what `work` returned on the loop
// thread, which produces the response from the model as it is after that look.
struct deferred
{
    enum class pool
    {
        admin, // add, delete, set: milliseconds
        exec,  // exec: up to its timeout; its own pool so it never starves the others
    };
    pool where = pool::admin;
    std::function<std::function<response()>()> work;
    std::vector<std::string> refresh;
};

} // namespace netnsd::api
