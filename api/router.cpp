#include "api/router.hpp"

#include <exception>
#include <vector>

#include "core/log.hpp"
#include "core/name.hpp"

#include "api/json.hpp"
#include "api/problem.hpp"
#include "api/uri.hpp"

namespace netnsd::api
{
namespace
{

constexpr std::string_view json_type = "application/json";

response json_response(unsigned status, std::string body)
{
    return {status, std::string(json_type), std::move(body), {}};
}

response not_allowed(std::string_view allow)
{
    auto r =
        problem(problem_type::method_not_allowed, "this resource allows " + std::string(allow));
    r.headers.emplace_back("Allow", std::string(allow));
    return r;
}

bool is_read(std::string_view method)
{
    return method == "GET" || method == "HEAD";
}

constexpr route_info routes[] = {
    {"GET", "/api/v1/netns"},
    {"GET", "/api/v1/netns/{name}"},
    {"GET", "/api/v1/nsids"},
    {"GET", "/api/v1/events"},
    {"GET", "/healthz"},
    {"GET", "/openapi.yaml"},
    {"GET", "/"},
};

} // namespace

std::span<const route_info> route_table() noexcept
{
    return routes;
}

router::router(const core::registry& model, const core::monitor& watch, list_cache& lists,
               stream_hub& hub, std::span<const asset> assets)
    : model_(model), watch_(watch), lists_(lists), hub_(hub), assets_(assets)
{
}

router::outcome router::dispatch(const request& req, bool is_upgrade) noexcept
{
    try
    {
        return route(req, is_upgrade);
    }
    catch (const std::exception& e)
    {
        core::log::error(std::string("handler failed: ") + e.what());
    }
    catch (...)
    {
        core::log::error("handler failed with an unknown exception");
    }
    try
    {
        return problem(problem_type::internal, "the request could not be handled");
    }
    catch (...)
    {
        return response{500, "text/plain", "internal error\n", {}};
    }
}

response router::handle(const request& req) noexcept
{
    auto out = dispatch(req, false);
    if (auto* r = std::get_if<response>(&out))
        return std::move(*r);
    return problem(problem_type::not_acceptable, "this transport cannot stream events");
}

router::outcome router::route(const request& req, bool is_upgrade)
{
    const auto [path, query] = split_target(req.target);
    const auto segments = split_path(path);
    if (segments.empty())
        return problem(problem_type::bad_request, "the request target must be an absolute path");

    auto read_only = [&](auto&& handler) -> outcome
    {
        if (!is_read(req.method))
            return not_allowed("GET, HEAD");
        if (req.has_body)
            return problem(problem_type::unexpected_body, req.method + " takes no body");
        return handler();
    };

    // /api/v1/...
    if (segments.size() >= 3 && segments[0] == "api" && segments[1] == "v1")
    {
        if (segments[2] == "netns")
        {
            if (segments.size() == 3)
                return read_only([&] { return list_netns(); });
            if (segments.size() == 4)
                return read_only([&] { return get_netns(segments[3]); });
        }
        if (segments[2] == "nsids" && segments.size() == 3)
            return read_only([&] { return list_nsids(); });
        if (segments[2] == "events" && segments.size() == 3)
        {
            if (req.method != "GET")
                return not_allowed("GET");
            return read_only([&] { return events(req, is_upgrade); });
        }
    }
    if (path == "/healthz")
        return read_only([&] { return health(); });
    for (const auto& a : assets_)
        if (a.route == path)
            return read_only([&] { return serve_asset(a); });
    return problem(problem_type::no_route, "nothing is served at this path");
}

router::outcome router::events(const request& req, bool is_upgrade)
{
    auto parsed = parse_stream_params(req, negotiate_format(req, is_upgrade));
    if (auto* r = std::get_if<response>(&parsed))
        return std::move(*r);
    if (hub_.full())
        return problem(problem_type::too_many_streams, "already serving " +
                                                           std::to_string(hub_.size()) +
                                                           " stream clients; try again later");
    return std::get<stream_params>(std::move(parsed));
}

response router::list_netns()
{
    return json_response(200, lists_.list_body());
}

response router::get_netns(std::string_view raw_name)
{
    const auto name = percent_decode(raw_name);
    if (!name)
        return problem(problem_type::bad_request, "the name has a malformed percent-escape");
    if (const auto error = core::check_name(*name); error != core::name_error::none)
        return problem(problem_type::invalid_name, std::string(core::describe(error)));
    const auto found = model_.find(*name);
    if (!found)
        return problem(problem_type::not_found, "no entry of that name in " + watch_.netns_dir(),
                       entry_href(*name));
    return json_response(200, dump(to_json(*found, watch_.netns_dir())));
}

response router::list_nsids() const
{
    json rows = json::array();
    for (const auto& row : model_.nsids())
    {
        json r = json::object();
        r["nsid"] = row.nsid;
        r["name"] = row.name ? json(*row.name) : json(nullptr);
        rows.push_back(std::move(r));
    }
    json body = json::object();
    body["revision"] = model_.revision();
    body["nsids"] = std::move(rows);
    return json_response(200, dump(body));
}

response router::health() const
{
    json body = json::object();
    body["status"] = watch_.watching() ? "ok" : "degraded";
    body["revision"] = model_.revision();
    body["namespaces"] = model_.slots().size();
    body["netns_dir"] = watch_.netns_dir();
    body["watching"] = watch_.watching();
    if (!watch_.watching())
        body["problem"] = watch_.problem();
    return json_response(200, dump(body));
}

response router::serve_asset(const asset& a) const
{
    return {200, std::string(media_type(a.route)), std::string(a.bytes), {}};
}

} // namespace netnsd::api
