#include "api/http.hpp"

#include <strings.h>

#include "api/assets.hpp"

namespace netnsd::api
{

std::string_view request::header(std::string_view name) const noexcept
{
    for (const auto& [key, value] : headers)
        if (key.size() == name.size() && ::strncasecmp(key.data(), name.data(), key.size()) == 0)
            return value;
    return {};
}

std::string_view media_type(std::string_view route) noexcept
{
    auto ends_with = [&](std::string_view ext)
    {
        return route.ends_with(ext);
    };
    if (route.ends_with("/") || ends_with(".html"))
        return "text/html; charset=utf-8";
    if (ends_with(".yaml"))
        return "application/yaml";
    if (ends_with(".js"))
        return "text/javascript; charset=utf-8";
    if (ends_with(".css"))
        return "text/css; charset=utf-8";
    if (ends_with(".svg"))
        return "image/svg+xml";
    if (ends_with(".json"))
        return "application/json";
    return "application/octet-stream";
}

} // namespace netnsd::api
