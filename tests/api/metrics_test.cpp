// api/metrics: the Prometheus text rendering of the counters, and the route templates the
// router reports for them (never the raw path).
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "core/monitor.hpp"
#include "core/registry.hpp"

#include "api/list_cache.hpp"
#include "api/metrics.hpp"
#include "api/router.hpp"
#include "api/stream.hpp"

#include "support/builders.hpp"

using netnsd::api::metrics;
using netnsd::api::scrape_inputs;

namespace
{

bool has_line(const std::string& text, std::string_view line)
{
    return text.find("\n" + std::string(line) + "\n") != std::string::npos ||
           text.starts_with(std::string(line) + "\n");
}

} // namespace

TEST_CASE("a scrape with nothing counted shows every fixed series at zero")
{
    const metrics m;
    const auto text = m.render({});
    CHECK(text.starts_with("# HELP netnsd_namespaces "));
    for (const char* line : {"# TYPE netnsd_namespaces gauge",
                             "netnsd_namespaces{state=\"live\"} 0",
                             "netnsd_namespaces{state=\"stale\"} 0",
                             "netnsd_nsids 0",
                             "netnsd_revision 0",
                             "# TYPE netnsd_netns_dir_watched gauge",
                             "netnsd_netns_dir_watched 0",
                             "# TYPE netnsd_events_total counter",
                             "netnsd_events_total{type=\"add\"} 0",
                             "netnsd_events_total{type=\"delete\"} 0",
                             "netnsd_events_total{type=\"nsid\"} 0",
                             "netnsd_events_total{type=\"destroyed\"} 0",
                             "netnsd_resyncs_total{reason=\"start\"} 0",
                             "netnsd_resyncs_total{reason=\"dir_changed\"} 0",
                             "netnsd_resyncs_total{reason=\"inotify_overflow\"} 0",
                             "netnsd_resyncs_total{reason=\"netlink_overrun\"} 0",
                             "netnsd_resyncs_total{reason=\"mount_overflow\"} 0",
                             "netnsd_mount_events_unresolved_total 0",
                             "netnsd_audits_total 0",
                             "netnsd_model_divergences_total{kind=\"entry_changed\"} 0",
                             "# TYPE netnsd_http_requests_total counter",
                             "# TYPE netnsd_http_request_duration_seconds histogram",
                             "netnsd_stream_clients{kind=\"websocket\"} 0",
                             "netnsd_stream_clients{kind=\"sse\"} 0",
                             "netnsd_stream_clients{kind=\"ndjson\"} 0",
                             "netnsd_stream_clients_dropped_total{reason=\"queue_full\"} 0",
                             "netnsd_stream_clients_dropped_total{reason=\"unresponsive\"} 0",
                             "# TYPE netnsd_admin_operations_total counter",
                             "netnsd_exec_running 0",
                             "netnsd_build_info{version=\"" NETNSD_VERSION "\"} 1"})
    {
        CAPTURE(line);
        CHECK(has_line(text, line));
    }
    // Without process stats (no /proc), the process_* families are left out, not zero.
    CHECK(text.find("process_") == std::string::npos);
    CHECK(text.ends_with("\n"));
}

TEST_CASE("the gauges come from the scrape inputs")
{
    scrape_inputs in;
    in.live = 3;
    in.stale = 1;
    in.nsids = 2;
    in.revision = 1795973932470126;
    netnsd::core::model_status status;
    status.watching = true;
    status.resyncs = {1, 2, 0, 4, 5};
    status.mounts = netnsd::core::model_status::mount_source::fanotify;
    status.mounts_unresolved = 3;
    status.audits = 7;
    status.divergences = {0, 1, 2, 0};
    status.last_audit_seconds = 0.25;
    in.model = &status;
    in.stream_clients = {5, 6, 7};
    in.stream_dropped = {8, 9};
    in.exec_running = 2;
    in.host_namespaces[static_cast<std::size_t>(netnsd::core::owner_kind::docker)] = 4;
    in.leaked_namespaces = 1;
    status.sweeps = 3;
    status.sweep_histogram[2] = 2; // <= 5 ms
    status.sweep_histogram[6] = 1; // <= 100 ms
    status.sweep_seconds_sum = 0.09;
    status.sweep_processes = 20000;
    status.sweep_processes_read = 150;
    status.proc_events = true;
    status.proc_events_read = 4000;
    status.proc_event_overruns = 2;
    for (const double lag : {0.0003, 0.02, 2.0}) // the last above every bucket: +Inf only
        netnsd::core::observe(status.proc_event_lag_buckets, status.proc_event_lag_histogram,
                              status.proc_event_batches, status.proc_event_lag_seconds_sum, lag);
    status.mount_namespaces = 100;
    status.cni_cache_watched = true;
    status.cni_cache_files = 12;
    status.cni_cache_pods = 5;
    status.cni_cache_skipped = 1;
    status.cni_cache_malformed = 2;
    status.last_mntns_walk_seconds = 0.125;
    status.deep_scans = 2;
    status.deep_scan_histogram[3] = 1; // <= 100 ms
    status.deep_scan_histogram[6] = 1; // <= 1 s
    status.deep_scan_seconds_sum = 0.75;
    status.deep_scan_fds = 60000;
    status.deep_scan_sockets = 900;
    in.process = netnsd::api::process_stats{4096, 12, 1.5, 1700000000.25};
    const auto text = metrics{}.render(in);
    for (const char* line : {"netnsd_namespaces{state=\"live\"} 3",
                             "netnsd_namespaces{state=\"stale\"} 1",
                             "netnsd_nsids 2",
                             "netnsd_revision 1795973932470126",
                             "netnsd_netns_dir_watched 1",
                             "netnsd_resyncs_total{reason=\"start\"} 1",
                             "netnsd_resyncs_total{reason=\"dir_changed\"} 2",
                             "netnsd_resyncs_total{reason=\"netlink_overrun\"} 4",
                             "netnsd_resyncs_total{reason=\"mount_overflow\"} 5",
                             "netnsd_mount_feed_info{feed=\"fanotify\"} 1",
                             "netnsd_mount_events_unresolved_total 3",
                             "netnsd_audits_total 7",
                             "netnsd_audit_duration_seconds 0.25",
                             "netnsd_model_divergences_total{kind=\"entry_missing\"} 0",
                             "netnsd_model_divergences_total{kind=\"entry_extra\"} 1",
                             "netnsd_model_divergences_total{kind=\"entry_changed\"} 2",
                             "netnsd_model_divergences_total{kind=\"nsid\"} 0",
                             "netnsd_stream_clients{kind=\"websocket\"} 5",
                             "netnsd_stream_clients{kind=\"sse\"} 6",
                             "netnsd_stream_clients{kind=\"ndjson\"} 7",
                             "netnsd_stream_clients_dropped_total{reason=\"queue_full\"} 8",
                             "netnsd_stream_clients_dropped_total{reason=\"unresponsive\"} 9",
                             "netnsd_exec_running 2",
                             "netnsd_host_namespaces{owner_kind=\"docker\"} 4",
                             "netnsd_host_namespaces{owner_kind=\"netns-dir\"} 0",
                             "netnsd_leaked_namespaces 1",
                             "# TYPE netnsd_sweep_duration_seconds histogram",
                             "netnsd_sweep_duration_seconds_bucket{le=\"0.0025\"} 0",
                             "netnsd_sweep_duration_seconds_bucket{le=\"0.005\"} 2",
                             "netnsd_sweep_duration_seconds_bucket{le=\"0.05\"} 2",
                             "netnsd_sweep_duration_seconds_bucket{le=\"0.1\"} 3",
                             "netnsd_sweep_duration_seconds_bucket{le=\"+Inf\"} 3",
                             "netnsd_sweep_duration_seconds_sum 0.09",
                             "netnsd_sweep_duration_seconds_count 3",
                             "netnsd_sweep_processes 20000",
                             "netnsd_sweep_processes_read 150",
                             "netnsd_mount_namespaces 100",
                             "netnsd_cni_cache_watched 1",
                             "netnsd_cni_cache_files 12",
                             "netnsd_cni_cache_pods 5",
                             "netnsd_cni_cache_rejected_total{reason=\"skipped\"} 1",
                             "netnsd_cni_cache_rejected_total{reason=\"malformed\"} 2",
                             "netnsd_mount_namespace_walk_seconds 0.125",
                             "# TYPE netnsd_deep_scan_duration_seconds histogram",
                             "netnsd_deep_scan_duration_seconds_bucket{le=\"0.05\"} 0",
                             "netnsd_deep_scan_duration_seconds_bucket{le=\"0.1\"} 1",
                             "netnsd_deep_scan_duration_seconds_bucket{le=\"1\"} 2",
                             "netnsd_deep_scan_duration_seconds_bucket{le=\"+Inf\"} 2",
                             "netnsd_deep_scan_duration_seconds_sum 0.75",
                             "netnsd_deep_scan_duration_seconds_count 2",
                             "netnsd_deep_scan_fds 60000",
                             "netnsd_proc_events_enabled 1",
                             "netnsd_proc_events_total 4000",
                             "netnsd_proc_event_lag_seconds_bucket{le=\"0.00025\"} 0",
                             "netnsd_proc_event_lag_seconds_bucket{le=\"0.0005\"} 1",
                             "netnsd_proc_event_lag_seconds_bucket{le=\"0.025\"} 2",
                             "netnsd_proc_event_lag_seconds_bucket{le=\"1\"} 2",
                             "netnsd_proc_event_lag_seconds_bucket{le=\"+Inf\"} 3",
                             "netnsd_proc_event_lag_seconds_sum 2.0203",
                             "netnsd_proc_event_lag_seconds_count 3",
                             "netnsd_proc_event_overruns_total 2",
                             "netnsd_deep_scan_sockets 900",
                             "# TYPE process_resident_memory_bytes gauge",
                             "process_resident_memory_bytes 4096",
                             "process_open_fds 12",
                             "# TYPE process_cpu_seconds_total counter",
                             "process_cpu_seconds_total 1.5",
                             "process_start_time_seconds 1700000000.25"})
    {
        CAPTURE(line);
        CHECK(has_line(text, line));
    }
}

TEST_CASE("events are counted by type")
{
    using netnsd::core::event_type;
    metrics m;
    m.count_event(event_type::added);
    m.count_event(event_type::added);
    m.count_event(event_type::deleted);
    m.count_event(event_type::nsid_set);
    m.count_event(event_type::destroyed);
    const auto text = m.render({});
    CHECK(has_line(text, "netnsd_events_total{type=\"add\"} 2"));
    CHECK(has_line(text, "netnsd_events_total{type=\"delete\"} 1"));
    CHECK(has_line(text, "netnsd_events_total{type=\"nsid\"} 1"));
    CHECK(has_line(text, "netnsd_events_total{type=\"destroyed\"} 1"));
}

TEST_CASE("requests are counted by method, route and code, with a cumulative histogram")
{
    metrics m;
    m.observe_request("GET", "/api/v1/netns/{name}", 200, 0.0002);
    m.observe_request("GET", "/api/v1/netns/{name}", 404, 0.003);
    m.observe_request("GET", "/api/v1/netns/{name}", 200, 100);
    m.observe_request("BREW", "other", 404, 0.0001);
    const auto text = m.render({});
    const std::string route = "route=\"/api/v1/netns/{name}\"";
    CHECK(text.find("\nnetnsd_http_request_duration_seconds_sum{" + route + "} 100.003") !=
          std::string::npos);
    for (const std::string& line : std::vector<std::string>{
             "netnsd_http_requests_total{method=\"GET\"," + route + ",code=\"200\"} 2",
             "netnsd_http_requests_total{method=\"GET\"," + route + ",code=\"404\"} 1",
             // An unknown method is "other": label values never come from the wire.
             "netnsd_http_requests_total{method=\"other\",route=\"other\",code=\"404\"} 1",
             "netnsd_http_request_duration_seconds_bucket{" + route + ",le=\"0.0005\"} 1",
             "netnsd_http_request_duration_seconds_bucket{" + route + ",le=\"0.0025\"} 1",
             "netnsd_http_request_duration_seconds_bucket{" + route + ",le=\"0.005\"} 2",
             "netnsd_http_request_duration_seconds_bucket{" + route + ",le=\"60\"} 2",
             "netnsd_http_request_duration_seconds_bucket{" + route + ",le=\"+Inf\"} 3",
             "netnsd_http_request_duration_seconds_count{" + route + "} 3"})
    {
        CAPTURE(line);
        CHECK(has_line(text, line));
    }
}

TEST_CASE("admin operations are counted by operation and result")
{
    metrics m;
    m.observe_request("POST", "/api/v1/netns", 201, 0.01);
    m.observe_request("POST", "/api/v1/netns", 409, 0.01);
    m.observe_request("DELETE", "/api/v1/netns/{name}", 500, 0.01);
    m.observe_request("DELETE", "/api/v1/netns", 200, 0.01);
    m.observe_request("PUT", "/api/v1/netns/{name}/nsid", 200, 0.01);
    m.observe_request("HEAD", "/api/v1/netns/{name}/pids", 200, 0.01);
    m.observe_request("POST", "/api/v1/netns/{name}/exec", 429, 0.01);
    m.observe_request("GET", "/api/v1/processes/{pid}/netns", 200, 0.01); // a read (the model)
    m.observe_request("POST", "/api/v1/audit", 200, 0.01);
    m.observe_request("GET", "/api/v1/netns", 200, 0.01); // a read, not an operation
    const auto text = m.render({});
    for (const char* line : {"netnsd_admin_operations_total{op=\"create\",result=\"ok\"} 1",
                             "netnsd_admin_operations_total{op=\"create\",result=\"rejected\"} 1",
                             "netnsd_admin_operations_total{op=\"delete\",result=\"failed\"} 1",
                             "netnsd_admin_operations_total{op=\"delete_all\",result=\"ok\"} 1",
                             "netnsd_admin_operations_total{op=\"set_nsid\",result=\"ok\"} 1",
                             "netnsd_admin_operations_total{op=\"pids\",result=\"ok\"} 1",
                             "netnsd_admin_operations_total{op=\"exec\",result=\"rejected\"} 1",
                             "netnsd_admin_operations_total{op=\"audit\",result=\"ok\"} 1"})
    {
        CAPTURE(line);
        CHECK(has_line(text, line));
    }
    CHECK(text.find("netnsd_admin_operations_total{op=\"\"") == std::string::npos);
    CHECK(text.find("op=\"identify\"") == std::string::npos);
}

TEST_CASE("the router reports the route template it matched, never the raw path")
{
    using netnsd::api::request;
    netnsd::core::registry model(10);
    netnsd::core::monitor watch(model, "/run/netns-test");
    netnsd::api::list_cache lists(model, "/run/netns-test");
    netnsd::api::stream_hub hub(model, lists, {}, 1);
    netnsd::api::router routes(model, watch.status(), lists, hub, netnsd::api::embedded_assets());
    metrics m;
    routes.enable_metrics(m);
    const auto route_of = [&](std::string method, std::string target)
    {
        request req;
        req.method = std::move(method);
        req.target = std::move(target);
        std::string_view route;
        routes.dispatch(req, false, route);
        return std::string(route);
    };
    CHECK(route_of("GET", "/api/v1/netns") == "/api/v1/netns");
    CHECK(route_of("GET", "/api/v1/netns/blue") == "/api/v1/netns/{name}");
    CHECK(route_of("GET", "/api/v1/netns/no%2Fslash") == "/api/v1/netns/{name}");
    CHECK(route_of("PUT", "/api/v1/netns/blue/nsid") == "/api/v1/netns/{name}/nsid");
    CHECK(route_of("GET", "/api/v1/netns/blue/pids") == "/api/v1/netns/{name}/pids");
    CHECK(route_of("POST", "/api/v1/netns/blue/exec") == "/api/v1/netns/{name}/exec");
    CHECK(route_of("GET", "/api/v1/processes/1/netns") == "/api/v1/processes/{pid}/netns");
    CHECK(route_of("POST", "/api/v1/audit") == "/api/v1/audit");
    CHECK(route_of("GET", "/api/v1/nsids?x=1") == "/api/v1/nsids");
    CHECK(route_of("GET", "/healthz") == "/healthz");
    CHECK(route_of("GET", "/metrics") == "/metrics");
    CHECK(route_of("GET", "/") == "/");
    CHECK(route_of("GET", "/openapi.yaml") == "/openapi.yaml");
    CHECK(route_of("DELETE", "/healthz") == "/healthz"); // 405 on a known resource
    CHECK(route_of("GET", "/api/v1/netns/blue/bogus") == "other");
    CHECK(route_of("GET", "/nothing/here") == "other");
    CHECK(route_of("GET", "no-slash") == "other");
}

TEST_CASE("GET /metrics answers the text format with the model's gauges")
{
    using netnsd::api::request;
    netnsd::core::registry model(10);
    netnsd::core::monitor watch(model, "/run/netns-test");
    netnsd::api::list_cache lists(model, "/run/netns-test");
    netnsd::api::stream_hub hub(model, lists, {}, 1);
    netnsd::api::router routes(model, watch.status(), lists, hub, netnsd::api::embedded_assets());
    model.apply_probe("a", netnsd::test::live(1), netnsd::test::at_ms(0));
    model.apply_probe("b", netnsd::test::stale(), netnsd::test::at_ms(0));
    metrics m;
    request req;
    req.method = "GET";
    req.target = "/metrics";
    CHECK(routes.handle(req).status == 404); // not enabled
    routes.enable_metrics(m);
    const auto res = routes.handle(req);
    CHECK(res.status == 200);
    CHECK(res.content_type == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(has_line(res.body, "netnsd_namespaces{state=\"live\"} 1"));
    CHECK(has_line(res.body, "netnsd_namespaces{state=\"stale\"} 1"));
    CHECK(has_line(res.body, "netnsd_revision " + std::to_string(model.revision())));
    CHECK(has_line(res.body, "netnsd_netns_dir_watched 0")); // this monitor never armed its watch
    CHECK(res.body.find("process_resident_memory_bytes ") != std::string::npos);
}
