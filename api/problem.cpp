#include "api/problem.hpp"

#include "core/errc.hpp"

#include "api/json.hpp"

namespace netnsd::api
{
namespace
{

struct row
{
    problem_type type;
    unsigned status;
    std::string_view slug;
    std::string_view title;
};

// The one table from problem type to status, URI and title.
constexpr row table[] = {
    {problem_type::bad_request, 400, "bad-request", "Bad request"},
    {problem_type::invalid_body, 400, "invalid-body", "Invalid request body"},
    {problem_type::invalid_name, 400, "invalid-name", "Invalid netns name"},
    {problem_type::unexpected_body, 400, "unexpected-body", "This request takes no body"},
    {problem_type::https_required, 400, "https-required", "This port speaks HTTPS"},
    {problem_type::unauthorized, 401, "unauthorized", "Authentication required"},
    {problem_type::exec_disabled, 403, "exec-disabled", "exec is disabled"},
    {problem_type::insufficient_scope, 403, "insufficient-scope", "The token may only read"},
    {problem_type::origin_not_allowed, 403, "origin-not-allowed", "Cross-origin request refused"},
    {problem_type::not_found, 404, "not-found", "No such netns"},
    {problem_type::no_such_process, 404, "no-such-process", "No such process"},
    {problem_type::no_route, 404, "no-route", "No such resource"},
    {problem_type::method_not_allowed, 405, "method-not-allowed", "Method not allowed"},
    {problem_type::not_acceptable, 406, "not-acceptable", "Not acceptable"},
    {problem_type::already_exists, 409, "already-exists", "The name is taken"},
    {problem_type::busy, 409, "busy", "The name is still mounted"},
    {problem_type::not_a_namespace, 409, "not-a-namespace", "Not a live network namespace"},
    {problem_type::nsid_assigned, 409, "nsid-assigned", "The namespace already has an nsid"},
    {problem_type::nsid_in_use, 409, "nsid-in-use", "That nsid is in use"},
    {problem_type::host_not_allowed, 421, "host-not-allowed", "Misdirected request"},
    {problem_type::payload_too_large, 413, "payload-too-large", "Request body too large"},
    {problem_type::header_too_large, 431, "header-too-large", "Request header too large"},
    {problem_type::unsupported_media, 415, "unsupported-media-type", "Unsupported media type"},
    {problem_type::too_many_execs, 429, "too-many-execs", "Too many execs running"},
    {problem_type::too_many_streams, 503, "too-many-streams", "Too many stream clients"},
    {problem_type::internal, 500, "internal", "Internal error"},
    {problem_type::operation_failed, 500, "operation-failed", "The operation failed"},
};

// The one table from a kernel failure to a problem.
struct failure_mapping
{
    core::errc code;
    problem_type type;
};
constexpr failure_mapping failures[] = {
    {core::errc::invalid_name, problem_type::invalid_name},
    {core::errc::not_found, problem_type::not_found},
    {core::errc::not_a_namespace, problem_type::not_a_namespace},
    {core::errc::already_exists, problem_type::already_exists},
    {core::errc::busy, problem_type::busy},
    {core::errc::nsid_assigned, problem_type::nsid_assigned},
    {core::errc::nsid_in_use, problem_type::nsid_in_use},
    {core::errc::no_such_process, problem_type::no_such_process},
    {core::errc::command_not_found, problem_type::invalid_body},
};

const row& lookup(problem_type type) noexcept
{
    const row* internal = nullptr;
    for (const auto& r : table)
    {
        if (r.type == type)
            return r;
        if (r.type == problem_type::internal)
            internal = &r;
    }
    return *internal;
}

} // namespace

unsigned status_of(problem_type type) noexcept
{
    return lookup(type).status;
}

std::string_view slug_of(problem_type type) noexcept
{
    return lookup(type).slug;
}

std::string type_uri(problem_type type)
{
    return "urn:netnsd:problem:" + std::string(slug_of(type));
}

response problem(problem_type type, std::string detail, std::string_view instance)
{
    const auto& r = lookup(type);
    json body = json::object();
    body["type"] = type_uri(type);
    body["title"] = r.title;
    body["status"] = r.status;
    body["detail"] = std::move(detail);
    if (!instance.empty())
        body["instance"] = std::string(instance);
    return make_response(r.status, "application/problem+json", dump(body));
}

problem_type problem_type_of(const std::error_code& ec) noexcept
{
    for (const auto& f : failures)
        if (ec == f.code)
            return f.type;
    if (ec == std::errc::invalid_argument)
        return problem_type::invalid_body;
    return problem_type::operation_failed;
}

response problem_for(const std::error_code& ec, std::string detail)
{
    if (detail.empty())
        detail = ec.message();
    return problem(problem_type_of(ec), std::move(detail));
}

} // namespace netnsd::api
