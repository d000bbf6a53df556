// origin_policy: which requests a browser could have been tricked into sending, refused before
// routing. Two checks, as Jupyter and Syncthing make them:
// - Host (DNS rebinding): a page on attacker.example whose name the attacker re-points at
//   127.0.0.1 reaches netnsd with `Host: attacker.example`. A request on a TCP listener whose
//   Host is not one of netnsd's own names is 421. The port is not compared (an SSH tunnel or a
//   proxy may use another one); an IP address is one of the listen addresses, 127.0.0.1 or ::1,
//   or any address when a listener is on 0.0.0.0 or [::] (an address cannot be re-pointed; a
//   name can). The Unix socket accepts any Host: no browser reaches it.
// - Origin (cross-site requests): browsers send no CORS preflight for a websocket and none for
//   a "simple" POST, so a request that carries Origin and is a write or an event stream must
//   come from netnsd's own origin (same host and port as its Host) or one --allowed-origin
//   lists; otherwise 403. A request without Origin (curl, orchestrators) is not affected.
// Built once by main from the config; immutable afterwards; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http.hpp"

namespace netnsd::api
{

struct origin_settings
{
    // netnsd's own names and addresses besides localhost, 127.0.0.1 and ::1: the listen
    // addresses, the machine's hostname and every --allowed-host. "*" turns the Host check off.
    std::vector<std::string> hosts;
    // Whether a listener is on a wildcard address (0.0.0.0, ::): then any IP address is a Host.
    bool any_address = false;
    // Origins allowed besides the request's own: "https://netns.example.com", as a browser
    // spells them (scheme://host[:port]). "*" allows every origin.
    std::vector<std::string> origins;
};

class origin_policy
{
public:
    explicit origin_policy(origin_settings settings = {});

    // The refusal for `req`, or nullopt when it may be routed.
    std::optional<response> check(const request& req) const;

    // The host part of a Host header value, lower case, without the port or a trailing dot
    // ("[::1]:9321" -> "::1", "Example.COM.:80" -> "example.com"); nullopt when malformed.
    static std::optional<std::string> host_of(std::string_view host_header);

    bool host_allowed(std::string_view host_header) const;
    // Whether `origin` is the request's own (same host and port as `host_header`) or allowed.
    bool origin_allowed(std::string_view origin, std::string_view host_header) const;

private:
    std::vector<std::string> hosts_; // normalised by host_of
    std::vector<std::string> origins_;
    bool any_host_ = false;
    bool any_address_ = false;
    bool any_origin_ = false;
};

} // namespace netnsd::api
