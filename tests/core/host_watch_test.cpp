// host_watch applying walks of the other mount namespaces: their nsfs mounts become mounts of
// the namespaces they bind (other_mnt_ns, with their mount namespace), mounts no longer there
// go, and a mount namespace seen but not read keeps what was known of it. No root needed: the
// walk's results are built here (the walk itself is tested on the kernel in tests/integration).
#include <doctest/doctest.h>

#include "core/host_watch.hpp"
#include "core/registry.hpp"

#include "tests/support/builders.hpp"

using namespace netnsd;
using namespace netnsd::test;
using core::kernel::foreign_mount;
using core::kernel::mntns_walk_result;

namespace
{

foreign_mount mount_of(std::uint64_t mnt_ns_id, std::uint64_t mount_id, std::string path,
                       std::uint64_t n, bool opened)
{
    foreign_mount m{mnt_ns_id, mount_id, std::move(path), identity(n).ino, {}, {}, {}};
    if (opened)
        m.identity = identity(n);
    return m;
}

mntns_walk_result walk(std::set<std::uint64_t> walked, std::vector<foreign_mount> mounts,
                       std::set<std::uint64_t> unread = {})
{
    mntns_walk_result w;
    w.own_mnt_ns_id = 1;
    w.walked = std::move(walked);
    w.unread = std::move(unread);
    w.mounts = std::move(mounts);
    return w;
}

} // namespace

TEST_CASE("a walk's mounts in other mount namespaces become the mounts of the namespaces they "
          "bind, opened or known by inode, and go when the walk no longer shows them")
{
    core::registry model(100);
    core::host_watch hosts(model);
    model.found_namespace(identity(2), false, at_ms(0), {{42}, {}, 0, 0}); // known by a process

    hosts.apply_mount_namespaces(walk({7, 8}, {mount_of(7, 700, "/run/pods/a", 1, true),
                                               mount_of(8, 800, "/run/pods/b", 2, false)}),
                                 hosts.begin_mount_walk(), at_ms(1));
    const auto one = model.host(identity(1).ns_id);
    REQUIRE(one);
    REQUIRE(one->mounts.size() == 1u);
    CHECK(one->mounts[0] == core::ns_mount{700, "/run/pods/a", 7, true});
    CHECK(one->held_by() == static_cast<unsigned>(core::holder::mount));
    CHECK_FALSE(one->is_leak());
    const auto two = model.host(identity(2).ns_id);
    REQUIRE(two);
    REQUIRE(two->mounts.size() == 1u);
    CHECK(two->mounts[0] == core::ns_mount{800, "/run/pods/b", 8, true});

    // A mount of a namespace neither opened nor known is left out (the next walk opens it).
    hosts.apply_mount_namespaces(walk({7, 8, 9}, {mount_of(7, 700, "/run/pods/a", 1, true),
                                                  mount_of(8, 800, "/run/pods/b", 2, false),
                                                  mount_of(9, 900, "/run/pods/c", 3, false)}),
                                 hosts.begin_mount_walk(), at_ms(2));
    CHECK_FALSE(model.host(identity(3).ns_id));

    // Mount namespace 8 seen but not read: its mount stays. Mount namespace 7 gone: its goes.
    hosts.apply_mount_namespaces(walk({}, {}, {8}), hosts.begin_mount_walk(), at_ms(3));
    CHECK(model.host(identity(1).ns_id)->mounts.empty());
    CHECK(model.host(identity(2).ns_id)->mounts.size() == 1u);
    // Walked again without it: gone.
    hosts.apply_mount_namespaces(walk({8}, {}), hosts.begin_mount_walk(), at_ms(4));
    CHECK(model.host(identity(2).ns_id)->mounts.empty());

    // A walk that failed changes nothing.
    hosts.apply_mount_namespaces(walk({7}, {mount_of(7, 701, "/run/pods/a", 2, false)}),
                                 hosts.begin_mount_walk(), at_ms(5));
    CHECK(model.host(identity(2).ns_id)->mounts.size() == 1u);
    auto failed = walk({}, {});
    failed.error = std::make_error_code(std::errc::function_not_supported);
    hosts.apply_mount_namespaces(failed, hosts.begin_mount_walk(), at_ms(6));
    CHECK(model.host(identity(2).ns_id)->mounts.size() == 1u);
}

TEST_CASE("a namespace mounted in netnsd's own mount namespace does not show its mounts (copies) "
          "in other mount namespaces, until its own mount goes")
{
    core::registry model(100);
    core::host_watch hosts(model);
    // What a walk of netnsd's own table says of /run/netns/a: an nsfs mount of namespace 1.
    // (mount_seen opens the mount point; rebuild_mounts with facts of a path that does not
    // exist can only name a namespace the model has, by inode.)
    model.found_namespace(identity(1), false, at_ms(0), {{42}, {}, 0, 0});
    core::kernel::mount_facts own;
    own.mount_id = 100;
    own.mount_point = "/nonexistent/netnsd-test/a";
    own.fs_type = "nsfs";
    own.root = "net:[" + std::to_string(identity(1).ino) + "]";
    hosts.rebuild_mounts({own}, at_ms(1));
    REQUIRE(model.host(identity(1).ns_id)->mounts.size() == 1u);

    const auto copies = walk({7, 8}, {mount_of(7, 700, "/run/netns/a", 1, true),
                                      mount_of(8, 800, "/run/netns/a", 1, false)});
    hosts.apply_mount_namespaces(copies, hosts.begin_mount_walk(), at_ms(2));
    auto h = model.host(identity(1).ns_id);
    REQUIRE(h->mounts.size() == 1u);
    CHECK(h->mounts[0].mount_id == 100u);

    // `ip netns del`: its own mount goes; an exec's copies hold it, and the next walk says so.
    hosts.rebuild_mounts({}, at_ms(3));
    hosts.apply_mount_namespaces(copies, hosts.begin_mount_walk(), at_ms(4));
    h = model.host(identity(1).ns_id);
    REQUIRE(h->mounts.size() == 2u);
    CHECK(h->mounts[0].other_mnt_ns);
    CHECK(h->mounts[1].other_mnt_ns);

    // Mounted here again: the copies are left out at the next walk.
    hosts.rebuild_mounts({own}, at_ms(5));
    hosts.apply_mount_namespaces(copies, hosts.begin_mount_walk(), at_ms(6));
    CHECK(model.host(identity(1).ns_id)->mounts.size() == 1u);
}

TEST_CASE("the walk of netnsd's own mount table does not drop the mounts of other mount "
          "namespaces")
{
    core::registry model(100);
    core::host_watch hosts(model);
    hosts.apply_mount_namespaces(walk({7}, {mount_of(7, 700, "/run/pods/a", 1, true)}),
                                 hosts.begin_mount_walk(), at_ms(1));
    hosts.rebuild_mounts({}, at_ms(2));
    REQUIRE(model.host(identity(1).ns_id));
    CHECK(model.host(identity(1).ns_id)->mounts.size() == 1u);
}

TEST_CASE("a mount of another mount namespace goes at its detach event, and a walk that began "
          "before the detach does not bring it back")
{
    core::registry model(100);
    core::host_watch hosts(model);
    hosts.apply_mount_namespaces(walk({7}, {mount_of(7, 700, "/run/pods/a", 1, true),
                                            mount_of(7, 701, "/run/pods/b", 2, true)}),
                                 hosts.begin_mount_walk(), at_ms(1));
    REQUIRE(model.host(identity(1).ns_id)->mounts.size() == 1u);

    // The event: gone at once, not at the next walk. Its namespace has no holder left.
    hosts.foreign_mount_detached(700, at_ms(2));
    CHECK(model.host(identity(1).ns_id)->mounts.empty());
    CHECK(model.host(identity(1).ns_id)->held_by() == 0u);
    // A detach of a mount the walks never showed changes nothing.
    hosts.foreign_mount_detached(999, at_ms(3));
    CHECK(model.host(identity(2).ns_id)->mounts.size() == 1u);

    // A walk begins, lists 701 and 702; 702 is detached before its result is applied (the event
    // is read first): the result does not bring it back. 701 stays.
    const auto number = hosts.begin_mount_walk();
    hosts.foreign_mount_detached(702, at_ms(4));
    hosts.apply_mount_namespaces(walk({7}, {mount_of(7, 701, "/run/pods/b", 2, true),
                                            mount_of(7, 702, "/run/pods/c", 3, true)}),
                                 number, at_ms(5));
    CHECK_FALSE(model.host(identity(3).ns_id));
    CHECK(model.host(identity(2).ns_id)->mounts.size() == 1u);

    // Two walks overlap: the first began before a detach, the second after it. Neither brings
    // the mount back; the second, which the detach did not race, would not have listed it.
    const auto first = hosts.begin_mount_walk();
    hosts.foreign_mount_detached(703, at_ms(6));
    const auto second = hosts.begin_mount_walk();
    hosts.apply_mount_namespaces(walk({7}, {mount_of(7, 701, "/run/pods/b", 2, true),
                                            mount_of(7, 703, "/run/pods/d", 4, true)}),
                                 first, at_ms(7));
    CHECK_FALSE(model.host(identity(4).ns_id));
    hosts.apply_mount_namespaces(walk({7}, {mount_of(7, 701, "/run/pods/b", 2, true)}), second,
                                 at_ms(8));
    CHECK_FALSE(model.host(identity(4).ns_id));
    CHECK(model.host(identity(2).ns_id)->mounts.size() == 1u);
}

// The cgroup of a namespace's lowest pid is read by each sweep until that pid was already the
// lowest in the sweep before the read (a runtime moves a new process into its container's
// cgroup just after the fork); then it is settled and not read again while the pid stays the
// lowest, except every 12th sweep.
TEST_CASE("a sweep reads a namespace's cgroup again until its lowest pid has settled")
{
    core::registry model(100);
    core::host_watch hosts(model);
    model.found_namespace(identity(3), false, at_ms(0), {{50}, {}, 0, 0});
    const auto ino = identity(3).ino;
    auto sweep_with = [&](std::int32_t pid, std::string cgroup)
    {
        core::kernel::proc_sweep s;
        s.pids_by_inode[ino] = {pid, pid + 7};
        s.cgroup_by_inode[ino] = std::move(cgroup);
        hosts.apply_sweep(s, at_ms(1));
    };
    auto settled = [&]() -> std::pair<std::int32_t, std::string>
    {
        for (const auto& k : hosts.sweep_input())
            if (k.ns_id == identity(3).ns_id)
                return {k.settled_pid, k.settled_cgroup};
        FAIL("not in the sweep's input");
        return {};
    };
    CHECK(settled().first == 0);
    sweep_with(50, "/user.slice/a.scope"); // first seen: read at its birth, maybe before a move
    CHECK(settled().first == 0);
    sweep_with(50, "/system.slice/docker-0123.scope"); // read a sweep later: settled
    const auto now_settled = settled();
    CHECK(now_settled.first == 50);
    CHECK(now_settled.second == "/system.slice/docker-0123.scope");
    // Another lowest pid: read again, twice.
    sweep_with(40, "/system.slice/docker-0123.scope");
    CHECK(settled().first == 0);
    sweep_with(40, "/system.slice/docker-0123.scope");
    CHECK(settled().first == 40);
    // Every 12th sweep reads them all (that was the 4th; after the 12th, none is settled).
    for (int i = 5; i <= 12; ++i)
        sweep_with(40, "/system.slice/docker-0123.scope");
    CHECK(settled().first == 0);
    sweep_with(40, "/system.slice/docker-0123.scope");
    CHECK(settled().first == 40);
}

TEST_CASE("a sweep that frees many namespaces is applied a slice at a time: the freed first, then "
          "the found, then the counts")
{
    core::registry model(100);
    core::host_watch hosts(model);
    for (std::uint64_t n = 1; n <= 200; ++n)
        model.found_namespace(identity(n), false, at_ms(0),
                              {{static_cast<std::int32_t>(n)}, {}, 0, 0});
    core::kernel::proc_sweep s;
    for (std::uint64_t n = 1; n <= 150; ++n)
        s.gone.push_back(identity(n).ns_id);
    for (std::uint64_t n = 151; n <= 200; ++n)
        s.pids_by_inode[identity(n).ino] = {static_cast<std::int32_t>(1000 + n)};
    s.found[identity(300).ino] = {identity(300), {}, {}};
    s.pids_by_inode[identity(300).ino] = {7, 8};
    hosts.begin_sweep_application(std::move(s));

    constexpr auto slice = core::host_watch::sweep_slice;
    static_assert(slice == 64, "the counts below assume slices of 64");
    // The freed: 64, 64, then the last 22.
    CHECK(hosts.apply_sweep_slice(at_ms(1)));
    CHECK(model.host_count() == 200 - 64);
    CHECK_FALSE(model.has_host(identity(64).ns_id));
    CHECK(model.has_host(identity(65).ns_id));
    CHECK(hosts.apply_sweep_slice(at_ms(1)));
    CHECK(model.host_count() == 200 - 128);
    CHECK(hosts.apply_sweep_slice(at_ms(1)));
    CHECK(model.host_count() == 50);
    CHECK_FALSE(model.has_host(identity(300).ns_id));
    // The found.
    CHECK(hosts.apply_sweep_slice(at_ms(1)));
    CHECK(model.host_count() == 51);
    REQUIRE(model.host(identity(300).ns_id));
    CHECK(model.host(identity(300).ns_id)->processes == 2);
    CHECK(model.host(identity(151).ns_id)->processes == 1);
    // The counts (51 namespaces, one slice), and the sweep is done.
    CHECK_FALSE(hosts.apply_sweep_slice(at_ms(1)));
    CHECK_FALSE(hosts.apply_sweep_slice(at_ms(1)));
    for (std::uint64_t n = 151; n <= 200; ++n)
    {
        const auto h = model.host(identity(n).ns_id);
        REQUIRE(h);
        CHECK(h->processes == 1);
    }
}

TEST_CASE("applied all at once, a sweep ends as applied a slice at a time")
{
    auto run = [](bool sliced)
    {
        core::registry model(100);
        core::host_watch hosts(model);
        for (std::uint64_t n = 1; n <= 300; ++n)
            model.found_namespace(identity(n), false, at_ms(0), {{1}, {}, 0, 0});
        core::kernel::proc_sweep s;
        for (std::uint64_t n = 1; n <= 300; n += 3)
            s.gone.push_back(identity(n).ns_id);
        for (std::uint64_t n = 2; n <= 300; n += 3)
            s.pids_by_inode[identity(n).ino] = {static_cast<std::int32_t>(n), 5000};
        for (std::uint64_t n = 400; n < 500; ++n)
            s.found[identity(n).ino] = {identity(n), {}, {}};
        std::size_t slices = 1;
        if (sliced)
        {
            hosts.begin_sweep_application(std::move(s));
            while (hosts.apply_sweep_slice(at_ms(1)))
                ++slices;
        }
        else
            hosts.apply_sweep(std::move(s), at_ms(1));
        std::vector<std::pair<std::uint64_t, std::size_t>> state;
        for (std::uint64_t n = 1; n < 500; ++n)
            if (const auto h = model.host(identity(n).ns_id))
                state.emplace_back(n, h->processes);
        return std::pair{state, slices};
    };
    const auto [whole, one] = run(false);
    const auto [sliced, slices] = run(true);
    CHECK(whole == sliced);
    CHECK(whole.size() == 300 - 100 + 100);
    // 100 freed (2 slices), 100 found (2), 300 counted (5).
    CHECK(slices == 9);
}
