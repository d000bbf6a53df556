#include "api/router.hpp"

#include <exception>
#include <functional>
#include <vector>

#include "core/log.hpp"
#include "core/name.hpp"

#include "api/admin.hpp"
#include "api/auth.hpp"
#include "api/json.hpp"
#include "api/metrics.hpp"
#include "api/problem.hpp"
#include "api/uri.hpp"

namespace netnsd::api
{
namespace
{

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
    {"POST", "/api/v1/netns"},
    {"DELETE", "/api/v1/netns"},
    {"DELETE", "/api/v1/netns/{name}"},
    {"PUT", "/api/v1/netns/{name}/nsid"},
    {"GET", "/api/v1/netns/{name}/pids"},
    {"POST", "/api/v1/netns/{name}/exec"},
    {"GET", "/api/v1/processes/{pid}/netns"},
    {"GET", "/healthz"},
    {"GET", "/metrics"},
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

void router::enable_admin(admin& ops, const token_auth& auth, bool auth_reads)
{
    admin_ = &ops;
    auth_ = &auth;
    auth_reads_ = auth_reads;
}

router::outcome router::dispatch(const request& req, bool is_upgrade) noexcept
{
    std::string_view ignored;
    return dispatch(req, is_upgrade, ignored);
}

router::outcome router::dispatch(const request& req, bool is_upgrade,
                                 std::string_view& matched) noexcept
{
    matched = "other";
    try
    {
        return route(req, is_upgrade, matched);
    }
    catch (const std::exception& e)
    {
        core::log::error("handler failed", {{"error", e.what()}, {"target", req.target}});
    }
    catch (...)
    {
        core::log::error("handler failed with an unknown exception", {{"target", req.target}});
    }
    try
    {
        return problem(problem_type::internal, "the request could not be handled");
    }
    catch (...)
    {
        return make_response(500, "text/plain", "internal error\n");
    }
}

response router::handle(const request& req) noexcept
{
    auto out = dispatch(req, false);
    if (auto* r = std::get_if<response>(&out))
        return std::move(*r);
    if (auto* job = std::get_if<deferred>(&out))
    {
        // No worker here: run the job in place (tests, and tools that embed the router).
        try
        {
            return job->work()();
        }
        catch (...)
        {
            return problem(problem_type::internal, "the request could not be handled");
        }
    }
    return problem(problem_type::not_acceptable, "this transport cannot stream events");
}

router::outcome router::route(const request& req, bool is_upgrade, std::string_view& matched)
{
    // Not a structured binding: clang before 16 cannot capture one in a lambda.
    const auto parts = split_target(req.target);
    const auto path = parts.path;
    const auto query = parts.query;
    const auto segments = split_path(path);
    if (segments.empty())
        return problem(problem_type::bad_request, "the request target must be an absolute path");

    // The methods a resource allows, each with its handler. HEAD goes wherever GET does; GET,
    // HEAD and DELETE take no body; writes (and, with --auth-reads, reads) need the token.
    using handler = std::function<outcome()>;
    auto serve = [&](std::initializer_list<std::pair<std::string_view, handler>> methods,
                     bool open_read = false) -> outcome
    {
        const handler* chosen = nullptr;
        std::string allow;
        for (const auto& [method, h] : methods)
        {
            if (h == nullptr)
                continue; // an admin method while admin is off
            allow += (allow.empty() ? "" : ", ") + std::string(method);
            if (method == "GET")
                allow += ", HEAD";
            if (req.method == method || (req.method == "HEAD" && method == "GET"))
                chosen = &h;
        }
        if (chosen == nullptr)
            return not_allowed(allow);
        const bool write = !is_read(req.method);
        if (!write || req.method == "DELETE")
            if (req.has_body)
                return problem(problem_type::unexpected_body, req.method + " takes no body");
        if ((write || (auth_reads_ && !open_read)) &&
            (auth_ == nullptr || !auth_->allows(req.header("Authorization"))))
        {
            auto r = problem(problem_type::unauthorized,
                             req.header("Authorization").empty()
                                 ? "send Authorization: Bearer <token> (see --token-file)"
                                 : "the bearer token is not the right one");
            r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"netnsd\"");
            return r;
        }
        return (*chosen)();
    };
    auto admin_only = [&](handler h) -> handler
    {
        return admin_ == nullptr ? nullptr : h;
    };
    auto deferred_or_response = [](admin::outcome o) -> outcome
    {
        return std::visit([](auto&& v) -> outcome { return std::move(v); }, std::move(o));
    };
    // A {name} segment, decoded and checked.
    auto name_of = [](std::string_view raw) -> std::variant<std::string, response>
    {
        auto name = percent_decode(raw);
        if (!name)
            return problem(problem_type::bad_request, "the name has a malformed percent-escape");
        if (const auto error = core::check_name(*name); error != core::name_error::none)
            return problem(problem_type::invalid_name, std::string(core::describe(error)));
        return std::move(*name);
    };

    if (segments.size() >= 3 && segments[0] == "api" && segments[1] == "v1")
    {
        const auto& kind = segments[2];
        if (kind == "netns" && segments.size() == 3)
        {
            matched = "/api/v1/netns";
            return serve(
                {{"GET",
                  [&]() -> outcome
                  {
                      return list_netns();
                  }},
                 {"POST", admin_only([&] { return deferred_or_response(admin_->create(req)); })},
                 {"DELETE", admin_only(
                                [&]() -> outcome
                                {
                                    const auto params = parse_query(query);
                                    bool all = false;
                                    for (const auto& p :
                                         params.value_or(std::vector<query_param>{}))
                                        all = all || (p.key == "all" && p.value == "true");
                                    if (!all)
                                        return problem(problem_type::bad_request,
                                                       "add ?all=true to delete every entry");
                                    return deferred_or_response(admin_->remove_all());
                                })}});
        }
        if (kind == "netns" && segments.size() >= 4 && segments.size() <= 5)
        {
            matched = segments.size() == 4    ? "/api/v1/netns/{name}"
                      : segments[4] == "nsid" ? "/api/v1/netns/{name}/nsid"
                      : segments[4] == "pids" ? "/api/v1/netns/{name}/pids"
                      : segments[4] == "exec" ? "/api/v1/netns/{name}/exec"
                                              : "other";
            auto name = name_of(segments[3]);
            if (auto* r = std::get_if<response>(&name))
                return std::move(*r);
            const auto& n = std::get<std::string>(name);
            if (segments.size() == 4)
                return serve(
                    {{"GET",
                      [&]() -> outcome
                      {
                          return get_netns(n);
                      }},
                     {"DELETE",
                      admin_only([&] { return deferred_or_response(admin_->remove(n)); })}});
            if (segments[4] == "nsid")
                return serve(
                    {{"PUT",
                      admin_only([&] { return deferred_or_response(admin_->set_nsid(n, req)); })}});
            if (segments[4] == "pids")
                return serve(
                    {{"GET", admin_only([&] { return deferred_or_response(admin_->pids(n)); })}});
            if (segments[4] == "exec")
                return serve(
                    {{"POST",
                      admin_only([&] { return deferred_or_response(admin_->exec(n, req)); })}});
        }
        if (kind == "processes" && segments.size() == 5 && segments[4] == "netns")
        {
            matched = "/api/v1/processes/{pid}/netns";
            return serve(
                {{"GET",
                  admin_only([&]
                             { return deferred_or_response(admin_->identify(segments[3])); })}});
        }
        if (kind == "nsids" && segments.size() == 3)
        {
            matched = "/api/v1/nsids";
            return serve({{"GET",
                           [&]() -> outcome
                           {
                               return list_nsids();
                           }}});
        }
        if (kind == "events" && segments.size() == 3)
        {
            matched = "/api/v1/events";
            if (req.method != "GET")
                return not_allowed("GET");
            return serve({{"GET",
                           [&]() -> outcome
                           {
                               return events(req, is_upgrade);
                           }}});
        }
    }
    if (path == "/healthz")
    {
        matched = "/healthz";
        return serve({{"GET",
                       [&]() -> outcome
                       {
                           return health();
                       }}},
                     true);
    }
    if (path == "/metrics" && metrics_ != nullptr)
    {
        matched = "/metrics";
        return serve({{"GET",
                       [&]() -> outcome
                       {
                           return render_metrics();
                       }}});
    }
    for (const auto& a : assets_)
        if (a.route == path)
        {
            matched = a.route;
            return serve({{"GET",
                           [&]() -> outcome
                           {
                               return serve_asset(a);
                           }}},
                         true);
        }
    matched = "other";
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
    auto r = json_response(200, {});
    r.shared_body = lists_.list_body();
    return r;
}

response router::get_netns(const std::string& name)
{
    const auto found = model_.find(name);
    if (!found)
        return problem(problem_type::not_found, "no entry of that name in " + watch_.netns_dir(),
                       entry_href(name));
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

response router::render_metrics() const
{
    scrape_inputs in;
    in.live = model_.live_count();
    in.stale = model_.slots().size() - model_.live_count();
    in.nsids = model_.nsid_count();
    in.revision = model_.revision();
    in.netns_dir_watched = watch_.watching();
    using reason = core::monitor::resync_reason;
    for (const auto why :
         {reason::start, reason::dir_changed, reason::inotify_overflow, reason::netlink_overrun})
        in.resyncs[static_cast<std::size_t>(why)] = watch_.resyncs(why);
    for (const auto format : {stream_format::websocket, stream_format::sse, stream_format::ndjson})
        in.stream_clients[static_cast<std::size_t>(format)] = hub_.clients(format);
    for (const auto why : {drop_reason::queue_full, drop_reason::unresponsive})
        in.stream_dropped[static_cast<std::size_t>(why)] = hub_.dropped(why);
    in.exec_running = admin_ == nullptr ? 0 : admin_->running_execs();
    in.process = read_process_stats();
    return make_response(200, std::string(metrics::content_type), metrics_->render(in));
}

response router::serve_asset(const asset& a) const
{
    return make_response(200, std::string(media_type(a.route)), std::string(a.bytes));
}

} // namespace netnsd::api
