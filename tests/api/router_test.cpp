// api/router: every route against a real registry, with a monitor that was never opened (its
// constructor opens nothing, so it reports "not watching"). Statuses, content types and bodies
// are asserted byte for byte.
#include <optional>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <variant>
#include <vector>

#include <doctest/doctest.h>

#include "core/monitor.hpp"
#include "core/registry.hpp"

#include "api/assets.hpp"
#include "api/http.hpp"
#include "api/json.hpp"
#include "api/list_cache.hpp"
#include "api/metrics.hpp"
#include "api/router.hpp"
#include "api/stream.hpp"

#include "support/builders.hpp"

using netnsd::api::asset;
using netnsd::api::json;
using netnsd::api::list_cache;
using netnsd::api::request;
using netnsd::api::response;
using netnsd::api::router;
using netnsd::api::stream_format;
using netnsd::api::stream_hub;
using netnsd::api::stream_params;
using netnsd::core::monitor;
using netnsd::core::registry;
using netnsd::test::at_ms;
using netnsd::test::identity;
using netnsd::test::live;
using netnsd::test::stale;
using namespace std::string_literals;

namespace
{

constexpr asset fake_assets[] = {
    {"/", "<!doctype html><title>netnsd</title>"},
    {"/openapi.yaml", "openapi: 3.1.0\n"},
    {"/app.js", "console.log(1);\n"},
};

constexpr std::string_view dir = "/run/netns-test";
const std::string t0 = "1970-01-01T00:00:01.000Z"; // at_ms(1000)

// The JSON of one entry as the API shows it, keys in order.
std::string live_json(const std::string& name, std::uint64_t n, std::optional<int> nsid,
                      const std::string& href_name)
{
    const auto id = identity(n);
    return R"({"first_seen":")" + t0 + R"(","href":"/api/v1/netns/)" + href_name + R"(","inode":)" +
           std::to_string(id.ino) + R"(,"name":")" + name + R"(","ns_id":)" +
           std::to_string(id.ns_id) + R"(,"nsid":)" + (nsid ? std::to_string(*nsid) : "null") +
           R"(,"path":")" + std::string(dir) + "/" + name + R"(","state":"live"})";
}

std::string live_json(const std::string& name, std::uint64_t n, std::optional<int> nsid = {})
{
    return live_json(name, n, nsid, name);
}

std::string stale_json(const std::string& name)
{
    return R"({"first_seen":")" + t0 + R"(","href":"/api/v1/netns/)" + name +
           R"(","inode":null,"name":")" + name + R"(","ns_id":null,"nsid":null,"path":")" +
           std::string(dir) + "/" + name + R"(","state":"stale"})";
}

std::string problem_json(std::string_view slug, unsigned status, std::string_view title,
                         std::string_view detail, std::string_view instance = {})
{
    std::string out = R"({"detail":")" + std::string(detail) + R"(",)";
    if (!instance.empty())
        out += R"("instance":")" + std::string(instance) + R"(",)";
    out += R"("status":)" + std::to_string(status) + R"(,"title":")" + std::string(title) +
           R"(","type":"urn:netnsd:problem:)" + std::string(slug) + R"("})";
    return out;
}

std::string invalid_name(std::string_view detail)
{
    return problem_json("invalid-name", 400, "Invalid netns name", detail);
}

struct fixture
{
    registry model{100};
    monitor watch{model, std::string(dir)};
    list_cache lists{model, std::string(dir)};
    stream_hub hub{model, lists, {}, 2};
    router routes{model, watch.status(), lists, hub, fake_assets};

    response call(std::string method, std::string target, bool has_body = false)
    {
        request req;
        req.method = std::move(method);
        req.target = std::move(target);
        req.has_body = has_body;
        auto res = routes.handle(req);
        // The checks below read `body`; a shared body is the same bytes.
        if (res.shared_body)
            res.body = *std::exchange(res.shared_body, nullptr);
        return res;
    }

    response get(std::string target) { return call("GET", std::move(target)); }
};

} // namespace

TEST_CASE_FIXTURE(fixture, "the list is sent from the cache's bytes, shared, never copied")
{
    model.apply_probe("a", live(1), at_ms(1000));
    request req;
    req.method = "GET";
    req.target = "/api/v1/netns";
    const auto first = routes.handle(req);
    const auto second = routes.handle(req);
    REQUIRE(first.shared_body);
    CHECK(first.body.empty());
    CHECK(first.payload() == *first.shared_body);
    CHECK(second.shared_body == first.shared_body);
    // A change makes new bytes; the response already out keeps its own.
    model.apply_probe("b", live(2), at_ms(1000));
    const auto third = routes.handle(req);
    CHECK(third.shared_body != first.shared_body);
    CHECK(first.shared_body->find(R"("name":"b")") == std::string::npos);
    CHECK(third.shared_body->find(R"("name":"b")") != std::string::npos);
}

TEST_CASE_FIXTURE(fixture, "a GET of /api/v1/netns on an empty model lists nothing at revision 0")
{
    const auto res = get("/api/v1/netns");
    CHECK(res.status == 200);
    CHECK(res.content_type == "application/json");
    CHECK(res.headers.empty());
    CHECK(res.body == R"({"namespaces":[],"revision":0})");
}

TEST_CASE_FIXTURE(fixture,
                  "a GET of /api/v1/netns lists every entry in name order with the revision")
{
    model.apply_probe("b", live(2, 5), at_ms(1000));
    model.apply_probe("p", stale(), at_ms(1000));
    model.apply_probe("a", live(1), at_ms(1000));

    const auto res = get("/api/v1/netns");

    CHECK(res.status == 200);
    CHECK(res.content_type == "application/json");
    CHECK(res.body == R"({"namespaces":[)" + live_json("a", 1) + "," + live_json("b", 2, 5) + "," +
                          stale_json("p") + R"(],"revision":2})");
    const auto parsed = json::parse(res.body, nullptr, false);
    REQUIRE_FALSE(parsed.is_discarded());
    CHECK(parsed.at("namespaces").size() == 3);
}

TEST_CASE_FIXTURE(fixture, "a HEAD is answered like a GET")
{
    model.apply_probe("a", live(1), at_ms(1000));
    const auto head = call("HEAD", "/api/v1/netns");
    const auto get_res = get("/api/v1/netns");
    CHECK(head.status == 200);
    CHECK(head.content_type == "application/json");
    CHECK(head.body == get_res.body);
    CHECK(call("HEAD", "/api/v1/netns/a").status == 200);
    CHECK(call("HEAD", "/healthz").status == 200);
}

TEST_CASE_FIXTURE(fixture, "a query string does not change the route")
{
    CHECK(get("/api/v1/netns?x=1").body == R"({"namespaces":[],"revision":0})");
    CHECK(get("/healthz?").status == 200);
}

TEST_CASE_FIXTURE(fixture, "a second list after a change reflects the change")
{
    model.apply_probe("a", live(1), at_ms(1000));
    const auto first = get("/api/v1/netns");
    CHECK(first.body == R"({"namespaces":[)" + live_json("a", 1) + R"(],"revision":1})");
    CHECK(get("/api/v1/netns").body == first.body);

    SUBCASE("an entry added")
    {
        model.apply_probe("b", live(2), at_ms(1000));
        CHECK(get("/api/v1/netns").body == R"({"namespaces":[)" + live_json("a", 1) + "," +
                                               live_json("b", 2) + R"(],"revision":2})");
    }
    SUBCASE("an nsid set")
    {
        model.set_nsid(identity(1), 9, at_ms(0));
        CHECK(get("/api/v1/netns").body ==
              R"({"namespaces":[)" + live_json("a", 1, 9) + R"(],"revision":2})");
    }
    SUBCASE("a stale entry added, which makes no event")
    {
        model.apply_probe("p", stale(), at_ms(1000));
        CHECK(get("/api/v1/netns").body == R"({"namespaces":[)" + live_json("a", 1) + "," +
                                               stale_json("p") + R"(],"revision":1})");
    }
    SUBCASE("an entry deleted")
    {
        model.erase("a", at_ms(0));
        CHECK(get("/api/v1/netns").body == R"({"namespaces":[],"revision":2})");
    }
}

TEST_CASE_FIXTURE(fixture, "a GET of /api/v1/netns/{name} returns the entry")
{
    model.apply_probe("blue", live(1, 3), at_ms(1000));
    model.apply_probe("p", stale(), at_ms(1000));

    SUBCASE("live")
    {
        const auto res = get("/api/v1/netns/blue");
        CHECK(res.status == 200);
        CHECK(res.content_type == "application/json");
        CHECK(res.body == live_json("blue", 1, 3));
    }
    SUBCASE("stale")
    {
        const auto res = get("/api/v1/netns/p");
        CHECK(res.status == 200);
        CHECK(res.body == stale_json("p"));
    }
}

TEST_CASE_FIXTURE(fixture, "names are percent-decoded from the path")
{
    SUBCASE("a space")
    {
        model.apply_probe("a b", live(1), at_ms(1000));
        const auto res = get("/api/v1/netns/a%20b");
        CHECK(res.status == 200);
        CHECK(res.body == live_json("a b", 1, std::nullopt, "a%20b"));
    }
    SUBCASE("UTF-8, encoded or not")
    {
        model.apply_probe("r\xC3\xA9seau", live(1), at_ms(1000));
        const auto expected = live_json("r\xC3\xA9seau", 1, std::nullopt, "r%C3%A9seau");
        CHECK(get("/api/v1/netns/r%C3%A9seau").body == expected);
        CHECK(get("/api/v1/netns/r%c3%a9seau").body == expected);
        CHECK(get("/api/v1/netns/r\xC3\xA9seau").body == expected);
    }
    SUBCASE("a byte that is not UTF-8")
    {
        model.apply_probe("x\xFF", live(1), at_ms(1000));
        const auto res = get("/api/v1/netns/x%FF");
        CHECK(res.status == 200);
        const auto body = json::parse(res.body, nullptr, false);
        REQUIRE_FALSE(body.is_discarded());
        CHECK(body.at("name").get<std::string>() == "x\xEF\xBF\xBD");
        CHECK(body.at("href").get<std::string>() == "/api/v1/netns/x%FF");
    }
    SUBCASE("a leading dash, a '+' and an encoded '?'")
    {
        model.apply_probe("--", live(1), at_ms(1000));
        model.apply_probe("a+b", live(2), at_ms(1000));
        model.apply_probe("why?", live(3), at_ms(1000));
        CHECK(get("/api/v1/netns/--").status == 200);
        CHECK(get("/api/v1/netns/a+b").status == 200);
        CHECK(get("/api/v1/netns/a%2Bb").status == 200);
        CHECK(get("/api/v1/netns/why%3F").status == 200);
    }
}

TEST_CASE_FIXTURE(fixture, "a name ip netns would refuse is 400 invalid-name")
{
    SUBCASE("empty")
    {
        const auto res = get("/api/v1/netns/");
        CHECK(res.status == 400);
        CHECK(res.content_type == "application/problem+json");
        CHECK(res.body == invalid_name("the name is empty"));
    }
    SUBCASE("\"..\" encoded")
    {
        CHECK(get("/api/v1/netns/%2E%2E").body == invalid_name(R"(the name is \"..\")"));
    }
    SUBCASE("\".\" encoded")
    {
        CHECK(get("/api/v1/netns/%2e").body == invalid_name(R"(the name is \".\")"));
    }
    SUBCASE("an encoded '/'")
    {
        const auto res = get("/api/v1/netns/a%2Fb");
        CHECK(res.status == 400);
        CHECK(res.body == invalid_name("the name contains '/'"));
    }
    SUBCASE("an encoded NUL")
    {
        const auto res = get("/api/v1/netns/%00");
        CHECK(res.status == 400);
        CHECK(res.body == invalid_name("the name contains a NUL byte"));
    }
    SUBCASE("256 bytes")
    {
        const auto res = get("/api/v1/netns/" + std::string(256, 'a'));
        CHECK(res.status == 400);
        CHECK(res.body == invalid_name("the name is longer than 255 bytes"));
    }
    SUBCASE("256 bytes once decoded")
    {
        std::string target = "/api/v1/netns/";
        for (int i = 0; i < 128; ++i)
            target += "%C3%A9";
        CHECK(get(target).body == invalid_name("the name is longer than 255 bytes"));
    }
}

TEST_CASE_FIXTURE(fixture, "a name of 255 bytes is valid, so a missing one is 404")
{
    const auto res = get("/api/v1/netns/" + std::string(255, 'a'));
    CHECK(res.status == 404);
}

TEST_CASE_FIXTURE(fixture, "a malformed percent-escape in the name is 400 bad-request")
{
    for (const char* target : {"/api/v1/netns/%zz", "/api/v1/netns/a%", "/api/v1/netns/%4"})
    {
        CAPTURE(target);
        const auto res = get(target);
        CHECK(res.status == 400);
        CHECK(res.content_type == "application/problem+json");
        CHECK(res.body == problem_json("bad-request", 400, "Bad request",
                                       "the name has a malformed percent-escape"));
    }
}

TEST_CASE_FIXTURE(fixture, "a name that is not there is 404 not-found with the entry as instance")
{
    model.apply_probe("a", live(1), at_ms(1000));

    SUBCASE("plain")
    {
        const auto res = get("/api/v1/netns/nope");
        CHECK(res.status == 404);
        CHECK(res.content_type == "application/problem+json");
        CHECK(res.body == problem_json("not-found", 404, "No such netns",
                                       "no entry of that name in /run/netns-test",
                                       "/api/v1/netns/nope"));
    }
    SUBCASE("the instance is the canonical encoding of the name")
    {
        const auto res = get("/api/v1/netns/n%6F%20pe");
        CHECK(res.status == 404);
        CHECK(res.body == problem_json("not-found", 404, "No such netns",
                                       "no entry of that name in /run/netns-test",
                                       "/api/v1/netns/no%20pe"));
    }
    SUBCASE("names are bytes: case matters")
    {
        CHECK(get("/api/v1/netns/A").status == 404);
    }
}

TEST_CASE_FIXTURE(fixture, "a GET of /api/v1/nsids lists every nsid with its name or null")
{
    CHECK(get("/api/v1/nsids").body == R"({"nsids":[],"revision":0})");

    model.apply_probe("b", live(1, 3), at_ms(0));
    model.apply_probe("a", live(1), at_ms(0)); // an alias: the row shows the first name
    model.apply_probe("c", live(2), at_ms(0)); // no nsid: no row
    model.add_unnamed_nsid(9, at_ms(0));
    model.add_unnamed_nsid(1, at_ms(0));

    const auto res = get("/api/v1/nsids");
    CHECK(res.status == 200);
    CHECK(res.content_type == "application/json");
    CHECK(res.body == R"({"nsids":[{"name":null,"nsid":1},{"name":"a","nsid":3},)"
                      R"({"name":null,"nsid":9}],"revision":5})");
}

TEST_CASE_FIXTURE(fixture, "a GET of /healthz reports degraded while the dir is not watched")
{
    model.apply_probe("a", live(1), at_ms(0));
    model.apply_probe("p", stale(), at_ms(0));

    const auto res = get("/healthz");

    CHECK(res.status == 200);
    CHECK(res.content_type == "application/json");
    CHECK(res.body == R"({"namespaces":2,"netns_dir":"/run/netns-test","problem":"",)"
                      R"("revision":1,"start_revision":0,"status":"degraded","watching":false})");
}

TEST_CASE_FIXTURE(fixture, "assets are served with their media types")
{
    SUBCASE("the dashboard")
    {
        const auto res = get("/");
        CHECK(res.status == 200);
        CHECK(res.content_type == "text/html; charset=utf-8");
        CHECK(res.body == "<!doctype html><title>netnsd</title>");
    }
    SUBCASE("the OpenAPI document")
    {
        const auto res = get("/openapi.yaml");
        CHECK(res.status == 200);
        CHECK(res.content_type == "application/yaml");
        CHECK(res.body == "openapi: 3.1.0\n");
    }
    SUBCASE("a script")
    {
        const auto res = get("/app.js");
        CHECK(res.status == 200);
        CHECK(res.content_type == "text/javascript; charset=utf-8");
        CHECK(res.body == "console.log(1);\n");
    }
    SUBCASE("only the exact route")
    {
        CHECK(get("/index.html").status == 404);
        CHECK(get("/openapi.yaml/").status == 404);
        CHECK(get("/app.js?v=2").status == 200);
    }
}

TEST_CASE_FIXTURE(fixture, "a method other than GET or HEAD is 405 with Allow: GET, HEAD")
{
    for (const char* method : {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
    {
        for (const char* target : {"/api/v1/netns", "/api/v1/netns/a", "/api/v1/nsids", "/healthz",
                                   "/", "/openapi.yaml"})
        {
            CAPTURE(method);
            CAPTURE(target);
            const auto res = call(method, target);
            CHECK(res.status == 405);
            CHECK(res.content_type == "application/problem+json");
            CHECK(res.headers ==
                  std::vector<std::pair<std::string, std::string>>{{"Allow", "GET, HEAD"}});
            CHECK(res.body == problem_json("method-not-allowed", 405, "Method not allowed",
                                           "this resource allows GET, HEAD"));
        }
    }
}

TEST_CASE_FIXTURE(fixture, "a body on a GET is 400 unexpected-body")
{
    for (const char* target : {"/api/v1/netns", "/api/v1/netns/a", "/healthz", "/"})
    {
        CAPTURE(target);
        const auto res = call("GET", target, true);
        CHECK(res.status == 400);
        CHECK(res.content_type == "application/problem+json");
        CHECK(res.body == problem_json("unexpected-body", 400, "This request takes no body",
                                       "GET takes no body"));
    }
    CHECK(call("HEAD", "/healthz", true).body ==
          problem_json("unexpected-body", 400, "This request takes no body", "HEAD takes no body"));
}

TEST_CASE_FIXTURE(fixture, "an unknown path is 404 no-route")
{
    for (const char* target :
         {"/nope", "/api", "/api/v1", "/api/v1/", "/api/v1/nope", "/api/v2/netns",
          "/api/v1/netns/a/b", "/api/v1/nsids/1", "/healthz/", "/API/v1/netns"})
    {
        CAPTURE(target);
        const auto res = get(target);
        CHECK(res.status == 404);
        CHECK(res.content_type == "application/problem+json");
        CHECK(res.body ==
              problem_json("no-route", 404, "No such resource", "nothing is served at this path"));
    }
}

TEST_CASE_FIXTURE(fixture, "an unknown path is 404 whatever the method")
{
    CHECK(call("POST", "/nope").status == 404);
}

TEST_CASE_FIXTURE(fixture, "a target that is not an absolute path is 400 bad-request")
{
    for (const char* target : {"", "*", "api/v1/netns"})
    {
        CAPTURE(target);
        const auto res = get(target);
        CHECK(res.status == 400);
        CHECK(res.body == problem_json("bad-request", 400, "Bad request",
                                       "the request target must be an absolute path"));
    }
}

TEST_CASE_FIXTURE(fixture, "an absolute-form target is served like its path")
{
    CHECK(get("http://localhost/healthz").status == 200);
    CHECK(get("HTTP://127.0.0.1:9321/api/v1/netns").body == get("/api/v1/netns").body);
    CHECK(get("http://localhost").status == 200); // the dashboard at "/"
}

TEST_CASE_FIXTURE(fixture, "a GET of /api/v1/events asks the transport for a stream")
{
    request req;
    req.method = "GET";
    req.target = "/api/v1/events?since=3";

    SUBCASE("NDJSON by default")
    {
        const auto out = routes.dispatch(req, false);
        REQUIRE(std::holds_alternative<stream_params>(out));
        const auto& p = std::get<stream_params>(out);
        CHECK(p.format == stream_format::ndjson);
        CHECK(p.since == 3u);
    }
    SUBCASE("a websocket on upgrade")
    {
        const auto out = routes.dispatch(req, true);
        REQUIRE(std::holds_alternative<stream_params>(out));
        CHECK(std::get<stream_params>(out).format == stream_format::websocket);
    }
    SUBCASE("SSE for Accept: text/event-stream")
    {
        req.headers = {{"Accept", "text/event-stream"}};
        const auto out = routes.dispatch(req, false);
        REQUIRE(std::holds_alternative<stream_params>(out));
        CHECK(std::get<stream_params>(out).format == stream_format::sse);
    }
    SUBCASE("a transport that cannot stream answers 406")
    {
        const auto res = routes.handle(req);
        CHECK(res.status == 406);
        CHECK(res.body == problem_json("not-acceptable", 406, "Not acceptable",
                                       "this transport cannot stream events"));
    }
    SUBCASE("a bad parameter is a 400 response, not a stream")
    {
        req.target = "/api/v1/events?since=x";
        const auto out = routes.dispatch(req, false);
        REQUIRE(std::holds_alternative<response>(out));
        CHECK(std::get<response>(out).status == 400);
    }
    SUBCASE("another method is 405 with Allow: GET")
    {
        req.method = "POST";
        const auto res = routes.handle(req);
        CHECK(res.status == 405);
        CHECK(res.headers == std::vector<std::pair<std::string, std::string>>{{"Allow", "GET"}});
    }
}

TEST_CASE_FIXTURE(fixture, "a stream request beyond the client limit is 503 too-many-streams")
{
    netnsd::api::subscription first(hub, {}, [] {});
    netnsd::api::subscription second(hub, {}, [] {});
    REQUIRE(hub.full());
    request req;
    req.method = "GET";
    req.target = "/api/v1/events";

    const auto out = routes.dispatch(req, true);

    REQUIRE(std::holds_alternative<response>(out));
    const auto& res = std::get<response>(out);
    CHECK(res.status == 503);
    CHECK(res.body == problem_json("too-many-streams", 503, "Too many stream clients",
                                   "already serving 2 stream clients; try again later"));
}

TEST_CASE("route_table lists every route in a fixed order, with who may call it")
{
    using netnsd::api::access;
    std::vector<std::string> routes;
    for (const auto& r : netnsd::api::route_table())
        routes.push_back(std::string(r.method) + " " + std::string(r.path) + " " +
                         (r.access == access::open   ? "open"
                          : r.access == access::read ? "read"
                                                     : "write") +
                         (r.op.empty() ? "" : " op=" + std::string(r.op)));
    CHECK(routes == std::vector<std::string>{"GET /api/v1/netns read",
                                             "POST /api/v1/netns write op=create",
                                             "DELETE /api/v1/netns write op=delete_all",
                                             "GET /api/v1/netns/{name} read",
                                             "DELETE /api/v1/netns/{name} write op=delete",
                                             "PUT /api/v1/netns/{name}/nsid write op=set_nsid",
                                             "GET /api/v1/netns/{name}/pids read op=pids",
                                             "POST /api/v1/netns/{name}/exec write op=exec",
                                             "GET /api/v1/processes/{pid}/netns read",
                                             "POST /api/v1/audit write op=audit",
                                             "GET /api/v1/nsids read",
                                             "GET /api/v1/namespaces read",
                                             "GET /api/v1/namespaces/{ns_id} read",
                                             "POST /api/v1/namespaces/scan write op=scan",
                                             "GET /api/v1/namespaces/{ns_id}/processes read",
                                             "GET /api/v1/namespaces/{ns_id}/links read",
                                             "GET /api/v1/netns/{name}/links read",
                                             "GET /api/v1/topology read",
                                             "GET /api/v1/events read",
                                             "GET /healthz open",
                                             "GET /metrics read"});
    // The static files (the dashboard, openapi.yaml) are routes of their own, open to all.
    CHECK(netnsd::api::operation_of("HEAD", "/api/v1/netns/{name}/pids") == "pids");
    CHECK(netnsd::api::operation_of("GET", "/api/v1/netns").empty());
}

TEST_CASE("every read route in route_table answers GET (or hands a worker the job), and admin "
          "reads need admin enabled")
{
    registry model(10);
    monitor watch(model, std::string(dir));
    list_cache lists(model, std::string(dir));
    stream_hub hub(model, lists, {}, 1);
    model.apply_probe("name", live(1), at_ms(0));
    model.found_namespace(identity(1), false, at_ms(0));
    router routes(model, watch.status(), lists, hub, netnsd::api::embedded_assets());
    netnsd::api::metrics stats;
    routes.enable_metrics(stats);

    for (const auto& r : netnsd::api::route_table())
    {
        if (r.method != "GET")
            continue;
        std::string target(r.path);
        if (const auto at = target.find("{name}"); at != std::string::npos)
            target.replace(at, 6, "name");
        if (const auto at = target.find("{pid}"); at != std::string::npos)
            target.replace(at, 5, "1");
        if (const auto at = target.find("{ns_id}"); at != std::string::npos)
            target.replace(at, 7, std::to_string(identity(1).ns_id));
        CAPTURE(target);
        request req;
        req.method = std::string(r.method);
        req.target = target;
        const auto out = routes.dispatch(req, false);
        const bool admin_read = target.ends_with("/pids");
        // No sweep has seen process 1 in this model.
        const bool unknown_pid = target.starts_with("/api/v1/processes/");
        // What is inside the namespaces is read on a worker: the answer is a job for one.
        const bool dumps = target.ends_with("/links") || target == "/api/v1/topology";
        if (const auto* res = std::get_if<response>(&out))
            CHECK(res->status == (admin_read ? 405u : unknown_pid ? 404u : 200u));
        else if (dumps)
            CHECK(std::holds_alternative<netnsd::api::deferred>(out));
        else
            CHECK(target == "/api/v1/events");
    }
}

TEST_CASE("the namespace of a process comes from the model's last sweep, as the inventory shows it")
{
    registry model(10);
    monitor watch(model, std::string(dir));
    list_cache lists(model, std::string(dir));
    stream_hub hub(model, lists, {}, 1);
    router routes(model, watch.status(), lists, hub, netnsd::api::embedded_assets());
    model.found_namespace(identity(1), false, at_ms(0), {{10, 30}, {}, 0, 0});
    model.found_namespace(identity(2), false, at_ms(1), {{20}, {}, 0, 0});
    auto get = [&](const std::string& target)
    {
        request req;
        req.method = "GET";
        req.target = target;
        auto res = routes.handle(req);
        return std::pair{res.status, json::parse(res.payload())};
    };

    for (const auto& [pid, ns] : {std::pair{10, 1u}, {30, 1u}, {20, 2u}})
    {
        CAPTURE(pid);
        const auto [status, body] = get("/api/v1/processes/" + std::to_string(pid) + "/netns");
        CHECK(status == 200);
        // The very object GET /api/v1/namespaces/{ns_id} answers.
        CHECK(body == get("/api/v1/namespaces/" + std::to_string(identity(ns).ns_id)).second);
    }
    const auto [missing, problem] = get("/api/v1/processes/11/netns");
    CHECK(missing == 404);
    CHECK(problem["type"] == "urn:netnsd:problem:no-such-process");
    CHECK(problem["detail"] ==
          "no process 11 was in any network namespace at the last /proc sweep");
    // The next sweep moved 30 out: the answer follows the model.
    model.set_processes(identity(1).ns_id, {10}, at_ms(2));
    CHECK(get("/api/v1/processes/30/netns").first == 404);
    for (const char* bad : {"0", "-1", "x", "1x", "+1", "2147483648"})
    {
        CAPTURE(bad);
        const auto [status, body] = get(std::string("/api/v1/processes/") + bad + "/netns");
        CHECK(status == 400);
        CHECK(body["type"] == "urn:netnsd:problem:bad-request");
    }
}

TEST_CASE("an entry shows the same path in the list and alone when the dir has a trailing slash")
{
    // As server/main.cpp wires them: the list uses the monitor's spelling of the dir.
    const std::string configured = "/run/netns-test/";
    registry model(10);
    monitor watch(model, configured);
    list_cache lists(model, watch.netns_dir());
    stream_hub hub(model, lists, {}, 1);
    router routes(model, watch.status(), lists, hub, fake_assets);
    model.apply_probe("a", live(1), at_ms(1000));

    request list_req;
    list_req.method = "GET";
    list_req.target = "/api/v1/netns";
    request one_req = list_req;
    one_req.target = "/api/v1/netns/a";
    const auto list = json::parse(routes.handle(list_req).payload(), nullptr, false);
    const auto one = json::parse(routes.handle(one_req).payload(), nullptr, false);
    REQUIRE_FALSE(list.is_discarded());
    REQUIRE_FALSE(one.is_discarded());

    CHECK(one.at("path") == "/run/netns-test/a");
    CHECK(list.at("namespaces").at(0).at("path") == one.at("path"));
}

TEST_CASE("the host inventory: every namespace sorted by ns_id, filters, one by ns_id, and its "
          "processes a page at a time")
{
    registry model(10);
    monitor watch(model, std::string(dir));
    list_cache lists(model, std::string(dir));
    stream_hub hub(model, lists, {}, 1);
    router routes(model, watch.status(), lists, hub, netnsd::api::embedded_assets());
    // This process is a real one: its comm, uid and cgroup are read from /proc.
    const auto self = static_cast<std::int32_t>(::getpid());
    model.found_namespace(identity(2), false, at_ms(0), {{self, 999999999}, {}, 0, 0});
    model.namespace_mounted(identity(1), 40, "/run/docker/netns/abc", at_ms(1), 4);
    model.namespace_mounted(identity(1), 41, "/run/pods/x", at_ms(1), 77, true);
    model.found_namespace(identity(3), false, at_ms(2));
    auto get = [&](const std::string& target)
    {
        request req;
        req.method = "GET";
        req.target = target;
        auto res = routes.handle(req);
        return std::pair{res.status, json::parse(res.payload())};
    };

    auto [status, all] = get("/api/v1/namespaces");
    CHECK(status == 200);
    REQUIRE(all["namespaces"].size() == 3);
    CHECK(all["namespaces"][0]["ns_id"] == identity(1).ns_id);
    CHECK(
        all["namespaces"][0]["mounts"] ==
        json::parse(
            R"([{"mnt_ns_id":4,"mount_id":40,"other_mnt_ns":false,"path":"/run/docker/netns/abc"},)"
            R"({"mnt_ns_id":77,"mount_id":41,"other_mnt_ns":true,"path":"/run/pods/x"}])"));
    CHECK(all["namespaces"][0]["held_by"] == json::parse(R"(["mount"])"));
    CHECK(all["namespaces"][1]["processes"]["count"] == 2);
    CHECK(all["namespaces"][2]["leak"] == true);
    CHECK(all["revision"] == model.revision());

    CHECK(get("/api/v1/namespaces?leak=true").second["namespaces"].size() == 1);
    CHECK(get("/api/v1/namespaces?held_by=process").second["namespaces"][0]["ns_id"] ==
          identity(2).ns_id);
    CHECK(get("/api/v1/namespaces?held_by=mount,process").second["namespaces"].size() == 2);
    CHECK(get("/api/v1/namespaces?held_by=none").second["namespaces"][0]["ns_id"] ==
          identity(3).ns_id);
    CHECK(get("/api/v1/namespaces?held_by=fd").second["namespaces"].empty());
    CHECK(get("/api/v1/namespaces?held_by=files").first == 400);
    CHECK(get("/api/v1/namespaces?leak=maybe").first == 400);
    CHECK(get("/api/v1/namespaces?owner=docker").second["namespaces"][0]["owner"] ==
          json::parse(R"({"kind":"docker","id":"abc","source":"mount","name":null})"));
    CHECK(get("/api/v1/namespaces?owner=lxc").first == 400);

    auto [one_status, one] = get("/api/v1/namespaces/" + std::to_string(identity(1).ns_id));
    CHECK(one_status == 200);
    CHECK(one["href"] == "/api/v1/namespaces/" + std::to_string(identity(1).ns_id));
    CHECK(get("/api/v1/namespaces/77").first == 404);
    CHECK(get("/api/v1/namespaces/x1").first == 400);
    CHECK(get("/api/v1/namespaces/0").first == 400);

    const auto procs = "/api/v1/namespaces/" + std::to_string(identity(2).ns_id) + "/processes";
    auto [p_status, page] = get(procs + "?limit=1");
    CHECK(p_status == 200);
    CHECK(page["count"] == 2);
    REQUIRE(page["processes"].size() == 1);
    CHECK(page["processes"][0]["pid"] == self);
    CHECK(page["processes"][0]["comm"].is_string());
    CHECK(page["processes"][0]["uid"] == ::getuid());
    CHECK(page["next"] == procs + "?offset=1&limit=1");
    auto [q_status, rest] = get(procs + "?offset=1&limit=1");
    REQUIRE(rest["processes"].size() == 1);
    // Exited since the sweep (or never was): the pid, and nothing read of it.
    CHECK(rest["processes"][0] ==
          json::parse(R"({"pid":999999999,"comm":null,"uid":null,"cgroup":null})"));
    CHECK(rest["next"].is_null());
    CHECK(get(procs + "?limit=0").first == 400);
    CHECK(get(procs + "?limit=1001").first == 400);
    CHECK(get(procs + "?page=2").first == 400);

    // The unfiltered list is cached until the inventory changes, and follows it.
    CHECK(get("/api/v1/namespaces").second["namespaces"].size() == 3);
    model.set_processes(identity(2).ns_id, {self}, at_ms(3)); // no event; the count changes
    CHECK(get("/api/v1/namespaces").second["namespaces"][1]["processes"]["count"] == 1);
    model.found_namespace(identity(4), false, at_ms(4));
    const auto again = get("/api/v1/namespaces").second;
    CHECK(again["namespaces"].size() == 4);
    CHECK(again["revision"] == model.revision());
}
