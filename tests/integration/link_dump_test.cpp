// core/kernel/link_dump on the real kernel, in the sandbox, with `ip` as the oracle: another
// namespace's links and addresses dumped by nsid without entering it, the strict socket that
// IFA_TARGET_NETNSID needs, the setns path for a namespace without an nsid (which gives
// nobody a new nsid), and what a dump by nsid does to the nsid tables.
#include <algorithm>
#include <array>
#include <fcntl.h>
#include <functional>
#include <linux/if.h>
#include <map>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "core/errc.hpp"
#include "core/kernel/link_dump.hpp"
#include "core/kernel/link_gather.hpp"
#include "core/kernel/nsfs.hpp"
#include "core/kernel/nsid_netlink.hpp"
#include "core/kernel/unique_fd.hpp"

#include "support/oracle.hpp"
#include "support/process.hpp"

namespace
{

using namespace netnsd::test;
using netnsd::core::nsid_t;
using netnsd::core::kernel::address_record;
using netnsd::core::kernel::link_dumper;
using netnsd::core::kernel::link_record;
using netnsd::core::kernel::netns_contents;
using netnsd::core::kernel::nsid_client;
using netnsd::core::kernel::unique_fd;
using json = nlohmann::json;

json ip_json(const std::vector<std::string>& argv)
{
    auto all = argv;
    all.insert(all.begin(), "ip");
    return json::parse(run_ok(all));
}

// The wiring every test here starts from: a (nsid in the sandbox: a veth to it), with a veth
// to b, a bridge whose ports are that veth and a vxlan, and addresses of both families.
void wire()
{
    run_ok({"ip", "netns", "add", "a"});
    run_ok({"ip", "netns", "add", "b"});
    run_ok({"ip", "link", "add", "h0", "type", "veth", "peer", "name", "a0", "netns", "a"});
    run_ok(
        {"ip", "-n", "a", "link", "add", "ab", "type", "veth", "peer", "name", "ba", "netns", "b"});
    run_ok({"ip", "-n", "a", "link", "add", "br0", "type", "bridge"});
    run_ok({"ip", "-n", "a", "link", "set", "ab", "master", "br0"});
    run_ok({"ip", "-n", "a", "link", "add", "vx0", "type", "vxlan", "id", "42", "dstport", "4789",
            "local", "10.1.0.2"});
    run_ok({"ip", "-n", "a", "link", "set", "vx0", "master", "br0"});
    for (const char* dev : {"lo", "a0", "ab", "br0", "vx0"})
        run_ok({"ip", "-n", "a", "link", "set", dev, "up"});
    run_ok({"ip", "link", "set", "h0", "up"});
    run_ok({"ip", "-n", "a", "addr", "add", "10.1.0.2/24", "dev", "a0"});
    run_ok({"ip", "-n", "a", "addr", "add", "fd00:1::2/64", "dev", "a0", "nodad"});
    run_ok({"ip", "-n", "a", "addr", "add", "192.168.7.1/24", "dev", "br0", "label", "br0:x"});
    run_ok({"ip", "addr", "add", "10.1.0.1/24", "dev", "h0"});
}

// The nsid the sandbox (netnsd's namespace here) has for the namespace at `path`; nullopt if
// none.
std::optional<nsid_t> our_nsid(const std::string& path)
{
    nsid_client client;
    REQUIRE_FALSE(client.open());
    const unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    std::error_code ec;
    const auto nsid = client.nsid_of_fd(fd.get(), ec);
    REQUIRE_FALSE(ec);
    return nsid;
}

std::string mac_text(const std::vector<std::uint8_t>& mac)
{
    std::string out;
    static constexpr char hex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < mac.size(); ++i)
    {
        if (i != 0)
            out += ':';
        out += hex[mac[i] >> 4];
        out += hex[mac[i] & 0xf];
    }
    return out;
}

std::string operstate_text(std::uint8_t state)
{
    static const char* const names[] = {"UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN",
                                        "TESTING", "DORMANT",    "UP"};
    return state < 7 ? names[state] : std::to_string(state);
}

// What `ip -j -d link` and `ip -j addr` of `ns` show, compared with a dump, field by field.
// `peer_name` (when given) turns a link_netnsid of the dump into the name of the namespace it
// means ("" for netnsd's own), to compare with the name ip gives ip's (the target's) nsid.
void check_equal(const netns_contents& got, const std::string& ns,
                 const std::function<std::string(nsid_t)>& peer_name)
{
    const auto links = ip_json({"-n", ns, "-j", "-d", "link"});
    const auto addrs = ip_json({"-n", ns, "-j", "addr"});
    std::map<int, std::string> ip_peer_names;
    for (const auto& row : ip_json({"-n", ns, "-j", "netns", "list-id"}))
        ip_peer_names[row["nsid"].get<int>()] =
            row.contains("name") ? row["name"].get<std::string>() : "";
    REQUIRE(got.links.size() == links.size());
    std::map<int, std::string> names;
    for (const auto& l : got.links)
        names[l.ifindex] = l.name;
    for (std::size_t i = 0; i < links.size(); ++i)
    {
        const auto& want = links[i];
        const link_record& l = got.links[i];
        INFO(ns, " link ", want.dump());
        CHECK(l.ifindex == want["ifindex"].get<int>());
        CHECK(l.name == want["ifname"].get<std::string>());
        const auto kind = want.contains("linkinfo") && want["linkinfo"].contains("info_kind")
                              ? want["linkinfo"]["info_kind"].get<std::string>()
                              : std::string();
        CHECK(l.kind == kind);
        CHECK(operstate_text(l.operstate) == want["operstate"].get<std::string>());
        CHECK(l.mtu == want["mtu"].get<std::uint32_t>());
        CHECK(mac_text(l.mac) == want["address"].get<std::string>());
        CHECK(((l.flags & IFF_UP) != 0) ==
              (std::find(want["flags"].begin(), want["flags"].end(), "UP") != want["flags"].end()));
        if (want.contains("master"))
        {
            REQUIRE(l.master);
            CHECK(names[*l.master] == want["master"].get<std::string>());
        }
        else
            CHECK_FALSE(l.master);
        if (want.contains("link_netnsid"))
        {
            REQUIRE(l.link_netnsid);
            REQUIRE(l.link);
            CHECK(*l.link == want["link_index"].get<int>());
            if (peer_name)
                CHECK(peer_name(*l.link_netnsid) ==
                      ip_peer_names.at(want["link_netnsid"].get<int>()));
        }
        else
            CHECK_FALSE(l.link_netnsid);
        CHECK(l.counters);
    }
    std::size_t count = 0;
    for (const auto& link : addrs)
        count += link["addr_info"].size();
    REQUIRE(got.addresses.size() == count);
    for (const auto& link : addrs)
        for (const auto& a : link["addr_info"])
        {
            INFO(ns, " address ", a.dump());
            const auto match =
                std::find_if(got.addresses.begin(), got.addresses.end(),
                             [&](const address_record& r)
                             {
                                 // Two links may share a link-local address
                                 // (a bridge takes its first port's MAC).
                                 return r.address == a["local"] && r.ifindex == link["ifindex"];
                             });
            REQUIRE(match != got.addresses.end());
            CHECK(match->family == (a["family"] == "inet" ? AF_INET : AF_INET6));
            CHECK(match->prefix_len == a["prefixlen"].get<int>());
            CHECK(match->ifindex == link["ifindex"].get<int>());
            CHECK(match->label == (a.contains("label") ? a["label"].get<std::string>() : ""));
            const std::map<std::string, std::uint8_t> scopes = {
                {"global", 0}, {"site", 200}, {"link", 253}, {"host", 254}};
            CHECK(match->scope == scopes.at(a["scope"].get<std::string>()));
        }
}

// A dump's counters against the "stats64" of `ip -s -j link`.
bool same_counters(const netnsd::core::kernel::link_counters& c, const json& s)
{
    return c.rx_bytes == s["rx"]["bytes"] && c.tx_bytes == s["tx"]["bytes"] &&
           c.rx_packets == s["rx"]["packets"] && c.tx_packets == s["tx"]["packets"] &&
           c.rx_errors == s["rx"]["errors"] && c.tx_errors == s["tx"]["errors"] &&
           c.rx_dropped == s["rx"]["dropped"] && c.tx_dropped == s["tx"]["dropped"];
}

std::string thread_netns()
{
    std::array<char, 64> buf{};
    const auto n = ::readlink("/proc/thread-self/ns/net", buf.data(), buf.size() - 1);
    REQUIRE(n > 0);
    return {buf.data(), static_cast<std::size_t>(n)};
}

} // namespace

TEST_CASE("links and addresses of a namespace dumped by nsid equal ip -d link and ip addr")
{
    wire();
    const auto a = our_nsid("/run/netns/a");
    REQUIRE(a);
    link_dumper dumper;
    REQUIRE_FALSE(dumper.open());
    netns_contents got;
    REQUIRE_FALSE(dumper.dump(*a, got));
    const auto self = our_nsid("/proc/self/ns/net"); // the dump gave netnsd's namespace one
    REQUIRE(self);
    check_equal(got, "a",
                [&](nsid_t nsid) -> std::string
                {
                    if (nsid == *self)
                        return "";
                    for (const auto& [id, name] : ip_list_id())
                        if (id == nsid)
                            return name.value_or("?");
                    return "?";
                });
    // The peers as netnsd's namespace numbers them: a0's is h0 here, ab's is ba in b.
    const auto& a0 = got.links[1];
    CHECK(a0.link_netnsid == *self);
    const auto h0 = ip_json({"-j", "link", "show", "h0"});
    CHECK(a0.link == h0[0]["ifindex"].get<int>());
    const auto b = our_nsid("/run/netns/b");
    REQUIRE(b); // given by the dump: see the next test
    CHECK(got.links[2].link_netnsid == *b);
}

TEST_CASE("a dump by nsid gives netnsd's namespace an nsid for itself and for the peers' "
          "namespaces")
{
    wire();
    // b has an nsid in a (the veth between them) but none in the sandbox, nor has the sandbox
    // one for itself, before the dump.
    CHECK_FALSE(our_nsid("/run/netns/b"));
    CHECK_FALSE(our_nsid("/proc/self/ns/net"));
    const auto before = ip_list_id();
    link_dumper dumper;
    REQUIRE_FALSE(dumper.open());
    netns_contents got;
    REQUIRE_FALSE(dumper.dump(*our_nsid("/run/netns/a"), got));
    CHECK(our_nsid("/run/netns/b"));
    CHECK(our_nsid("/proc/self/ns/net"));
    CHECK(ip_list_id().size() == before.size() + 2);
}

TEST_CASE("an address dump by nsid without NETLINK_GET_STRICT_CHK answers with netnsd's own "
          "addresses, and the dumper refuses it")
{
    wire();
    const auto a = our_nsid("/run/netns/a");
    REQUIRE(a);
    link_dumper dumper;
    REQUIRE_FALSE(dumper.open());
    REQUIRE_FALSE(dumper.set_strict(false));
    netns_contents got;
    CHECK(dumper.dump(*a, got) == netnsd::core::errc::protocol);

    // What the kernel sent: the sandbox's 10.1.0.1, not a's 10.1.0.2.
    std::array<std::byte, 64> req;
    const auto seq = dumper.next_seq();
    const auto len = netnsd::core::kernel::build_address_dump(req, seq, *a);
    netnsd::core::kernel::dump_datagram raw;
    REQUIRE_FALSE(dumper.dump_raw({req.data(), len}, seq, raw));
    std::vector<std::string> seen;
    for (const auto& r : raw.addresses)
        seen.push_back(r.address);
    CHECK(std::find(seen.begin(), seen.end(), "10.1.0.1") != seen.end());
    CHECK(std::find(seen.begin(), seen.end(), "10.1.0.2") == seen.end());

    // The same dump on a strict socket is a's.
    REQUIRE_FALSE(dumper.set_strict(true));
    REQUIRE_FALSE(dumper.dump(*a, got));
    check_equal(got, "a", nullptr);
}

TEST_CASE("a namespace without an nsid is dumped through a short setns, and no nsid table "
          "changes")
{
    run_ok({"ip", "netns", "add", "c"});
    run_ok({"ip", "-n", "c", "link", "add", "br9", "type", "bridge"});
    run_ok({"ip", "-n", "c", "link", "set", "lo", "up"});
    run_ok({"ip", "-n", "c", "addr", "add", "fd00:9::1/64", "dev", "lo"});
    REQUIRE_FALSE(our_nsid("/run/netns/c"));
    const auto before = ip_list_id();
    const auto inside_before = run_ok({"ip", "-n", "c", "netns", "list-id"});
    const auto home = thread_netns();

    link_dumper dumper;
    {
        const unique_fd fd(::open("/run/netns/c", O_RDONLY | O_CLOEXEC));
        REQUIRE(fd);
        REQUIRE_FALSE(dumper.open_in(fd.get()));
    }
    CHECK(thread_netns() == home); // back at once
    netns_contents got;
    REQUIRE_FALSE(dumper.dump(std::nullopt, got));
    dumper = link_dumper(); // closed: nothing of netnsd stays inside
    check_equal(got, "c", nullptr);
    CHECK(ip_list_id() == before);
    CHECK(run_ok({"ip", "-n", "c", "netns", "list-id"}) == inside_before);
    CHECK_FALSE(our_nsid("/run/netns/c"));
}

TEST_CASE("counters of a dump equal ip -s link at a quiet moment after a ping")
{
    wire();
    run_ok({"ip", "-n", "b", "link", "set", "ba", "up"});
    run_ok({"ip", "-n", "b", "link", "set", "lo", "up"});
    run_ok({"ip", "-n", "b", "addr", "add", "10.2.0.2/24", "dev", "ba"});
    run_ok({"ip", "-n", "a", "addr", "add", "10.2.0.1/24", "dev", "br0"});
    run_ok({"ip", "netns", "exec", "a", "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.2.0.2"});
    const auto a = our_nsid("/run/netns/a");
    REQUIRE(a);
    link_dumper dumper;
    REQUIRE_FALSE(dumper.open());
    // IPv6 neighbour discovery may still send a packet now and then: compare in a moment when
    // ip shows the same counters before and after the dump.
    bool equal = false;
    std::string last;
    REQUIRE(eventually(
        [&]
        {
            const auto first = ip_json({"-n", "a", "-s", "-j", "link"});
            netns_contents got;
            REQUIRE_FALSE(dumper.dump(*a, got));
            const auto second = ip_json({"-n", "a", "-s", "-j", "link"});
            if (first != second)
                return false;
            equal = got.links.size() == first.size();
            for (std::size_t i = 0; equal && i < first.size(); ++i)
                equal = same_counters(*got.links[i].counters, first[i]["stats64"]);
            last = first.dump();
            return true;
        },
        std::chrono::milliseconds(20000)));
    INFO(last);
    CHECK(equal);
    // The ping moved packets over ab: the comparison was not of zeros.
    netns_contents got;
    REQUIRE_FALSE(dumper.dump(*a, got));
    CHECK(got.links[2].name == "ab");
    CHECK(got.links[2].counters->tx_packets >= 3);
}

namespace
{

// ip's view of the sandbox's own links: ifindex -> (name, operstate).
std::map<int, std::pair<std::string, std::string>> own_ip_links(const std::string& netns = {})
{
    std::map<int, std::pair<std::string, std::string>> out;
    const auto links =
        netns.empty() ? ip_json({"-j", "link"}) : ip_json({"-n", netns, "-j", "link"});
    for (const auto& l : links)
        out[l["ifindex"].get<int>()] = {l["ifname"].get<std::string>(),
                                        l["operstate"].get<std::string>()};
    return out;
}

std::map<int, std::pair<std::string, std::string>> as_ip_shows(const std::vector<link_record>& ls)
{
    std::map<int, std::pair<std::string, std::string>> out;
    for (const auto& l : ls)
        out[l.ifindex] = {l.name, operstate_text(l.operstate)};
    return out;
}

} // namespace

TEST_CASE("netnsd's own links: kept while its link group is quiet, counters fresh from "
          "RTM_GETSTATS, dumped again after any link change")
{
    wire();
    netnsd::core::kernel::own_links own;
    link_dumper here;
    REQUIRE_FALSE(here.open());
    std::vector<link_record> got;
    bool cached = true;
    REQUIRE_FALSE(own.read(here, got, cached));
    CHECK_FALSE(cached); // the first read dumps
    CHECK(as_ip_shows(got) == own_ip_links());
    // Nothing changed: names and states from the last dump (a late notification of the wiring,
    // such as h0's carrier, means one more dump first).
    REQUIRE(eventually(
        [&]
        {
            REQUIRE_FALSE(own.read(here, got, cached));
            return cached;
        },
        std::chrono::milliseconds(5000)));
    CHECK(as_ip_shows(got) == own_ip_links());

    // The counters are fresh: equal to ip -s link at a quiet moment after a ping.
    {
        run_ok({"ping", "-c", "3", "-i", "0.2", "-W", "5", "10.1.0.2"});
        bool equal = false;
        std::string last;
        REQUIRE(eventually(
            [&]
            {
                const auto first = ip_json({"-s", "-j", "link"});
                REQUIRE_FALSE(own.read(here, got, cached));
                const auto second = ip_json({"-s", "-j", "link"});
                if (first != second || !cached)
                    return false;
                std::map<int, netnsd::core::kernel::link_counters> mine;
                for (const auto& l : got)
                    mine[l.ifindex] = *l.counters;
                equal = mine.size() == first.size();
                for (const auto& l : first)
                    equal = equal && same_counters(mine[l["ifindex"].get<int>()], l["stats64"]);
                last = first.dump();
                return true;
            },
            std::chrono::milliseconds(20000)));
        INFO("ip -s -j link: ", last);
        CHECK(equal);
        const auto h0 = std::find_if(got.begin(), got.end(),
                                     [](const link_record& l) { return l.name == "h0"; });
        REQUIRE(h0 != got.end());
        CHECK(h0->counters->rx_packets >= 3);
    }
    // A state change, a new link and a removed one are in the very next read.
    {
        run_ok({"ip", "link", "set", "h0", "down"});
        REQUIRE_FALSE(own.read(here, got, cached));
        CHECK_FALSE(cached);
        CHECK(as_ip_shows(got) == own_ip_links());
        run_ok({"ip", "link", "add", "h1", "type", "veth", "peer", "name", "a1", "netns", "a"});
        REQUIRE_FALSE(own.read(here, got, cached));
        CHECK_FALSE(cached);
        CHECK(as_ip_shows(got) == own_ip_links());
        CHECK(std::any_of(got.begin(), got.end(),
                          [](const link_record& l) { return l.name == "h1"; }));
        run_ok({"ip", "link", "del", "h1"});
        REQUIRE_FALSE(own.read(here, got, cached));
        CHECK_FALSE(cached);
        CHECK(as_ip_shows(got) == own_ip_links());
        CHECK(std::none_of(got.begin(), got.end(),
                           [](const link_record& l) { return l.name == "h1"; }));
    }
}

TEST_CASE("a gathering thread goes from one entered namespace to the next, reads each one's "
          "own links, and is back in its namespace for its own links, a dump by nsid and the end")
{
    wire(); // a has an nsid in the sandbox; b and the c1..c3 below have none
    using netnsd::core::kernel::gather_target;
    std::vector<std::string> entered;
    for (const char* name : {"c1", "c2", "c3"})
    {
        run_ok({"ip", "netns", "add", name});
        run_ok({"ip", "-n", name, "link", "add", std::string("br-") + name, "type", "bridge"});
        entered.emplace_back(name);
    }
    run_ok({"ip", "-n", "c2", "link", "set", "lo", "up"});
    const auto a = our_nsid("/run/netns/a");
    REQUIRE(a);
    auto inside = [](const std::string& name)
    {
        gather_target t;
        t.how = gather_target::way::inside;
        t.where.paths = {"/run/netns/" + name};
        const unique_fd fd(::open(t.where.paths.front().c_str(), O_RDONLY | O_CLOEXEC));
        REQUIRE(fd);
        const auto id = netnsd::core::kernel::identify_netns(fd.get());
        REQUIRE(id);
        t.where.ns_id = id->ns_id;
        return t;
    };
    gather_target own;
    own.how = gather_target::way::own;
    gather_target by_nsid;
    by_nsid.how = gather_target::way::by_nsid;
    by_nsid.nsid = *a;
    // Entered, entered, own (back home first), entered, by nsid (home again), entered; and a
    // namespace that is not at the path it was located by (the thread stays where it was).
    auto moved = inside("c3");
    moved.where.ns_id += 1000000;
    const std::vector<gather_target> targets = {
        inside("b"), inside("c1"), own, inside("c2"), by_nsid, moved, inside("c3")};
    const auto home = thread_netns();
    const auto got = netnsd::core::kernel::gather_links(targets, 1);
    CHECK(thread_netns() == home);
    REQUIRE(got.size() == targets.size());
    const std::vector<std::string> oracle = {"b", "c1", "", "c2", "a", "", "c3"};
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        INFO("target ", i, " (", oracle[i].empty() ? "own" : oracle[i], ")");
        if (i == 5)
        {
            CHECK(got[i].ec == netnsd::core::errc::not_found);
            continue;
        }
        REQUIRE_FALSE(got[i].ec);
        CHECK(as_ip_shows(got[i].links) == own_ip_links(oracle[i]));
    }
    // Entering gives no nsid (b got one: the dump of a by nsid names ab's peer in b).
    for (const auto& name : entered)
        CHECK_FALSE(our_nsid("/run/netns/" + name));
}
