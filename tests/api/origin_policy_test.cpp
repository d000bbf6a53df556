// origin_policy: the Host check (DNS rebinding) and the Origin check (cross-site writes and
// event streams), as tables of allowed, refused and absent values; no socket.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "api/origin_policy.hpp"

namespace
{

using netnsd::api::origin_policy;
using netnsd::api::origin_settings;
using netnsd::api::request;

request make(const std::string& method, const std::string& target,
             std::vector<std::pair<std::string, std::string>> headers, bool unix_socket = false)
{
    request r;
    r.method = method;
    r.target = target;
    r.headers = std::move(headers);
    r.transport.unix_socket = unix_socket;
    return r;
}

// The status a request gets: 0 when it may be routed.
unsigned verdict(const origin_policy& p, const request& r)
{
    const auto refused = p.check(r);
    return refused ? refused->status : 0;
}

const origin_settings defaults{{"127.0.0.1", "node-7"}, false, {}};

} // namespace

TEST_CASE("host_of takes the host part of a Host value, lower case, without the port")
{
    CHECK(origin_policy::host_of("127.0.0.1:9321") == "127.0.0.1");
    CHECK(origin_policy::host_of("LocalHost") == "localhost");
    CHECK(origin_policy::host_of("[::1]:9321") == "::1");
    CHECK(origin_policy::host_of("[::1]") == "::1");
    CHECK(origin_policy::host_of("example.com.:80") == "example.com");
    CHECK_FALSE(origin_policy::host_of("example.com:80x"));
    CHECK_FALSE(origin_policy::host_of("[::1"));
    CHECK_FALSE(origin_policy::host_of("[::1]x"));
    CHECK_FALSE(origin_policy::host_of(""));
    CHECK_FALSE(origin_policy::host_of("a b"));
    CHECK_FALSE(origin_policy::host_of("user@host"));
}

TEST_CASE("Host: netnsd's own names pass on any port, other names are 421, on every route")
{
    const origin_policy p(defaults);
    struct row
    {
        const char* host;
        unsigned status;
    };
    const row rows[] = {
        {"127.0.0.1:9321", 0},
        {"127.0.0.1", 0},
        {"localhost:9321", 0},
        {"LOCALHOST:8080", 0},
        {"[::1]:9321", 0},
        {"node-7:9321", 0},
        {"node-7.:9321", 0},
        {"evil.example.com:9321", 421},
        {"attacker.example", 421},
        {"127.0.0.2:9321", 421},
        {"10.0.0.1:9321", 421},
        {"localhost.evil.example", 421},
        {"[::1", 421},
    };
    for (const auto& [host, status] : rows)
        for (const char* target :
             {"/api/v1/netns", "/api/v1/events", "/healthz", "/", "/app.js", "/metrics"})
        {
            CAPTURE(host);
            CAPTURE(target);
            CHECK(verdict(p, make("GET", target, {{"Host", host}})) == status);
            CHECK(verdict(p, make("POST", "/api/v1/netns", {{"Host", host}})) == status);
        }
}

TEST_CASE("Host: absent passes (no browser omits it), and the Unix socket takes any Host")
{
    const origin_policy p(defaults);
    CHECK(verdict(p, make("GET", "/api/v1/netns", {})) == 0);
    CHECK(verdict(p, make("GET", "/api/v1/netns", {{"Host", "attacker.example"}}, true)) == 0);
    CHECK(verdict(p, make("GET", "/api/v1/events", {{"Host", "x"}}, true)) == 0);
}

TEST_CASE("Host: --allowed-host adds names, * turns the check off, a wildcard listener any address")
{
    CHECK(verdict(origin_policy({{"127.0.0.1", "netns.example.com"}, false, {}}),
                  make("GET", "/", {{"Host", "Netns.Example.com:443"}})) == 0);
    CHECK(verdict(origin_policy({{"127.0.0.1", "*"}, false, {}}),
                  make("GET", "/", {{"Host", "anything.example"}})) == 0);
    const origin_policy wildcard({{"0.0.0.0"}, true, {}});
    CHECK(verdict(wildcard, make("GET", "/", {{"Host", "192.0.2.7:9321"}})) == 0);
    CHECK(verdict(wildcard, make("GET", "/", {{"Host", "[2001:db8::1]:9321"}})) == 0);
    CHECK(verdict(wildcard, make("GET", "/", {{"Host", "rebind.example:9321"}})) == 421);
    // A listen address in IPv6 is one of its own.
    CHECK(verdict(origin_policy({{"::1", "2001:db8::5"}, false, {}}),
                  make("GET", "/", {{"Host", "[2001:db8::5]:9321"}})) == 0);
}

TEST_CASE("Origin: writes and event streams must be same-origin or allowed, reads are not checked")
{
    const origin_policy p({{"127.0.0.1"}, false, {"https://dash.example.com"}});
    struct row
    {
        const char* method;
        const char* target;
        const char* host;
        const char* origin; // "" = absent
        unsigned status;
    };
    const row rows[] = {
        // same origin: same host and port as Host
        {"GET", "/api/v1/events", "127.0.0.1:9321", "http://127.0.0.1:9321", 0},
        {"GET", "/api/v1/events?snapshot=true", "localhost:9321", "http://localhost:9321", 0},
        {"POST", "/api/v1/netns", "127.0.0.1:9321", "http://127.0.0.1:9321", 0},
        {"DELETE", "/api/v1/netns/a", "localhost:8080", "http://localhost:8080", 0},
        // an SSH tunnel on another port: Host and Origin both say that port
        {"GET", "/api/v1/events", "localhost:19321", "http://localhost:19321", 0},
        // default ports
        {"POST", "/api/v1/netns", "localhost", "http://localhost:80", 0},
        {"POST", "/api/v1/netns", "localhost:443", "https://localhost", 0},
        // listed
        {"GET", "/api/v1/events", "127.0.0.1:9321", "https://dash.example.com", 0},
        {"POST", "/api/v1/netns", "127.0.0.1:9321", "https://dash.example.com:443", 0},
        // cross-origin
        {"GET", "/api/v1/events", "127.0.0.1:9321", "http://evil.example.com", 403},
        {"GET", "/api/v1/events?snapshot=true", "127.0.0.1:9321", "http://evil.example.com:9321",
         403},
        {"POST", "/api/v1/netns", "127.0.0.1:9321", "http://evil.example.com", 403},
        {"PUT", "/api/v1/netns/a/nsid", "127.0.0.1:9321", "null", 403},
        {"DELETE", "/api/v1/netns/a", "127.0.0.1:9321", "http://127.0.0.1:9322", 403},
        {"POST", "/api/v1/netns", "127.0.0.1:9321", "http://dash.example.com", 403},
        {"POST", "/api/v1/netns", "127.0.0.1:9321", "https://dash.example.com:8443", 403},
        // reads other than the stream are not checked (the Host check covers them)
        {"GET", "/api/v1/netns", "127.0.0.1:9321", "http://evil.example.com", 0},
        {"GET", "/", "127.0.0.1:9321", "http://evil.example.com", 0},
        {"HEAD", "/healthz", "127.0.0.1:9321", "http://evil.example.com", 0},
        // absent: curl and orchestrators
        {"GET", "/api/v1/events", "127.0.0.1:9321", "", 0},
        {"POST", "/api/v1/netns", "127.0.0.1:9321", "", 0},
    };
    for (const auto& r : rows)
    {
        CAPTURE(r.method);
        CAPTURE(r.target);
        CAPTURE(r.origin);
        std::vector<std::pair<std::string, std::string>> headers{{"Host", r.host}};
        if (*r.origin != '\0')
            headers.emplace_back("Origin", r.origin);
        CHECK(verdict(p, make(r.method, r.target, headers)) == r.status);
        // The Unix socket checks Origin alike (a browser never gets there, but a proxy might).
        CHECK(verdict(p, make(r.method, r.target, headers, true)) == r.status);
    }
}

TEST_CASE("Origin: * allows every origin, refusals are problem+json that say what to do")
{
    CHECK(verdict(origin_policy({{"127.0.0.1"}, false, {"*"}}),
                  make("POST", "/api/v1/netns",
                       {{"Host", "127.0.0.1:9321"}, {"Origin", "http://evil.example.com"}})) == 0);
    const origin_policy p(defaults);
    const auto host = p.check(make("GET", "/", {{"Host", "evil.example.com"}}));
    REQUIRE(host);
    CHECK(host->content_type == "application/problem+json");
    CHECK(host->body.find("urn:netnsd:problem:host-not-allowed") != std::string::npos);
    CHECK(host->body.find("--allowed-host") != std::string::npos);
    const auto origin = p.check(make("GET", "/api/v1/events",
                                     {{"Host", "127.0.0.1:9321"}, {"Origin", "http://x.example"}}));
    REQUIRE(origin);
    CHECK(origin->status == 403);
    CHECK(origin->body.find("urn:netnsd:problem:origin-not-allowed") != std::string::npos);
    CHECK(origin->body.find("--allowed-origin") != std::string::npos);
}
