// api/json: links and entries as JSON; names that are not UTF-8 never make invalid JSON.
#include <chrono>
#include <string>

#include <doctest/doctest.h>

#include "core/model.hpp"

#include "api/json.hpp"

#include "support/builders.hpp"

using netnsd::api::dump;
using netnsd::api::entry_href;
using netnsd::api::json;
using netnsd::api::to_json;
using netnsd::core::entry;
using netnsd::core::entry_state;
using netnsd::core::ns_identity;
using netnsd::test::at_ms;
using namespace std::chrono;
using namespace std::string_literals;

TEST_CASE("entry_href percent-encodes the name under /api/v1/netns/")
{
    CHECK(entry_href("blue") == "/api/v1/netns/blue");
    CHECK(entry_href("a b") == "/api/v1/netns/a%20b");
    CHECK(entry_href("--") == "/api/v1/netns/--");
    CHECK(entry_href("r\xC3\xA9s") == "/api/v1/netns/r%C3%A9s");
    CHECK(entry_href("x\xFF") == "/api/v1/netns/x%FF");
    CHECK(entry_href("a\nb") == "/api/v1/netns/a%0Ab");
}

TEST_CASE("to_json of a live entry has every field")
{
    const entry e{"blue", entry_state::live, ns_identity{4242, 4, 4026532177}, 7, at_ms(1234)};
    const auto j = to_json(e, "/run/netns");

    CHECK(j.size() == 8);
    CHECK(j.at("name") == "blue");
    CHECK(j.at("href") == "/api/v1/netns/blue");
    CHECK(j.at("path") == "/run/netns/blue");
    CHECK(j.at("state") == "live");
    CHECK(j.at("nsid") == 7);
    CHECK(j.at("inode") == 4026532177u);
    CHECK(j.at("ns_id") == 4242u);
    CHECK(j.at("first_seen") == "1970-01-01T00:00:01.234Z");
    CHECK(dump(j) == R"({"first_seen":"1970-01-01T00:00:01.234Z","href":"/api/v1/netns/blue",)"
                     R"("inode":4026532177,"name":"blue","ns_id":4242,"nsid":7,)"
                     R"("path":"/run/netns/blue","state":"live"})");
}

TEST_CASE("to_json of a live entry without an nsid shows null")
{
    const entry e{"a", entry_state::live, ns_identity{5, 4, 100}, std::nullopt, at_ms(0)};
    const auto j = to_json(e, "/run/netns");
    CHECK(j.at("nsid").is_null());
    CHECK(j.at("inode") == 100u);
}

TEST_CASE("to_json shows ns_id null when the kernel has no NS_GET_ID")
{
    const entry e{"a", entry_state::live, ns_identity{0, 4, 4026532177}, 3, at_ms(0)};
    const auto j = to_json(e, "/run/netns");
    CHECK(j.at("ns_id").is_null());
    CHECK(j.at("inode") == 4026532177u);
    CHECK(j.at("nsid") == 3);
}

TEST_CASE("to_json of a stale entry has nulls for what only a namespace has")
{
    const entry e{"placeholder", entry_state::stale, std::nullopt, std::nullopt, at_ms(2000)};
    CHECK(dump(to_json(e, "/var/run/netns")) ==
          R"({"first_seen":"1970-01-01T00:00:02.000Z","href":"/api/v1/netns/placeholder",)"
          R"("inode":null,"name":"placeholder","ns_id":null,"nsid":null,)"
          R"("path":"/var/run/netns/placeholder","state":"stale"})");
}

TEST_CASE("dump escapes control characters and quotes in names")
{
    const entry e{"a\n\"b\"\t\x01", entry_state::stale, std::nullopt, std::nullopt, at_ms(0)};
    const auto text = dump(to_json(e, "/run/netns"));
    CHECK(text.find(R"("name":"a\n\"b\"\t\u0001")") != std::string::npos);
    const auto back = json::parse(text, nullptr, false);
    REQUIRE_FALSE(back.is_discarded());
    CHECK(back.at("name").get<std::string>() == e.name);
}

TEST_CASE("a name that is not UTF-8 still gives valid JSON, and its href keeps the bytes")
{
    const std::string name = "bad\xFF\xFEname\xC3";
    const entry e{name, entry_state::live, ns_identity{1, 4, 9}, std::nullopt, at_ms(0)};

    const auto text = dump(to_json(e, "/run/netns"));

    const auto back = json::parse(text, nullptr, false);
    REQUIRE_FALSE(back.is_discarded());
    // Each invalid byte becomes U+FFFD (EF BF BD).
    CHECK(back.at("name").get<std::string>() == "bad\xEF\xBF\xBD\xEF\xBF\xBDname\xEF\xBF\xBD");
    CHECK(back.at("path").get<std::string>() ==
          "/run/netns/bad\xEF\xBF\xBD\xEF\xBF\xBDname\xEF\xBF\xBD");
    CHECK(back.at("href").get<std::string>() == "/api/v1/netns/bad%FF%FEname%C3");
}

TEST_CASE("a UTF-8 name is kept as is")
{
    const entry e{"r\xC3\xA9seau \xE2\x9C\x93", entry_state::stale, std::nullopt, std::nullopt,
                  at_ms(0)};
    const auto text = dump(to_json(e, "/run/netns"));
    CHECK(text.find("\"name\":\"r\xC3\xA9seau \xE2\x9C\x93\"") != std::string::npos);
}

TEST_CASE("dump writes compact JSON with sorted keys")
{
    json j = json::object();
    j["b"] = 1;
    j["a"] = json::array({1, "x", nullptr});
    CHECK(dump(j) == R"({"a":[1,"x",null],"b":1})");
}
