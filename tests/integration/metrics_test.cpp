// GET /metrics and --log-format json on the real daemon: the counters move when namespaces and
// requests do, the output passes `promtool check metrics`, and every json log line parses.
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

#include "support/oracle.hpp"
#include "support/process.hpp"

namespace
{

using namespace netnsd::test;
using json = nlohmann::json;

const std::string token_path = "/run/netnsd-test/token";

std::string read_token()
{
    std::ifstream in(token_path);
    std::string token;
    in >> token;
    return token;
}

std::string scrape(const endpoint& where, const std::string& token = {})
{
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty())
        headers.emplace_back("Authorization", "Bearer " + token);
    const auto r = http(where, "GET", "/metrics", {}, headers);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    CHECK(r->header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
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

} // namespace

TEST_CASE("the metrics count namespaces, events and requests as they happen")
{
    netnsd_process d({"--token-file=" + token_path});
    INFO(d.log());
    REQUIRE(d.ready());
    const auto before = scrape(d.where());
    CHECK(value_of(before, "netnsd_namespaces{state=\"live\"}") == 0);
    CHECK(value_of(before, "netnsd_events_total{type=\"add\"}") == 0);
    CHECK(value_of(before, "netnsd_resyncs_total{reason=\"start\"}") == 1);
    CHECK(value_of(before, "netnsd_build_info{version=\"" NETNSD_VERSION "\"}") == 1);
    CHECK(value_of(before, "process_resident_memory_bytes") > 0);
    CHECK(value_of(before, "process_open_fds") > 3);
    CHECK(value_of(before, "process_start_time_seconds") > 1.5e9);

    run_ok({"ip", "netns", "add", "m1"});
    run_ok({"ip", "netns", "add", "m2"});
    REQUIRE(eventually(
        [&] { return value_of(scrape(d.where()), "netnsd_namespaces{state=\"live\"}") == 2; }));
    CHECK(value_of(scrape(d.where()), "netnsd_events_total{type=\"add\"}") == 2);
    run_ok({"ip", "netns", "del", "m2"});
    REQUIRE(eventually(
        [&] { return value_of(scrape(d.where()), "netnsd_events_total{type=\"delete\"}") == 1; }));
    run_ok({"ip", "netns", "set", "m1", "7"});
    REQUIRE(eventually([&] { return value_of(scrape(d.where()), "netnsd_nsids") == 1; }));
    CHECK(value_of(scrape(d.where()), "netnsd_events_total{type=\"nsid\"}") == 1);

    CHECK(http_get(d.where(), "/api/v1/netns/m1")->status == 200);
    CHECK(http_get(d.where(), "/api/v1/netns/m1")->status == 200);
    CHECK(http_get(d.where(), "/api/v1/netns/secret-raw-path")->status == 404);
    CHECK(http_get(d.where(), "/no/such/thing")->status == 404);
    const auto token = read_token();
    const auto made =
        http(d.where(), "POST", "/api/v1/netns", R"({"name":"m3"})",
             {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
    REQUIRE(made);
    CHECK(made->status == 201);

    const auto after = scrape(d.where());
    const std::string route = "route=\"/api/v1/netns/{name}\"";
    CHECK(value_of(after,
                   "netnsd_http_requests_total{method=\"GET\"," + route + ",code=\"200\"}") == 2);
    CHECK(value_of(after,
                   "netnsd_http_requests_total{method=\"GET\"," + route + ",code=\"404\"}") == 1);
    CHECK(value_of(after, "netnsd_http_requests_total{method=\"GET\",route=\"other\","
                          "code=\"404\"}") == 1);
    CHECK(value_of(after, "netnsd_http_request_duration_seconds_count{" + route + "}") == 3);
    CHECK(value_of(after, "netnsd_admin_operations_total{op=\"create\",result=\"ok\"}") == 1);
    CHECK(value_of(after, "netnsd_namespaces{state=\"live\"}") == 2);
    CHECK(value_of(after, "netnsd_exec_running") == 0);
    CHECK(after.find("secret-raw-path") == std::string::npos);
    CHECK(after.find("/no/such/thing") == std::string::npos);
}

TEST_CASE("netnsd_netns_dir_watched is 0 while the netns dir is gone, 1 once it is back")
{
    netnsd_process d({"--token-file=" + token_path});
    INFO(d.log());
    REQUIRE(d.ready());
    CHECK(value_of(scrape(d.where()), "netnsd_netns_dir_watched") == 1);
    // Take the dir away (the sandbox's tmpfs, then the dir itself): degraded.
    run_ok({"umount", "-l", "/run/netns"});
    REQUIRE(::rmdir("/run/netns") == 0);
    REQUIRE(
        eventually([&] { return value_of(scrape(d.where()), "netnsd_netns_dir_watched") == 0; }));
    CHECK(http_get(d.where(), "/healthz")->body.find("\"status\":\"degraded\"") !=
          std::string::npos);
    // `ip netns add` makes it again.
    run_ok({"ip", "netns", "add", "back"});
    REQUIRE(
        eventually([&] { return value_of(scrape(d.where()), "netnsd_netns_dir_watched") == 1; }));
}

TEST_CASE("the metrics pass promtool check metrics")
{
    const auto which = run({"sh", "-c", "command -v promtool"});
    if (which.exit_code != 0)
        FAIL("promtool is missing: install the Debian package prometheus (scripts/deps --test)");
    netnsd_process d({"--token-file=" + token_path});
    INFO(d.log());
    REQUIRE(d.ready());
    run_ok({"ip", "netns", "add", "p1"});
    REQUIRE(eventually([&] { return api_live(d.where())->count("p1") == 1; }));
    CHECK(http_get(d.where(), "/api/v1/netns/p1")->status == 200);
    CHECK(http_get(d.where(), "/nothing")->status == 404);
    const auto text = scrape(d.where());
    const std::string path = "/tmp/netnsd-metrics.txt";
    {
        std::ofstream out(path);
        out << text;
    }
    const auto check = run({"sh", "-c", "promtool check metrics < " + path});
    INFO(check.out);
    INFO(check.err);
    // promtool exits 0 when the format is valid; lint remarks (if any) go with exit 1.
    CHECK(check.exit_code == 0);
}

TEST_CASE("with --auth-reads, /metrics needs the token")
{
    netnsd_process d({"--token-file=" + token_path, "--auth-reads"});
    INFO(d.log());
    REQUIRE(d.ready());
    const auto r = http_get(d.where(), "/metrics");
    REQUIRE(r);
    CHECK(r->status == 401);
    CHECK(value_of(scrape(d.where(), read_token()), "netnsd_namespaces{state=\"live\"}") == 0);
}

TEST_CASE("with --log-format json every stderr line is one JSON object")
{
    netnsd_process d({"--token-file=" + token_path, "--log-format=json"});
    INFO(d.log());
    REQUIRE(d.ready());
    const auto token = read_token();
    const auto made =
        http(d.where(), "POST", "/api/v1/netns", R"({"name":"j1"})",
             {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}});
    REQUIRE(made);
    CHECK(made->status == 201);
    CHECK(d.stop() == 0);

    const auto log = d.log();
    CHECK(log.find(token) == std::string::npos);
    std::istringstream in(log);
    std::size_t lines = 0;
    bool saw_start = false;
    bool saw_audit = false;
    for (std::string line; std::getline(in, line);)
    {
        CAPTURE(line);
        ++lines;
        const auto j = json::parse(line, nullptr, false);
        REQUIRE(j.is_object());
        CHECK(j["time"].is_string());
        CHECK(j["time"].get<std::string>().ends_with("Z"));
        CHECK(j["level"].is_string());
        CHECK(j["msg"].is_string());
        if (j["msg"] == "netnsd started")
        {
            saw_start = true;
            CHECK(j["version"] == NETNSD_VERSION);
            CHECK(j["listen"] == "127.0.0.1:9321");
            CHECK(j["netns_dir"] == "/run/netns");
            CHECK(j["exec"] == "off");
        }
        if (j["msg"] == "audit")
        {
            saw_audit = true;
            CHECK(j["peer"].get<std::string>().starts_with("127.0.0.1:"));
            CHECK(j["method"] == "POST");
            CHECK(j["path"] == "/api/v1/netns");
            CHECK(j["name"] == "j1");
            CHECK(j["status"] == "201");
        }
    }
    CHECK(lines >= 3);
    CHECK(saw_start);
    CHECK(saw_audit);
}
