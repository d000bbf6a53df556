#include "api/origin_policy.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "api/problem.hpp"
#include "api/uri.hpp"

namespace netnsd::api
{
namespace
{

std::string lower(std::string_view text)
{
    std::string out(text);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}

bool is_ip_address(const std::string& host)
{
    in6_addr v6{};
    in_addr v4{};
    return ::inet_pton(AF_INET, host.c_str(), &v4) == 1 ||
           ::inet_pton(AF_INET6, host.c_str(), &v6) == 1;
}

bool all_digits(std::string_view text)
{
    return !text.empty() &&
           std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "http://Example.com:80" -> "example.com", "https://[::1]:9321" -> "[::1]:9321": the origin's
// authority, lower case, without its scheme's default port; the scheme goes to `scheme`.
// nullopt for anything that is not scheme://authority ("null", a path, user info).
std::optional<std::string> origin_authority(std::string_view origin, std::string* scheme = nullptr)
{
    const auto text = lower(origin);
    const auto sep = text.find("://");
    if (sep == std::string::npos || sep == 0)
        return std::nullopt;
    const auto proto = text.substr(0, sep);
    auto authority = text.substr(sep + 3);
    if (authority.empty() || authority.find_first_of("/?#@ \t") != std::string::npos)
        return std::nullopt;
    if (proto == "http" && authority.ends_with(":80"))
        authority.resize(authority.size() - 3);
    else if (proto == "https" && authority.ends_with(":443"))
        authority.resize(authority.size() - 4);
    if (scheme != nullptr)
        *scheme = proto;
    return authority;
}

// Whether the request is one a cross-site page must not be able to make: a write, or an event
// stream (websocket, SSE, NDJSON: GET /api/v1/events is only ever a stream).
bool needs_origin_check(const request& req)
{
    if (req.method != "GET" && req.method != "HEAD")
        return true;
    return split_target(req.target).path == "/api/v1/events";
}

} // namespace

origin_policy::origin_policy(origin_settings settings) : any_address_(settings.any_address)
{
    for (const auto& h : settings.hosts)
    {
        if (h == "*")
        {
            any_host_ = true;
            continue;
        }
        // A listen address or name as given: "::1", "[::1]", "Example.com".
        const auto wrapped =
            h.find(':') != std::string::npos && h.front() != '[' ? "[" + h + "]" : h;
        if (auto n = host_of(wrapped))
            hosts_.push_back(std::move(*n));
    }
    for (const char* own : {"localhost", "127.0.0.1", "::1"})
        hosts_.emplace_back(own);
    for (const auto& o : settings.origins)
    {
        if (o == "*")
        {
            any_origin_ = true;
            continue;
        }
        std::string scheme;
        if (auto a = origin_authority(o, &scheme))
            origins_.push_back(scheme + "://" + *a);
    }
}

std::optional<std::string> origin_policy::host_of(std::string_view host_header)
{
    auto text = lower(host_header);
    std::string host;
    if (!text.empty() && text.front() == '[')
    {
        const auto close = text.find(']');
        if (close == std::string::npos)
            return std::nullopt;
        host = text.substr(1, close - 1);
        const auto rest = std::string_view(text).substr(close + 1);
        if (!rest.empty() && !(rest.front() == ':' && all_digits(rest.substr(1))))
            return std::nullopt;
        if (host.empty())
            return std::nullopt;
        return host;
    }
    const auto colon = text.find(':');
    host = text.substr(0, colon);
    if (colon != std::string::npos && !all_digits(std::string_view(text).substr(colon + 1)))
        return std::nullopt;
    if (host.ends_with('.'))
        host.pop_back();
    if (host.empty() || host.find_first_of("/?#@ \t\\") != std::string::npos)
        return std::nullopt;
    return host;
}

bool origin_policy::host_allowed(std::string_view host_header) const
{
    if (any_host_)
        return true;
    const auto host = host_of(host_header);
    if (!host)
        return false;
    if (std::find(hosts_.begin(), hosts_.end(), *host) != hosts_.end())
        return true;
    return any_address_ && is_ip_address(*host);
}

bool origin_policy::origin_allowed(std::string_view origin, std::string_view host_header) const
{
    if (any_origin_)
        return true;
    std::string scheme;
    const auto authority = origin_authority(origin, &scheme);
    if (!authority)
        return false;
    // The request's own origin: the same host and port as its Host. The scheme is not compared:
    // behind a proxy that ends TLS, the page is https and netnsd sees http with the same Host.
    auto host = lower(host_header);
    if ((scheme == "http" && host.ends_with(":80")) ||
        (scheme == "https" && host.ends_with(":443")))
        host.resize(host.rfind(':'));
    if (!host.empty() && host == *authority)
        return true;
    const auto full = scheme + "://" + *authority;
    return std::find(origins_.begin(), origins_.end(), full) != origins_.end();
}

std::optional<response> origin_policy::check(const request& req) const
{
    const auto host = req.header("Host");
    // No browser sends a request without Host (HTTP/1.0 health checks do); the Unix socket is
    // out of a browser's reach.
    if (!req.transport.unix_socket && !host.empty() && !host_allowed(host))
        return problem(problem_type::host_not_allowed,
                       "this server does not answer to that Host; use one of its own names or "
                       "addresses, or start it with --allowed-host NAME");
    const auto origin = req.header("Origin");
    if (!origin.empty() && needs_origin_check(req) && !origin_allowed(origin, host))
        return problem(problem_type::origin_not_allowed,
                       "a cross-origin request may not write or open the event stream; start "
                       "netnsd with --allowed-origin ORIGIN to allow that origin");
    return std::nullopt;
}

} // namespace netnsd::api
