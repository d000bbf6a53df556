// api/list_cache: the JSON of every entry, rebuilt only when the registry's generation moves.
#include <string>

#include <doctest/doctest.h>

#include "core/registry.hpp"

#include "api/json.hpp"
#include "api/list_cache.hpp"

#include "support/builders.hpp"

using netnsd::api::json;
using netnsd::api::list_cache;
using netnsd::core::registry;
using netnsd::test::at_ms;
using netnsd::test::live;
using netnsd::test::stale;

TEST_CASE("an empty model lists an empty array at revision 0")
{
    registry model(10);
    list_cache lists(model, "/run/netns");
    CHECK(lists.entries_json() == "[]");
    CHECK(*lists.list_body() == R"({"namespaces":[],"revision":0})");
    CHECK(lists.netns_dir() == "/run/netns");
}

TEST_CASE("the list has every entry in name order, as to_json shows it")
{
    registry model(10);
    list_cache lists(model, "/run/netns");
    model.apply_probe("b", live(2, 4), at_ms(0));
    model.apply_probe("a", stale(), at_ms(0));

    json expected = json::array();
    for (const auto& item : model.slots())
        expected.push_back(netnsd::api::to_json(model.to_entry(item), "/run/netns"));
    CHECK(lists.entries_json() == netnsd::api::dump(expected));
    CHECK(*lists.list_body() ==
          R"({"namespaces":)" + netnsd::api::dump(expected) + R"(,"revision":1})");
    const auto parsed = json::parse(lists.entries_json(), nullptr, false);
    REQUIRE_FALSE(parsed.is_discarded());
    CHECK(parsed.at(0).at("name") == "a");
    CHECK(parsed.at(1).at("name") == "b");
}

TEST_CASE("the list is rebuilt when the model changes, and only then")
{
    registry model(10);
    list_cache lists(model, "/run/netns");
    model.apply_probe("a", live(1), at_ms(0));
    const auto body = lists.list_body();
    const std::string before(lists.entries_json());
    // Asked again without a change: the same bytes, not a rebuild.
    CHECK(lists.list_body() == body);
    CHECK(lists.entries_json().data() == body->data() + body->find('['));
    CHECK(lists.entries_json() == before);

    SUBCASE("a stale entry, which makes no event")
    {
        model.apply_probe("p", stale(), at_ms(0));
        CHECK(lists.entries_json() != before);
        CHECK(lists.entries_json().find(R"("name":"p")") != std::string::npos);
    }
    SUBCASE("an nsid")
    {
        model.set_nsid(netnsd::test::identity(1), 6, at_ms(0));
        CHECK(lists.entries_json().find(R"("nsid":6)") != std::string::npos);
        CHECK(lists.list_body()->ends_with(R"(,"revision":2})"));
    }
}

TEST_CASE("one entry's body is made once, and again only when the entries change")
{
    registry model(10);
    list_cache lists(model, "/run/netns");
    model.apply_probe("a", live(1), at_ms(0));
    model.apply_probe("b", stale(), at_ms(0));
    CHECK(lists.entry_body("nothing") == nullptr);

    const auto a = lists.entry_body("a");
    REQUIRE(a != nullptr);
    CHECK(*a == netnsd::api::dump(netnsd::api::to_json(*model.find("a"), "/run/netns")));
    CHECK(lists.entry_body("a") == a); // the same bytes, not made again
    CHECK(*lists.entry_body("b") ==
          netnsd::api::dump(netnsd::api::to_json(*model.find("b"), "/run/netns")));

    // "a" gets an nsid: its body says so at once, and the old one stays whole for a response
    // still sending it.
    model.apply_probe("a", live(1, 7), at_ms(1));
    const auto renumbered = lists.entry_body("a");
    CHECK(renumbered != a);
    CHECK(json::parse(*renumbered).at("nsid") == 7);
    CHECK(json::parse(*a).at("nsid").is_null());
    model.erase("a", at_ms(2));
    CHECK(lists.entry_body("a") == nullptr);
}
