// The router: maps a request to a handler through one table of routes (method, path template,
// who may call it, the admin operation it is for metrics, the handler) and returns the
// response, or, for GET /api/v1/events, the parameters of the stream the transport must start.
// Dispatch, the Allow header, the metrics' route and operation labels and the contract test's
// list of routes all come from that table. It reads the model (the I/O thread's replica of it)
// and the model thread's status; it never blocks and never throws (one try/catch answers 500).
// The list body comes from the list_cache, so repeated reads of an unchanged model cost a copy.
// Owned by main; loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "core/model_status.hpp"
#include "core/registry.hpp"

#include "api/assets.hpp"
#include "api/host_inventory.hpp"
#include "api/http.hpp"
#include "api/interface_metrics.hpp"
#include "api/links.hpp"
#include "api/list_cache.hpp"
#include "api/stream.hpp"

namespace netnsd::api
{

class admin;
class metrics;
class origin_policy;
class router;
class token_auth;

// Who may call a route.
enum class access
{
    open,  // anyone, always (/healthz, the dashboard's files)
    read,  // anyone, or a read: or admin: token with --auth-reads
    write, // an admin token (or the Unix socket's --admin-group peer)
};

// What a route's handler gets of the path: its {name} (decoded and checked), {pid} and
// {ns_id} (raw), and the query string.
struct route_args
{
    std::string name;
    std::string_view pid;
    std::string_view ns_id;
    std::string_view query;
};

// One route. The table of them is the one list of what netnsd serves.
struct route_info
{
    std::string_view method; // "GET" (a GET route answers HEAD too, unless get_only)
    std::string_view path;   // an OpenAPI path template: "/api/v1/netns/{name}"
    api::access access = access::read;
    // The admin operation it is (netnsd_admin_operations_total{op}); empty for plain reads.
    std::string_view op;
    // It exists only with the admin endpoints enabled (it needs the admin handlers).
    bool admin = false;
    // HEAD is not answered (the event stream).
    bool get_only = false;
    using handler = std::variant<response, stream_params, deferred> (router::*)(const request&,
                                                                                const route_args&,
                                                                                bool is_upgrade);
    handler handle = nullptr;
};

// Every route the router answers but the embedded static files (api/assets.hpp), in a fixed
// order.
std::span<const route_info> route_table() noexcept;

// The admin operation of a request by its method and matched route template ("create"), for
// metrics; empty when it is none.
std::string_view operation_of(std::string_view method, std::string_view route) noexcept;

class router
{
public:
    router(const core::registry& model, const core::model_status& status, list_cache& lists,
           stream_hub& hub, std::span<const asset> assets);

    // The admin endpoints and their bearer token; without this call they do not exist (405).
    void enable_admin(admin& ops, const token_auth& auth, bool auth_reads);

    // The Host and Origin checks, made before any route; without this call there are none.
    void enable_origin_policy(const origin_policy& policy) noexcept { policy_ = &policy; }

    // GET /metrics from these counters; without this call it is 404.
    void enable_metrics(metrics& stats) noexcept { metrics_ = &stats; }
    // /metrics also carries every interface's counters (--metrics-interfaces), at most
    // `max_series` of them, gathered by `threads` threads.
    void enable_interface_metrics(std::size_t max_series, unsigned threads);
    metrics* stats() const noexcept { return metrics_; }

    // A response to send, the stream to start (GET /api/v1/events, validated), or work for a
    // worker thread (the admin endpoints).
    using outcome = std::variant<response, stream_params, deferred>;
    outcome dispatch(const request& req, bool is_upgrade) noexcept;
    // The same, and the route template it matched ("/api/v1/netns/{name}"; "other" when none
    // did), for metrics: never the raw path.
    outcome dispatch(const request& req, bool is_upgrade, std::string_view& route) noexcept;

    // dispatch() for transports that cannot stream: a stream request is answered 406.
    response handle(const request& req) noexcept;

    // The table (route_table() hands it out).
    static std::span<const route_info> routes() noexcept;

private:
    // The handlers the table names, one per route.
    outcome on_list(const request& req, const route_args& args, bool is_upgrade);
    outcome on_create(const request& req, const route_args& args, bool is_upgrade);
    outcome on_delete_all(const request& req, const route_args& args, bool is_upgrade);
    outcome on_get(const request& req, const route_args& args, bool is_upgrade);
    outcome on_delete(const request& req, const route_args& args, bool is_upgrade);
    outcome on_set_nsid(const request& req, const route_args& args, bool is_upgrade);
    outcome on_pids(const request& req, const route_args& args, bool is_upgrade);
    outcome on_exec(const request& req, const route_args& args, bool is_upgrade);
    outcome on_identify(const request& req, const route_args& args, bool is_upgrade);
    outcome on_audit(const request& req, const route_args& args, bool is_upgrade);
    outcome on_nsids(const request& req, const route_args& args, bool is_upgrade);
    outcome on_hosts(const request& req, const route_args& args, bool is_upgrade);
    outcome on_host(const request& req, const route_args& args, bool is_upgrade);
    outcome on_host_processes(const request& req, const route_args& args, bool is_upgrade);
    outcome on_links(const request& req, const route_args& args, bool is_upgrade);
    outcome on_host_links(const request& req, const route_args& args, bool is_upgrade);
    outcome on_topology(const request& req, const route_args& args, bool is_upgrade);
    outcome on_deep_scan(const request& req, const route_args& args, bool is_upgrade);
    outcome on_events(const request& req, const route_args& args, bool is_upgrade);
    outcome on_health(const request& req, const route_args& args, bool is_upgrade);
    outcome on_metrics(const request& req, const route_args& args, bool is_upgrade);

    outcome route(const request& req, bool is_upgrade, std::string_view& matched);
    // Whether `r` is served now (the admin routes need the admin endpoints enabled).
    bool serves(const route_info& r) const noexcept;
    // The checks between a match and its handler: body, token.
    std::optional<response> refuse(const request& req, const route_info& r) const;
    outcome events(const request& req, bool is_upgrade);
    response list_netns();
    response get_netns(const std::string& name);
    response list_nsids() const;
    response health();
    response render_metrics() const;
    response serve_asset(const asset& a) const;

    const core::registry& model_;
    host_list_cache hosts_cache_{model_};
    const core::model_status& status_;
    list_cache& lists_;
    // What is inside the namespaces (links, addresses, topology), dumped on request.
    link_views links_{model_, lists_.netns_dir()};
    stream_hub& hub_;
    std::span<const asset> assets_;
    admin* admin_ = nullptr;
    const token_auth* auth_ = nullptr;
    bool auth_reads_ = false;
    metrics* metrics_ = nullptr;
    std::unique_ptr<interface_metrics> interface_metrics_;
    const origin_policy* policy_ = nullptr;
    // GET /healthz's body, kept while what it says is unchanged: probes and load balancers ask
    // often, and a cached body is sent without being made again.
    struct health_body
    {
        core::revision_t revision = 0;
        core::revision_t start_revision = 0;
        std::size_t namespaces = 0;
        bool watching = false;
        std::string problem;
        std::string netns_dir;
        std::shared_ptr<const std::string> body;
    };
    health_body health_;
};

} // namespace netnsd::api
