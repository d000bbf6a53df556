// core/registry: the model, its events and revisions. Every event is checked as a line
// "<revision> <type> <name> nsid=<nsid>" (support/builders.hpp), so sequences are exact.
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "core/model.hpp"
#include "core/registry.hpp"

#include "support/builders.hpp"

using netnsd::core::entry;
using netnsd::core::entry_state;
using netnsd::core::event_type;
using netnsd::core::nsid_t;
using netnsd::core::registry;
using netnsd::test::at_ms;
using netnsd::test::event_log;
using netnsd::test::identity;
using netnsd::test::lines;
using netnsd::test::live;
using netnsd::test::stale;

namespace
{

// An event's entry, as the optional the registry's lookups give.
std::optional<entry> subject_of(const std::shared_ptr<const entry>& subject)
{
    return subject ? std::optional<entry>(*subject) : std::nullopt;
}

struct fixture
{
    registry model{100};
    event_log log{model};
};

std::vector<std::pair<nsid_t, std::optional<std::string>>> rows(const registry& model)
{
    std::vector<std::pair<nsid_t, std::optional<std::string>>> out;
    for (const auto& row : model.nsids())
        out.emplace_back(row.nsid, row.name);
    return out;
}

using row_list = std::vector<std::pair<nsid_t, std::optional<std::string>>>;

} // namespace

TEST_CASE_FIXTURE(fixture, "a new registry is empty at revision 0")
{
    CHECK(model.revision() == 0);
    CHECK(model.slots().empty());
    CHECK(model.live_count() == 0);
    CHECK(model.nsids().empty());
    CHECK(model.history().size() == 0);
    CHECK(model.history().capacity() == 100);
    CHECK_FALSE(model.find("a").has_value());
}

TEST_CASE_FIXTURE(fixture, "a live probe of a new name adds it")
{
    model.apply_probe("a", live(1), at_ms(1000));

    CHECK(log.lines() == lines{"1 added a nsid=none"});
    CHECK(model.revision() == 1);
    CHECK(model.live_count() == 1);
    const entry expected{"a", entry_state::live, identity(1), std::nullopt, at_ms(1000)};
    CHECK(model.find("a") == expected);

    REQUIRE(log.events.size() == 1);
    const auto& e = log.events[0];
    CHECK(e.time == at_ms(1000));
    CHECK(subject_of(e.subject) == expected);
}

TEST_CASE_FIXTURE(fixture, "a live probe that knows the nsid adds the entry with it")
{
    model.apply_probe("a", live(1, 5), at_ms(0));

    CHECK(log.lines() == lines{"1 added a nsid=5"});
    CHECK(model.find("a")->nsid == 5);
    CHECK(model.nsid_of(identity(1)) == 5);
    CHECK(model.has_nsid(5));
    CHECK(rows(model) == row_list{{5, "a"}});
    REQUIRE(log.events[0].subject);
    CHECK(log.events[0].subject->nsid == 5);
}

TEST_CASE_FIXTURE(fixture, "revisions are contiguous across every kind of event")
{
    model.apply_probe("a", live(1), at_ms(0));
    model.apply_probe("b", live(2, 7), at_ms(0));
    model.set_nsid(identity(1), 3, at_ms(0));
    model.apply_probe("p", stale(), at_ms(0)); // no event
    model.erase("b", at_ms(0));
    model.add_unnamed_nsid(9, at_ms(0));
    model.destroy_nsid(7, at_ms(0));
    model.apply_probe("a", stale(), at_ms(0));

    CHECK(log.lines() == lines{
                             "1 added a nsid=none",
                             "2 added b nsid=7",
                             "3 nsid_set a nsid=3",
                             "4 deleted b nsid=7",
                             "5 nsid_set - nsid=9",
                             "6 destroyed - nsid=7",
                             "7 deleted a nsid=3",
                         });
    CHECK(model.revision() == 7);
    CHECK(model.history().size() == 7);
}

TEST_CASE_FIXTURE(fixture, "a stale entry makes no event but changes the generation")
{
    const auto g0 = model.generation();
    model.apply_probe("p", stale(), at_ms(500));

    CHECK(log.lines() == lines{});
    CHECK(model.revision() == 0);
    CHECK(model.generation() != g0);
    CHECK(model.live_count() == 0);
    const entry expected{"p", entry_state::stale, std::nullopt, std::nullopt, at_ms(500)};
    CHECK(model.find("p") == expected);

    SUBCASE("probing it stale again changes nothing")
    {
        const auto g1 = model.generation();
        model.apply_probe("p", stale(), at_ms(600));
        CHECK(model.generation() == g1);
        CHECK(model.find("p") == expected);
        CHECK(log.lines() == lines{});
    }
    SUBCASE("erasing it makes no event but changes the generation")
    {
        const auto g1 = model.generation();
        model.erase("p", at_ms(600));
        CHECK(model.generation() != g1);
        CHECK_FALSE(model.find("p").has_value());
        CHECK(model.slots().empty());
        CHECK(log.lines() == lines{});
        CHECK(model.revision() == 0);
    }
}

TEST_CASE_FIXTURE(fixture, "every event changes the generation")
{
    auto g = model.generation();
    auto changed = [&]
    {
        const bool result = model.generation() != g;
        g = model.generation();
        return result;
    };
    model.apply_probe("a", live(1), at_ms(0));
    CHECK(changed());
    model.set_nsid(identity(1), 4, at_ms(0));
    CHECK(changed());
    model.add_unnamed_nsid(8, at_ms(0));
    CHECK(changed());
    model.destroy_nsid(8, at_ms(0));
    CHECK(changed());
    model.erase("a", at_ms(0));
    CHECK(changed());
}

TEST_CASE_FIXTURE(fixture, "a stale entry that becomes live is added and keeps its first_seen")
{
    model.apply_probe("x", stale(), at_ms(1000));
    model.apply_probe("x", live(3, 2), at_ms(2500));

    CHECK(log.lines() == lines{"1 added x nsid=2"});
    CHECK(log.events[0].time == at_ms(2500));
    const entry expected{"x", entry_state::live, identity(3), 2, at_ms(1000)};
    CHECK(model.find("x") == expected);
    CHECK(subject_of(log.events[0].subject) == expected);
}

TEST_CASE_FIXTURE(fixture, "a live entry found stale (unmounted) is deleted and stays listed")
{
    model.apply_probe("a", live(1, 4), at_ms(1000));
    model.apply_probe("a", stale(), at_ms(2000));

    CHECK(log.lines() == lines{"1 added a nsid=4", "2 deleted a nsid=4"});
    // The event carries the entry as it was.
    const entry before{"a", entry_state::live, identity(1), 4, at_ms(1000)};
    CHECK(subject_of(log.events[1].subject) == before);
    CHECK(log.events[1].time == at_ms(2000));
    // The file is still there, as a stale entry with its first_seen.
    const entry after{"a", entry_state::stale, std::nullopt, std::nullopt, at_ms(1000)};
    CHECK(model.find("a") == after);
    CHECK(model.live_count() == 0);
    CHECK(model.slots().size() == 1);
}

TEST_CASE_FIXTURE(fixture, "another namespace mounted on the same name gives deleted then added")
{
    model.apply_probe("a", live(1, 4), at_ms(0));
    model.apply_probe("a", live(2), at_ms(10));

    CHECK(log.lines() == lines{"1 added a nsid=4", "2 deleted a nsid=4", "3 added a nsid=none"});
    CHECK(log.events[1].subject->identity == identity(1));
    CHECK(log.events[2].subject->identity == identity(2));
    CHECK(model.find("a")->identity == identity(2));
    CHECK(model.find("a")->nsid == std::nullopt);
    CHECK(model.find("a")->first_seen == at_ms(0));
    CHECK(model.live_count() == 1);
    // The old namespace keeps its nsid until the kernel frees it.
    CHECK(model.nsid_of(identity(1)) == 4);
    CHECK(rows(model) == row_list{{4, std::nullopt}});
}

TEST_CASE_FIXTURE(fixture, "probing the same namespace again makes no event")
{
    model.apply_probe("a", live(1, 4), at_ms(0));
    const auto g = model.generation();

    SUBCASE("with the same nsid")
    {
        model.apply_probe("a", live(1, 4), at_ms(10));
    }
    SUBCASE("without an nsid in the probe")
    {
        model.apply_probe("a", live(1), at_ms(10));
        CHECK(model.find("a")->nsid == 4);
    }
    CHECK(log.lines() == lines{"1 added a nsid=4"});
    CHECK(model.generation() == g);
}

TEST_CASE_FIXTURE(fixture, "a re-probe that learns the nsid of a live entry emits nsid_set")
{
    model.apply_probe("a", live(1), at_ms(0));
    model.apply_probe("a", live(1, 6), at_ms(10));

    CHECK(log.lines() == lines{"1 added a nsid=none", "2 nsid_set a nsid=6"});
    CHECK(log.events[1].subject->nsid == 6);
}

TEST_CASE_FIXTURE(fixture, "erasing a live entry deletes it with the entry as it was")
{
    model.apply_probe("a", live(1, 3), at_ms(1000));
    model.erase("a", at_ms(2000));

    CHECK(log.lines() == lines{"1 added a nsid=3", "2 deleted a nsid=3"});
    const entry before{"a", entry_state::live, identity(1), 3, at_ms(1000)};
    CHECK(subject_of(log.events[1].subject) == before);
    CHECK_FALSE(model.find("a").has_value());
    CHECK(model.live_count() == 0);
}

TEST_CASE_FIXTURE(fixture, "erasing a name the registry does not know changes nothing")
{
    model.apply_probe("a", live(1), at_ms(0));
    const auto g = model.generation();
    model.erase("b", at_ms(0));
    CHECK(model.generation() == g);
    CHECK(model.revision() == 1);
    CHECK(model.slots().size() == 1);
}

TEST_CASE_FIXTURE(fixture, "aliases share one nsid and each live name gets an nsid event")
{
    model.apply_probe("b", live(1), at_ms(0));
    model.apply_probe("a", live(1), at_ms(0));
    model.apply_probe("c", live(2), at_ms(0));
    CHECK(model.live_count() == 3);

    model.set_nsid(identity(1), 7, at_ms(0));

    CHECK(log.take() == lines{"1 added b nsid=none", "2 added a nsid=none", "3 added c nsid=none",
                              "4 nsid_set a nsid=7", "5 nsid_set b nsid=7"});
    CHECK(model.find("a")->nsid == 7);
    CHECK(model.find("b")->nsid == 7);
    CHECK(model.find("c")->nsid == std::nullopt);
    // The row shows the first name in byte order.
    CHECK(rows(model) == row_list{{7, "a"}});

    SUBCASE("deleting one alias leaves the nsid to the other")
    {
        model.erase("a", at_ms(0));
        CHECK(log.take() == lines{"6 deleted a nsid=7"});
        CHECK(rows(model) == row_list{{7, "b"}});
        CHECK(model.find("b")->nsid == 7);
    }
    SUBCASE("a new alias of a namespace with an nsid is added with it")
    {
        model.apply_probe("d", live(1), at_ms(0));
        CHECK(log.take() == lines{"6 added d nsid=7"});
    }
}

TEST_CASE_FIXTURE(fixture, "set_nsid of the nsid a namespace already has makes no event")
{
    model.apply_probe("a", live(1, 7), at_ms(0));
    const auto g = model.generation();
    model.set_nsid(identity(1), 7, at_ms(0));
    CHECK(log.lines() == lines{"1 added a nsid=7"});
    CHECK(model.generation() == g);
}

TEST_CASE_FIXTURE(fixture, "set_nsid of another nsid replaces the old one")
{
    model.apply_probe("a", live(1, 7), at_ms(0));
    model.set_nsid(identity(1), 8, at_ms(0));

    CHECK(log.lines() == lines{"1 added a nsid=7", "2 nsid_set a nsid=8"});
    CHECK_FALSE(model.has_nsid(7));
    CHECK(rows(model) == row_list{{8, "a"}});
}

TEST_CASE_FIXTURE(fixture, "set_nsid for a namespace no live name refers to is ignored")
{
    model.set_nsid(identity(5), 7, at_ms(0));
    CHECK(log.lines() == lines{});
    CHECK_FALSE(model.has_nsid(7));
    CHECK(model.nsid_of(identity(5)) == std::nullopt);
}

TEST_CASE_FIXTURE(fixture, "an unnamed nsid is recorded with an nsid event without a name")
{
    model.add_unnamed_nsid(9, at_ms(0));

    CHECK(log.lines() == lines{"1 nsid_set - nsid=9"});
    CHECK(subject_of(log.events[0].subject) == std::nullopt);
    CHECK(model.has_nsid(9));
    CHECK(rows(model) == row_list{{9, std::nullopt}});

    SUBCASE("recording it again makes no event")
    {
        model.add_unnamed_nsid(9, at_ms(0));
        CHECK(log.lines() == lines{"1 nsid_set - nsid=9"});
    }
    SUBCASE("it becomes named when an entry with that nsid appears")
    {
        model.apply_probe("c", live(3, 9), at_ms(0));
        CHECK(log.lines() == lines{"1 nsid_set - nsid=9", "2 added c nsid=9"});
        CHECK(rows(model) == row_list{{9, "c"}});
        CHECK(model.nsid_of(identity(3)) == 9);
        SUBCASE("and its destruction then clears the entry's nsid")
        {
            model.destroy_nsid(9, at_ms(0));
            CHECK(model.find("c")->nsid == std::nullopt);
            CHECK(rows(model) == row_list{});
        }
    }
    SUBCASE("it becomes named when set_nsid finds its namespace")
    {
        model.apply_probe("c", live(3), at_ms(0));
        model.set_nsid(identity(3), 9, at_ms(0));
        CHECK(log.lines() ==
              lines{"1 nsid_set - nsid=9", "2 added c nsid=none", "3 nsid_set c nsid=9"});
        CHECK(rows(model) == row_list{{9, "c"}});
    }
}

TEST_CASE_FIXTURE(fixture, "destroy_nsid emits destroyed without a name and clears the nsid")
{
    model.apply_probe("a", live(1, 7), at_ms(0));
    model.destroy_nsid(7, at_ms(50));

    CHECK(log.lines() == lines{"1 added a nsid=7", "2 destroyed - nsid=7"});
    CHECK(log.events[1].type == event_type::destroyed);
    CHECK(log.events[1].name == std::nullopt);
    CHECK(subject_of(log.events[1].subject) == std::nullopt);
    CHECK(log.events[1].time == at_ms(50));
    CHECK(model.find("a")->nsid == std::nullopt);
    CHECK(model.nsid_of(identity(1)) == std::nullopt);
    CHECK_FALSE(model.has_nsid(7));
    CHECK(rows(model) == row_list{});
}

TEST_CASE_FIXTURE(fixture, "destroy_nsid of an nsid the registry does not know makes no event")
{
    model.apply_probe("a", live(1, 7), at_ms(0));
    model.destroy_nsid(8, at_ms(0));
    CHECK(log.lines() == lines{"1 added a nsid=7"});
    CHECK(model.has_nsid(7));
}

TEST_CASE_FIXTURE(fixture, "a nameless namespace with an nsid is kept until destroyed")
{
    model.apply_probe("a", live(1, 7), at_ms(0));
    model.erase("a", at_ms(0));

    CHECK(model.nsid_of(identity(1)) == 7);
    CHECK(model.has_nsid(7));
    CHECK(rows(model) == row_list{{7, std::nullopt}});

    SUBCASE("a name that reappears for it gets the nsid back")
    {
        model.apply_probe("b", live(1), at_ms(0));
        CHECK(log.lines() == lines{"1 added a nsid=7", "2 deleted a nsid=7", "3 added b nsid=7"});
        CHECK(rows(model) == row_list{{7, "b"}});
    }
    SUBCASE("its destruction forgets it")
    {
        model.destroy_nsid(7, at_ms(0));
        CHECK(log.lines() ==
              lines{"1 added a nsid=7", "2 deleted a nsid=7", "3 destroyed - nsid=7"});
        CHECK(model.nsid_of(identity(1)) == std::nullopt);
        CHECK(rows(model) == row_list{});
        // A later name for an identity like it starts without an nsid.
        model.apply_probe("b", live(1), at_ms(0));
        CHECK(model.find("b")->nsid == std::nullopt);
    }
}

TEST_CASE_FIXTURE(fixture, "a nameless namespace without an nsid is forgotten")
{
    model.apply_probe("a", live(1), at_ms(0));
    model.erase("a", at_ms(0));
    CHECK(model.nsid_of(identity(1)) == std::nullopt);
    model.set_nsid(identity(1), 4, at_ms(0));
    CHECK_FALSE(model.has_nsid(4));
    CHECK(model.revision() == 2);
}

TEST_CASE_FIXTURE(fixture, "nsids lists every nsid in order with its first live name or none")
{
    model.apply_probe("zeta", live(1, 30), at_ms(0));
    model.apply_probe("alpha", live(2, 10), at_ms(0));
    model.apply_probe("beta", live(2), at_ms(0)); // an alias of alpha
    model.add_unnamed_nsid(20, at_ms(0));
    model.apply_probe("nonsid", live(3), at_ms(0));

    const auto all = model.nsids();
    REQUIRE(all.size() == 3);
    CHECK(all[0].nsid == 10);
    CHECK(all[0].name == "alpha");
    CHECK(all[1].nsid == 20);
    CHECK(all[1].name == std::nullopt);
    CHECK(all[2].nsid == 30);
    CHECK(all[2].name == "zeta");
}

TEST_CASE_FIXTURE(fixture, "slots are kept in byte order of the name")
{
    model.apply_probe("b", live(1), at_ms(0));
    model.apply_probe("\xC3\xA9", live(2), at_ms(0));
    model.apply_probe("B", stale(), at_ms(0));
    model.apply_probe("a b", live(3), at_ms(0));

    std::vector<std::string> names;
    for (const auto& [name, s] : model.slots())
        names.push_back(name);
    CHECK(names == lines{"B", "a b", "b", "\xC3\xA9"});
}

TEST_CASE("the listener sees each event once, after the registry reflects it")
{
    registry model(100);
    std::vector<std::string> seen;
    model.set_listener(
        [&](const netnsd::core::event& e)
        {
            // The model already shows the change when the listener runs.
            CHECK(model.revision() == e.revision);
            CHECK(model.history().newest().revision == e.revision);
            if (e.type == event_type::added)
                CHECK(model.find(*e.name)->state == entry_state::live);
            if (e.type == event_type::deleted)
                CHECK_FALSE(model.find(*e.name).has_value());
            seen.push_back(netnsd::test::line(e));
        });

    model.apply_probe("a", live(1), at_ms(0));
    model.apply_probe("b", live(1), at_ms(0));
    model.set_nsid(identity(1), 2, at_ms(0));
    model.erase("a", at_ms(0));
    model.destroy_nsid(2, at_ms(0));

    CHECK(seen == lines{"1 added a nsid=none", "2 added b nsid=none", "3 nsid_set a nsid=2",
                        "4 nsid_set b nsid=2", "5 deleted a nsid=2", "6 destroyed - nsid=2"});
}

TEST_CASE("the registry's journal keeps the last events it emitted")
{
    registry model(2);
    model.apply_probe("a", live(1), at_ms(0));
    model.apply_probe("b", live(2), at_ms(0));
    model.apply_probe("c", live(3), at_ms(0));

    CHECK(model.history().size() == 2);
    CHECK_FALSE(model.history().covers(0));
    CHECK(model.history().covers(1));
    std::vector<std::string> kept;
    model.history().for_each_since(0, [&](const netnsd::core::event& e)
                                   { kept.push_back(netnsd::test::line(e)); });
    CHECK(kept == lines{"2 added b nsid=none", "3 added c nsid=none"});
}

TEST_CASE("a replica that replays the recorded changes has the same state and the same events")
{
    using netnsd::core::registry;
    registry primary(1, 5000);
    std::vector<registry::change> changes;
    primary.record_changes(&changes);
    event_log primary_log(primary);

    // Every kind of call, including ones that change nothing and nested nsid updates.
    const auto t = [](int ms)
    {
        return at_ms(ms);
    };
    primary.apply_probe("a", live(1), t(1));
    primary.apply_probe("a", live(1), t(2)); // nothing changed: not recorded
    primary.apply_probe("p", stale(), t(3));
    primary.apply_probe("b", live(2, 4), t(4));
    primary.apply_probe("a", live(1, 6), t(5)); // the nsid arrives with a probe
    primary.set_nsid(identity(2), 4, t(6));     // already so: not recorded
    primary.add_unnamed_nsid(9, t(7));
    primary.apply_probe("alias", live(2, 4), t(8));
    primary.apply_probe("b", live(3), t(9)); // another namespace in its place
    primary.erase("a", t(10));
    primary.destroy_nsid(9, t(11));
    primary.destroy_nsid(6, t(12));
    primary.erase("missing", t(13)); // nothing there: not recorded
    CHECK(changes.size() == 10);

    registry replica(1000, 5000);
    event_log replica_log(replica);
    for (const auto& c : changes)
        replica.apply(c);

    CHECK(replica_log.lines() == primary_log.lines());
    CHECK(replica.revision() == primary.revision());
    CHECK(replica.slots().size() == primary.slots().size());
    for (const auto& [name, slot] : primary.slots())
    {
        CAPTURE(name);
        REQUIRE(replica.find(name));
        CHECK(*replica.find(name) == *primary.find(name));
    }
    std::vector<std::pair<int, std::optional<std::string>>> a, b;
    for (const auto& r : primary.nsids())
        a.emplace_back(r.nsid, r.name);
    for (const auto& r : replica.nsids())
        b.emplace_back(r.nsid, r.name);
    CHECK(a == b);
    // Recording stops when asked.
    primary.record_changes(nullptr);
    primary.apply_probe("late", live(8), t(20));
    CHECK(changes.size() == 10);
}

TEST_CASE("link events are recorded and replayed, and a destroying hook's come before the "
          "destroyed in the replica too")
{
    using netnsd::core::link_action;
    using netnsd::core::link_change;
    registry primary(1, 5000);
    std::vector<registry::change> changes;
    primary.record_changes(&changes);
    event_log primary_log(primary);
    auto change = [](link_action action, std::string ifname)
    {
        auto c = std::make_shared<link_change>();
        c->action = action;
        c->ns_id = 7;
        c->name = "a";
        c->link.link.ifindex = 2;
        c->link.link.name = std::move(ifname);
        return c;
    };
    primary.apply_probe("a", live(1, 3), at_ms(1));
    primary.link_changed(change(link_action::added, "eth0"), at_ms(2));
    std::vector<nsid_t> hooked;
    primary.set_destroying_hook(
        [&](std::uint64_t, std::optional<nsid_t> nsid)
        {
            hooked.push_back(nsid.value_or(-1));
            primary.link_changed(change(link_action::removed, "eth0"), at_ms(3));
        });
    primary.erase("a", at_ms(3));
    primary.destroy_nsid(3, at_ms(4));
    CHECK(hooked == std::vector<nsid_t>{3});
    CHECK(primary_log.lines() ==
          lines({"5001 added a nsid=3", "5002 link a nsid=none", "5003 deleted a nsid=3",
                 "5004 link a nsid=none", "5005 destroyed - nsid=3"}));

    registry replica(1000, 5000);
    event_log replica_log(replica);
    for (const auto& c : changes)
        replica.apply(c);
    CHECK(replica_log.lines() == primary_log.lines());
    // The replica's events carry the very change the primary made (one shared object).
    const auto& journal = replica.history();
    REQUIRE(journal.size() == 5);
}
