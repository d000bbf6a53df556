// Static assets (the dashboard, the OpenAPI document) embedded into the binary at build time by
// cmake/embed_assets.cmake. Immutable; any thread.
#pragma once

#include <span>
#include <string_view>

namespace netnsd::api
{

struct asset
{
    std::string_view route; // "/", "/openapi.yaml", ...
    std::string_view bytes;
};

std::span<const asset> embedded_assets() noexcept;

// The media type for a route, from its extension ("/" and ".html" are HTML).
std::string_view media_type(std::string_view route) noexcept;

} // namespace netnsd::api
