// The host inventory in the registry: every namespace by ns_id, its mounts and processes, the
// found/holders/destroyed events in the entries' revision sequence, coalesced process counts,
// and the replica replaying the primary's recorded calls to the same state and events.
#include <doctest/doctest.h>

#include "core/kernel/proc_sweep.hpp"
#include "core/registry.hpp"

#include "tests/support/builders.hpp"

using namespace netnsd;
using namespace netnsd::test;
using core::event_type;
using core::registry;

namespace
{

// "3 found 1001 mounts=1 processes=0 held_by=2" for the inventory's events.
std::string host_line(const core::event& e)
{
    std::string out = std::to_string(e.revision) + " " + type_name(e.type);
    if (!e.host)
        return out + " nsid=" + (e.nsid ? std::to_string(*e.nsid) : std::string("none"));
    out += " " + std::to_string(e.host->identity.ns_id);
    out += " names=" + std::to_string(e.host->names.size());
    out += " mounts=" + std::to_string(e.host->mounts.size());
    out += " processes=" + std::to_string(e.host->processes);
    out += " held_by=" + std::to_string(e.host->held_by());
    out += " nsid=" + (e.nsid ? std::to_string(*e.nsid) : std::string("none"));
    return out;
}

std::vector<std::string> host_lines(const std::vector<core::event>& events)
{
    std::vector<std::string> out;
    for (const auto& e : events)
        out.push_back(host_line(e));
    return out;
}

std::vector<std::int32_t> pids(std::int32_t first, std::size_t count)
{
    std::vector<std::int32_t> out;
    for (std::size_t i = 0; i < count; ++i)
        out.push_back(first + static_cast<std::int32_t>(i));
    return out;
}

} // namespace

TEST_CASE("a namespace found by its mount, then mounted again and unmounted, makes found and "
          "holders events in the one revision sequence")
{
    registry model(100);
    event_log log(model);
    model.apply_probe("a", live(9), at_ms(0)); // an entry's add: revision 1
    model.namespace_mounted(identity(1), 77, "/run/docker/netns/abc", at_ms(1));
    model.namespace_mounted(identity(1), 78, "/tmp/odd path\n\xff", at_ms(2));
    model.namespace_mounted(identity(1), 78, "/tmp/odd path\n\xff", at_ms(3)); // known: nothing
    model.namespace_unmounted(77, at_ms(4));
    model.namespace_unmounted(12345, at_ms(5)); // no namespace's mount: nothing
    CHECK(host_lines(log.events) == lines{"1 added nsid=none",
                                          "2 found 1001 names=0 mounts=1 processes=0 held_by=2 "
                                          "nsid=none",
                                          "3 holders 1001 names=0 mounts=2 processes=0 held_by=2 "
                                          "nsid=none",
                                          "4 holders 1001 names=0 mounts=1 processes=0 held_by=2 "
                                          "nsid=none"});
    const auto h = model.host(identity(1).ns_id);
    REQUIRE(h);
    REQUIRE(h->mounts.size() == 1u);
    CHECK(h->mounts[0].mount_id == 78u);
    CHECK(h->mounts[0].path == "/tmp/odd path\n\xff");
    CHECK(h->first_seen == at_ms(1));
    CHECK(model.host_count() == 1u);
}

TEST_CASE("process counts are coalesced into buckets: a fork storm is not an event flood")
{
    CHECK(core::process_bucket(0) == 0u);
    CHECK(core::process_bucket(1) == 1u);
    CHECK(core::process_bucket(2) == 2u);
    CHECK(core::process_bucket(9) == 2u);
    CHECK(core::process_bucket(10) == 3u);
    CHECK(core::process_bucket(99) == 3u);
    CHECK(core::process_bucket(100) == 4u);
    CHECK(core::process_bucket(999) == 4u);
    CHECK(core::process_bucket(1000) == 5u);
    CHECK(core::process_bucket(1000000) == 5u);

    registry model(100);
    event_log log(model);
    model.found_namespace(identity(1), false, at_ms(0));
    for (std::size_t n : {1u, 2u, 3u, 5u, 9u, 10u, 11u, 10u, 9u, 0u})
        model.set_processes(identity(1).ns_id, pids(100, n), at_ms(1));
    CHECK(host_lines(log.events) == lines{
                                        "1 found 1001 names=0 mounts=0 processes=0 held_by=0 "
                                        "nsid=none",
                                        "2 holders 1001 names=0 mounts=0 processes=1 held_by=4 "
                                        "nsid=none",
                                        "3 holders 1001 names=0 mounts=0 processes=2 held_by=4 "
                                        "nsid=none",
                                        "4 holders 1001 names=0 mounts=0 processes=10 held_by=4 "
                                        "nsid=none",
                                        "5 holders 1001 names=0 mounts=0 processes=9 held_by=4 "
                                        "nsid=none",
                                        "6 holders 1001 names=0 mounts=0 processes=0 held_by=0 "
                                        "nsid=none",
                                    });
    // The model has the exact count even when no event said it.
    model.set_processes(identity(1).ns_id, pids(100, 7), at_ms(2));
    CHECK(model.host(identity(1).ns_id)->processes == 7u);
    REQUIRE(model.processes_of(identity(1).ns_id) != nullptr);
    CHECK(*model.processes_of(identity(1).ns_id) == pids(100, 7));
    CHECK(log.events.size() == 7u);
}

TEST_CASE("a namespace held by nothing netnsd sees is a leak candidate")
{
    registry model(100);
    model.found_namespace(identity(1), false, at_ms(0));
    model.set_processes(identity(1).ns_id, {42}, at_ms(1));
    CHECK_FALSE(model.host(identity(1).ns_id)->is_leak());
    model.set_processes(identity(1).ns_id, {}, at_ms(2));
    CHECK(model.host(identity(1).ns_id)->is_leak());
    CHECK(model.host(identity(1).ns_id)->held_by() == 0u);
}

TEST_CASE("unheld_namespaces lists the leak candidates: held by no name, mount, process, fd or "
          "socket")
{
    registry model(100);
    for (std::uint64_t i = 1; i <= 6; ++i)
        model.found_namespace(identity(i), false, at_ms(0));
    model.apply_probe("named", live(2), at_ms(1));
    model.namespace_mounted(identity(3), 77, "/run/docker/netns/abc", at_ms(2));
    model.set_processes(identity(4).ns_id, {42}, at_ms(3));
    model.set_deep_holders(identity(5).ns_id, {7}, {}, at_ms(4));
    model.set_deep_holders(identity(6).ns_id, {}, {8}, at_ms(5));
    CHECK(model.unheld_namespaces() == std::vector<std::uint64_t>{identity(1).ns_id});
    std::vector<std::uint64_t> leaks;
    for (const auto& h : model.host_namespaces())
        if (h.is_leak())
            leaks.push_back(h.identity.ns_id);
    CHECK(model.unheld_namespaces() == leaks);
    model.apply_probe("named",
                      core::probe_result{core::entry_state::stale, {}, std::nullopt, false},
                      at_ms(6)); // the name goes
    model.set_processes(identity(4).ns_id, {}, at_ms(7));
    CHECK(model.unheld_namespaces() ==
          std::vector<std::uint64_t>{identity(1).ns_id, identity(2).ns_id, identity(4).ns_id});
}

TEST_CASE("destroyed: from the handle once, with the nsid it had, and a later RTM_DELNSID adds "
          "nothing")
{
    registry model(100);
    model.track_names_in_inventory(true);
    event_log log(model);
    model.apply_probe("a", live(1, 7), at_ms(0));
    model.erase("a", at_ms(1)); // the name goes; the nsid stays with the namespace
    model.namespace_gone(identity(1).ns_id, at_ms(2));
    model.destroy_nsid(7, at_ms(3));
    model.namespace_gone(identity(1).ns_id, at_ms(4));
    CHECK(host_lines(log.events) ==
          lines{"1 added nsid=7", "2 found 1001 names=1 mounts=0 processes=0 held_by=1 nsid=7",
                "3 deleted nsid=7", "4 holders 1001 names=0 mounts=0 processes=0 held_by=0 nsid=7",
                "5 destroyed 1001 names=0 mounts=0 processes=0 held_by=0 nsid=7"});
    CHECK(model.host_count() == 0u);
    CHECK_FALSE(model.has_nsid(7));
}

TEST_CASE("destroyed: RTM_DELNSID first ends the inventory's namespace too, in one event")
{
    registry model(100);
    model.track_names_in_inventory(true);
    event_log log(model);
    model.apply_probe("a", live(1, 3), at_ms(0));
    model.namespace_mounted(identity(1), 50, "/run/netns/a", at_ms(0));
    model.erase("a", at_ms(1));
    model.namespace_unmounted(50, at_ms(1));
    model.destroy_nsid(3, at_ms(2));
    model.namespace_gone(identity(1).ns_id, at_ms(3));
    const auto all = host_lines(log.events);
    REQUIRE(all.size() == 7u);
    CHECK(all.back() == "7 destroyed 1001 names=0 mounts=0 processes=0 held_by=0 nsid=3");
    CHECK(model.host_count() == 0u);
}

TEST_CASE("a namespace found with its processes' cgroup and user namespace says all of it in "
          "its found event, and no holders event follows")
{
    registry model(100);
    event_log log(model);
    const auto cgroup = "/system.slice/docker-" + std::string(64, 'a') + ".scope";
    model.found_namespace(identity(1), false, at_ms(0),
                          {{42, 43}, cgroup, identity(7).ns_id, 1000});
    model.set_cgroup(identity(1).ns_id, cgroup, at_ms(1));
    model.set_processes(identity(1).ns_id, {42, 43}, at_ms(2));
    REQUIRE(log.events.size() == 1u);
    const auto& found = log.events.front();
    CHECK(found.type == event_type::found);
    REQUIRE(found.host);
    CHECK(found.host->owner.kind == core::owner_kind::docker);
    CHECK(found.host->owner.id == std::string(64, 'a'));
    CHECK(found.host->processes == 2u);
    CHECK(found.host->user_ns_id == identity(7).ns_id);
    CHECK(found.host->user_ns_owner_uid == 1000u);
    CHECK(model.host(identity(1).ns_id) == found.host);
}

TEST_CASE("names in the inventory only when asked: the entries' events stay as they were")
{
    registry plain(100);
    event_log log(plain);
    plain.apply_probe("a", live(1), at_ms(0));
    CHECK(log.lines() == lines{"1 added a nsid=none"});
    CHECK(plain.host_count() == 0u);
}

TEST_CASE("the replica replays the inventory's recorded calls to the same state and events")
{
    registry primary(100, 5000);
    primary.track_names_in_inventory(true);
    registry replica(100, 5000);
    replica.track_names_in_inventory(true);
    std::vector<registry::change> recorded;
    primary.record_changes(&recorded);
    event_log primary_log(primary);
    event_log replica_log(replica);

    primary.found_namespace(identity(0), true, at_ms(0));
    primary.set_processes(identity(0).ns_id, pids(1, 300), at_ms(1));
    primary.found_namespace(identity(5), false, at_ms(1),
                            {{400},
                             "/system.slice/docker-" + std::string(64, 'c') + ".scope",
                             identity(9).ns_id,
                             1000});
    primary.namespace_mounted(identity(2), 9, "/run/docker/netns/x", at_ms(2));
    primary.namespace_mounted(identity(2), 10, "/run/pods/y", at_ms(2), 77, true);
    primary.apply_probe("b", live(2, 4), at_ms(3));
    primary.set_processes(identity(2).ns_id, {77}, at_ms(4));
    primary.set_processes(identity(2).ns_id, {77, 78}, at_ms(5));
    primary.set_processes(identity(2).ns_id, {77, 79}, at_ms(6)); // same bucket, no event
    primary.found_namespace(identity(3), false, at_ms(7));
    primary.namespace_gone(identity(3).ns_id, at_ms(8));
    primary.namespace_unmounted(9, at_ms(9));
    primary.erase("b", at_ms(10));

    for (const auto& c : recorded)
        replica.apply(c);
    CHECK(host_lines(replica_log.events) == host_lines(primary_log.events));
    CHECK(replica.revision() == primary.revision());
    CHECK(replica.host_namespaces() == primary.host_namespaces());
    CHECK(replica.host_generation() == primary.host_generation());
    REQUIRE(replica.processes_of(identity(2).ns_id) != nullptr);
    CHECK(*replica.processes_of(identity(2).ns_id) == std::vector<std::int32_t>{77, 79});
    CHECK(replica.host(identity(0).ns_id)->is_self);
    CHECK(replica.host(identity(0).ns_id)->processes == 300u);
    const auto two = replica.host(identity(2).ns_id);
    REQUIRE(two);
    REQUIRE(two->mounts.size() == 1u); // 9 was unmounted
    CHECK(two->mounts[0] == core::ns_mount{10, "/run/pods/y", 77, true});
    CHECK(primary_log.events.front().revision == 5001u);
}

TEST_CASE("parse_netns_link reads the inode of /proc/PID/ns/net's link and nothing else")
{
    using core::kernel::parse_netns_link;
    CHECK(parse_netns_link("net:[4026531840]") == 4026531840u);
    CHECK_FALSE(parse_netns_link("net:[]"));
    CHECK_FALSE(parse_netns_link("mnt:[4026531840]"));
    CHECK_FALSE(parse_netns_link("net:[4026531840"));
    CHECK_FALSE(parse_netns_link("net:[40265x31840]"));
    CHECK_FALSE(parse_netns_link("net:[-1]"));
    CHECK_FALSE(parse_netns_link(""));
}

TEST_CASE("the deep scan's fd and socket holders: a holders event when held_by changes, none for "
          "other pids, replayed by the replica; a namespace they hold is no leak")
{
    registry primary(100);
    std::vector<registry::change> recorded;
    primary.record_changes(&recorded);
    event_log log(primary);
    primary.found_namespace(identity(1), false, at_ms(0));
    CHECK(primary.host(identity(1).ns_id)->is_leak());
    primary.set_deep_holders(identity(1).ns_id, {40}, {}, at_ms(1));      // held_by: fd
    primary.set_deep_holders(identity(1).ns_id, {40, 41}, {}, at_ms(2));  // the same held_by
    primary.set_deep_holders(identity(1).ns_id, {40, 41}, {7}, at_ms(3)); // + socket
    primary.set_deep_holders(identity(1).ns_id, {}, {7}, at_ms(4));       // socket only
    primary.set_deep_holders(identity(1).ns_id, {}, {7}, at_ms(5));       // nothing new
    primary.set_deep_holders(identity(2).ns_id, {1}, {}, at_ms(6));       // unknown: nothing
    CHECK(host_lines(log.events) ==
          lines{"1 found 1001 names=0 mounts=0 processes=0 held_by=0 nsid=none",
                "2 holders 1001 names=0 mounts=0 processes=0 held_by=8 nsid=none",
                "3 holders 1001 names=0 mounts=0 processes=0 held_by=24 nsid=none",
                "4 holders 1001 names=0 mounts=0 processes=0 held_by=16 nsid=none"});
    const auto h = primary.host(identity(1).ns_id);
    REQUIRE(h);
    CHECK(h->socket_pids == std::vector<std::int32_t>{7});
    CHECK_FALSE(h->is_leak());
    CHECK(recorded.size() == 5u); // found and four changes

    registry replica(100);
    for (const auto& c : recorded)
        replica.apply(c);
    CHECK(replica.host_namespaces() == primary.host_namespaces());
    CHECK(replica.revision() == primary.revision());

    // A freed namespace's destroyed event shows no holder left.
    primary.namespace_gone(identity(1).ns_id, at_ms(7));
    REQUIRE(log.events.back().host);
    CHECK(log.events.back().host->held_by() == 0u);
}

TEST_CASE("a pod from the CNI cache: a holders event when the owner changes, replayed alike")
{
    registry primary(100);
    registry replica(100);
    std::vector<registry::change> recorded;
    primary.record_changes(&recorded);
    event_log primary_log(primary);
    event_log replica_log(replica);
    const auto ns_id = identity(5).ns_id;
    primary.namespace_mounted(identity(5), 9, "/run/netns/cni-0d3c6a3e", at_ms(0));
    CHECK(primary.host(ns_id)->owner.kind == core::owner_kind::containerd);
    core::ns_pod pod;
    pod.uid = "1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8";
    pod.namespace_ = "default";
    pod.name = "web-0";
    primary.set_pod(ns_id, pod, at_ms(1));
    primary.set_pod(ns_id, pod, at_ms(2));             // no change: no call recorded, no event
    primary.set_pod(identity(6).ns_id, pod, at_ms(2)); // a namespace the model lacks: nothing
    const auto owner = primary.host(ns_id)->owner;
    CHECK(owner.kind == core::owner_kind::kubernetes);
    CHECK(owner.id == pod.uid);
    CHECK(owner.name == "default/web-0");
    CHECK(owner.source == "cni");
    primary.set_pod(ns_id, std::nullopt, at_ms(3)); // the file went: back to the mount's
    CHECK(primary.host(ns_id)->owner.kind == core::owner_kind::containerd);

    REQUIRE(primary_log.events.size() == 3u);
    CHECK(primary_log.events[1].type == event_type::holders);
    CHECK(primary_log.events[1].host->owner == owner);
    CHECK(primary_log.events[2].type == event_type::holders);
    CHECK(recorded.size() == 3u);
    for (const auto& c : recorded)
        replica.apply(c);
    CHECK(host_lines(replica_log.events) == host_lines(primary_log.events));
    CHECK(replica_log.events[1].host->owner == owner);
    CHECK(replica.host_namespaces() == primary.host_namespaces());
}
