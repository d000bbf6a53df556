// problem+json (RFC 9457) responses: every non-2xx answer is one of these. The problem types
// are listed once here and documented in openapi.yaml. Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

#include "api/http.hpp"

namespace netnsd::api
{

enum class problem_type
{
    bad_request,        // 400 malformed request line, target or query
    invalid_body,       // 400 a body that is not the JSON object the endpoint takes
    invalid_name,       // 400 not a name `ip netns` accepts
    unexpected_body,    // 400 a body where none belongs
    https_required,     // 400 plain HTTP sent to a port that speaks HTTPS
    unauthorized,       // 401 no or wrong bearer token
    exec_disabled,      // 403 exec without --enable-exec
    insufficient_scope, // 403 a read-only token on a write
    origin_not_allowed, // 403 a cross-origin write or event stream
    not_found,          // 404 no such entry
    no_such_process,    // 404 no such pid
    no_route,           // 404 no such path
    method_not_allowed, // 405 the path exists, not with this method
    not_acceptable,     // 406 no representation the client accepts
    already_exists,     // 409 the name is taken
    busy,               // 409 the name is still mounted (stacked mounts)
    not_a_namespace,    // 409 the entry is stale: not a live network namespace
    nsid_assigned,      // 409 the namespace already has an nsid (nsids never change)
    nsid_in_use,        // 409 another namespace has that nsid
    host_not_allowed,   // 421 a Host that is not one of netnsd's names (DNS rebinding)
    payload_too_large,  // 413 body over the limit
    unsupported_media,  // 415 a body that is not application/json
    too_many_execs,     // 429 --max-exec already running
    header_too_large,   // 431 header block over the limit
    too_many_streams,   // 503 --max-stream-clients reached
    internal,           // 500 a bug: the router caught an exception
    operation_failed,   // 500 the kernel refused an admin operation (the detail says why)
};

unsigned status_of(problem_type type) noexcept;
std::string_view slug_of(problem_type type) noexcept;

// "urn:netnsd:problem:<slug>"
std::string type_uri(problem_type type);

response problem(problem_type type, std::string detail, std::string_view instance = {});

// The problem type a failure of the kernel (a core::errc, or an errno) is: the one table from
// failures to problems; anything it does not name is operation-failed.
problem_type problem_type_of(const std::error_code& ec) noexcept;

// The problem response for a failure; `detail`, or the error's own message when it is empty.
response problem_for(const std::error_code& ec, std::string detail);

} // namespace netnsd::api
