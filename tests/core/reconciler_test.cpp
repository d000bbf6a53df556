// core/reconciler against an in-memory netns_source (support/fake_netns_source.hpp): what each
// watcher report turns into, and how many probes it costs.
#include <algorithm>
#include <cstdio>
#include <string>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>

#include "core/reconciler.hpp"
#include "core/registry.hpp"

#include "support/builders.hpp"
#include "support/fake_netns_source.hpp"

using netnsd::core::entry_state;
using netnsd::core::ns_identity;
using netnsd::core::nsid_t;
using netnsd::core::reconciler;
using netnsd::core::registry;
using netnsd::test::event_log;
using netnsd::test::fake_netns_source;
using netnsd::test::identity;
using netnsd::test::lines;

namespace
{

struct fixture
{
    registry model{1000};
    event_log log{model};
    fake_netns_source source;
    reconciler rec{model, source};

    entry_state state_of(const std::string& name) const { return model.find(name)->state; }

    std::vector<std::string> names() const
    {
        std::vector<std::string> out;
        for (const auto& [name, s] : model.slots())
            out.push_back(name);
        return out;
    }
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

TEST_CASE_FIXTURE(fixture, "the first rescan adds every live name and lists stale ones silently")
{
    source.mount("b", identity(2), 5);
    source.mount("a", identity(1));
    source.placeholder("p");

    CHECK_FALSE(rec.rescan());

    CHECK(log.lines() == lines{"1 added a nsid=none", "2 added b nsid=5"});
    CHECK(names() == lines{"a", "b", "p"});
    CHECK(state_of("p") == entry_state::stale);
    CHECK(model.live_count() == 2);
    CHECK(rec.probes() == 3);
    CHECK(source.probe_count == 3);
    CHECK(rows(model) == row_list{{5, "b"}});
}

TEST_CASE_FIXTURE(fixture, "a rescan of an unchanged dir makes no event")
{
    source.mount("a", identity(1), 3);
    source.placeholder("p");
    rec.rescan();
    const auto g = model.generation();

    CHECK_FALSE(rec.rescan());

    CHECK(log.lines() == lines{"1 added a nsid=3"});
    CHECK(model.generation() == g);
}

TEST_CASE_FIXTURE(fixture, "a rescan applies what changed as ordinary events")
{
    source.mount("a", identity(1));
    source.mount("b", identity(2), 5);
    source.mount("keep", identity(4));
    source.placeholder("p");
    rec.rescan();
    log.take();

    source.remove("a");                // gone
    source.mount("b", identity(3));    // another namespace mounted on the name
    source.mount("c", identity(5), 6); // new
    source.mount("p", identity(6));    // the placeholder got its bind mount
    source.placeholder("q");           // a new placeholder

    CHECK_FALSE(rec.rescan());

    // Vanished names first, then every listed name in byte order.
    CHECK(log.take() == lines{"4 deleted a nsid=none", "5 deleted b nsid=5", "6 added b nsid=none",
                              "7 added c nsid=6", "8 added p nsid=none"});
    CHECK(names() == lines{"b", "c", "keep", "p", "q"});
    CHECK(state_of("q") == entry_state::stale);
    CHECK(model.find("b")->identity == identity(3));
    // Namespace 2 lost its name but the kernel still has its nsid: kept, unnamed.
    CHECK(rows(model) == row_list{{5, std::nullopt}, {6, "c"}});
}

TEST_CASE_FIXTURE(fixture, "a rescan that cannot list the dir empties the model and says why")
{
    source.mount("a", identity(1));
    source.placeholder("p");
    rec.rescan();
    log.take();

    source.list_error = std::make_error_code(std::errc::no_such_file_or_directory);
    const auto ec = rec.rescan();

    CHECK(ec == std::errc::no_such_file_or_directory);
    CHECK(log.take() == lines{"2 deleted a nsid=none"});
    CHECK(model.slots().empty());
    CHECK(model.live_count() == 0);
}

TEST_CASE_FIXTURE(fixture, "entry_appeared probes the name once and adds it when live")
{
    source.mount("a", identity(1), 2);
    rec.entry_appeared("a");

    CHECK(log.lines() == lines{"1 added a nsid=2"});
    CHECK(source.probed == lines{"a"});
}

TEST_CASE_FIXTURE(fixture, "a placeholder becomes live only after the mount table changes")
{
    // IN_CREATE arrives before `ip netns add` bind-mounts the namespace onto the file.
    source.placeholder("x");
    rec.entry_appeared("x");
    CHECK(log.lines() == lines{});
    CHECK(state_of("x") == entry_state::stale);

    // The bind mount makes no inotify event: nothing is probed until mountinfo signals.
    source.mount("x", identity(1));
    CHECK(state_of("x") == entry_state::stale);
    CHECK(source.probe_count == 1);

    rec.mounts_changed();
    CHECK(log.lines() == lines{"1 added x nsid=none"});
    CHECK(state_of("x") == entry_state::live);
    CHECK(source.probe_count == 2);
}

TEST_CASE_FIXTURE(fixture,
                  "mounts_changed re-checks live entries with a stat and probes only stale ones")
{
    source.mount("a", identity(1));
    source.mount("b", identity(2));
    source.placeholder("p");
    rec.rescan();
    const auto probes_before = source.probe_count;

    rec.mounts_changed();

    CHECK(source.probe_count == probes_before + 1);
    CHECK(source.probed.back() == "p");
    CHECK(source.still_is_count == 2);
    CHECK(log.lines() == lines{"1 added a nsid=none", "2 added b nsid=none"});
}

TEST_CASE_FIXTURE(fixture, "an unmounted live entry is found by mounts_changed and deleted")
{
    source.mount("a", identity(1), 4);
    source.mount("b", identity(2));
    rec.rescan();
    log.take();

    source.placeholder("a"); // umount: the mode-000 file stays behind
    rec.mounts_changed();

    CHECK(log.take() == lines{"3 deleted a nsid=4"});
    CHECK(state_of("a") == entry_state::stale);
    CHECK(state_of("b") == entry_state::live);
}

TEST_CASE_FIXTURE(fixture, "a namespace mounted over a live name is found by mounts_changed")
{
    source.mount("a", identity(1));
    rec.rescan();
    log.take();

    source.mount("a", identity(2));
    rec.mounts_changed();

    CHECK(log.take() == lines{"2 deleted a nsid=none", "3 added a nsid=none"});
    CHECK(model.find("a")->identity == identity(2));
}

TEST_CASE_FIXTURE(fixture, "entry_vanished deletes a name that is gone")
{
    source.mount("a", identity(1), 4);
    source.placeholder("p");
    rec.rescan();
    log.take();

    source.remove("a");
    source.remove("p");
    rec.entry_vanished("a");
    rec.entry_vanished("p");

    CHECK(log.take() == lines{"2 deleted a nsid=4"});
    CHECK(model.slots().empty());
}

TEST_CASE_FIXTURE(fixture, "entry_vanished believes a probe when the name was created again")
{
    source.mount("a", identity(1));
    rec.rescan();
    log.take();

    SUBCASE("as the same namespace")
    {
        rec.entry_vanished("a");
        CHECK(log.take() == lines{});
        CHECK(state_of("a") == entry_state::live);
    }
    SUBCASE("as another namespace")
    {
        source.mount("a", identity(2));
        rec.entry_vanished("a");
        CHECK(log.take() == lines{"2 deleted a nsid=none", "3 added a nsid=none"});
        CHECK(model.find("a")->identity == identity(2));
    }
}

TEST_CASE_FIXTURE(fixture, "entry_vanished of a name the model never saw changes nothing")
{
    const auto g = model.generation();
    rec.entry_vanished("ghost");
    CHECK(model.generation() == g);
    CHECK(model.slots().empty());
}

TEST_CASE_FIXTURE(fixture, "dir_lost deletes every live entry and drops stale ones")
{
    source.mount("b", identity(2), 9);
    source.mount("a", identity(1));
    source.placeholder("p");
    rec.rescan();
    log.take();
    const auto probes_before = source.probe_count;

    rec.dir_lost();

    CHECK(log.take() == lines{"3 deleted a nsid=none", "4 deleted b nsid=9"});
    CHECK(model.slots().empty());
    CHECK(source.probe_count == probes_before);
    // The namespace behind b may live on: its nsid waits for RTM_DELNSID.
    CHECK(rows(model) == row_list{{9, std::nullopt}});
}

TEST_CASE_FIXTURE(fixture, "nsids_added finds the namespace that got the nsid")
{
    source.mount("a", identity(1));
    source.mount("b", identity(2));
    source.mount("c", identity(3));
    rec.rescan();
    log.take();

    source.assign_nsid("b", 7);
    const nsid_t added[] = {7};
    rec.nsids_added(added);

    CHECK(log.take() == lines{"4 nsid_set b nsid=7"});
    CHECK(model.find("b")->nsid == 7);
    CHECK(rows(model) == row_list{{7, "b"}});
}

TEST_CASE_FIXTURE(fixture, "an nsid no live name explains is recorded as unnamed")
{
    source.mount("a", identity(1));
    source.mount("b", identity(2));
    rec.rescan();
    log.take();
    const auto probes_before = source.probe_count;

    const nsid_t added[] = {42};
    rec.nsids_added(added);

    CHECK(log.take() == lines{"3 nsid_set - nsid=42"});
    CHECK(rows(model) == row_list{{42, std::nullopt}});
    // Every candidate was asked once.
    CHECK(source.probe_count == probes_before + 2);
}

TEST_CASE_FIXTURE(fixture, "nsids_added skips nsids the model already knows")
{
    source.mount("a", identity(1), 3);
    rec.rescan();
    log.take();
    const auto probes_before = source.probe_count;

    const nsid_t added[] = {3};
    rec.nsids_added(added);

    CHECK(log.take() == lines{});
    CHECK(source.probe_count == probes_before);
}

TEST_CASE_FIXTURE(fixture, "nsids_added never probes a namespace that already has an nsid")
{
    source.mount("a", identity(1), 3);
    source.mount("b", identity(2));
    rec.rescan();
    source.probed.clear();

    source.assign_nsid("b", 4);
    const nsid_t added[] = {4};
    rec.nsids_added(added);

    CHECK(source.probed == lines{"b"});
}

TEST_CASE_FIXTURE(fixture, "a batch of several nsids is resolved in one pass")
{
    source.mount("a", identity(1));
    source.mount("b", identity(2));
    source.mount("c", identity(3));
    source.mount("d", identity(4));
    rec.rescan();
    log.take();
    source.probed.clear();

    source.assign_nsid("a", 7);
    source.assign_nsid("c", 9);
    const nsid_t added[] = {9, 11, 7};
    rec.nsids_added(added);

    CHECK(log.take() ==
          lines{"5 nsid_set a nsid=7", "6 nsid_set c nsid=9", "7 nsid_set - nsid=11"});
    // 11 stays pending to the end, so every candidate is probed exactly once.
    CHECK(source.probed == lines{"a", "b", "c", "d"});
    CHECK(rows(model) == row_list{{7, "a"}, {9, "c"}, {11, std::nullopt}});
}

TEST_CASE_FIXTURE(fixture, "a batch stops probing once every nsid is found")
{
    source.mount("a", identity(1));
    source.mount("b", identity(2));
    source.mount("c", identity(3));
    source.mount("d", identity(4));
    rec.rescan();
    source.probed.clear();

    source.assign_nsid("a", 1);
    source.assign_nsid("b", 2);
    const nsid_t added[] = {1, 2};
    rec.nsids_added(added);

    CHECK(source.probed == lines{"a", "b"});
}

TEST_CASE_FIXTURE(fixture, "aliases of a namespace are probed once for its nsid")
{
    source.mount("a", identity(1));
    source.mount("b", identity(1));
    source.mount("c", identity(2));
    rec.rescan();
    log.take();
    source.probed.clear();

    source.assign_nsid("b", 5);
    const nsid_t added[] = {5, 6};
    rec.nsids_added(added);

    CHECK(source.probed == lines{"a", "c"});
    CHECK(log.take() == lines{"4 nsid_set a nsid=5", "5 nsid_set b nsid=5", "6 nsid_set - nsid=6"});
}

TEST_CASE_FIXTURE(fixture, "numbering namespaces in name order costs one probe each")
{
    constexpr int count = 100;
    std::vector<std::string> ns_names;
    for (int i = 0; i < count; ++i)
    {
        char name[16];
        std::snprintf(name, sizeof name, "ns%03d", i);
        ns_names.emplace_back(name);
        source.mount(name, identity(static_cast<std::uint64_t>(i)));
    }
    rec.rescan();
    const auto probes_before = source.probe_count;

    // `for i in ...; do ip netns set nsNNN N; done`: one RTM_NEWNSID per iteration.
    for (int i = 0; i < count; ++i)
    {
        const nsid_t nsid = i + 1;
        source.assign_nsid(ns_names[static_cast<std::size_t>(i)], nsid);
        const nsid_t added[] = {nsid};
        rec.nsids_added(added);
    }

    const auto probes = source.probe_count - probes_before;
    // Without the cursor this would be count * (count + 1) / 2 = 5050 probes.
    CHECK(probes == count);
    CHECK(log.events.size() == 2 * count);
    CHECK(model.find("ns000")->nsid == 1);
    CHECK(model.find("ns099")->nsid == 100);
    CHECK(model.nsids().size() == count);
}

TEST_CASE_FIXTURE(fixture, "the cursor wraps around to names before it")
{
    source.mount("a", identity(1));
    source.mount("b", identity(2));
    source.mount("c", identity(3));
    rec.rescan();
    source.probed.clear();

    source.assign_nsid("b", 1);
    const nsid_t first[] = {1};
    rec.nsids_added(first);
    source.assign_nsid("a", 2);
    const nsid_t second[] = {2};
    rec.nsids_added(second);

    // After b, the search resumes at c and wraps to a.
    CHECK(source.probed == lines{"a", "b", "c", "a"});
    CHECK(model.find("a")->nsid == 2);
    CHECK(model.find("b")->nsid == 1);
}

TEST_CASE_FIXTURE(fixture, "nsid_deleted destroys the nsid")
{
    source.mount("a", identity(1), 3);
    rec.rescan();
    log.take();

    rec.nsid_deleted(3);

    CHECK(log.take() == lines{"2 destroyed - nsid=3"});
    CHECK(model.find("a")->nsid == std::nullopt);
}

TEST_CASE_FIXTURE(fixture, "a rescan destroys unnamed nsids the kernel no longer has")
{
    source.mount("a", identity(1), 3);
    source.existing_nsids.insert({20, 21});
    rec.rescan();
    const nsid_t unnamed[] = {20, 21};
    rec.nsids_added(unnamed);
    log.take();

    source.existing_nsids.erase(20);
    source.existing_nsids.erase(3); // a named nsid is not asked about
    CHECK_FALSE(rec.rescan());

    CHECK(log.take() == lines{"4 destroyed - nsid=20"});
    CHECK(rows(model) == row_list{{3, "a"}, {21, std::nullopt}});
}

TEST_CASE_FIXTURE(fixture, "a rescan destroys the nsid of a nameless namespace the kernel freed")
{
    source.mount("a", identity(1), 3);
    rec.rescan();
    source.remove("a");
    rec.entry_vanished("a");
    CHECK(rows(model) == row_list{{3, std::nullopt}});
    log.take();

    source.existing_nsids.erase(3);
    rec.rescan();

    CHECK(log.take() == lines{"3 destroyed - nsid=3"});
    CHECK(model.nsid_of(identity(1)) == std::nullopt);
}

TEST_CASE_FIXTURE(fixture, "a rescan records nsids only the dump shows as unnamed")
{
    source.mount("a", identity(1), 3);
    source.dump = {3, 8, 12};
    source.existing_nsids.insert({8, 12});

    rec.rescan();

    CHECK(log.lines() == lines{"1 added a nsid=3", "2 nsid_set - nsid=8", "3 nsid_set - nsid=12"});
    CHECK(rows(model) == row_list{{3, "a"}, {8, std::nullopt}, {12, std::nullopt}});

    SUBCASE("and does not record them twice")
    {
        rec.rescan();
        CHECK(log.events.size() == 3);
    }
}

TEST_CASE_FIXTURE(fixture, "resolve_nsids probes at most its budget per call, then finishes")
{
    for (const char* name : {"a", "b", "c", "d", "e", "f"})
        source.mount(name, identity(static_cast<std::uint64_t>(name[0])));
    rec.rescan();
    log.take();
    source.probed.clear();

    source.assign_nsid("f", 9);
    const nsid_t added[] = {9};
    rec.queue_nsids(added);
    CHECK(rec.resolving_nsids());
    CHECK(rec.resolve_nsids(2));
    CHECK(source.probed == lines{"a", "b"});
    CHECK(log.take().empty());
    CHECK(rec.resolve_nsids(2));
    CHECK_FALSE(rec.resolve_nsids(2)); // f is the 6th
    CHECK(source.probed == lines{"a", "b", "c", "d", "e", "f"});
    CHECK(log.take() == lines{"7 nsid_set f nsid=9"});
    CHECK_FALSE(rec.resolving_nsids());
}

TEST_CASE_FIXTURE(fixture, "an nsid queued in the middle of a pass starts the pass over")
{
    for (const char* name : {"a", "b", "c", "d"})
        source.mount(name, identity(static_cast<std::uint64_t>(name[0])));
    rec.rescan();
    log.take();
    source.probed.clear();

    source.assign_nsid("d", 1);
    const nsid_t first[] = {1};
    rec.queue_nsids(first);
    CHECK(rec.resolve_nsids(2)); // a, b: no nsid yet
    // b is numbered after it was probed: the next slice must look at it again.
    source.assign_nsid("b", 2);
    const nsid_t second[] = {2};
    rec.queue_nsids(second);
    while (rec.resolve_nsids(2))
    {
    }
    CHECK(source.probed == lines{"a", "b", "a", "b", "c", "d"});
    CHECK(model.find("b")->nsid == 2);
    CHECK(model.find("d")->nsid == 1);
    CHECK(rows(model) == row_list{{1, "d"}, {2, "b"}});
}

TEST_CASE_FIXTURE(fixture, "a deletion settles the queued nsids first, in the kernel's order")
{
    source.mount("a", identity(1));
    source.mount("b", identity(2));
    rec.rescan();
    log.take();

    const nsid_t unnamed[] = {5};
    rec.queue_nsids(unnamed);
    rec.nsid_deleted(5);

    CHECK(log.take() == lines{"3 nsid_set - nsid=5", "4 destroyed - nsid=5"});
    CHECK_FALSE(rec.resolving_nsids());
    CHECK(rows(model).empty());
}

TEST_CASE_FIXTURE(fixture, "a rescan drops the queued nsids: it re-reads them from the kernel")
{
    source.mount("a", identity(1));
    rec.rescan();
    const nsid_t gone[] = {8};
    rec.queue_nsids(gone); // freed before it was resolved; its deletion was lost
    CHECK_FALSE(rec.rescan());
    CHECK_FALSE(rec.resolving_nsids());
    CHECK_FALSE(rec.resolve_nsids(10));
    CHECK(rows(model).empty());
}

// --- mount events (the fanotify feed) ---------------------------------------------------------

TEST_CASE_FIXTURE(fixture, "with mount events, a new name is stale until its mount says otherwise")
{
    rec.set_mount_events(true);
    // The name is already mounted when inotify's IN_CREATE is read: its mount event is queued
    // behind, and applying it there keeps the kernel's order between names.
    source.mount("a", identity(1));
    rec.entry_appeared("a");
    CHECK(state_of("a") == entry_state::stale);
    CHECK(log.take().empty());
    rec.mount_attached("a", netnsd::test::live(1));
    CHECK(log.take() == lines{"1 added a nsid=none"});
    // A later IN_CREATE of the same name (re-read, or a rename) does not touch a live entry.
    rec.entry_appeared("a");
    CHECK(log.take().empty());
}

// Under load the dir changes lag behind the mount events: a name's IN_CREATE can be applied
// after the name was unmounted and unlinked, while the unmounts of names made before it are
// still queued. A delete from that late look went out ahead of theirs.
TEST_CASE_FIXTURE(fixture, "with mount events, a late IN_CREATE of a name gone since deletes "
                           "nothing: its unmount says it, in kernel order")
{
    rec.set_mount_events(true);
    source.mount("p", identity(1));
    source.mount("q", identity(2));
    rec.mount_attached("p", netnsd::test::live(1));
    rec.mount_attached("q", netnsd::test::live(2));
    CHECK(log.take() == lines{"1 added p nsid=none", "2 added q nsid=none"});
    // The kernel: unmount and unlink p, then q. netnsd has read neither unmount yet when it
    // applies q's old IN_CREATE.
    source.remove("p");
    source.remove("q");
    rec.entry_appeared("q");
    CHECK(log.take().empty());
    rec.mount_detached("p", nullptr);
    rec.mount_detached("q", nullptr);
    rec.entry_vanished("p");
    rec.entry_vanished("q");
    CHECK(log.take() == lines{"3 deleted p nsid=none", "4 deleted q nsid=none"});
    CHECK(rows(model).empty());
    // A name created and removed before its IN_CREATE was applied, never mounted: its
    // IN_DELETE removes it.
    source.placeholder("r");
    rec.entry_appeared("r");
    source.remove("r");
    rec.entry_appeared("r");
    rec.entry_vanished("r");
    CHECK(log.take().empty());
    CHECK(model.slots().empty());
}

// bench/soak, 10 ms lives: the IN_CREATE of a name was applied ~10 ms late, at the moment the
// name was unmounted and unlinked. One look found it mounted, a second one a moment later found
// it gone, and its delete went out ahead of an add and four unmounts queued before its own.
TEST_CASE_FIXTURE(fixture, "with mount events, a late IN_CREATE looks once: a name gone right "
                           "after that look is left to its unmount")
{
    rec.set_mount_events(true);
    source.mount("v", identity(1));
    rec.mount_attached("v", netnsd::test::live(1));
    CHECK(log.take() == lines{"1 added v nsid=none"});
    // The kernel unmounts and unlinks v right after netnsd's first look at it.
    source.after_look = [this](std::string_view name)
    {
        source.after_look = nullptr;
        source.remove(std::string(name));
    };
    rec.entry_appeared("v");
    CHECK(log.take().empty());
    CHECK(source.probed == lines{"v"});
    // Its unmount, then its IN_DELETE, in their place.
    rec.mount_detached("v", nullptr);
    rec.entry_vanished("v");
    CHECK(log.take() == lines{"2 deleted v nsid=none"});
    CHECK(names().empty());
}

TEST_CASE_FIXTURE(fixture, "with mount events, adds and deletes follow the mounts in kernel order")
{
    rec.set_mount_events(true);
    // The kernel: mount a, mount b, unmount a, unmount b; netnsd reads them all late, when both
    // are gone. A look now would find nothing; the mount events say what happened, in order.
    rec.mount_attached("a", netnsd::test::live(1));
    rec.mount_attached("b", netnsd::test::live(2));
    rec.mount_detached("a", nullptr);
    rec.mount_detached("b", nullptr);
    CHECK(log.take() == lines{"1 added a nsid=none", "2 added b nsid=none", "3 deleted a nsid=none",
                              "4 deleted b nsid=none"});
    // Their IN_CREATE and IN_DELETE, read after: the names go, silently (stale already).
    rec.entry_appeared("a");
    rec.entry_vanished("a");
    rec.entry_appeared("b");
    rec.entry_vanished("b");
    CHECK(log.take().empty());
    CHECK(names().empty());
}

TEST_CASE_FIXTURE(fixture, "with mount events, a detach shows the mount below, or stale")
{
    rec.set_mount_events(true);
    source.placeholder("s");
    rec.entry_appeared("s");
    rec.mount_attached("s", netnsd::test::live(1));
    rec.mount_attached("s", netnsd::test::live(2)); // stacked on top
    const auto below = netnsd::test::live(1);
    rec.mount_detached("s", &below);
    rec.mount_detached("s", nullptr);
    CHECK(log.take() == lines{"1 added s nsid=none", "2 deleted s nsid=none", "3 added s nsid=none",
                              "4 deleted s nsid=none", "5 added s nsid=none",
                              "6 deleted s nsid=none"});
    CHECK(state_of("s") == entry_state::stale);
    // A detach of a name already gone (unlinked, which detaches copies of its mount) adds
    // nothing back.
    rec.mount_detached("never", nullptr);
    CHECK(names() == lines{"s"});
}

TEST_CASE_FIXTURE(fixture, "with mount events, a symlink alias follows its target's mounts")
{
    rec.set_mount_events(true);
    source.mount("target", identity(4));
    rec.mount_attached("target", netnsd::test::live(4));
    source.mount("alias", identity(4));
    source.entries["alias"].alias = true;
    rec.entry_appeared("alias");
    CHECK(log.take() == lines{"1 added target nsid=none", "2 added alias nsid=none"});
    // The target is unmounted: the alias's look now finds a stale file.
    source.placeholder("target");
    source.placeholder("alias");
    source.entries["alias"].alias = true;
    rec.mount_detached("target", nullptr);
    CHECK(log.take() == lines{"3 deleted target nsid=none", "4 deleted alias nsid=none"});
    // Removing the alias: gone.
    source.remove("alias");
    rec.entry_vanished("alias");
    CHECK(names() == lines{"target"});
}

// The soak's short lives, seen in CI: a worker's RTM_NEWNSID made netnsd probe every live name
// without an nsid, and the probe of one unmounted a moment before (its unmount still queued)
// sent its delete out ahead of the add of a name mounted before that unmount.
TEST_CASE_FIXTURE(fixture, "with mount events, an nsid lookup leaves adds and deletes to the mount "
                           "events, in kernel order")
{
    rec.set_mount_events(true);
    source.mount("w", identity(3));
    source.mount("a", identity(1));
    source.placeholder("c");
    rec.mount_attached("w", netnsd::test::live(3));
    rec.mount_attached("a", netnsd::test::live(1));
    rec.entry_appeared("c");
    CHECK(log.take() == lines{"1 added w nsid=none", "2 added a nsid=none"});
    // The kernel: mount b (its IN_CREATE not read yet), unmount a, mount c, number w. netnsd
    // reads the nsid before any of the mount events.
    source.mount("b", identity(4));
    source.placeholder("a");
    source.mount("c", identity(2));
    source.assign_nsid("w", 9);
    const nsid_t added[] = {9};
    rec.nsids_added(added);
    CHECK(log.take() == lines{"3 nsid_set w nsid=9"});
    rec.mount_attached("b", netnsd::test::live(4));
    rec.mount_detached("a", nullptr);
    rec.mount_attached("c", netnsd::test::live(2));
    CHECK(log.take() ==
          lines{"4 added b nsid=none", "5 deleted a nsid=none", "6 added c nsid=none"});
    // An nsid given to a name whose mount event is still queued is unnamed until that event
    // claims it.
    source.mount("d", identity(5));
    source.assign_nsid("d", 4);
    const nsid_t numbered[] = {4};
    rec.nsids_added(numbered);
    CHECK(log.take() == lines{"7 nsid_set - nsid=4"});
    rec.mount_attached("d", netnsd::test::live(5, 4));
    CHECK(log.take() == lines{"8 added d nsid=4"});
    CHECK(rows(model) == row_list{{4, "d"}, {9, "w"}});
}

TEST_CASE_FIXTURE(fixture, "without mount events, inotify's look is believed as before")
{
    source.mount("a", identity(1));
    rec.entry_appeared("a");
    CHECK(log.take() == lines{"1 added a nsid=none"});
}

// --- the audit --------------------------------------------------------------------------------

TEST_CASE_FIXTURE(fixture, "an audit of a model that agrees with the kernel finds nothing")
{
    source.mount("a", identity(1), 3);
    source.placeholder("p");
    rec.rescan();
    log.take();
    int settled = 0;
    const auto found = rec.audit(reconciler::scan(source), [&] { ++settled; });
    CHECK(found.empty());
    CHECK(settled == 0);
    CHECK(log.take().empty());
}

TEST_CASE_FIXTURE(fixture,
                  "an audit's scan asks the nsid only of namespaces the model has none for")
{
    source.mount("numbered", identity(1), 3);
    source.mount("alias", identity(1), 3);
    source.mount("plain", identity(2));
    rec.rescan();
    log.take();
    const auto known = model.known_nsids();
    CHECK(known == std::map<ns_identity, nsid_t>{{identity(1), 3}});
    // The kernel numbers "plain" without netnsd hearing of it.
    source.assign_nsid("plain", 4);
    source.nsid_asks = 0;
    const auto scan = reconciler::scan(source, known);
    CHECK(source.nsid_asks == 1); // "plain" only: the model has no nsid for it
    std::map<std::string, std::optional<nsid_t>> nsids;
    for (const auto& [name, found] : scan.entries)
        nsids[name] = found.nsid;
    CHECK(nsids == std::map<std::string, std::optional<nsid_t>>{
                       {"alias", 3}, {"numbered", 3}, {"plain", 4}});
    const auto found = rec.audit(scan, [] {});
    REQUIRE(found.size() == 1);
    CHECK(found[0].name == "plain");
    CHECK(model.nsid_of(identity(2)) == 4);
    // Without what the model knows, every namespace is asked.
    source.nsid_asks = 0;
    reconciler::scan(source);
    CHECK(source.nsid_asks == 3);
}

TEST_CASE_FIXTURE(fixture,
                  "an audit repairs and reports what the model missed, with ordinary events")
{
    using netnsd::core::divergence_kind;
    source.mount("kept", identity(1));
    source.mount("gone", identity(2));
    source.mount("changed", identity(3));
    source.placeholder("late");
    rec.rescan();
    log.take();
    // What the kernel did without netnsd hearing of it.
    source.remove("gone");
    source.mount("late", identity(4));
    source.mount("changed", identity(5));
    source.mount("new", identity(6));
    const auto scan = reconciler::scan(source);
    const auto found = rec.audit(scan, [] {});
    REQUIRE(found.size() == 4);
    std::vector<std::pair<divergence_kind, std::string>> got;
    for (const auto& d : found)
        got.emplace_back(d.what, d.name);
    std::sort(got.begin(), got.end(), [](auto& x, auto& y) { return x.second < y.second; });
    CHECK(got == std::vector<std::pair<divergence_kind, std::string>>{
                     {divergence_kind::entry_changed, "changed"},
                     {divergence_kind::entry_extra, "gone"},
                     {divergence_kind::entry_changed, "late"},
                     {divergence_kind::entry_missing, "new"}});
    CHECK(names() == lines{"changed", "kept", "late", "new"});
    CHECK(state_of("late") == entry_state::live);
    // A second audit finds nothing more.
    CHECK(rec.audit(reconciler::scan(source), [] {}).empty());
}

TEST_CASE_FIXTURE(fixture, "an audit does not count what the kernel reported after its scan")
{
    source.mount("a", identity(1));
    rec.rescan();
    log.take();
    // The scan saw "b", then "b" went and the model heard of both: nothing to repair.
    source.mount("b", identity(2));
    const auto scan = reconciler::scan(source);
    source.remove("b");
    CHECK(rec.audit(scan, [] {}).empty());
    // A change the feeds have queued but the model has not read yet: settle() applies it, and
    // it is no divergence.
    source.mount("c", identity(3));
    const auto later = reconciler::scan(source);
    int settled = 0;
    const auto found = rec.audit(later,
                                 [&]
                                 {
                                     ++settled;
                                     rec.entry_appeared("c"); // the queued IN_CREATE
                                 });
    CHECK(found.empty());
    CHECK(settled == 1);
    CHECK(log.take() == lines{"2 added c nsid=none"});
}

// In a burst, a change can come after the audit's settle and before its look: the look sees
// it, and its notification is queued by then. The audit must not apply it ahead of the changes
// queued before it (that put a delete before an add the kernel made first), nor count it.
TEST_CASE_FIXTURE(fixture, "an audit does not repair what was queued while it looked")
{
    source.mount("a", identity(1));
    source.mount("b", identity(2));
    rec.rescan();
    log.take();
    // "c" was mounted, then "b" went, and the scan saw both. The events say so only from the
    // third settle on (they came after the first two reads), and the kernel is not quiet
    // until then.
    source.mount("c", identity(3));
    source.remove("b");
    const auto scan = reconciler::scan(source);
    int settles = 0;
    const auto found = rec.audit(
        scan,
        [&]
        {
            if (++settles == 3)
            {
                rec.entry_appeared("c");
                rec.entry_vanished("b");
            }
        },
        [&] { return settles >= 3; });
    CHECK(found.empty());
    CHECK(log.take() == lines{"3 added c nsid=none", "4 deleted b nsid=none"});
    // Without the feeds ever saying (a change netnsd cannot see), it is one, once quiet.
    source.remove("a");
    const auto found_a = rec.audit(
        reconciler::scan(source), [] {}, [] { return true; });
    REQUIRE(found_a.size() == 1);
    CHECK(found_a[0].name == "a");
    // And while the kernel never quiets down, it is left to the next audit.
    source.mount("d", identity(4));
    int looks = 0;
    CHECK(rec.audit(
                 reconciler::scan(source), [&] { ++looks; }, [] { return false; })
              .empty());
    CHECK(looks == reconciler::settle_attempts);
    CHECK(model.slots().find("d") == model.slots().end());
}

TEST_CASE_FIXTURE(fixture, "an audit finds nsids the model lacks or keeps too long")
{
    using netnsd::core::divergence_kind;
    source.existing_nsids = {4};
    source.dump = {4};
    rec.rescan(); // learns 4 as an unnamed nsid
    log.take();
    source.existing_nsids = {7}; // 4 was freed and its DELNSID lost; 7 came unannounced
    source.dump = {7};
    rec.set_nsid_grace(std::chrono::milliseconds(0));
    // A freed nsid's RTM_DELNSID comes after the kernel's cleanup: the first audit waits.
    auto found = rec.audit(reconciler::scan(source), [] {});
    REQUIRE(found.size() == 1);
    CHECK(found[0].what == divergence_kind::nsid);
    CHECK(found[0].nsid == 7);
    CHECK(log.take() == lines{"2 nsid_set - nsid=7"});
    // Still there at the next one: its RTM_DELNSID was lost.
    found = rec.audit(reconciler::scan(source), [] {});
    REQUIRE(found.size() == 1);
    CHECK(found[0].nsid == 4);
    CHECK(log.take() == lines{"3 destroyed - nsid=4"});
}

TEST_CASE_FIXTURE(fixture, "an nsid freed, said so and given to a namespace that is dying at the "
                           "next audit waits out the grace again")
{
    // The kernel gives out the lowest free nsid, so one number serves namespace after
    // namespace. An audit that saw 4 freed (its namespace dying, the RTM_DELNSID still to come)
    // must not count that time against the next namespace to get 4 (soak: a false "freed and
    // never said so" for a namespace whose RTM_DELNSID came a moment later).
    source.existing_nsids = {4};
    source.dump = {4};
    rec.rescan();
    log.take();
    rec.set_nsid_grace(std::chrono::milliseconds(0));
    source.existing_nsids.clear(); // the first holder of 4 dies
    CHECK(rec.audit(reconciler::scan(source), [] {}).empty());
    rec.nsid_deleted(4);    // its RTM_DELNSID
    rec.nsids_added({{4}}); // 4 again, for another namespace no name shows
    source.dump = {4};      // which dies too, its RTM_DELNSID not read yet
    source.existing_nsids.clear();
    CHECK(rec.audit(reconciler::scan(source), [] {}).empty());
    rec.nsid_deleted(4);
    CHECK(log.take() ==
          lines{"2 destroyed - nsid=4", "3 nsid_set - nsid=4", "4 destroyed - nsid=4"});
}

TEST_CASE_FIXTURE(fixture, "a freed nsid whose RTM_DELNSID comes in time is no divergence")
{
    source.existing_nsids = {4};
    source.dump = {4};
    rec.rescan();
    log.take();
    rec.set_nsid_grace(std::chrono::milliseconds(0));
    source.existing_nsids.clear(); // the namespace's last holder went
    source.dump.clear();
    CHECK(rec.audit(reconciler::scan(source), [] {}).empty());
    rec.nsid_deleted(4); // the kernel's cleanup ran: RTM_DELNSID
    CHECK(rec.audit(reconciler::scan(source), [] {}).empty());
    CHECK(log.take() == lines{"2 destroyed - nsid=4"});
}
