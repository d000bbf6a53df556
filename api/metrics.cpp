#include "api/metrics.hpp"

#include <charconv>
#include <span>
#include <vector>

#include "core/owner.hpp"
#include "core/utf8.hpp"

#include "api/router.hpp"

namespace netnsd::api
{
namespace
{

constexpr std::string_view event_labels[] = {"add",   "delete",  "nsid", "destroyed",
                                             "found", "holders", "link", "address"};
constexpr std::string_view resync_labels[] = {
    "start",           "dir_changed",    "inotify_overflow",
    "netlink_overrun", "mount_overflow", "link_overrun"};
static_assert(std::size(resync_labels) == core::model_status::all_resync_reasons.size());
constexpr std::string_view stream_labels[] = {"websocket", "sse", "ndjson"};
constexpr std::string_view drop_labels[] = {"queue_full", "unresponsive"};
constexpr std::string_view known_methods[] = {"GET",    "HEAD",    "POST", "PUT",
                                              "DELETE", "OPTIONS", "PATCH"};

std::string_view result_of(unsigned status)
{
    if (status < 400)
        return "ok";
    return status < 500 ? "rejected" : "failed";
}

void append_number(std::string& out, double value)
{
    // Fixed notation, shortest round trip: le="0.0005", not le="5e-04".
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed);
    out.append(buf, ec == std::errc{} ? end : buf);
}

void append_number(std::string& out, std::uint64_t value)
{
    out.append(std::to_string(value));
}

} // namespace

void append_label_value(std::string& out, std::string_view value)
{
    for (const char c : core::valid_utf8(value))
    {
        if (c == '\\')
            out.append("\\\\");
        else if (c == '"')
            out.append("\\\"");
        else if (c == '\n')
            out.append("\\n");
        else
            out.push_back(c);
    }
}

class metrics::writer
{
public:
    explicit writer(std::string& out) : out_(out) {}

    void family(std::string_view name, std::string_view type, std::string_view help)
    {
        out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
        out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
    }

    template <typename Number>
    void sample(std::string_view name,
                std::initializer_list<std::pair<std::string_view, std::string_view>> labels,
                Number value)
    {
        out_.append(name);
        if (labels.size() != 0)
        {
            out_.push_back('{');
            const char* comma = "";
            for (const auto& [key, label_value] : labels)
            {
                out_.append(comma).append(key).append("=\"");
                append_label_value(out_, label_value);
                out_.push_back('"');
                comma = ",";
            }
            out_.push_back('}');
        }
        out_.push_back(' ');
        append_number(out_, value);
        out_.push_back('\n');
    }

    // An unlabelled histogram's samples: its cumulative buckets, +Inf, sum and count.
    void histogram(std::string_view name, std::span<const double> bounds,
                   std::span<const std::uint64_t> counts, std::uint64_t count, double sum)
    {
        const std::string bucket = std::string(name) + "_bucket";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < bounds.size(); ++i)
        {
            cumulative += counts[i];
            std::string le;
            append_number(le, bounds[i]);
            sample(bucket, {{"le", le}}, cumulative);
        }
        sample(bucket, {{"le", "+Inf"}}, count);
        sample(std::string(name) + "_sum", {}, sum);
        sample(std::string(name) + "_count", {}, count);
    }

private:
    std::string& out_;
};

void metrics::count_event(core::event_type type) noexcept
{
    const auto i = static_cast<std::size_t>(type);
    if (i < events_.size())
        ++events_[i];
}

void metrics::count_connection_rejected(connection_rejection why) noexcept
{
    ++rejected_[static_cast<std::size_t>(why)];
}

void metrics::observe_request(std::string_view method, std::string_view route, unsigned status,
                              double seconds)
{
    std::string_view m = "other";
    for (const auto known : known_methods)
        if (method == known)
            m = known;
    if (auto known = requests_.find(request_view{m, route, status}); known != requests_.end())
        ++known->second;
    else
        requests_.emplace(std::tuple{std::string(m), std::string(route), status}, 1);

    auto found = durations_.find(route);
    if (found == durations_.end())
        found = durations_.emplace(std::string(route), histogram{}).first;
    auto& h = found->second;
    for (std::size_t i = 0; i < duration_buckets.size(); ++i)
    {
        if (seconds <= duration_buckets[i])
        {
            ++h.buckets[i];
            break;
        }
    }
    ++h.count;
    h.sum += seconds;

    if (const auto op = operation_of(m, route); !op.empty())
        ++admin_ops_[{std::string(op), std::string(result_of(status))}];
}

void metrics::render_model(writer& w, const core::model_status& m)
{
    w.family("netnsd_resyncs_total", "counter",
             "Full rescans of the netns dir, by reason (start is the first scan).");
    for (std::size_t i = 0; i < m.resyncs.size(); ++i)
        w.sample("netnsd_resyncs_total", {{"reason", resync_labels[i]}}, m.resyncs[i]);

    w.family("netnsd_mount_feed_info", "gauge",
             "Always 1; the label says how netnsd follows the mount table: fanotify (mount "
             "events in kernel order) or mountinfo (a change somewhere, then a look).");
    w.sample("netnsd_mount_feed_info", {{"feed", core::to_string(m.mounts)}}, std::uint64_t{1});

    w.family("netnsd_mount_reader_realtime", "gauge",
             "1 when the thread that reads mount events runs under SCHED_FIFO (--mount-reader "
             "realtime, with CAP_SYS_NICE), 0 otherwise.");
    w.sample("netnsd_mount_reader_realtime", {}, std::uint64_t{m.mount_reader_realtime ? 1u : 0u});

    w.family("netnsd_model_thread_realtime", "gauge",
             "1 when the model thread (it applies the kernel's changes) runs under SCHED_FIFO "
             "(--model-thread realtime, with CAP_SYS_NICE), 0 otherwise.");
    w.sample("netnsd_model_thread_realtime", {}, std::uint64_t{m.model_thread_realtime ? 1u : 0u});

    w.family("netnsd_mount_events_unresolved_total", "counter",
             "Mount events whose mount was gone when netnsd read them (attached and detached in "
             "between), so what it was is unknown; fanotify feed only.");
    w.sample("netnsd_mount_events_unresolved_total", {}, m.mounts_unresolved);

    w.family("netnsd_audits_total", "counter",
             "Audits run: the model compared with a full scan of the kernel.");
    w.sample("netnsd_audits_total", {}, m.audits);

    w.family("netnsd_audit_duration_seconds", "gauge",
             "How long the last audit took, scan and comparison.");
    w.sample("netnsd_audit_duration_seconds", {}, m.last_audit_seconds);

    w.family("netnsd_sweep_duration_seconds", "histogram",
             "How long each /proc sweep of the host inventory took, on its worker thread.");
    w.histogram("netnsd_sweep_duration_seconds", m.sweep_buckets, m.sweep_histogram, m.sweeps,
                m.sweep_seconds_sum);

    w.family("netnsd_sweep_processes", "gauge", "Processes the last /proc sweep read.");
    w.sample("netnsd_sweep_processes", {}, m.sweep_processes);
    w.family("netnsd_sweep_processes_read", "gauge",
             "Processes whose namespace link the last /proc sweep read: new ones, and those that "
             "ran since the sweep before (the others cannot have changed namespace).");
    w.sample("netnsd_sweep_processes_read", {}, m.sweep_processes_read);

    w.family("netnsd_proc_events_enabled", "gauge",
             "1 when netnsd follows the kernel's process events (--proc-events, accepted by the "
             "kernel).");
    w.sample("netnsd_proc_events_enabled", {}, std::uint64_t{m.proc_events ? 1u : 0u});

    w.family("netnsd_proc_events_total", "counter", "Process events (fork, exec, exit) read.");
    w.sample("netnsd_proc_events_total", {}, m.proc_events_read);

    w.family("netnsd_proc_event_lag_seconds", "histogram",
             "Per batch of process events read, from the kernel's time of its oldest event to "
             "the end of its application in the model.");
    w.histogram("netnsd_proc_event_lag_seconds", m.proc_event_lag_buckets,
                m.proc_event_lag_histogram, m.proc_event_batches, m.proc_event_lag_seconds_sum);

    w.family("netnsd_proc_event_overruns_total", "counter",
             "Times the process events' queue overflowed (events lost; a sweep ran at once).");
    w.sample("netnsd_proc_event_overruns_total", {}, m.proc_event_overruns);

    w.family("netnsd_cni_cache_watched", "gauge",
             "1 while the CNI cache dir (--cni-cache-dir) is watched for the pods of namespaces.");
    w.sample("netnsd_cni_cache_watched", {}, std::uint64_t{m.cni_cache_watched ? 1u : 0u});
    w.family("netnsd_cni_cache_files", "gauge", "CNI cache files read and understood.");
    w.sample("netnsd_cni_cache_files", {}, m.cni_cache_files);
    w.family("netnsd_cni_cache_pods", "gauge",
             "Namespaces whose owner is a pod a CNI cache file names.");
    w.sample("netnsd_cni_cache_pods", {}, m.cni_cache_pods);
    w.family("netnsd_cni_cache_rejected_total", "counter",
             "CNI cache file reads refused: too large, not a regular file or unreadable "
             "(skipped), or not a libcni cache entry (malformed).");
    w.sample("netnsd_cni_cache_rejected_total", {{"reason", "skipped"}}, m.cni_cache_skipped);
    w.sample("netnsd_cni_cache_rejected_total", {{"reason", "malformed"}}, m.cni_cache_malformed);

    w.family("netnsd_mount_namespaces", "gauge",
             "Mount namespaces other than netnsd's own that the last walk of them saw.");
    w.sample("netnsd_mount_namespaces", {}, m.mount_namespaces);
    w.family("netnsd_mount_namespace_walk_seconds", "gauge",
             "How long the last walk of the other mount namespaces took, on the sweep's worker.");
    w.sample("netnsd_mount_namespace_walk_seconds", {}, m.last_mntns_walk_seconds);
    w.family("netnsd_mount_namespace_walks_total", "counter",
             "Walks of the other mount namespaces: one with each sweep, and one after a mount "
             "was attached in one of them.");
    w.sample("netnsd_mount_namespace_walks_total", {}, m.mntns_walks);
    w.family("netnsd_mount_namespaces_followed", "gauge",
             "Other mount namespaces whose mount events netnsd follows between walks (0 where the "
             "kernel has no fanotify mount events).");
    w.sample("netnsd_mount_namespaces_followed", {}, m.mount_namespaces_followed);
    w.family("netnsd_foreign_mount_events_total", "counter",
             "Mount events read from the other mount namespaces.");
    w.sample("netnsd_foreign_mount_events_total", {}, m.foreign_mount_events);

    w.family("netnsd_deep_scan_duration_seconds", "histogram",
             "How long each deep scan of every process's fds and sockets took, on its worker "
             "thread.");
    w.histogram("netnsd_deep_scan_duration_seconds", m.deep_scan_buckets, m.deep_scan_histogram,
                m.deep_scans, m.deep_scan_seconds_sum);

    w.family("netnsd_deep_scan_fds", "gauge",
             "Fds the last deep scan visited (one readlink each).");
    w.sample("netnsd_deep_scan_fds", {}, m.deep_scan_fds);
    w.family("netnsd_deep_scan_sockets", "gauge",
             "Sockets the last deep scan asked their namespace (pidfd_getfd and SIOCGSKNS each).");
    w.sample("netnsd_deep_scan_sockets", {}, m.deep_scan_sockets);

    w.family("netnsd_model_divergences_total", "counter",
             "Differences between the model and the kernel that an audit found and repaired, by "
             "kind; always 0 on a healthy netnsd.");
    for (const auto kind : core::all_divergence_kinds)
        w.sample("netnsd_model_divergences_total", {{"kind", core::to_string(kind)}},
                 m.divergences_of(kind));
}

std::string metrics::render(const scrape_inputs& in) const
{
    std::string out;
    out.reserve(8192);
    writer w(out);
    static const core::model_status no_model;
    const auto& model = in.model != nullptr ? *in.model : no_model;
    render_inventory(w, in, model);
    render_model(w, model);
    render_http(w);
    render_clients(w, in);
    render_admin(w, in);
    if (in.process)
        render_process(w, *in.process);
    w.family("netnsd_build_info", "gauge", "Always 1; the version is the label.");
    w.sample("netnsd_build_info", {{"version", NETNSD_VERSION}}, std::uint64_t{1});
    return out;
}

void metrics::render_inventory(writer& w, const scrape_inputs& in,
                               const core::model_status& model) const
{
    w.family("netnsd_namespaces", "gauge",
             "Entries in the netns dir: live (a namespace is mounted) or stale (anything else).");
    w.sample("netnsd_namespaces", {{"state", "live"}}, std::uint64_t{in.live});
    w.sample("netnsd_namespaces", {{"state", "stale"}}, std::uint64_t{in.stale});

    w.family("netnsd_host_namespaces", "gauge",
             "Network namespaces of the host netnsd knows, named or not, by owner kind.");
    for (std::size_t i = 0; i < in.host_namespaces.size(); ++i)
        w.sample("netnsd_host_namespaces",
                 {{"owner_kind", core::to_string(static_cast<core::owner_kind>(i))}},
                 std::uint64_t{in.host_namespaces[i]});
    w.family("netnsd_leaked_namespaces", "gauge",
             "Namespaces that exist and that nothing netnsd sees holds (no name, mount, "
             "process, or fd or socket at the last deep scan): leak candidates.");
    w.sample("netnsd_leaked_namespaces", {}, std::uint64_t{in.leaked_namespaces});

    w.family("netnsd_nsids", "gauge", "Namespaces with an nsid, named or not.");
    w.sample("netnsd_nsids", {}, std::uint64_t{in.nsids});

    w.family("netnsd_revision", "gauge", "The model's revision: the last event's.");
    w.sample("netnsd_revision", {}, std::uint64_t{in.revision});

    w.family("netnsd_netns_dir_watched", "gauge",
             "1 while the netns dir is watched, 0 while it is missing or unusable (degraded).");
    w.sample("netnsd_netns_dir_watched", {}, std::uint64_t{model.watching ? 1U : 0U});

    w.family("netnsd_events_total", "counter", "Events published to the stream, by type.");
    for (std::size_t i = 0; i < events_.size(); ++i)
        w.sample("netnsd_events_total", {{"type", event_labels[i]}}, events_[i]);
}

void metrics::render_http(writer& w) const
{
    w.family("netnsd_http_requests_total", "counter",
             "HTTP requests answered, by method, route template and status code.");
    for (const auto& [key, n] : requests_)
    {
        const auto& [method, route, code] = key;
        const auto code_text = std::to_string(code);
        w.sample("netnsd_http_requests_total",
                 {{"method", method}, {"route", route}, {"code", code_text}}, n);
    }

    w.family("netnsd_http_request_duration_seconds", "histogram",
             "Time from a request's header to its answer, by route template.");
    for (const auto& [route, h] : durations_)
    {
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < duration_buckets.size(); ++i)
        {
            cumulative += h.buckets[i];
            std::string le;
            append_number(le, duration_buckets[i]);
            w.sample("netnsd_http_request_duration_seconds_bucket", {{"route", route}, {"le", le}},
                     cumulative);
        }
        w.sample("netnsd_http_request_duration_seconds_bucket", {{"route", route}, {"le", "+Inf"}},
                 h.count);
        w.sample("netnsd_http_request_duration_seconds_sum", {{"route", route}}, h.sum);
        w.sample("netnsd_http_request_duration_seconds_count", {{"route", route}}, h.count);
    }
}

void metrics::render_clients(writer& w, const scrape_inputs& in) const
{
    w.family("netnsd_connections", "gauge",
             "Client connections open, on every listener (HTTP, websocket and stream clients).");
    w.sample("netnsd_connections", {}, std::uint64_t{open_connections_});

    w.family("netnsd_connections_rejected_total", "counter",
             "Connections closed unserved, by reason: limit (max connections open already) or "
             "accept_failed (accept(2) failed, e.g. out of descriptors).");
    w.sample("netnsd_connections_rejected_total", {{"reason", "limit"}},
             rejected_[static_cast<std::size_t>(connection_rejection::limit)]);
    w.sample("netnsd_connections_rejected_total", {{"reason", "accept_failed"}},
             rejected_[static_cast<std::size_t>(connection_rejection::accept_failed)]);

    w.family("netnsd_stream_clients", "gauge", "Event stream clients connected, by kind.");
    for (std::size_t i = 0; i < in.stream_clients.size(); ++i)
        w.sample("netnsd_stream_clients", {{"kind", stream_labels[i]}},
                 std::uint64_t{in.stream_clients[i]});

    w.family("netnsd_stream_clients_dropped_total", "counter",
             "Event stream clients closed by netnsd, by reason.");
    for (std::size_t i = 0; i < in.stream_dropped.size(); ++i)
        w.sample("netnsd_stream_clients_dropped_total", {{"reason", drop_labels[i]}},
                 in.stream_dropped[i]);
}

void metrics::render_admin(writer& w, const scrape_inputs& in) const
{
    w.family("netnsd_admin_operations_total", "counter",
             "Admin API operations, by operation and result (ok, rejected: 4xx, failed: 5xx).");
    for (const auto& [key, n] : admin_ops_)
        w.sample("netnsd_admin_operations_total", {{"op", key.first}, {"result", key.second}}, n);

    w.family("netnsd_exec_running", "gauge", "Commands running through the exec endpoint.");
    w.sample("netnsd_exec_running", {}, std::uint64_t{in.exec_running});
}

void metrics::render_process(writer& w, const process_stats& p)
{
    w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    w.sample("process_resident_memory_bytes", {}, p.resident_bytes);
    w.family("process_open_fds", "gauge", "Number of open file descriptors.");
    w.sample("process_open_fds", {}, p.open_fds);
    w.family("process_cpu_seconds_total", "counter",
             "Total user and system CPU time spent in seconds.");
    w.sample("process_cpu_seconds_total", {}, p.cpu_seconds);
    w.family("process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.");
    w.sample("process_start_time_seconds", {}, p.start_time_seconds);
}

} // namespace netnsd::api
