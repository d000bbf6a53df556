// The router: maps a request to a handler and returns the response. It reads the registry and
// the monitor's status; it never blocks and never throws (one try/catch answers 500). The list
// body is cached per registry generation, so repeated reads of an unchanged model cost a copy.
// Owned by main; loop thread only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/monitor.hpp"
#include "core/registry.hpp"
#include "api/assets.hpp"
#include "api/http.hpp"

namespace netnsd::api
{

// One documented route: what openapi.yaml must list, and what the contract test compares.
struct route_info
{
    std::string_view method;   // "GET"
    std::string_view path;     // an OpenAPI path template: "/api/v1/netns/{name}"
};

// Every route the router answers (assets included), in a fixed order.
std::span<const route_info> route_table() noexcept;

class router
{
public:
    router(const core::registry& model, const core::monitor& watch,
           std::span<const asset> assets);

    response handle(const request& req) noexcept;

private:
    response route(const request& req);
    response list_netns();
    response get_netns(std::string_view raw_name);
    response list_nsids() const;
    response health() const;
    response serve_asset(const asset& a) const;

    const core::registry& model_;
    const core::monitor& watch_;
    std::span<const asset> assets_;
    std::uint64_t cached_generation_ = ~std::uint64_t{0};
    std::string cached_list_;
};

} // namespace netnsd::api
