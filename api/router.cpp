#include "api/router.hpp"

#include <exception>
#include <functional>
#include <vector>

#include "core/log.hpp"
#include "core/name.hpp"

#include "api/admin.hpp"
#include "api/auth.hpp"
#include "api/host_inventory.hpp"
#include "api/interface_metrics.hpp"
#include "api/json.hpp"
#include "api/metrics.hpp"
#include "api/origin_policy.hpp"
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

// A path against a template: each segment equal, or a {param} taking any one segment.
bool matches(std::string_view templ, const std::vector<std::string_view>& segments)
{
    std::size_t i = 0;
    templ.remove_prefix(1); // the leading '/'
    while (!templ.empty())
    {
        const auto slash = templ.find('/');
        const auto part = templ.substr(0, slash);
        if (i >= segments.size() || (!part.starts_with('{') && segments[i] != part))
            return false;
        ++i;
        if (slash == std::string_view::npos)
            break;
        templ.remove_prefix(slash + 1);
    }
    return i == segments.size();
}

// The segment a {param} of the template took.
std::string_view param(std::string_view templ, const std::vector<std::string_view>& segments,
                       std::string_view name)
{
    std::size_t i = 0;
    for (std::size_t at = 1; at <= templ.size(); ++i)
    {
        const auto next = std::min(templ.find('/', at), templ.size());
        if (templ.substr(at, next - at) == name)
            return segments[i];
        at = next + 1;
    }
    return {};
}

// A {name} segment, decoded and checked; or the problem to answer.
std::variant<std::string, response> name_of(std::string_view raw)
{
    auto name = percent_decode(raw);
    if (!name)
        return problem(problem_type::bad_request, "the name has a malformed percent-escape");
    if (const auto error = core::check_name(*name); error != core::name_error::none)
        return problem(problem_type::invalid_name, std::string(core::describe(error)));
    return std::move(*name);
}

router::outcome from_admin(admin::outcome o)
{
    return std::visit([](auto&& v) -> router::outcome { return std::move(v); }, std::move(o));
}

router::outcome from_links(link_views::outcome o)
{
    return std::visit([](auto&& v) -> router::outcome { return std::move(v); }, std::move(o));
}

} // namespace

std::span<const route_info> router::routes() noexcept
{
    using a = access;
    static constexpr route_info table[] = {
        {"GET", "/api/v1/netns", a::read, {}, false, false, &router::on_list},
        {"POST", "/api/v1/netns", a::write, "create", true, false, &router::on_create},
        {"DELETE", "/api/v1/netns", a::write, "delete_all", true, false, &router::on_delete_all},
        {"GET", "/api/v1/netns/{name}", a::read, {}, false, false, &router::on_get},
        {"DELETE", "/api/v1/netns/{name}", a::write, "delete", true, false, &router::on_delete},
        {"PUT", "/api/v1/netns/{name}/nsid", a::write, "set_nsid", true, false,
         &router::on_set_nsid},
        {"GET", "/api/v1/netns/{name}/pids", a::read, "pids", true, false, &router::on_pids},
        {"POST", "/api/v1/netns/{name}/exec", a::write, "exec", true, false, &router::on_exec},
        {"GET", "/api/v1/processes/{pid}/netns", a::read, {}, false, false, &router::on_identify},
        {"POST", "/api/v1/audit", a::write, "audit", true, false, &router::on_audit},
        {"GET", "/api/v1/nsids", a::read, {}, false, false, &router::on_nsids},
        {"GET", "/api/v1/namespaces", a::read, {}, false, false, &router::on_hosts},
        {"GET", "/api/v1/namespaces/{ns_id}", a::read, {}, false, false, &router::on_host},
        {"POST", "/api/v1/namespaces/scan", a::write, "scan", true, false, &router::on_deep_scan},
        {"GET",
         "/api/v1/namespaces/{ns_id}/processes",
         a::read,
         {},
         false,
         false,
         &router::on_host_processes},
        {"GET",
         "/api/v1/namespaces/{ns_id}/links",
         a::read,
         {},
         false,
         false,
         &router::on_host_links},
        {"GET", "/api/v1/netns/{name}/links", a::read, {}, false, false, &router::on_links},
        {"GET", "/api/v1/topology", a::read, {}, false, false, &router::on_topology},
        {"GET", "/api/v1/events", a::read, {}, false, true, &router::on_events},
        {"GET", "/healthz", a::open, {}, false, false, &router::on_health},
        {"GET", "/metrics", a::read, {}, false, false, &router::on_metrics},
    };
    return table;
}

std::span<const route_info> route_table() noexcept
{
    return router::routes();
}

std::string_view operation_of(std::string_view method, std::string_view route) noexcept
{
    if (method == "HEAD")
        method = "GET";
    for (const auto& r : route_table())
        if (r.path == route && r.method == method)
            return r.op;
    return {};
}

router::router(const core::registry& model, const core::model_status& status, list_cache& lists,
               stream_hub& hub, std::span<const asset> assets)
    : model_(model), status_(status), lists_(lists), hub_(hub), assets_(assets)
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
        if (policy_ != nullptr)
            if (auto refused = policy_->check(req))
                return std::move(*refused);
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

bool router::serves(const route_info& r) const noexcept
{
    return !r.admin || admin_ != nullptr;
}

std::optional<response> router::refuse(const request& req, const route_info& r) const
{
    const bool write = !is_read(req.method);
    if ((!write || req.method == "DELETE") && req.has_body)
        return problem(problem_type::unexpected_body, req.method + " takes no body");
    if (r.access == access::open || (r.access == access::read && !auth_reads_))
        return std::nullopt;
    const auto authorization = req.header("Authorization");
    const auto got = auth_ == nullptr ? granted::none
                                      : auth_->check(authorization, req.transport,
                                                     write ? scope::admin : scope::read);
    if (got == granted::too_narrow)
        return problem(problem_type::insufficient_scope,
                       "this token is a read: token; " + req.method + " needs an admin token");
    if (got != granted::none)
        return std::nullopt;
    auto refused =
        problem(problem_type::unauthorized,
                authorization.empty() ? "send Authorization: Bearer <token> (see --token-file)"
                                      : "the bearer token is not the right one");
    refused.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"netnsd\"");
    return refused;
}

router::outcome router::route(const request& req, bool is_upgrade, std::string_view& matched)
{
    const auto parts = split_target(req.target);
    const auto segments = split_path(parts.path);
    if (segments.empty())
        return problem(problem_type::bad_request, "the request target must be an absolute path");

    // Every route of the resource: the one for this method, and the Allow header of the others
    // (an admin route while admin is off is known, and allows nothing).
    const route_info* chosen = nullptr;
    std::string allow;
    for (const auto& r : route_table())
    {
        if ((r.path == "/metrics" && metrics_ == nullptr) || !matches(r.path, segments))
            continue;
        matched = r.path;
        if (!serves(r))
            continue;
        allow += (allow.empty() ? "" : ", ") + std::string(r.method);
        if (r.method == "GET" && !r.get_only)
            allow += ", HEAD";
        if (req.method == r.method || (req.method == "HEAD" && r.method == "GET" && !r.get_only))
            chosen = &r;
    }
    // Two templates can match one path (/api/v1/namespaces/scan is also a {ns_id}): the one
    // chosen names the route.
    if (chosen != nullptr)
        matched = chosen->path;
    if (matched == "other")
    {
        for (const auto& a : assets_)
            if (a.route == parts.path)
            {
                matched = a.route;
                if (!is_read(req.method))
                    return not_allowed("GET, HEAD");
                if (auto refused =
                        refuse(req, {"GET", a.route, access::open, {}, false, false, nullptr}))
                    return std::move(*refused);
                return serve_asset(a);
            }
        matched = "other";
        return problem(problem_type::no_route, "nothing is served at this path");
    }
    // A name is checked before the method: a bad one is a bad request whatever was asked.
    route_args args{{}, {}, {}, parts.query};
    if (const auto raw = param(matched, segments, "{name}");
        matched.find("{name}") != std::string_view::npos)
    {
        auto name = name_of(raw);
        if (auto* r = std::get_if<response>(&name))
            return std::move(*r);
        args.name = std::move(std::get<std::string>(name));
    }
    args.pid = param(matched, segments, "{pid}");
    args.ns_id = param(matched, segments, "{ns_id}");
    if (chosen == nullptr)
        return not_allowed(allow);
    if (auto refused = refuse(req, *chosen))
        return std::move(*refused);
    return (this->*(chosen->handle))(req, args, is_upgrade);
}

router::outcome router::on_list(const request&, const route_args&, bool)
{
    return list_netns();
}

router::outcome router::on_create(const request& req, const route_args&, bool)
{
    return from_admin(admin_->create(req));
}

router::outcome router::on_delete_all(const request&, const route_args& args, bool)
{
    bool all = false;
    for (const auto& p : parse_query(args.query).value_or(std::vector<query_param>{}))
        all = all || (p.key == "all" && p.value == "true");
    if (!all)
        return problem(problem_type::bad_request, "add ?all=true to delete every entry");
    return from_admin(admin_->remove_all());
}

router::outcome router::on_get(const request&, const route_args& args, bool)
{
    return get_netns(args.name);
}

router::outcome router::on_delete(const request&, const route_args& args, bool)
{
    return from_admin(admin_->remove(args.name));
}

router::outcome router::on_set_nsid(const request& req, const route_args& args, bool)
{
    return from_admin(admin_->set_nsid(args.name, req));
}

router::outcome router::on_pids(const request&, const route_args& args, bool)
{
    return from_admin(admin_->pids(args.name));
}

router::outcome router::on_exec(const request& req, const route_args& args, bool)
{
    return from_admin(admin_->exec(args.name, req));
}

router::outcome router::on_identify(const request&, const route_args& args, bool)
{
    return process_host(model_, args.pid);
}

router::outcome router::on_audit(const request&, const route_args&, bool)
{
    return from_admin(admin_->audit());
}

router::outcome router::on_nsids(const request&, const route_args&, bool)
{
    return list_nsids();
}

router::outcome router::on_hosts(const request&, const route_args& args, bool)
{
    return list_hosts(model_, args.query, &hosts_cache_);
}

router::outcome router::on_host(const request&, const route_args& args, bool)
{
    return get_host(model_, args.ns_id);
}

router::outcome router::on_host_processes(const request&, const route_args& args, bool)
{
    return host_processes(model_, args.ns_id, args.query);
}

router::outcome router::on_links(const request&, const route_args& args, bool)
{
    return from_links(links_.netns_links(args.name));
}

router::outcome router::on_host_links(const request&, const route_args& args, bool)
{
    return from_links(links_.host_links(args.ns_id));
}

router::outcome router::on_topology(const request&, const route_args&, bool)
{
    return from_links(links_.topology());
}

router::outcome router::on_deep_scan(const request&, const route_args&, bool)
{
    return from_admin(admin_->deep_scan());
}

router::outcome router::on_events(const request& req, const route_args&, bool is_upgrade)
{
    return events(req, is_upgrade);
}

router::outcome router::on_health(const request&, const route_args&, bool)
{
    return health();
}

router::outcome router::on_metrics(const request&, const route_args&, bool)
{
    if (interface_metrics_)
        return std::visit([](auto&& v) -> outcome { return std::move(v); },
                          interface_metrics_->scrape(
                              [this](interface_metrics::text_ptr families)
                              {
                                  auto r = render_metrics();
                                  r.shared_tail = std::move(families);
                                  return r;
                              }));
    return render_metrics();
}

void router::enable_interface_metrics(std::size_t max_series, unsigned threads)
{
    interface_metrics_ =
        std::make_unique<interface_metrics>(model_, lists_.netns_dir(), max_series, threads);
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
    auto body = lists_.entry_body(name);
    if (!body)
        return problem(problem_type::not_found, "no entry of that name in " + status_.netns_dir,
                       entry_href(name));
    auto r = json_response(200, {});
    r.shared_body = std::move(body);
    return r;
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

response router::health()
{
    const auto namespaces = model_.slots().size();
    if (!health_.body || health_.revision != model_.revision() ||
        health_.start_revision != model_.start_revision() || health_.namespaces != namespaces ||
        health_.watching != status_.watching || health_.problem != status_.problem ||
        health_.netns_dir != status_.netns_dir)
    {
        json body = json::object();
        body["status"] = status_.watching ? "ok" : "degraded";
        body["revision"] = model_.revision();
        body["start_revision"] = model_.start_revision();
        body["namespaces"] = namespaces;
        body["netns_dir"] = status_.netns_dir;
        body["watching"] = status_.watching;
        if (!status_.watching)
            body["problem"] = status_.problem;
        health_ = {model_.revision(),
                   model_.start_revision(),
                   namespaces,
                   status_.watching,
                   status_.problem,
                   status_.netns_dir,
                   std::make_shared<const std::string>(dump(body))};
    }
    auto r = json_response(200, {});
    r.shared_body = health_.body;
    return r;
}

response router::render_metrics() const
{
    scrape_inputs in;
    in.live = model_.live_count();
    in.stale = model_.slots().size() - model_.live_count();
    in.nsids = model_.nsid_count();
    in.revision = model_.revision();
    in.model = &status_;
    for (const auto format : {stream_format::websocket, stream_format::sse, stream_format::ndjson})
        in.stream_clients[static_cast<std::size_t>(format)] = hub_.clients(format);
    for (const auto why : {drop_reason::queue_full, drop_reason::unresponsive})
        in.stream_dropped[static_cast<std::size_t>(why)] = hub_.dropped(why);
    in.exec_running = admin_ == nullptr ? 0 : admin_->running_execs();
    model_.for_each_host_namespace(
        [&in](const core::host_namespace& h)
        {
            ++in.host_namespaces[static_cast<std::size_t>(h.owner.kind)];
            in.leaked_namespaces += h.is_leak() ? 1u : 0u;
        });
    in.process = core::kernel::read_process_stats();
    return make_response(200, metrics::content_type, metrics_->render(in));
}

response router::serve_asset(const asset& a) const
{
    return make_response(200, media_type(a.route), std::string(a.bytes));
}

} // namespace netnsd::api
