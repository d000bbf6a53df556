// --metrics-interfaces on the real netnsd, in the sandbox, with `ip` as the oracle: the counters
// equal `ip -s -j link` at a quiet moment after a ping between two namespaces (read by nsid, and
// one without an nsid entered), netnsd_network_up
// follows `ip link set down/up`, the cap keeps exactly the first interfaces, label values with
// odd bytes are escaped, 1000 namespaces (entered: netnsd's own nsid would come after theirs)
// pass `promtool check metrics`, and without the flag
// none of these families is there.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
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

const std::vector<std::string> counter_families = {
    "netnsd_network_receive_bytes_total",  "netnsd_network_receive_packets_total",
    "netnsd_network_receive_errs_total",   "netnsd_network_receive_drop_total",
    "netnsd_network_transmit_bytes_total", "netnsd_network_transmit_packets_total",
    "netnsd_network_transmit_errs_total",  "netnsd_network_transmit_drop_total"};

json ip_json(std::vector<std::string> argv)
{
    argv.insert(argv.begin(), "ip");
    return json::parse(run_ok(argv));
}

std::string scrape(const endpoint& where)
{
    const auto r = http_get(where, "/metrics");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    return r->body;
}

// The value of one series, by its exact name and labels; -1 when it is not there.
double value_of(const std::string& text, const std::string& series)
{
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(series + " "))
            return std::stod(line.substr(series.size() + 1));
    return -1;
}

std::string series(const std::string& family, const std::string& netns, const std::string& device)
{
    return family + "{netns=\"" + netns + "\",device=\"" + device + "\"}";
}

// The (netns, device) label values of every netnsd_network_up sample, in the text's order.
std::vector<std::pair<std::string, std::string>> interfaces_of(const std::string& text)
{
    std::vector<std::pair<std::string, std::string>> out;
    std::istringstream in(text);
    const std::string prefix = "netnsd_network_up{netns=\"";
    for (std::string line; std::getline(in, line);)
    {
        if (!line.starts_with(prefix))
            continue;
        const auto netns_end = line.find("\",device=\"");
        const auto device_end = line.find("\"} ");
        REQUIRE(netns_end != std::string::npos);
        REQUIRE(device_end != std::string::npos);
        out.emplace_back(line.substr(prefix.size(), netns_end - prefix.size()),
                         line.substr(netns_end + 10, device_end - netns_end - 10));
    }
    return out;
}

// a and b wired by a veth pair (ab - ba), a to netnsd's namespace too (h0 - a0), which gives
// it an nsid; b is given one with `ip netns set`. c has none.
void wire()
{
    for (const char* ns : {"a", "b", "c"})
        run_ok({"ip", "netns", "add", ns});
    run_ok({"ip", "link", "add", "h0", "type", "veth", "peer", "name", "a0", "netns", "a"});
    run_ok(
        {"ip", "-n", "a", "link", "add", "ab", "type", "veth", "peer", "name", "ba", "netns", "b"});
    run_ok({"ip", "netns", "set", "b", "auto"});
    for (const char* dev : {"lo", "a0", "ab"})
        run_ok({"ip", "-n", "a", "link", "set", dev, "up"});
    for (const char* dev : {"lo", "ba"})
        run_ok({"ip", "-n", "b", "link", "set", dev, "up"});
    run_ok({"ip", "link", "set", "h0", "up"});
    run_ok({"ip", "-n", "a", "addr", "add", "10.2.0.1/24", "dev", "ab"});
    run_ok({"ip", "-n", "b", "addr", "add", "10.2.0.2/24", "dev", "ba"});
}

struct started
{
    netnsd_process d;
    explicit started(std::vector<std::string> args = {"--metrics-interfaces"}) : d(std::move(args))
    {
        INFO(d.log());
        REQUIRE(d.ready());
    }
};

// The metrics of `ns` equal `ip -n ns -s -j link`, every counter and the state of every link.
bool equal_to_ip(const std::string& text, const std::string& ns, const json& links)
{
    for (const auto& l : links)
    {
        const auto dev = l["ifname"].get<std::string>();
        const auto& st = l["stats64"];
        const std::map<std::string, json> want = {
            {"receive_bytes", st["rx"]["bytes"]},  {"receive_packets", st["rx"]["packets"]},
            {"receive_errs", st["rx"]["errors"]},  {"receive_drop", st["rx"]["dropped"]},
            {"transmit_bytes", st["tx"]["bytes"]}, {"transmit_packets", st["tx"]["packets"]},
            {"transmit_errs", st["tx"]["errors"]}, {"transmit_drop", st["tx"]["dropped"]}};
        for (const auto& [what, value] : want)
            if (value_of(text, series("netnsd_network_" + what + "_total", ns, dev)) !=
                value.get<double>())
                return false;
        const double up = l["operstate"] == "UP" ? 1 : 0;
        if (value_of(text, series("netnsd_network_up", ns, dev)) != up)
            return false;
    }
    return true;
}

// netnsd's own namespace in the inventory, found by its first /proc sweep: its ns_id.
std::uint64_t self_ns_id(started& s)
{
    std::uint64_t id = 0;
    REQUIRE(eventually(
        [&]
        {
            const auto all = get_json(s.d.where(), "/api/v1/namespaces");
            if (all.is_object())
                for (const auto& n : all["namespaces"])
                    if (n["is_self"] == true)
                        id = n["ns_id"].get<std::uint64_t>();
            return id != 0;
        },
        15000ms));
    return id;
}

} // namespace

TEST_CASE("interface counters equal ip -s link at a quiet moment after a ping")
{
    wire();
    started s;
    REQUIRE(eventually([&] { return api_live(s.d.where())->size() == 3; }, 15000ms));
    run_ok({"ip", "netns", "exec", "a", "ping", "-c", "3", "-i", "0.2", "-W", "5", "10.2.0.2"});
    std::string last;
    // A packet may still come (IPv6 neighbour discovery), and a scrape's counters may be up to
    // a second old: compare when ip shows the same counters before and after the scrape.
    const bool equal = eventually(
        [&]
        {
            const auto a_before = ip_json({"-n", "a", "-s", "-j", "link"});
            const auto b_before = ip_json({"-n", "b", "-s", "-j", "link"});
            const auto text = scrape(s.d.where());
            const auto a_after = ip_json({"-n", "a", "-s", "-j", "link"});
            const auto b_after = ip_json({"-n", "b", "-s", "-j", "link"});
            last = text + "\nip a: " + a_before.dump() + "\nip b: " + b_before.dump();
            return a_before == a_after && b_before == b_after && equal_to_ip(text, "a", a_before) &&
                   equal_to_ip(text, "b", b_before);
        },
        30000ms);
    INFO(last);
    CHECK(equal);
    const auto text = scrape(s.d.where());
    // Not a comparison of zeros.
    CHECK(value_of(text, series("netnsd_network_transmit_packets_total", "a", "ab")) >= 3);
    CHECK(value_of(text, series("netnsd_network_receive_packets_total", "b", "ba")) >= 3);
    // c has no nsid in netnsd's namespace: read on a socket made inside it. The others by
    // nsid: netnsd's own nsid is the third of its table (after a's and b's), a short walk.
    CHECK(equal_to_ip(text, "c", ip_json({"-n", "c", "-s", "-j", "link"})));
    CHECK(value_of(text, series("netnsd_network_up", "c", "lo")) == 0);
    CHECK(value_of(text, "netnsd_network_nsid_walk") == 2);
    // (The host's namespaces that netnsd finds through their processes are entered too.)
    CHECK(value_of(text, "netnsd_network_namespaces_read{way=\"entered\"}") >= 1);
    CHECK(value_of(text, "netnsd_network_namespaces_read{way=\"nsid\"}") >= 3);
    // (Not `failed == 0`: a namespace of the host found through a process may go between the
    // model and the dump; the namespaces here are checked one by one.)
    CHECK(value_of(text, "netnsd_metrics_series_capped") == 0);
}

TEST_CASE("netnsd_network_up follows ip link set down and up")
{
    wire();
    started s;
    const auto up = series("netnsd_network_up", "a", "ab");
    auto ip_state = []
    {
        return ip_json({"-n", "a", "-j", "link", "show", "ab"})[0]["operstate"];
    };
    REQUIRE(eventually([&] { return value_of(scrape(s.d.where()), up) == 1; }, 15000ms));
    CHECK(ip_state() == "UP");
    run_ok({"ip", "-n", "a", "link", "set", "ab", "down"});
    CHECK(ip_state() == "DOWN");
    CHECK(eventually([&] { return value_of(scrape(s.d.where()), up) == 0; }, 15000ms));
    run_ok({"ip", "-n", "a", "link", "set", "ab", "up"});
    REQUIRE(eventually([&] { return ip_state() == "UP"; }, 15000ms));
    CHECK(eventually([&] { return value_of(scrape(s.d.where()), up) == 1; }, 15000ms));
}

TEST_CASE("netnsd's own interfaces: names kept between scrapes, a state change in the first "
          "scrape gathered after it")
{
    wire();
    started s;
    const auto own = "ns_id:" + std::to_string(self_ns_id(s));
    const auto up = series("netnsd_network_up", own, "h0");
    const std::string cached = "netnsd_network_own_links_cached";
    // Once h0 is up (its carrier comes a moment later), scrapes keep the names and states.
    REQUIRE(eventually(
        [&]
        {
            const auto text = scrape(s.d.where());
            return value_of(text, up) == 1 && value_of(text, cached) == 1;
        },
        15000ms));
    run_ok({"ip", "link", "set", "h0", "down"});
    // The text is kept 1 s: the next scrape after that gathers, and must see it.
    std::this_thread::sleep_for(1100ms);
    auto text = scrape(s.d.where());
    CHECK(value_of(text, up) == 0);
    CHECK(value_of(text, cached) == 0);
    CHECK(eventually([&] { return value_of(scrape(s.d.where()), cached) == 1; }, 15000ms));
    CHECK(value_of(scrape(s.d.where()), up) == 0);
    run_ok({"ip", "link", "set", "h0", "up"});
    CHECK(eventually([&] { return value_of(scrape(s.d.where()), up) == 1; }, 15000ms));
}

TEST_CASE("--metrics-max-series keeps exactly the first whole interfaces and says so")
{
    wire();
    // 9 series an interface: room for two, not a third.
    started s({"--metrics-interfaces", "--metrics-max-series=20"});
    const auto self = "ns_id:" + std::to_string(self_ns_id(s));
    // Every interface netnsd can read, from ip: a's, b's and netnsd's own namespace's.
    std::set<std::pair<std::string, std::string>> all;
    for (const auto& [ns, argv] : std::vector<std::pair<std::string, std::vector<std::string>>>{
             {"a", {"-n", "a", "-j", "link"}},
             {"b", {"-n", "b", "-j", "link"}},
             {"c", {"-n", "c", "-j", "link"}},
             {self, {"-j", "link"}}})
        for (const auto& l : ip_json(argv))
            all.emplace(ns, l["ifname"].get<std::string>());
    REQUIRE(all.size() > 2);
    const std::vector<std::pair<std::string, std::string>> first(all.begin(),
                                                                 std::next(all.begin(), 2));
    std::string text;
    CHECK(eventually(
        [&]
        {
            text = scrape(s.d.where());
            // The host's namespaces, found through their processes, are labelled "ns_id:N",
            // after these: they are dropped too.
            return value_of(text, "netnsd_metrics_interfaces_dropped{reason=\"series_cap\"}") >=
                   static_cast<double>(all.size() - 2);
        },
        15000ms));
    INFO(text);
    CHECK(interfaces_of(text) == first);
    CHECK(first.front() == std::pair<std::string, std::string>("a", "a0"));
    CHECK(value_of(text, "netnsd_metrics_series_capped") == 1);
    for (const auto& family : counter_families)
        CHECK(value_of(text, series(family, "b", "lo")) == -1);
}

TEST_CASE("label values with quotes, backslashes, newlines and bytes that are not UTF-8 pass "
          "promtool")
{
    const auto which = run({"sh", "-c", "command -v promtool"});
    if (which.exit_code != 0)
        FAIL("promtool is missing: install the Debian package prometheus (scripts/deps --test)");
    // "\xfe" and "\xff" both show as U+FFFD: one of them is left out, and counted.
    const std::vector<std::string> names = {"q\"b\\s", "new\nline", "bad\xfe", "bad\xff"};
    for (const auto& name : names)
    {
        run_ok({"ip", "netns", "add", name});
        run_ok({"ip", "netns", "set", name, "auto"});
    }
    started s;
    std::string text;
    REQUIRE(eventually(
        [&]
        {
            text = scrape(s.d.where());
            return value_of(text, "netnsd_network_up{netns=\"q\\\"b\\\\s\",device=\"lo\"}") == 0 &&
                   value_of(text, "netnsd_network_up{netns=\"new\\nline\",device=\"lo\"}") == 0 &&
                   value_of(text, "netnsd_network_up{netns=\"bad\xef\xbf\xbd\",device=\"lo\"}") ==
                       0;
        },
        15000ms));
    INFO(text);
    CHECK(value_of(text, "netnsd_metrics_interfaces_dropped{reason=\"duplicate_labels\"}") == 1);
    const std::string path = "/tmp/netnsd-interface-metrics.txt";
    {
        std::ofstream out(path);
        out << text;
    }
    const auto check = run({"sh", "-c", "promtool check metrics < " + path});
    INFO(check.out);
    INFO(check.err);
    CHECK(check.exit_code == 0);
}

TEST_CASE("1000 namespaces' interfaces pass promtool check metrics")
{
    const auto which = run({"sh", "-c", "command -v promtool"});
    if (which.exit_code != 0)
        FAIL("promtool is missing: install the Debian package prometheus (scripts/deps --test)");
    constexpr int n = 1000;
    {
        std::ofstream batch("/tmp/netnsd-ifmetrics.batch");
        for (int i = 0; i < n; ++i)
            batch << "netns add m" << i << "\n";
        for (int i = 0; i < n; ++i)
            batch << "netns set m" << i << " auto\n";
    }
    run_ok({"ip", "-batch", "/tmp/netnsd-ifmetrics.batch"});
    started s;
    std::string text;
    REQUIRE(eventually(
        [&]
        {
            text = scrape(s.d.where());
            // Each m's lo (the host's namespaces found through processes are there too).
            const auto all = interfaces_of(text);
            return std::count_if(all.begin(), all.end(),
                                 [](const auto& i)
                                 { return i.first.starts_with("m") && i.second == "lo"; }) >= n;
        },
        60000ms));
    CHECK(value_of(text, "netnsd_network_up{netns=\"m999\",device=\"lo\"}") == 0);
    // nsids 0 to 999 are taken and netnsd's namespace has none for itself: a dump by nsid would
    // give it 1000, and walk 1000 entries for each veth to it. Each namespace is entered
    // instead, and netnsd's namespace is given no nsid.
    CHECK(value_of(text, "netnsd_network_nsid_walk") == n);
    CHECK(value_of(text, "netnsd_network_namespaces_read{way=\"entered\"}") >= n);
    const auto all = get_json(s.d.where(), "/api/v1/namespaces");
    REQUIRE(all.is_object());
    for (const auto& ns : all["namespaces"])
        if (ns["is_self"] == true)
            CHECK(ns["nsid"].is_null());
    const std::string path = "/tmp/netnsd-interface-metrics-1000.txt";
    {
        std::ofstream out(path);
        out << text;
    }
    const auto check = run({"sh", "-c", "promtool check metrics < " + path});
    INFO(check.out);
    INFO(check.err);
    CHECK(check.exit_code == 0);
}

TEST_CASE("without --metrics-interfaces, none of the per-interface families is there")
{
    wire();
    started s(std::vector<std::string>{});
    REQUIRE(eventually([&] { return api_live(s.d.where())->size() == 3; }, 15000ms));
    const auto text = scrape(s.d.where());
    CHECK(text.find("netnsd_build_info") != std::string::npos);
    CHECK(text.find("netnsd_network_") == std::string::npos);
    CHECK(text.find("netnsd_metrics_") == std::string::npos);
}
