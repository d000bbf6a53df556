#include "api/interface_metrics.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <exception>
#include <linux/if.h>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

#include "core/errc.hpp"
#include "core/kernel/link_gather.hpp"
#include "core/link_watch.hpp"
#include "core/log.hpp"
#include "core/utf8.hpp"

#include "api/metrics.hpp"

namespace netnsd::api
{
namespace
{

using core::kernel::link_counters;

struct counter_family
{
    std::string_view name;
    std::string_view help;
    std::uint64_t link_counters::*field;
};

// node_exporter's names (node_network_*), with netnsd's prefix, in its order.
constexpr std::array<counter_family, 8> counter_families = {{
    {"netnsd_network_receive_bytes_total", "Bytes received (IFLA_STATS64 rx_bytes).",
     &link_counters::rx_bytes},
    {"netnsd_network_receive_packets_total", "Packets received (rx_packets).",
     &link_counters::rx_packets},
    {"netnsd_network_receive_errs_total", "Receive errors (rx_errors).", &link_counters::rx_errors},
    {"netnsd_network_receive_drop_total", "Received packets dropped (rx_dropped).",
     &link_counters::rx_dropped},
    {"netnsd_network_transmit_bytes_total", "Bytes sent (IFLA_STATS64 tx_bytes).",
     &link_counters::tx_bytes},
    {"netnsd_network_transmit_packets_total", "Packets sent (tx_packets).",
     &link_counters::tx_packets},
    {"netnsd_network_transmit_errs_total", "Transmit errors (tx_errors).",
     &link_counters::tx_errors},
    {"netnsd_network_transmit_drop_total", "Packets dropped on sending (tx_dropped).",
     &link_counters::tx_dropped},
}};

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
{
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t value)
{
    char digits[24];
    const auto end = std::to_chars(std::begin(digits), std::end(digits), value).ptr;
    out.append(name).append(labels).append(" ").append(digits, end).append("\n");
}

} // namespace

std::string render_interface_metrics(interface_scrape s, std::size_t max_series)
{
    std::string out;
    render_interface_metrics(std::move(s), max_series, out);
    return out;
}

void render_interface_metrics(interface_scrape s, std::size_t max_series, std::string& out)
{
    // The labels as they are written (valid UTF-8), which is what they are sorted by.
    for (auto& i : s.interfaces)
    {
        i.netns = core::valid_utf8(i.netns);
        i.device = core::valid_utf8(i.device);
    }
    std::stable_sort(s.interfaces.begin(), s.interfaces.end(),
                     [](const auto& a, const auto& b)
                     { return std::tie(a.netns, a.device) < std::tie(b.netns, b.device); });
    // Two interfaces whose labels became the same (a name made of the other's U+FFFD, a name
    // "ns_id:N"): the first in the inventory's order is kept, as a duplicate series would fail
    // the whole scrape.
    const auto same = [](const auto& a, const auto& b)
    {
        return a.netns == b.netns && a.device == b.device;
    };
    const auto last = std::unique(s.interfaces.begin(), s.interfaces.end(), same);
    const auto duplicates = static_cast<std::size_t>(s.interfaces.end() - last);
    s.interfaces.erase(last, s.interfaces.end());

    // Whole interfaces, in that order, while their series fit.
    std::size_t series = 0;
    std::size_t kept = 0;
    for (; kept < s.interfaces.size(); ++kept)
    {
        const std::size_t n = s.interfaces[kept].counters ? counter_families.size() + 1 : 1;
        if (series + n > max_series)
            break;
        series += n;
    }
    const std::size_t capped = s.interfaces.size() - kept;

    // Each interface's label set, written once (one string: not an allocation each).
    std::string label_text;
    label_text.reserve(kept * 40);
    std::vector<std::size_t> label_end(kept);
    for (std::size_t i = 0; i < kept; ++i)
    {
        label_text.append("{netns=\"");
        append_label_value(label_text, s.interfaces[i].netns);
        label_text.append("\",device=\"");
        append_label_value(label_text, s.interfaces[i].device);
        label_text.append("\"}");
        label_end[i] = label_text.size();
    }
    const auto labels = [&](std::size_t i)
    {
        const std::size_t from = i == 0 ? 0 : label_end[i - 1];
        return std::string_view(label_text).substr(from, label_end[i] - from);
    };

    out.clear();
    out.reserve(series * 70 + 4096);
    for (const auto& f : counter_families)
    {
        family(out, f.name, "counter", std::string(f.help) + " by namespace and interface.");
        for (std::size_t i = 0; i < kept; ++i)
            if (const auto& c = s.interfaces[i].counters)
                sample(out, f.name, labels(i), (*c).*f.field);
    }
    family(out, "netnsd_network_up", "gauge",
           "1 when the interface's operational state is up (as node_network_up: lo, whose "
           "state is unknown, is 0).");
    for (std::size_t i = 0; i < kept; ++i)
        sample(out, "netnsd_network_up", labels(i), s.interfaces[i].up ? 1 : 0);

    family(out, "netnsd_network_namespaces_read", "gauge",
           "Namespaces the last gathering read, by how: nsid (a dump by nsid from netnsd's "
           "namespace, or of netnsd's own), entered (a dump on a socket made inside).");
    sample(out, "netnsd_network_namespaces_read", "{way=\"nsid\"}", s.by_nsid);
    sample(out, "netnsd_network_namespaces_read", "{way=\"entered\"}", s.entered);
    family(out, "netnsd_network_namespaces_skipped", "gauge",
           "Namespaces of the inventory whose interfaces the last gathering did not read: "
           "unreachable (no nsid, and no name, mount or process to open it by), failed (its "
           "dump failed: gone meanwhile).");
    sample(out, "netnsd_network_namespaces_skipped", "{reason=\"unreachable\"}", s.unreachable);
    sample(out, "netnsd_network_namespaces_skipped", "{reason=\"failed\"}", s.failed);
    family(out, "netnsd_network_nsid_walk", "gauge",
           "How many entries of netnsd's nsid table the kernel walks, in a dump by nsid, for each "
           "link whose peer is in netnsd's namespace (its own nsid's place in the table).");
    sample(out, "netnsd_network_nsid_walk", "", s.nsid_walk);
    family(out, "netnsd_network_own_links_cached", "gauge",
           "1 when the last gathering took netnsd's own namespace's link names and states from "
           "its previous dump (no link changed there since, as its link group said) and only "
           "the counters from RTM_GETSTATS; 0 when it dumped them.");
    sample(out, "netnsd_network_own_links_cached", "", s.own_from_cache ? 1 : 0);
    family(out, "netnsd_metrics_series_capped", "gauge",
           "1 when the per-interface series reached --metrics-max-series and interfaces were "
           "left out.");
    sample(out, "netnsd_metrics_series_capped", "", capped != 0 ? 1 : 0);
    family(out, "netnsd_metrics_interfaces_dropped", "gauge",
           "Interfaces left out of the per-interface series: series_cap (beyond "
           "--metrics-max-series), duplicate_labels (the same netns and device labels as "
           "another's).");
    sample(out, "netnsd_metrics_interfaces_dropped", "{reason=\"series_cap\"}", capped);
    sample(out, "netnsd_metrics_interfaces_dropped", "{reason=\"duplicate_labels\"}", duplicates);
    family(out, "netnsd_network_gather_duration_seconds", "gauge",
           "How long the last gathering of the per-interface series took (its link dumps).");
    out.append("netnsd_network_gather_duration_seconds ")
        .append(std::to_string(s.seconds))
        .append("\n");
}

// The families' text is megabytes at a thousand namespaces (1.8 MB at 1000 with a veth each).
// Written into fresh memory, each of its pages costs a page fault: ~500 at 1000 namespaces,
// 6 ms on the 2-core VM the benchmarks run on, six times the rendering itself. So the memory of
// a text nothing holds any more (the cache has a newer one, its responses are written) comes
// back here, and the next gathering writes into it. One spare is kept, the largest: at most
// one text's worth of memory beyond the cached text, for as long as netnsd runs.
class interface_metrics::text_buffers : public std::enable_shared_from_this<text_buffers>
{
public:
    // The spare's memory (empty), or none.
    std::string take()
    {
        const std::lock_guard lock(mutex_);
        return std::exchange(spare_, std::string());
    }

    // `text`, shared: when its last holder lets go, its memory becomes the spare.
    text_ptr share(std::string text)
    {
        return text_ptr(new std::string(std::move(text)),
                        [self = shared_from_this()](const std::string* t)
                        {
                            // Made non-const in share(): this is its only owner now.
                            std::unique_ptr<std::string> owned(const_cast<std::string*>(t));
                            self->give_back(std::move(*owned));
                        });
    }

private:
    void give_back(std::string memory)
    {
        const std::lock_guard lock(mutex_);
        if (memory.capacity() > spare_.capacity())
            spare_ = std::move(memory);
    }

    std::mutex mutex_;
    std::string spare_;
};

unsigned interface_metrics::default_threads() noexcept
{
    return std::clamp(std::thread::hardware_concurrency(), 1U, 4U);
}

interface_metrics::interface_metrics(const core::registry& model, std::string netns_dir,
                                     std::size_t max_series, unsigned threads)
    : model_(model), netns_dir_(std::move(netns_dir)), max_series_(max_series),
      threads_(std::max(threads, 1U)), buffers_(std::make_shared<text_buffers>())
{
}

interface_metrics::text_ptr interface_metrics::gather(const std::vector<target>& targets,
                                                      interface_scrape plan, std::size_t max_series,
                                                      unsigned threads,
                                                      core::kernel::own_links& own,
                                                      text_buffers& buffers)
{
    const auto start = std::chrono::steady_clock::now();
    std::vector<core::kernel::gather_target> how;
    how.reserve(targets.size());
    for (const auto& t : targets)
        how.push_back(t.how);
    auto found = core::kernel::gather_links(how, threads, &own);
    auto s = std::move(plan);
    s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::size_t links = 0;
    for (const auto& f : found)
        links += f.links.size();
    s.interfaces.reserve(links);
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        if (found[i].ec == core::errc::thread_netns_lost)
        {
            // A thread of this worker may be stuck in another namespace: anything it did next
            // would happen there. Stop; the supervisor restarts netnsd.
            core::log::error("exiting: a worker thread is stuck in another namespace",
                             {{"while", "gathering interface metrics"}});
            std::_Exit(EXIT_FAILURE);
        }
        if (found[i].ec)
        {
            ++s.failed;
            continue;
        }
        s.own_from_cache = s.own_from_cache || found[i].from_cache;
        for (auto& l : found[i].links)
            s.interfaces.push_back(
                {targets[i].label, std::move(l.name), l.counters, l.operstate == IF_OPER_UP});
    }
    auto text = buffers.take();
    render_interface_metrics(std::move(s), max_series, text);
    return buffers.share(std::move(text));
}

std::variant<response, deferred> interface_metrics::scrape(finish_fn finish)
{
    const auto now = std::chrono::steady_clock::now();
    if (cached_ && now - cached_at_ <= max_age)
        return finish(cached_);

    deferred job;
    if (running_ && now - running_->started <= join_window)
    {
        // Another scrape's gathering is under way: its text will do.
        job.work = [text = running_->text, finish = std::move(finish)]
        {
            auto t = text.get();
            return std::function<response()>([t, finish] { return finish(t); });
        };
        return job;
    }

    // What to read, and how, from the I/O thread's replica of the model (the worker touches
    // none of it). A dump by nsid walks netnsd's nsid table for every veth to netnsd's
    // namespace up to netnsd's own nsid, which the kernel gives it at its first such dump: on a
    // host whose containers came first, after all of theirs, and the scrape is O(N^2). Then a
    // namespace is entered instead (a socket made inside: the walk is of its own small table).
    // One row of the model at a time (a copy of every row at once is megabytes at 5000, each
    // page of it a fault): each namespace's label, nsid and locator, then the way is chosen.
    struct planned
    {
        target t;
        std::optional<core::nsid_t> nsid;
    };
    std::vector<planned> rows;
    rows.reserve(model_.host_count());
    std::vector<core::nsid_t> table;
    std::optional<core::nsid_t> self_nsid;
    model_.for_each_host_namespace(
        [&](const core::host_namespace& h)
        {
            planned p;
            p.nsid = h.nsid;
            p.t.label =
                h.names.empty() ? "ns_id:" + std::to_string(h.identity.ns_id) : h.names.front();
            if (h.is_self)
            {
                self_nsid = h.nsid;
                p.t.how.how = core::kernel::gather_target::way::own;
            }
            else
            {
                if (h.nsid)
                    table.push_back(*h.nsid);
                p.t.how.how = core::kernel::gather_target::way::inside;
                p.t.how.where = core::locate(model_, h, netns_dir_);
            }
            rows.push_back(std::move(p));
        });
    interface_scrape plan;
    plan.nsid_walk = core::kernel::nsid_walk_length(table, self_nsid);
    const bool by_nsid = plan.nsid_walk <= max_nsid_walk;
    std::vector<target> targets;
    targets.reserve(rows.size());
    for (auto& [t, nsid] : rows)
    {
        auto& how = t.how;
        if (how.how == core::kernel::gather_target::way::inside)
        {
            const bool unreachable = how.where.paths.empty() && how.where.pids.empty();
            if (nsid && (by_nsid || unreachable))
            {
                how.how = core::kernel::gather_target::way::by_nsid;
                how.nsid = *nsid;
                how.where = {};
            }
            else if (unreachable)
            {
                ++plan.unreachable; // held by an fd, a socket or nothing netnsd can open
                continue;
            }
        }
        const bool own = how.how == core::kernel::gather_target::way::own;
        ++(how.how == core::kernel::gather_target::way::inside ? plan.entered : plan.by_nsid);
        targets.push_back(std::move(t));
        // netnsd's own first: with a veth to each container, its dump is the longest.
        if (own)
            std::rotate(targets.begin(), std::prev(targets.end()), targets.end());
    }
    auto done = std::make_shared<std::promise<text_ptr>>();
    running_ = gathering{now, done->get_future().share()};
    job.work = [this, targets = std::move(targets), plan = std::move(plan), done, started = now,
                max_series = max_series_, threads = threads_, finish = std::move(finish)]
    {
        text_ptr text;
        try
        {
            text = gather(targets, plan, max_series, threads, *own_, *buffers_);
            done->set_value(text);
        }
        catch (...)
        {
            done->set_exception(std::current_exception());
            throw;
        }
        return std::function<response()>(
            [this, text, started, finish]
            {
                // Back on the loop: the next scrapes within max_age of now get this text (from
                // its end: a gathering that took longer than max_age is still shared).
                const auto done_at = std::chrono::steady_clock::now();
                if (!cached_ || cached_at_ < done_at)
                {
                    cached_ = text;
                    cached_at_ = done_at;
                }
                if (running_ && running_->started == started)
                    running_.reset();
                return finish(text);
            });
    };
    return job;
}

} // namespace netnsd::api
