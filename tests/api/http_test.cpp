// api/http: header lookup and the media types of embedded assets.
#include <string_view>

#include <doctest/doctest.h>

#include "api/assets.hpp"
#include "api/http.hpp"

using netnsd::api::media_type;
using netnsd::api::request;

TEST_CASE("request::header finds the first header of that name, ignoring case")
{
    request req;
    req.headers = {{"Accept", "text/event-stream"},
                   {"X-Twice", "first"},
                   {"x-twice", "second"},
                   {"Last-Event-ID", "42"}};

    CHECK(req.header("Accept") == "text/event-stream");
    CHECK(req.header("accept") == "text/event-stream");
    CHECK(req.header("ACCEPT") == "text/event-stream");
    CHECK(req.header("last-event-id") == "42");
    CHECK(req.header("X-TWICE") == "first");
}

TEST_CASE("request::header is empty for a header that is absent")
{
    request req;
    req.headers = {{"Accept", "a"}};
    CHECK(req.header("Accep") == "");
    CHECK(req.header("Accept-Encoding") == "");
    CHECK(req.header("") == "");
    CHECK(request{}.header("Accept") == "");
}

TEST_CASE("media_type follows the route's extension")
{
    CHECK(media_type("/") == "text/html; charset=utf-8");
    CHECK(media_type("/index.html") == "text/html; charset=utf-8");
    CHECK(media_type("/docs/") == "text/html; charset=utf-8");
    CHECK(media_type("/openapi.yaml") == "application/yaml");
    CHECK(media_type("/app.js") == "text/javascript; charset=utf-8");
    CHECK(media_type("/style.css") == "text/css; charset=utf-8");
    CHECK(media_type("/logo.svg") == "image/svg+xml");
    CHECK(media_type("/data.json") == "application/json");
    CHECK(media_type("/blob") == "application/octet-stream");
    CHECK(media_type("/archive.tar.gz") == "application/octet-stream");
}

TEST_CASE("the embedded assets include the dashboard and the OpenAPI document")
{
    bool has_root = false;
    bool has_openapi = false;
    for (const auto& a : netnsd::api::embedded_assets())
    {
        has_root = has_root || a.route == "/";
        if (a.route == "/openapi.yaml")
        {
            has_openapi = true;
            CHECK(a.bytes.starts_with("openapi:"));
        }
    }
    CHECK(has_root);
    CHECK(has_openapi);
}
