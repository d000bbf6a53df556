// The router: maps a request to a handler and returns the response, or, for GET
// /api/v1/events, the parameters of the stream the transport must start. It reads the registry
// and the monitor's status; it never blocks and never throws (one try/catch answers 500). The
// list body comes from the list_cache, so repeated reads of an unchanged model cost a copy.
// Owned by main; loop thread only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "core/monitor.hpp"
#include "core/registry.hpp"

#include "api/assets.hpp"
#include "api/http.hpp"
#include "api/list_cache.hpp"
#include "api/stream.hpp"

namespace netnsd::api
{

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
    router(const core::registry& model, const core::monitor& watch, list_cache& lists,
           stream_hub& hub, std::span<const asset> assets);

    // A response to send, or the stream to start (GET /api/v1/events, validated).
    using outcome = std::variant<response, stream_params>;
    outcome dispatch(const request& req, bool is_upgrade) noexcept;

    // dispatch() for transports that cannot stream: a stream request is answered 406.
    response handle(const request& req) noexcept;

private:
    outcome route(const request& req, bool is_upgrade);
    outcome events(const request& req, bool is_upgrade);
    response list_netns();
    response get_netns(std::string_view raw_name);
    response list_nsids() const;
    response health() const;
    response serve_asset(const asset& a) const;

    const core::registry& model_;
    const core::monitor& watch_;
    list_cache& lists_;
    stream_hub& hub_;
    std::span<const asset> assets_;
};

} // namespace netnsd::api
