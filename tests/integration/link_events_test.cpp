// Live link and address events (--watch-links) from the real netnsd, in the sandbox, against
// `ip`: link up and down, rename, a move to another namespace, addresses of both families added
// and removed, a namespace's destruction (its links' `removed` before its `destroyed`), the
// coalescing of a flapping link, types= filtering and resuming with since=, --assign-nsids
// (a namespace without an nsid is heard with it and not without it, and `ip netns list-id` is
// unchanged without it), and no listener at all without --watch-links.
#include <algorithm>
#include <csignal>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/oracle.hpp"
#include "support/process.hpp"
#include "support/stream_client.hpp"

namespace
{

using namespace netnsd::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

json ip_json(std::vector<std::string> argv)
{
    argv.insert(argv.begin(), "ip");
    return json::parse(run_ok(argv));
}

// A link as `ip -n NS -j link show DEV` has it (null when there is no such link).
json ip_link(const std::string& ns, const std::string& dev)
{
    std::vector<std::string> argv{"ip"};
    if (!ns.empty())
        argv.insert(argv.end(), {"-n", ns});
    argv.insert(argv.end(), {"-j", "link", "show", "dev", dev});
    const auto r = run(argv);
    if (r.exit_code != 0)
        return nullptr;
    const auto all = json::parse(r.out);
    return all.empty() ? json(nullptr) : all.front();
}

bool has_flag(const json& flags, const std::string& flag)
{
    return std::find(flags.begin(), flags.end(), flag) != flags.end();
}

struct watcher
{
    netnsd_process d;
    explicit watcher(std::vector<std::string> args) : d(std::move(args))
    {
        INFO(d.log());
        REQUIRE(d.ready());
    }
    json get(const std::string& target)
    {
        unsigned status = 0;
        auto body = get_json(d.where(), target, &status);
        INFO(target, " ", body.dump());
        REQUIRE(status == 200);
        return body;
    }
    std::uint64_t ns_id_of(const std::string& name)
    {
        std::uint64_t id = 0;
        REQUIRE(eventually(
            [&]
            {
                // Until netnsd has read the mount, the answer is a 404 problem without ns_id.
                const auto e = get_json(d.where(), "/api/v1/netns/" + name);
                if (!e.is_object() || !e.contains("ns_id") || !e["ns_id"].is_number())
                    return false;
                id = e["ns_id"].get<std::uint64_t>();
                return true;
            },
            15000ms));
        return id;
    }
};

// Reads events until one satisfies `match` (returned), or the deadline passes (nullopt). Every
// event read is kept in `seen`.
std::optional<json> wait_for(ws_client& ws, std::vector<json>& seen,
                             const std::function<bool(const json&)>& match,
                             std::chrono::milliseconds deadline = 15000ms)
{
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < end)
    {
        auto m = ws.read(std::chrono::duration_cast<std::chrono::milliseconds>(
            end - std::chrono::steady_clock::now()));
        if (!m)
            return std::nullopt;
        seen.push_back(*m);
        if (match(*m))
            return m;
    }
    return std::nullopt;
}

std::function<bool(const json&)> link_event(std::uint64_t ns_id, const std::string& action,
                                            const std::string& ifname,
                                            std::function<bool(const json&)> also = nullptr)
{
    return [=](const json& e)
    {
        return e["type"] == "link" && e["ns_id"] == ns_id && e["action"] == action &&
               e["link"]["name"] == ifname && (!also || also(e["link"]));
    };
}

std::function<bool(const json&)> address_event(std::uint64_t ns_id, const std::string& action,
                                               const std::string& address)
{
    return [=](const json& e)
    {
        return e["type"] == "address" && e["ns_id"] == ns_id && e["action"] == action &&
               e["address"]["address"] == address;
    };
}

// The event's link against `ip -j link show`: ifindex, name, flags, mtu, mac, operstate.
void check_like_ip(const json& link, const json& ip)
{
    INFO(link.dump(), "\nip: ", ip.dump());
    REQUIRE(ip.is_object());
    CHECK(link["ifindex"] == ip["ifindex"]);
    CHECK(link["name"] == ip["ifname"]);
    CHECK(link["mtu"] == ip["mtu"]);
    CHECK(link["mac"] == ip["address"]);
    std::string state = ip["operstate"].get<std::string>();
    std::transform(state.begin(), state.end(), state.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    CHECK(link["state"] == state);
    for (const auto& f : {"UP", "LOWER_UP", "BROADCAST", "MULTICAST"})
        CHECK(has_flag(link["flags"], f) == has_flag(ip["flags"], f));
    CHECK(!link.contains("counters"));
}

// The rows of /proc/PID/net/netlink of NETLINK_ROUTE sockets joined to the link or address
// groups (the first 32 groups' bits: RTNLGRP_LINK 1, RTNLGRP_IPV4_IFADDR 5,
// RTNLGRP_IPV6_IFADDR 9).
std::size_t link_listeners(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/net/netlink");
    std::string line;
    std::getline(in, line); // the header
    std::size_t n = 0;
    while (std::getline(in, line))
    {
        std::istringstream fields(line);
        std::string sk;
        int protocol = -1;
        unsigned port = 0;
        std::string groups;
        fields >> sk >> protocol >> port >> groups;
        const auto bits = std::stoul(groups, nullptr, 16);
        if (protocol == 0 && (bits & 0x111u) != 0)
            ++n;
    }
    return n;
}

} // namespace

TEST_CASE("link events: up, rename, addresses of both families, a move, and a namespace's end, "
          "each as ip shows it")
{
    run_ok({"ip", "netns", "add", "a"});
    run_ok({"ip", "netns", "add", "b"});
    run_ok({"ip", "netns", "set", "a", "auto"});
    run_ok({"ip", "netns", "set", "b", "auto"});
    watcher s({"--watch-links"});
    const auto a = s.ns_id_of("a");
    const auto b = s.ns_id_of("b");
    ws_client ws(s.d.where(), "/api/v1/events?types=link,address,destroyed");
    REQUIRE(ws.ok());
    REQUIRE(ws.read());
    std::vector<json> seen;
    INFO("events: ", json(seen).dump());

    // A veth pair from netnsd's namespace into a.
    run_ok({"ip", "link", "add", "h0", "type", "veth", "peer", "name", "a0", "netns", "a"});
    auto added = wait_for(ws, seen, link_event(a, "added", "a0"));
    REQUIRE(added);
    CHECK((*added)["name"] == "a");
    CHECK((*added)["link"]["kind"] == "veth");
    CHECK((*added)["link"]["peer"]["ifname"] == "h0");
    check_like_ip((*added)["link"], ip_link("a", "a0"));

    // Renamed while down, then up: the last state wins (the two may be one `changed`).
    run_ok({"ip", "-n", "a", "link", "set", "a0", "name", "a1"});
    REQUIRE(wait_for(ws, seen, link_event(a, "changed", "a1")));
    run_ok({"ip", "-n", "a", "link", "set", "a1", "up"});
    auto up = wait_for(
        ws, seen,
        link_event(a, "changed", "a1", [](const json& l) { return has_flag(l["flags"], "UP"); }));
    REQUIRE(up);
    check_like_ip((*up)["link"], ip_link("a", "a1"));
    run_ok({"ip", "-n", "a", "link", "set", "a1", "down"});
    auto down = wait_for(
        ws, seen,
        link_event(a, "changed", "a1", [](const json& l) { return !has_flag(l["flags"], "UP"); }));
    REQUIRE(down);
    check_like_ip((*down)["link"], ip_link("a", "a1"));

    // Addresses of both families, added and removed.
    run_ok({"ip", "-n", "a", "addr", "add", "10.7.0.2/24", "dev", "a1"});
    run_ok({"ip", "-n", "a", "addr", "add", "fd00:7::2/64", "dev", "a1", "nodad"});
    auto v4 = wait_for(ws, seen, address_event(a, "added", "10.7.0.2"));
    auto v6 = wait_for(ws, seen, address_event(a, "added", "fd00:7::2"));
    REQUIRE(v4);
    REQUIRE(v6);
    const auto ifindex = ip_link("a", "a1")["ifindex"];
    CHECK((*v4)["address"]["family"] == "inet");
    CHECK((*v4)["address"]["prefixlen"] == 24);
    CHECK((*v4)["address"]["ifindex"] == ifindex);
    CHECK((*v6)["address"]["family"] == "inet6");
    CHECK((*v6)["address"]["prefixlen"] == 64);
    const auto addrs = ip_json({"-n", "a", "-j", "addr", "show", "dev", "a1"});
    std::set<std::string> ip_has;
    for (const auto& i : addrs.front()["addr_info"])
        ip_has.insert(i["local"].get<std::string>());
    CHECK(ip_has.count("10.7.0.2") == 1);
    CHECK(ip_has.count("fd00:7::2") == 1);
    run_ok({"ip", "-n", "a", "addr", "del", "10.7.0.2/24", "dev", "a1"});
    run_ok({"ip", "-n", "a", "addr", "del", "fd00:7::2/64", "dev", "a1"});
    REQUIRE(wait_for(ws, seen, address_event(a, "removed", "10.7.0.2")));
    REQUIRE(wait_for(ws, seen, address_event(a, "removed", "fd00:7::2")));

    // A link moved from a to b: removed there, added here.
    run_ok({"ip", "-n", "a", "link", "add", "x0", "type", "veth", "peer", "name", "x1"});
    REQUIRE(wait_for(ws, seen, link_event(a, "added", "x1")));
    run_ok({"ip", "-n", "a", "link", "set", "x1", "netns", "b"});
    REQUIRE(wait_for(ws, seen, link_event(a, "removed", "x1")));
    auto moved = wait_for(ws, seen, link_event(b, "added", "x1"));
    REQUIRE(moved);
    CHECK(ip_link("a", "x1").is_null());
    check_like_ip((*moved)["link"], ip_link("b", "x1"));
    CHECK((*moved)["link"]["peer"]["ns_id"] == a);
    CHECK((*moved)["link"]["peer"]["ifname"] == "x0");

    // b goes: the removed of its links (lo, x1), then its destroyed.
    run_ok({"ip", "netns", "del", "b"});
    const std::function<bool(const json&)> is_destroyed = [&](const json& e)
    {
        return e["type"] == "destroyed" && e["ns_id"] == b;
    };
    auto destroyed = wait_for(ws, seen, is_destroyed);
    REQUIRE(destroyed);
    std::set<std::string> removed_before;
    for (const auto& e : seen)
        if (e["type"] == "link" && e["ns_id"] == b && e["action"] == "removed" &&
            e["revision"] < (*destroyed)["revision"])
        {
            removed_before.insert(e["link"]["name"].get<std::string>());
            CHECK(e["name"] == "b"); // by the name it had
        }
    CHECK(removed_before == std::set<std::string>{"lo", "x1"});
    // x0, x1's peer, went with it.
    REQUIRE(wait_for(ws, seen, link_event(a, "removed", "x0")));
    CHECK(ip_link("a", "x0").is_null());
}

TEST_CASE("link events: sent only to a stream that asks for them by type, and resumed with "
          "since=")
{
    run_ok({"ip", "netns", "add", "a"});
    run_ok({"ip", "netns", "set", "a", "auto"});
    watcher s({"--watch-links"});
    const auto a = s.ns_id_of("a");
    ws_client plain(s.d.where(), "/api/v1/events");
    ws_client links(s.d.where(), "/api/v1/events?types=link");
    ws_client both(s.d.where(), "/api/v1/events?types=link,address");
    REQUIRE(plain.ok());
    REQUIRE(links.ok());
    REQUIRE(both.ok());
    REQUIRE(plain.read());
    REQUIRE(links.read());
    const auto hello = both.read();
    REQUIRE(hello);
    const auto start = (*hello)["revision"].get<std::uint64_t>();

    run_ok({"ip", "-n", "a", "link", "add", "v0", "type", "veth", "peer", "name", "v1"});
    run_ok({"ip", "-n", "a", "addr", "add", "10.8.0.1/24", "dev", "v0"});
    std::vector<json> seen_both;
    REQUIRE(wait_for(both, seen_both, address_event(a, "added", "10.8.0.1")));
    std::vector<json> seen_links;
    REQUIRE(wait_for(links, seen_links, link_event(a, "added", "v1")));
    // The address came after v1, and a link-only stream has no address events. The default
    // stream gets nothing of all this: a namespace made now shows it the next thing it reads.
    run_ok({"ip", "netns", "add", "marker"});
    // (Other sandboxes' namespaces, on a shared machine, may be destroyed meanwhile.)
    auto first = plain.read(15000ms);
    while (first && (*first)["type"] == "destroyed" && (*first)["name"].is_null())
        first = plain.read(15000ms);
    REQUIRE(first);
    CHECK((*first)["type"] == "add");
    CHECK((*first)["name"] == "marker");
    std::vector<json> more;
    const std::function<bool(const json&)> is_address = [](const json& e)
    {
        return e["type"] == "address";
    };
    CHECK(!wait_for(links, more, is_address, 500ms));
    for (const auto& e : seen_links)
        CHECK(e["type"] != "address");

    // Resumed from the first stream's start: the same link and address events, same revisions.
    ws_client again(s.d.where(),
                    "/api/v1/events?types=link,address&since=" + std::to_string(start));
    REQUIRE(again.ok());
    REQUIRE(again.read()); // hello
    std::vector<json> replay;
    REQUIRE(wait_for(again, replay, address_event(a, "added", "10.8.0.1")));
    REQUIRE(replay.size() == seen_both.size());
    for (std::size_t i = 0; i < replay.size(); ++i)
        CHECK(replay[i] == seen_both[i]);
}

TEST_CASE("link events: a flapping link makes at most one changed per 250 ms window, the last "
          "state winning")
{
    run_ok({"ip", "netns", "add", "a"});
    run_ok({"ip", "netns", "set", "a", "auto"});
    run_ok({"ip", "-n", "a", "link", "add", "f0", "type", "veth", "peer", "name", "f1"});
    watcher s({"--watch-links"});
    const auto a = s.ns_id_of("a");
    ws_client ws(s.d.where(), "/api/v1/events?types=link");
    REQUIRE(ws.ok());
    REQUIRE(ws.read());
    const auto began = std::chrono::steady_clock::now();
    constexpr int flaps = 40;
    for (int i = 0; i < flaps; ++i)
    {
        run_ok({"ip", "-n", "a", "link", "set", "f0", "up"});
        run_ok({"ip", "-n", "a", "link", "set", "f0", "down"});
    }
    run_ok({"ip", "-n", "a", "link", "set", "f0", "up"});
    const auto flapped = std::chrono::steady_clock::now() - began;
    // Read until f0 shows up as ip has it; then nothing more comes for f0.
    std::vector<json> seen;
    auto last = wait_for(
        ws, seen,
        link_event(a, "changed", "f0", [](const json& l) { return has_flag(l["flags"], "UP"); }));
    REQUIRE(last);
    std::vector<json> after;
    while (auto more = wait_for(ws, after, link_event(a, "changed", "f0"), 1000ms))
        last = more;
    INFO("events: ", json(seen).dump());
    CHECK(has_flag((*last)["link"]["flags"], "UP"));
    check_like_ip((*last)["link"], ip_link("a", "f0"));
    std::size_t changed = 0;
    for (const auto& e : seen)
        changed += link_event(a, "changed", "f0")(e) ? 1u : 0u;
    for (const auto& e : after)
        changed += link_event(a, "changed", "f0")(e) ? 1u : 0u;
    // One at once, then at most one per window while it flaps, and one at the end of the last.
    const auto windows = static_cast<std::size_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(flapped) / 250ms);
    INFO("flapped for ", std::chrono::duration_cast<std::chrono::milliseconds>(flapped).count(),
         " ms, ", changed, " changed events");
    CHECK(changed >= 1);
    CHECK(changed <= windows + 2);
    CHECK(changed < 2 * flaps + 1);
}

TEST_CASE("link events: a namespace without an nsid is heard with --assign-nsids, and not "
          "without it (its nsids untouched)")
{
    // Each subcase runs the case again in the same sandbox: a namespace of its own for each.
    SUBCASE("without --assign-nsids")
    {
        run_ok({"ip", "netns", "add", "quiet"});
        const auto before = ip_list_id();
        watcher s({"--watch-links"});
        const auto q = s.ns_id_of("quiet");
        ws_client ws(s.d.where(), "/api/v1/events?types=link,address");
        REQUIRE(ws.ok());
        REQUIRE(ws.read());
        run_ok({"ip", "-n", "quiet", "link", "set", "lo", "up"});
        run_ok({"ip", "netns", "add", "marker"});
        run_ok({"ip", "netns", "set", "marker", "auto"});
        // marker's lo going up is heard; quiet's, before it, was not.
        const auto m = s.ns_id_of("marker");
        run_ok({"ip", "-n", "marker", "link", "set", "lo", "up"});
        std::vector<json> seen;
        REQUIRE(wait_for(ws, seen,
                         link_event(m, "changed", "lo",
                                    [](const json& l) { return has_flag(l["flags"], "UP"); })));
        for (const auto& e : seen)
            CHECK(e["ns_id"] != q);
        auto after = ip_list_id();
        CHECK(after.size() == before.size() + 1); // marker's, set here
        for (const auto& [nsid, name] : after)
            CHECK(name != std::optional<std::string>("quiet"));
    }
    SUBCASE("with --assign-nsids")
    {
        run_ok({"ip", "netns", "add", "quiet2"});
        watcher s({"--watch-links", "--assign-nsids"});
        const auto q = s.ns_id_of("quiet2");
        REQUIRE(eventually(
            [&]
            {
                for (const auto& [nsid, name] : ip_list_id())
                    if (name == std::optional<std::string>("quiet2"))
                        return true;
                return false;
            },
            15000ms));
        ws_client ws(s.d.where(), "/api/v1/events?types=link,address");
        REQUIRE(ws.ok());
        REQUIRE(ws.read());
        run_ok({"ip", "-n", "quiet2", "link", "set", "lo", "up"});
        std::vector<json> seen;
        auto up = wait_for(ws, seen,
                           link_event(q, "changed", "lo",
                                      [](const json& l) { return has_flag(l["flags"], "UP"); }));
        REQUIRE(up);
        check_like_ip((*up)["link"], ip_link("quiet2", "lo"));
        // A namespace made after the start gets one too, and is heard.
        run_ok({"ip", "netns", "add", "late"});
        const auto late = s.ns_id_of("late");
        REQUIRE(eventually(
            [&]
            {
                for (const auto& [nsid, name] : ip_list_id())
                    if (name == std::optional<std::string>("late"))
                        return true;
                return false;
            },
            15000ms));
        run_ok({"ip", "-n", "late", "addr", "add", "fd00:5::1/64", "dev", "lo", "nodad"});
        REQUIRE(wait_for(ws, seen, address_event(late, "added", "fd00:5::1")));
    }
}

TEST_CASE("link events: after the listener overruns, every namespace is read again and nothing "
          "is missing")
{
    run_ok({"ip", "netns", "add", "a"});
    run_ok({"ip", "netns", "set", "a", "auto"});
    // A listener buffer of a few notifications (fault injection), and a burst of 300 veth
    // pairs while netnsd is stopped: the kernel drops notifications, netnsd must notice and
    // read a again.
    netnsd_process d({"--watch-links"}, {}, netnsd_binary(),
                     {"NETNSD_TEST_LINK_RECEIVE_BUFFER=4096"});
    INFO(d.log());
    REQUIRE(d.ready());
    REQUIRE(eventually(
        [&]
        {
            const auto e = get_json(d.where(), "/api/v1/netns/a");
            return e.is_object() && e.contains("nsid") && e["nsid"].is_number();
        },
        15000ms));
    const auto a = get_json(d.where(), "/api/v1/netns/a")["ns_id"].get<std::uint64_t>();
    ws_client ws(d.where(), "/api/v1/events?types=link");
    REQUIRE(ws.ok());
    REQUIRE(ws.read());
    std::string batch;
    for (int i = 0; i < 300; ++i)
        batch +=
            "link add d" + std::to_string(i) + " type veth peer name p" + std::to_string(i) + "\n";
    // netnsd stopped meanwhile: the notifications of the burst cannot all fit.
    d.signal(SIGSTOP);
    const auto r = run({"bash", "-c", "printf '" + batch + "' | ip -n a -batch -"});
    d.signal(SIGCONT);
    REQUIRE(r.exit_code == 0);
    // Every link ip shows in a, as an added event (the overrun's re-read makes those the
    // kernel dropped).
    std::set<std::string> want;
    for (const auto& l : ip_json({"-n", "a", "-j", "link"}))
        if (l["ifname"] != "lo")
            want.insert(l["ifname"].get<std::string>());
    REQUIRE(want.size() == 600);
    std::set<std::string> added;
    std::vector<json> seen;
    const std::function<bool(const json&)> all_there = [&](const json& e)
    {
        if (e["type"] == "link" && e["ns_id"] == a && e["action"] == "added")
            added.insert(e["link"]["name"].get<std::string>());
        return added == want;
    };
    CHECK(wait_for(ws, seen, all_there, 60000ms));
    CHECK(added.size() == want.size());
    const auto metrics = http_get(d.where(), "/metrics");
    REQUIRE(metrics);
    INFO(metrics->body);
    CHECK(metrics->body.find("netnsd_resyncs_total{reason=\"link_overrun\"} 0") ==
          std::string::npos);
    CHECK(metrics->body.find("netnsd_resyncs_total{reason=\"link_overrun\"}") != std::string::npos);
}

TEST_CASE("link events: 200 namespaces wired at once are all heard, seeded a bounded number "
          "per turn")
{
    watcher s({"--watch-links"});
    ws_client ws(s.d.where(), "/api/v1/events?types=link");
    REQUIRE(ws.ok());
    REQUIRE(ws.read());
    // More than link_watch::namespaces_per_turn (64) at once: each gets an nsid from its veth to
    // netnsd's namespace, and is seeded over several turns with an added event for its eth0.
    constexpr int n = 200;
    std::string batch;
    for (int i = 0; i < n; ++i)
    {
        const auto name = "w" + std::to_string(i);
        batch += "netns add " + name + "\nlink add h" + std::to_string(i) +
                 " type veth peer name eth0 netns " + name + "\n";
    }
    const auto r = run({"bash", "-c", "printf '" + batch + "' | ip -batch -"});
    REQUIRE(r.exit_code == 0);
    std::set<std::uint64_t> heard;
    std::vector<json> seen;
    const std::function<bool(const json&)> all_there = [&](const json& e)
    {
        // Only the w namespaces have an eth0 in the sandbox.
        if (e["type"] == "link" && e["action"] == "added" && e["link"]["name"] == "eth0")
            heard.insert(e["ns_id"].get<std::uint64_t>());
        return heard.size() == n;
    };
    CHECK(wait_for(ws, seen, all_there, 60000ms));
    CHECK(heard.size() == n);
}

TEST_CASE("without --watch-links netnsd has no link listener and sends no link events")
{
    run_ok({"ip", "netns", "add", "a"});
    run_ok({"ip", "netns", "set", "a", "auto"});
    {
        watcher s({});
        CHECK(link_listeners(s.d.pid()) == 0);
        ws_client ws(s.d.where(), "/api/v1/events?types=link,address,add");
        REQUIRE(ws.ok());
        REQUIRE(ws.read());
        run_ok({"ip", "-n", "a", "link", "set", "lo", "up"});
        run_ok({"ip", "netns", "add", "marker"});
        auto first = ws.read(15000ms);
        REQUIRE(first);
        CHECK((*first)["type"] == "add");
        const auto metrics = http_get(s.d.where(), "/metrics");
        REQUIRE(metrics);
        CHECK(metrics->body.find("netnsd_events_total{type=\"link\"} 0") != std::string::npos);
    }
    // The check can fail: with the flag, the listener is there.
    watcher s({"--watch-links"});
    CHECK(link_listeners(s.d.pid()) == 1);
}
