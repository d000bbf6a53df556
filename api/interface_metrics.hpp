// interface_metrics: with --metrics-interfaces, GET /metrics also carries every interface of
// every namespace netnsd can read, under node_exporter's names with a `netns` label:
// netnsd_network_{receive,transmit}_{bytes,packets,errs,drop}_total{netns,device} and
// netnsd_network_up. They are gathered at scrape time (core/kernel/link_gather: one RTM_GETLINK
// dump per namespace, nothing polled in the background) on a worker, and the text is kept
// max_age for the next scrapes; a scrape while a gathering runs waits for that one rather than
// starting another. A namespace is dumped by its nsid, never entered, while the kernel's walk of
// netnsd's nsid table for each veth to netnsd's namespace is short (max_nsid_walk); past that,
// and for a namespace without an nsid, on a socket made inside it (see scrape()).
// --metrics-max-series caps the series: whole interfaces, in the order of their labels, and hitting
// the cap is a metric of its own. Owned by the router; scrape() on the loop thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/kernel/link_dump.hpp"
#include "core/kernel/link_gather.hpp"
#include "core/registry.hpp"

#include "api/http.hpp"

namespace netnsd::api
{

// One interface as a scrape read it.
struct interface_sample
{
    std::string netns;  // the namespace's first name, or "ns_id:N" for one without a name
    std::string device; // its name (bytes, as the kernel has them)
    std::optional<core::kernel::link_counters> counters; // IFLA_STATS64, when the kernel sent it
    bool up = false;                                     // operstate IF_OPER_UP
};

// What one gathering found.
struct interface_scrape
{
    std::vector<interface_sample> interfaces; // any order
    std::size_t by_nsid = 0;                  // namespaces read by nsid (netnsd's own included)
    std::size_t entered = 0;                  // namespaces read on a socket made inside them
    std::size_t unreachable = 0; // not read: no nsid, and no path or process to open it by
    std::size_t failed = 0;      // namespaces whose dump failed (gone meanwhile, ...)
    std::size_t nsid_walk = 0;   // core::kernel::nsid_walk_length of netnsd's namespace
    // netnsd's own namespace: its links' names and states kept from an earlier dump, its
    // counters from RTM_GETSTATS (core::kernel::own_links), rather than dumped.
    bool own_from_cache = false;
    double seconds = 0; // how long the dumps took
};

// The families in the text format. Interfaces are sorted by their label values (netns, then
// device), each made valid UTF-8 (a byte that is not becomes U+FFFD); two with the same labels
// after that keep the first only. Whole interfaces are kept while their series fit in
// `max_series`; the rest are dropped and counted.
std::string render_interface_metrics(interface_scrape s, std::size_t max_series);
// The same, written into `out` (cleared first; its capacity is kept).
void render_interface_metrics(interface_scrape s, std::size_t max_series, std::string& out);

class interface_metrics
{
public:
    // 50000 series are 5555 interfaces (9 series each): ~2700 namespaces with a veth and lo
    // each, a ~5 MB scrape. Beyond that one target's scrape is the kind of cardinality a
    // Prometheus server is usually protected from (sample_limit); raise it knowingly.
    static constexpr std::size_t default_max_series = 50000;
    static constexpr std::size_t series_per_interface = 9;
    // A gathering answers scrapes for this long (as the links endpoints' dumps do).
    static constexpr std::chrono::milliseconds max_age{1000};
    // A scrape waits for a gathering under way that started at most this long ago (one that
    // failed never ends on the loop; after this, a scrape starts its own).
    static constexpr std::chrono::seconds join_window{10};

    // A dump by nsid costs the kernel a walk of netnsd's nsid table for every link whose peer is
    // in netnsd's namespace, up to netnsd's own nsid (core::kernel::nsid_walk_length): ~50 ns
    // an entry here, while entering costs ~25 us more than a dump by nsid (Linux 6.18, 2000
    // namespaces each with a veth to netnsd's). Past this walk, namespaces are entered.
    static constexpr std::size_t max_nsid_walk = 256;
    // One thread per CPU, at most 4: the dumps are the kernel's work, on the reader's CPU.
    static unsigned default_threads() noexcept;

    // `threads`: how many threads (each with its own netlink socket) share a gathering;
    // `netns_dir`: where the names are (for opening a namespace to enter).
    interface_metrics(const core::registry& model, std::string netns_dir, std::size_t max_series,
                      unsigned threads);

    // The response to GET /metrics: `finish` makes it on the loop from the families' text, at
    // once when a gathering at most max_age old has it, else after one on a worker. The text is
    // shared with the cache (response::shared_tail), not copied.
    using text_ptr = std::shared_ptr<const std::string>;
    using finish_fn = std::function<response(text_ptr families)>;
    std::variant<response, deferred> scrape(finish_fn finish);

private:
    struct target
    {
        core::kernel::gather_target how;
        std::string label;
    };
    struct gathering
    {
        std::chrono::steady_clock::time_point started;
        std::shared_future<text_ptr> text;
    };

    class text_buffers;

    static text_ptr gather(const std::vector<target>& targets, interface_scrape plan,
                           std::size_t max_series, unsigned threads, core::kernel::own_links& own,
                           text_buffers& buffers);

    const core::registry& model_;
    std::string netns_dir_;
    std::size_t max_series_;
    unsigned threads_;
    text_ptr cached_;
    std::chrono::steady_clock::time_point cached_at_;
    std::optional<gathering> running_;
    // netnsd's own namespace's links between scrapes (used by the gathering workers).
    std::unique_ptr<core::kernel::own_links> own_ = std::make_unique<core::kernel::own_links>();
    // The texts' memory, kept from one gathering to the next (shared with the texts, which can
    // outlive this object in a response being written).
    std::shared_ptr<text_buffers> buffers_;
};

} // namespace netnsd::api
