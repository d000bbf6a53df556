// The router: maps a request to a handler and returns the response, or, for GET
// /api/v1/events, the parameters of the stream the transport must start. It reads the model
// (the I/O thread's replica of it) and the model thread's status; it never blocks and never
// throws (one try/catch answers 500). The list body comes from the list_cache, so repeated
// reads of an unchanged model cost a copy. Owned by main; loop thread only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "core/model_status.hpp"
#include "core/registry.hpp"

#include "api/assets.hpp"
#include "api/http.hpp"
#include "api/list_cache.hpp"
#include "api/stream.hpp"

namespace netnsd::api
{

class admin;
class metrics;
class origin_policy;
class token_auth;

// One documented route: what openapi.yaml must list, and what the contract test compares.
struct route_info
{
    std::string_view method; // "GET"
    std::string_view path;   // an OpenAPI path template: "/api/v1/netns/{name}"
};

// Every route the router answers (assets included), in a fixed order.
std::span<const route_info> route_table() noexcept;

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

private:
    outcome route(const request& req, bool is_upgrade, std::string_view& matched);
    outcome events(const request& req, bool is_upgrade);
    response list_netns();
    response get_netns(const std::string& name);
    response list_nsids() const;
    response health() const;
    response render_metrics() const;
    response serve_asset(const asset& a) const;

    const core::registry& model_;
    const core::model_status& status_;
    list_cache& lists_;
    stream_hub& hub_;
    std::span<const asset> assets_;
    admin* admin_ = nullptr;
    const token_auth* auth_ = nullptr;
    bool auth_reads_ = false;
    metrics* metrics_ = nullptr;
    const origin_policy* policy_ = nullptr;
};

} // namespace netnsd::api
