// netnsd follows /run/netns on a real kernel: `ip` changes things, the API must agree.
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <signal.h>
#include <string>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "support/netns_ops.hpp"
#include "support/oracle.hpp"
#include "support/process.hpp"

namespace
{

using namespace netnsd::test;
using namespace std::chrono_literals;

// Each change must show within this long; the loop waits for it, never sleeps it out.
constexpr auto within = std::chrono::milliseconds(1000);

bool shows(const netnsd_process& d, const std::string& name, const view& expected)
{
    return shows(d.where(), name, expected);
}

bool absent(const netnsd_process& d, const std::string& name)
{
    const auto all = api_netns(d.where());
    return all && all->count(name) == 0;
}

void touch(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    ::close(fd);
}

struct started
{
    netnsd_process d;
    explicit started(std::vector<std::string> args = {}) : d(std::move(args))
    {
        INFO(d.log());
        REQUIRE(d.ready());
    }
};

} // namespace

TEST_CASE("namespaces present before start are listed with their nsids")
{
    run_ok({"ip", "netns", "add", "early"});
    run_ok({"ip", "netns", "add", "numbered"});
    run_ok({"ip", "netns", "set", "numbered", "42"});
    started s;
    const auto live = api_live(s.d.where());
    REQUIRE(live);
    CHECK(*live == ip_list());
    CHECK(live->at("numbered") == 42);
    CHECK(live->at("early") == std::nullopt);
}

TEST_CASE("add, set and del by ip show in the API within a second")
{
    started s;
    run_ok({"ip", "netns", "add", "alpha"});
    CHECK(eventually([&] { return shows(s.d, "alpha", {"live", std::nullopt}); }, within));
    run_ok({"ip", "netns", "set", "alpha", "7"});
    CHECK(eventually([&] { return shows(s.d, "alpha", {"live", 7}); }, within));
    run_ok({"ip", "netns", "del", "alpha"});
    CHECK(eventually([&] { return absent(s.d, "alpha"); }, within));
}

TEST_CASE("the nsid list agrees with ip netns list-id, and a destroyed namespace leaves it")
{
    started s;
    run_ok({"ip", "netns", "add", "keep"});
    run_ok({"ip", "netns", "add", "gone"});
    run_ok({"ip", "netns", "set", "keep", "3"});
    run_ok({"ip", "netns", "set", "gone", "auto"});
    auto api_ids = [&]
    {
        std::map<int, std::optional<std::string>> out;
        const auto body = get_json(s.d.where(), "/api/v1/nsids");
        for (const auto& row : body["nsids"])
            out.emplace(row["nsid"].get<int>(),
                        row["name"].is_null() ? std::nullopt
                                              : std::optional(row["name"].get<std::string>()));
        return out;
    };
    CHECK(eventually([&] { return api_ids() == ip_list_id() && api_ids().size() == 2; }, within));
    INFO("api: " << get_json(s.d.where(), "/api/v1/nsids").dump());
    INFO("ip: " << run({"ip", "-j", "netns", "list-id"}).out);
    run_ok({"ip", "netns", "del", "gone"});
    // RTM_DELNSID follows the unlink once the kernel has freed the namespace.
    CHECK(eventually([&] { return api_ids().size() == 1 && api_ids() == ip_list_id(); }, 5s));
}

TEST_CASE("an nsid the kernel assigns by itself is learnt")
{
    started s;
    run_ok({"ip", "netns", "add", "peer"});
    CHECK(eventually([&] { return shows(s.d, "peer", {"live", std::nullopt}); }, within));
    // Moving one end of a veth pair into the namespace makes the kernel number it.
    run_ok({"ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", "peer"});
    const auto expected = ip_list().at("peer");
    REQUIRE(expected.has_value());
    CHECK(eventually([&] { return shows(s.d, "peer", {"live", expected}); }, within));
    run_ok({"ip", "link", "del", "v0"});
}

TEST_CASE("a burst of 500 adds and deletes converges to exactly what ip lists")
{
    started s;
    std::string script = "set -e\n";
    for (int i = 0; i < 250; ++i)
        script += "ip netns add burst" + std::to_string(i) + "\n";
    for (int i = 0; i < 250; i += 2)
        script += "ip netns del burst" + std::to_string(i) + "\n";
    for (int i = 1; i < 250; i += 10)
        script += "ip netns set burst" + std::to_string(i) + " auto\n";
    run_ok({"sh", "-c", script});
    const auto expected = ip_list();
    REQUIRE(expected.size() == 125);
    std::optional<std::map<std::string, std::optional<int>>> got;
    CHECK(eventually(
        [&]
        {
            got = api_live(s.d.where());
            return got == expected;
        },
        5s));
    INFO("api: " << (got ? describe(*got) : "no answer"));
    INFO("ip:  " << describe(expected));
    CHECK(got == expected);
}

TEST_CASE("a plain file is stale, never live")
{
    started s;
    touch("/run/netns/plain");
    CHECK(eventually([&] { return shows(s.d, "plain", {"stale", std::nullopt}); }, within));
    const auto health = get_json(s.d.where(), "/healthz");
    CHECK(health["namespaces"] == 1);
    ::unlink("/run/netns/plain");
    CHECK(eventually([&] { return absent(s.d, "plain"); }, within));
}

TEST_CASE("a placeholder becomes live when its bind mount appears, which makes no inotify event")
{
    started s;
    // The two steps of `ip netns add`, apart: the empty file, then the bind mount.
    touch("/run/netns/slow");
    CHECK(eventually([&] { return shows(s.d, "slow", {"stale", std::nullopt}); }, within));
    run_ok({"unshare", "--net", "mount", "--bind", "/proc/self/ns/net", "/run/netns/slow"});
    CHECK(eventually([&] { return shows(s.d, "slow", {"live", std::nullopt}); }, within));
    // And back: unmounted but not unlinked, it is stale again.
    REQUIRE(::umount2("/run/netns/slow", MNT_DETACH) == 0);
    CHECK(eventually([&] { return shows(s.d, "slow", {"stale", std::nullopt}); }, within));
}

TEST_CASE("names the kernel allows are listed and addressable by their href")
{
    started s;
    const std::vector<std::string> names = {
        "sp ace",   "tab\there",         "new\nline",   "--",
        "-leading", "\xc3\xa9t\xc3\xa9", "bad\xff\xfe", std::string(255, 'x')};
    for (const auto& name : names)
        run_ok({"ip", "netns", "add", name});
    CHECK(eventually(
        [&]
        {
            const auto live = api_live(s.d.where());
            return live && live->size() == names.size();
        },
        within));
    const auto body = get_json(s.d.where(), "/api/v1/netns");
    REQUIRE(body["namespaces"].size() == names.size());
    for (const auto& e : body["namespaces"])
    {
        unsigned status = 0;
        const auto one = get_json(s.d.where(), e["href"].get<std::string>(), &status);
        CHECK(status == 200);
        CHECK(one == e);
    }
}

TEST_CASE("invalid names are refused with 400 and a problem body")
{
    started s;
    const std::vector<std::string> targets = {"/api/v1/netns/%2E%2E", "/api/v1/netns/.",
                                              "/api/v1/netns/a%2Fb", "/api/v1/netns/%00",
                                              "/api/v1/netns/" + std::string(256, 'y')};
    for (const auto& target : targets)
    {
        CAPTURE(target);
        unsigned status = 0;
        const auto problem = get_json(s.d.where(), target, &status);
        CHECK(status == 400);
        CHECK(problem["type"] == "urn:netnsd:problem:invalid-name");
    }
}

TEST_CASE("the netns dir removed and created again is followed")
{
    started s;
    run_ok({"ip", "netns", "add", "before"});
    CHECK(eventually([&] { return shows(s.d, "before", {"live", std::nullopt}); }, within));
    // Take the whole dir away: lazily unmount the namespace, the tmpfs, then remove the dir.
    run_ok({"umount", "-l", "/run/netns/before"});
    run_ok({"umount", "-l", "/run/netns"});
    REQUIRE(::rmdir("/run/netns") == 0);
    CHECK(eventually(
        [&]
        {
            const auto h = get_json(s.d.where(), "/healthz");
            return h["status"] == "degraded" && h["namespaces"] == 0;
        },
        within));
    // `ip netns add` creates the dir again; the watch on /run must notice.
    run_ok({"ip", "netns", "add", "after"});
    CHECK(eventually([&] { return shows(s.d, "after", {"live", std::nullopt}); }, within));
    CHECK(get_json(s.d.where(), "/healthz")["status"] == "ok");
    CHECK(absent(s.d, "before"));
}

TEST_CASE("a filesystem mounted over the netns dir is noticed")
{
    started s;
    run_ok({"ip", "netns", "add", "under"});
    CHECK(eventually([&] { return shows(s.d, "under", {"live", std::nullopt}); }, within));
    REQUIRE(::mount("cover", "/run/netns", "tmpfs", 0, "mode=0755") == 0);
    CHECK(eventually([&] { return absent(s.d, "under"); }, within));
    // The watch now follows the new filesystem.
    run_ok({"ip", "netns", "add", "over"});
    CHECK(eventually([&] { return shows(s.d, "over", {"live", std::nullopt}); }, within));
    // Uncovered again: the old entry is back, the new one hidden.
    run_ok({"umount", "-l", "/run/netns"});
    CHECK(eventually(
        [&] {
            return shows(s.d, "under", {"live", std::nullopt}) && absent(s.d, "over");
        },
        within));
}

TEST_CASE("a netns dir that is a regular file is reported, then followed once it is a dir")
{
    run_ok({"umount", "-l", "/run/netns"});
    REQUIRE(::rmdir("/run/netns") == 0);
    touch("/run/netns");
    started s;
    const auto health = get_json(s.d.where(), "/healthz");
    CHECK(health["status"] == "degraded");
    CHECK(health["watching"] == false);
    CHECK(health["problem"].get<std::string>().find("Not a directory") != std::string::npos);
    REQUIRE(::unlink("/run/netns") == 0);
    run_ok({"ip", "netns", "add", "fixed"});
    CHECK(eventually([&] { return shows(s.d, "fixed", {"live", std::nullopt}); }, within));
    CHECK(get_json(s.d.where(), "/healthz")["status"] == "ok");
}

TEST_CASE("an inotify queue overflow still converges")
{
    // The queue limit is read when netnsd calls inotify_init1: lower it for that moment only.
    const std::string knob = "/proc/sys/fs/inotify/max_queued_events";
    std::string saved;
    std::ifstream(knob) >> saved;
    REQUIRE(!saved.empty());
    std::ofstream(knob) << "16";
    netnsd_process d;
    const bool up = d.ready();
    std::ofstream(knob) << saved;
    REQUIRE(up);

    // Hold netnsd still while far more events than its queue holds pile up.
    d.signal(SIGSTOP);
    for (int i = 0; i < 200; ++i)
        touch("/run/netns/flood" + std::to_string(i));
    run_ok({"ip", "netns", "add", "survivor"});
    for (int i = 0; i < 200; i += 2)
        ::unlink(("/run/netns/flood" + std::to_string(i)).c_str());
    d.signal(SIGCONT);

    CHECK(eventually(
        [&]
        {
            const auto all = api_netns(d.where());
            return all && all->size() == 101 && all->at("survivor").state == "live";
        },
        5s));
    CHECK(d.log().find(R"(rescan: reason="inotify queue overflow")") != std::string::npos);
}

TEST_CASE("a bind mount made while netnsd re-checks its stale entries is not missed (mountinfo)")
{
    // The mountinfo feed (fanotify reports each mount instead, and never re-checks a pass of
    // entries). /proc/self/mountinfo reports a change once per poll, and arming the next wait polls
    // it: a mount made while netnsd re-probes its stale entries after the previous change must
    // still be seen (found by bench/soak: a name ip had just made stayed stale). Thousands of
    // placeholders make that pass long; the victim sorts first, so netnsd opening it (IN_OPEN)
    // says the pass has begun, and the mount lands during the rest of it.
    constexpr int placeholders = 5000;
    touch("/run/netns/a-victim");
    for (int i = 0; i < placeholders; ++i)
        touch("/run/netns/z" + std::to_string(i));
    run_ok({"ip", "netns", "add", "source"});
    started s({"--mount-feed=mountinfo"});
    REQUIRE(eventually(
        [&]
        {
            const auto all = api_netns(s.d.where());
            return all && all->size() == placeholders + 2;
        },
        5s));

    const int opens = ::inotify_init1(IN_CLOEXEC);
    REQUIRE(opens >= 0);
    REQUIRE(::inotify_add_watch(opens, "/run/netns", IN_OPEN) >= 0);
    // One mount change, no other: the pass over the stale entries starts.
    REQUIRE(create_netns("trigger"));
    bool pass_began = false;
    alignas(inotify_event) char buf[64 * 1024];
    while (!pass_began)
    {
        pollfd p{opens, POLLIN, 0};
        REQUIRE(::poll(&p, 1, 5000) == 1);
        const auto n = ::read(opens, buf, sizeof buf);
        REQUIRE(n > 0);
        for (long at = 0; at < n;)
        {
            const auto* ev = reinterpret_cast<const inotify_event*>(buf + at);
            pass_began = pass_began || (ev->len > 0 && std::string(ev->name) == "a-victim");
            at += static_cast<long>(sizeof(inotify_event) + ev->len);
        }
    }
    REQUIRE(::mount("/run/netns/source", "/run/netns/a-victim", nullptr, MS_BIND, nullptr) == 0);
    ::close(opens);
    // Nothing else changes the mount table from here on: only that one change can tell.
    CHECK(eventually([&] { return shows(s.d, "a-victim", {"live", std::nullopt}); }, within));
}

TEST_CASE("SIGTERM stops netnsd with exit code 0")
{
    started s;
    CHECK(s.d.stop() == 0);
}
