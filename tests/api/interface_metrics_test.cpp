// api/interface_metrics: the text of the per-interface families (their order, the cap on the
// series, the escaping of label values, the labels two interfaces may share), without a kernel.
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "api/interface_metrics.hpp"

using netnsd::api::interface_sample;
using netnsd::api::interface_scrape;
using netnsd::api::render_interface_metrics;

namespace
{

interface_sample iface(std::string netns, std::string device, std::uint64_t rx_bytes, bool up)
{
    interface_sample s;
    s.netns = std::move(netns);
    s.device = std::move(device);
    s.counters.emplace();
    s.counters->rx_bytes = rx_bytes;
    s.counters->tx_packets = rx_bytes + 1;
    s.up = up;
    return s;
}

std::vector<std::string> lines_of(const std::string& text, std::string_view prefix)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(prefix))
            out.push_back(line);
    return out;
}

std::size_t count_of(const std::string& text, std::string_view what)
{
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
        ++n;
    return n;
}

} // namespace

TEST_CASE("interfaces are written in the order of their labels, each family once")
{
    interface_scrape s;
    s.interfaces = {iface("b", "lo", 1, false), iface("a", "veth1", 2, true),
                    iface("a", "eth0", 3, true), iface("ns_id:12", "lo", 4, false)};
    s.unreachable = 3;
    s.failed = 1;
    const auto text = render_interface_metrics(s, 1000);
    CHECK(lines_of(text, "netnsd_network_receive_bytes_total{") ==
          std::vector<std::string>{
              R"(netnsd_network_receive_bytes_total{netns="a",device="eth0"} 3)",
              R"(netnsd_network_receive_bytes_total{netns="a",device="veth1"} 2)",
              R"(netnsd_network_receive_bytes_total{netns="b",device="lo"} 1)",
              R"(netnsd_network_receive_bytes_total{netns="ns_id:12",device="lo"} 4)"});
    CHECK(lines_of(text, "netnsd_network_transmit_packets_total{").front() ==
          R"(netnsd_network_transmit_packets_total{netns="a",device="eth0"} 4)");
    CHECK(lines_of(text, "netnsd_network_up{") ==
          std::vector<std::string>{R"(netnsd_network_up{netns="a",device="eth0"} 1)",
                                   R"(netnsd_network_up{netns="a",device="veth1"} 1)",
                                   R"(netnsd_network_up{netns="b",device="lo"} 0)",
                                   R"(netnsd_network_up{netns="ns_id:12",device="lo"} 0)"});
    for (const char* family :
         {"netnsd_network_receive_bytes_total", "netnsd_network_transmit_bytes_total",
          "netnsd_network_receive_packets_total", "netnsd_network_transmit_packets_total",
          "netnsd_network_receive_errs_total", "netnsd_network_transmit_errs_total",
          "netnsd_network_receive_drop_total", "netnsd_network_transmit_drop_total",
          "netnsd_network_up", "netnsd_metrics_series_capped"})
    {
        CHECK(count_of(text, std::string("# HELP ") + family + " ") == 1);
        CHECK(count_of(text, std::string("# TYPE ") + family + " ") == 1);
    }
    CHECK(lines_of(text, "netnsd_network_namespaces_skipped{") ==
          std::vector<std::string>{R"(netnsd_network_namespaces_skipped{reason="unreachable"} 3)",
                                   R"(netnsd_network_namespaces_skipped{reason="failed"} 1)"});
    CHECK(lines_of(text, "netnsd_metrics_series_capped ") ==
          std::vector<std::string>{"netnsd_metrics_series_capped 0"});
}

TEST_CASE("the cap keeps the first whole interfaces and says how many it left out")
{
    interface_scrape s;
    for (const char* ns : {"c", "a", "b"})
        for (const char* dev : {"lo", "eth0"})
            s.interfaces.push_back(iface(ns, dev, 7, true));
    // 9 series an interface: 30 leave room for 3, not for a 4th's.
    const auto text = render_interface_metrics(s, 30);
    CHECK(lines_of(text, "netnsd_network_up{") ==
          std::vector<std::string>{R"(netnsd_network_up{netns="a",device="eth0"} 1)",
                                   R"(netnsd_network_up{netns="a",device="lo"} 1)",
                                   R"(netnsd_network_up{netns="b",device="eth0"} 1)"});
    CHECK(lines_of(text, "netnsd_network_receive_errs_total{").size() == 3);
    CHECK(lines_of(text, "netnsd_metrics_series_capped ") ==
          std::vector<std::string>{"netnsd_metrics_series_capped 1"});
    CHECK(lines_of(text, "netnsd_metrics_interfaces_dropped{reason=\"series_cap\"}") ==
          std::vector<std::string>{R"(netnsd_metrics_interfaces_dropped{reason="series_cap"} 3)"});
    // Exactly at the cap: nothing left out.
    const auto exact = render_interface_metrics(s, 54);
    CHECK(lines_of(exact, "netnsd_network_up{").size() == 6);
    CHECK(lines_of(exact, "netnsd_metrics_series_capped ").front() ==
          "netnsd_metrics_series_capped 0");
    // Below one interface: none, and all counted.
    const auto none = render_interface_metrics(s, 8);
    CHECK(lines_of(none, "netnsd_network_up{").empty());
    CHECK(lines_of(none, "netnsd_metrics_interfaces_dropped{reason=\"series_cap\"}").front() ==
          R"(netnsd_metrics_interfaces_dropped{reason="series_cap"} 6)");
}

TEST_CASE("label values are escaped: quote, backslash, newline, and bytes that are not UTF-8")
{
    interface_scrape s;
    s.interfaces = {iface("q\"b\\n\nl", "lo", 1, false), iface("bad\xff", "lo", 2, false),
                    iface("\xc3\xa9t\xc3\xa9", "lo", 3, false)};
    const auto text = render_interface_metrics(s, 1000);
    CHECK(lines_of(text, "netnsd_network_receive_bytes_total{") ==
          std::vector<std::string>{
              "netnsd_network_receive_bytes_total{netns=\"bad\xef\xbf\xbd\",device=\"lo\"} 2",
              R"(netnsd_network_receive_bytes_total{netns="q\"b\\n\nl",device="lo"} 1)",
              "netnsd_network_receive_bytes_total{netns=\"\xc3\xa9t\xc3\xa9\",device=\"lo\"} 3"});
}

TEST_CASE("two interfaces with the same labels once escaped: the first is kept, one counted")
{
    interface_scrape s;
    // Both names become "x\uFFFD"; so does a name that holds U+FFFD itself.
    s.interfaces = {iface("x\xfe", "lo", 1, false), iface("x\xff", "lo", 2, false),
                    iface("x\xef\xbf\xbd", "lo", 3, false), iface("y", "lo", 4, false)};
    const auto text = render_interface_metrics(s, 1000);
    const auto up = lines_of(text, "netnsd_network_up{");
    REQUIRE(up.size() == 2);
    CHECK(up[0] == "netnsd_network_up{netns=\"x\xef\xbf\xbd\",device=\"lo\"} 0");
    CHECK(lines_of(text, "netnsd_metrics_interfaces_dropped{reason=\"duplicate_labels\"}") ==
          std::vector<std::string>{
              R"(netnsd_metrics_interfaces_dropped{reason="duplicate_labels"} 2)"});
}

TEST_CASE("an interface without IFLA_STATS64 has its state only, one series")
{
    interface_scrape s;
    s.interfaces = {iface("a", "eth0", 1, true)};
    s.interfaces.front().counters.reset();
    const auto text = render_interface_metrics(s, 1);
    CHECK(lines_of(text, "netnsd_network_up{") ==
          std::vector<std::string>{R"(netnsd_network_up{netns="a",device="eth0"} 1)"});
    CHECK(lines_of(text, "netnsd_network_receive_bytes_total{").empty());
}

TEST_CASE("a text written into the memory of an earlier one is the same text")
{
    interface_scrape s;
    s.interfaces = {iface("b", "lo", 1, false), iface("a", "eth0", 3, true)};
    const auto fresh = render_interface_metrics(s, 1000);
    // The memory of a longer text, as a gathering gets it back from the one before.
    std::string reused(fresh.size() * 3, 'x');
    const auto capacity = reused.capacity();
    render_interface_metrics(s, 1000, reused);
    CHECK(reused == fresh);
    CHECK(reused.capacity() == capacity);
}
