// GET /api/v1/netns/{name}/links, /api/v1/namespaces/{ns_id}/links and /api/v1/topology from
// the real netnsd, in the sandbox, against `ip`: namespaces wired with veth pairs to netnsd's
// namespace and to each other, a bridge with a veth and a vxlan as ports, addresses of both
// families, counters after a ping, a namespace without an nsid (read through setns, giving no
// nsid to anyone), and the topology's edges against the wiring made here.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "support/oracle.hpp"
#include "support/process.hpp"

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

// a: veth h0 (here, netnsd's namespace) - a0; veth ab - ba (b); bridge br0 with ports ab and
// vx0 (vxlan); addresses of both families. b: ba. c: a bridge and an address, wired to
// nothing (so nothing gives it an nsid).
void wire()
{
    run_ok({"ip", "netns", "add", "a"});
    run_ok({"ip", "netns", "add", "b"});
    run_ok({"ip", "netns", "add", "c"});
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
    for (const char* dev : {"lo", "ba"})
        run_ok({"ip", "-n", "b", "link", "set", dev, "up"});
    run_ok({"ip", "link", "set", "h0", "up"});
    run_ok({"ip", "addr", "add", "10.1.0.1/24", "dev", "h0"});
    run_ok({"ip", "-n", "a", "addr", "add", "10.1.0.2/24", "dev", "a0"});
    run_ok({"ip", "-n", "a", "addr", "add", "fd00:1::2/64", "dev", "a0", "nodad"});
    run_ok({"ip", "-n", "a", "addr", "add", "10.2.0.1/24", "dev", "br0", "label", "br0:x"});
    run_ok({"ip", "-n", "b", "addr", "add", "10.2.0.2/24", "dev", "ba"});
    run_ok({"ip", "-n", "b", "addr", "add", "fd00:2::2/64", "dev", "ba", "nodad"});
    run_ok({"ip", "-n", "c", "link", "add", "br9", "type", "bridge"});
    run_ok({"ip", "-n", "c", "link", "set", "lo", "up"});
    run_ok({"ip", "-n", "c", "addr", "add", "fd00:9::1/64", "dev", "lo"});
}

struct started
{
    netnsd_process d;
    started() : d(std::vector<std::string>{})
    {
        INFO(d.log());
        REQUIRE(d.ready());
        for (const char* name : {"a", "b", "c"})
            REQUIRE(eventually([&] { return api_entry(d.where(), name).has_value(); }, 15000ms));
    }
    json get(const std::string& target, unsigned expect = 200)
    {
        unsigned status = 0;
        auto body = get_json(d.where(), target, &status);
        INFO(target, " ", body.dump());
        CHECK(status == expect);
        return body;
    }
};

std::string upper(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
    return s;
}

// netnsd's own namespace in the inventory (its first /proc sweep finds it, on a worker).
json self_namespace(started& s)
{
    json self;
    REQUIRE(eventually(
        [&]
        {
            const auto all = get_json(s.d.where(), "/api/v1/namespaces");
            if (all.is_object())
                for (const auto& n : all["namespaces"])
                    if (n["is_self"] == true)
                        self = n;
            return self.is_object();
        },
        15000ms));
    return self;
}

std::uint64_t ns_id_of(started& s, const std::string& name)
{
    return s.get("/api/v1/netns/" + name)["ns_id"].get<std::uint64_t>();
}

// The body's links against `ip -n ns -j -d link` and `ip -n ns -j addr`, field by field.
void check_like_ip(const json& body, const std::string& ns)
{
    const auto links = ip_json({"-n", ns, "-j", "-d", "link"});
    const auto addrs = ip_json({"-n", ns, "-j", "addr"});
    REQUIRE(body["links"].size() == links.size());
    for (std::size_t i = 0; i < links.size(); ++i)
    {
        const auto& want = links[i];
        const auto& got = body["links"][i];
        INFO(ns, ": ", got.dump(), "\nip: ", want.dump());
        CHECK(got["ifindex"] == want["ifindex"]);
        CHECK(got["name"] == want["ifname"]);
        const json kind = want.contains("linkinfo") && want["linkinfo"].contains("info_kind")
                              ? want["linkinfo"]["info_kind"]
                              : json(nullptr);
        CHECK(got["kind"] == kind);
        CHECK(upper(got["state"].get<std::string>()) == want["operstate"]);
        CHECK(got["mtu"] == want["mtu"]);
        CHECK(got["mac"] == want["address"]);
        // ip leaves RUNNING out and adds NO-CARRIER (not a flag: UP without LOWER_UP).
        std::set<std::string> flags;
        for (const auto& f : got["flags"])
            if (f != "RUNNING")
                flags.insert(f.get<std::string>());
        std::set<std::string> ip_flags;
        for (const auto& f : want["flags"])
            if (f != "NO-CARRIER")
                ip_flags.insert(f.get<std::string>());
        CHECK(flags == ip_flags);
        if (want.contains("master"))
            CHECK(got["master"]["name"] == want["master"]);
        else
            CHECK(got["master"].is_null());
        std::vector<std::tuple<std::string, std::string, int, std::string>> mine, theirs;
        for (const auto& a : got["addresses"])
            mine.emplace_back(a["family"], a["address"], a["prefixlen"].get<int>(), a["scope"]);
        for (const auto& l : addrs)
            if (l["ifindex"] == want["ifindex"])
                for (const auto& a : l["addr_info"])
                    theirs.emplace_back(a["family"], a["local"], a["prefixlen"].get<int>(),
                                        a["scope"]);
        std::sort(mine.begin(), mine.end());
        std::sort(theirs.begin(), theirs.end());
        CHECK(mine == theirs);
        CHECK(got["counters"].is_object());
    }
}

json link_named(const json& body, const std::string& name)
{
    for (const auto& l : body["links"])
        if (l["name"] == name)
            return l;
    return nullptr;
}

} // namespace

TEST_CASE("links, addresses and peers of a namespace equal ip -d link and ip addr")
{
    wire();
    started s;
    const auto body = s.get("/api/v1/netns/a/links");
    CHECK(body["read_by"] == "nsid");
    CHECK(body["ns_id"] == ns_id_of(s, "a"));
    CHECK(body["names"] == json::array({"a"}));
    check_like_ip(body, "a");

    // a0's peer is h0 in netnsd's namespace; ab's is ba in b: as `ip` says from each side.
    const auto self = self_namespace(s);
    const auto h0 = ip_json({"-j", "link", "show", "h0"})[0];
    const auto a0 = link_named(body, "a0");
    CHECK(a0["peer"] == json::object({{"ns_id", self["ns_id"]},
                                      {"netns", nullptr},
                                      {"ifindex", h0["ifindex"]},
                                      {"ifname", "h0"}}));
    const auto ba = ip_json({"-n", "b", "-j", "link", "show", "ba"})[0];
    const auto ab = link_named(body, "ab");
    CHECK(ab["peer"] == json::object({{"ns_id", ns_id_of(s, "b")},
                                      {"netns", "b"},
                                      {"ifindex", ba["ifindex"]},
                                      {"ifname", "ba"}}));
    CHECK(ab["master"]["name"] == "br0");
    CHECK(link_named(body, "vx0")["kind"] == "vxlan");
    CHECK(link_named(body, "br0")["addresses"][0]["label"] == "br0:x");

    // b from its own side, and netnsd's own namespace by ns_id: the other ends.
    const auto bb = s.get("/api/v1/netns/b/links");
    check_like_ip(bb, "b");
    CHECK(link_named(bb, "ba")["peer"]["ifname"] == "ab");
    CHECK(link_named(bb, "ba")["peer"]["netns"] == "a");
    const auto own =
        s.get("/api/v1/namespaces/" + std::to_string(self["ns_id"].get<long>()) + "/links");
    CHECK(link_named(own, "h0")["peer"]["netns"] == "a");
    CHECK(link_named(own, "h0")["peer"]["ifname"] == "a0");
    // The same namespace by ns_id as by name.
    const auto by_id = s.get("/api/v1/namespaces/" + std::to_string(ns_id_of(s, "a")) + "/links");
    CHECK(by_id["links"].size() == body["links"].size());
}

TEST_CASE("counters equal ip -s link at a quiet moment after a ping between two namespaces")
{
    wire();
    started s;
    run_ok({"ip", "netns", "exec", "a", "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.2.0.2"});
    std::string last;
    // A packet may still come (IPv6 neighbour discovery): compare when ip shows the same
    // counters before and after the answer, and the answer shows them too.
    const bool equal = eventually(
        [&]
        {
            const auto before = ip_json({"-n", "a", "-s", "-j", "link"});
            const auto body = get_json(s.d.where(), "/api/v1/netns/a/links");
            const auto after = ip_json({"-n", "a", "-s", "-j", "link"});
            last = body.dump() + "\nip: " + before.dump();
            if (before != after || !body.contains("links") || body["links"].size() != before.size())
                return false;
            for (std::size_t i = 0; i < before.size(); ++i)
            {
                const auto& st = before[i]["stats64"];
                const auto& c = body["links"][i]["counters"];
                for (const char* dir : {"rx", "tx"})
                    for (const char* what : {"bytes", "packets", "errors", "dropped"})
                        if (c[std::string(dir) + "_" + what] != st[dir][what])
                            return false;
            }
            return true;
        },
        30000ms);
    INFO(last);
    CHECK(equal);
    const auto ab = link_named(s.get("/api/v1/netns/a/links"), "ab");
    CHECK(ab["counters"]["tx_packets"].get<int>() >= 3); // not a comparison of zeros
}

TEST_CASE("a namespace without an nsid is read through setns, and ip netns list-id is "
          "unchanged")
{
    wire();
    started s;
    const auto before = ip_list_id();
    const auto inside_before = run_ok({"ip", "-n", "c", "netns", "list-id"});
    REQUIRE(s.get("/api/v1/netns/c")["nsid"].is_null());
    const auto body = s.get("/api/v1/netns/c/links");
    CHECK(body["read_by"] == "setns");
    CHECK(body["nsid"].is_null());
    check_like_ip(body, "c");
    CHECK(ip_list_id() == before);
    CHECK(run_ok({"ip", "-n", "c", "netns", "list-id"}) == inside_before);
    CHECK(s.get("/api/v1/netns/c")["nsid"].is_null());
}

TEST_CASE("the topology's nodes and edges are the wiring the test made")
{
    wire();
    started s;
    const auto body = s.get("/api/v1/topology");
    const auto self = self_namespace(s)["ns_id"].get<std::uint64_t>();
    const std::map<std::uint64_t, std::string> names = {{self, "<netnsd>"},
                                                        {ns_id_of(s, "a"), "a"},
                                                        {ns_id_of(s, "b"), "b"},
                                                        {ns_id_of(s, "c"), "c"}};
    auto who = [&](const json& end)
    {
        const auto it = names.find(end["ns_id"].get<std::uint64_t>());
        return (it == names.end() ? std::string("?") : it->second) + ":" +
               end["ifname"].get<std::string>();
    };
    // Only what this test made: netnsd also finds the host's other namespaces by their
    // processes, and may read them too.
    auto known = [&](const json& node_or_end)
    {
        return names.count(node_or_end["ns_id"].get<std::uint64_t>()) != 0;
    };
    std::set<std::string> bridges, namespaces;
    std::map<std::string, std::string> bridge_ids;
    for (const auto& n : body["nodes"])
    {
        if (!known(n))
            continue;
        if (n["type"] == "bridge")
        {
            const auto name =
                names.at(n["ns_id"].get<std::uint64_t>()) + ":" + n["ifname"].get<std::string>();
            bridges.insert(name);
            bridge_ids[n["id"].get<std::string>()] = name;
        }
        else
        {
            CHECK(n["read"] == true);
            namespaces.insert(names.at(n["ns_id"].get<std::uint64_t>()));
        }
    }
    CHECK(namespaces == std::set<std::string>{"<netnsd>", "a", "b", "c"});
    CHECK(bridges == std::set<std::string>{"a:br0", "c:br9"});
    std::set<std::string> edges;
    for (const auto& e : body["edges"])
    {
        if (e["type"] == "veth")
        {
            if (!known(e["ends"][0]) || !known(e["ends"][1]))
                continue;
            auto x = who(e["ends"][0]);
            auto y = who(e["ends"][1]);
            if (y < x)
                std::swap(x, y);
            edges.insert("veth " + x + " " + y);
        }
        else if (known(e["port"]))
            edges.insert("port " + who(e["port"]) + " " +
                         bridge_ids[e["bridge"].get<std::string>()]);
    }
    CHECK(edges == std::set<std::string>{"veth <netnsd>:h0 a:a0", "veth a:ab b:ba",
                                         "port a:ab a:br0", "port a:vx0 a:br0"});
}

TEST_CASE("links of a name that is not there is 404, of an unknown ns_id 404, of a bad one 400")
{
    wire();
    started s;
    s.get("/api/v1/netns/nope/links", 404);
    s.get("/api/v1/namespaces/999999999999/links", 404);
    s.get("/api/v1/namespaces/x/links", 400);
}
