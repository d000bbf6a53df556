#include "api/problem.hpp"

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
    {problem_type::invalid_name, 400, "invalid-name", "Invalid netns name"},
    {problem_type::unexpected_body, 400, "unexpected-body", "This request takes no body"},
    {problem_type::not_found, 404, "not-found", "No such netns"},
    {problem_type::no_route, 404, "no-route", "No such resource"},
    {problem_type::method_not_allowed, 405, "method-not-allowed", "Method not allowed"},
    {problem_type::not_acceptable, 406, "not-acceptable", "Not acceptable"},
    {problem_type::payload_too_large, 413, "payload-too-large", "Request body too large"},
    {problem_type::header_too_large, 431, "header-too-large", "Request header too large"},
    {problem_type::too_many_streams, 503, "too-many-streams", "Too many stream clients"},
    {problem_type::internal, 500, "internal", "Internal error"},
};

const row& lookup(problem_type type) noexcept
{
    for (const auto& r : table)
        if (r.type == type)
            return r;
    return table[std::size(table) - 1];
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
    return {r.status, "application/problem+json", dump(body), {}};
}

} // namespace netnsd::api
