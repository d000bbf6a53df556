// problem+json (RFC 9457) responses: every non-2xx answer is one of these. The problem types
// are listed once here and documented in openapi.yaml. Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

#include "api/http.hpp"

namespace netnsd::api
{

enum class problem_type
{
    bad_request,        // 400 malformed request line, target or query
    invalid_name,       // 400 not a name `ip netns` accepts
    unexpected_body,    // 400 a body where none belongs
    not_found,          // 404 no such entry
    no_route,           // 404 no such path
    method_not_allowed, // 405 the path exists, not with this method
    not_acceptable,     // 406 no representation the client accepts
    payload_too_large,  // 413 body over the limit
    header_too_large,   // 431 header block over the limit
    too_many_streams,   // 503 --max-stream-clients reached
    internal,           // 500 a bug: the router caught an exception
};

unsigned status_of(problem_type type) noexcept;
std::string_view slug_of(problem_type type) noexcept;

// "urn:netnsd:problem:<slug>"
std::string type_uri(problem_type type);

response problem(problem_type type, std::string detail, std::string_view instance = {});

} // namespace netnsd::api
