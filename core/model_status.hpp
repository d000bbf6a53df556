// model_status: what the model thread tells the rest of netnsd about its kernel feeds, beside
// the model itself: the dir it watches and why it cannot, which mount feed it uses, how often it
// had to start over, and what the audits found. Plain data; the model thread makes it, and
// hands copies to the I/O thread with the changes it publishes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/model.hpp"

namespace netnsd::core
{

// What an audit can find wrong with the model (netnsd_model_divergences_total{kind}).
enum class divergence_kind
{
    entry_missing, // the kernel has a name the model had not
    entry_extra,   // the model had a name the kernel has not
    entry_changed, // a name is live or stale, or another namespace or nsid, than the model said
    nsid,          // an nsid of an unnamed namespace exists that the model lacked, or not
};
inline constexpr std::array all_divergence_kinds = {
    divergence_kind::entry_missing, divergence_kind::entry_extra, divergence_kind::entry_changed,
    divergence_kind::nsid};
std::string_view to_string(divergence_kind kind) noexcept;

// Which mount-table feed to use: fanotify where the kernel has it (automatic), or one of them.
enum class mount_choice
{
    automatic,
    fanotify,
    mountinfo,
};
bool parse_mount_choice(std::string_view text, mount_choice& out) noexcept;

struct model_status
{
    // Why the model was rebuilt from a full scan.
    enum class resync_reason
    {
        start,
        dir_changed, // the dir appeared, vanished, was replaced or mounted over
        inotify_overflow,
        netlink_overrun,
        mount_overflow, // the fanotify queue overflowed
        link_overrun,   // --watch-links: the link listener overran; every namespace re-dumped
    };
    static constexpr std::array all_resync_reasons = {resync_reason::start,
                                                      resync_reason::dir_changed,
                                                      resync_reason::inotify_overflow,
                                                      resync_reason::netlink_overrun,
                                                      resync_reason::mount_overflow,
                                                      resync_reason::link_overrun};

    // How the model learns that a name became a namespace (its bind mount makes no inotify
    // event): fanotify mount events, in kernel order, or mountinfo's "something changed".
    enum class mount_source
    {
        fanotify,
        mountinfo,
    };

    std::string netns_dir;
    bool watching = false;
    std::string problem; // why the dir is not watched; empty when it is
    std::array<std::uint64_t, all_resync_reasons.size()> resyncs{};
    mount_source mounts = mount_source::mountinfo;
    // Mount events that named a mount already gone when netnsd read them (attached and
    // detached in between): what it was cannot be known. Not all are namespaces.
    std::uint64_t mounts_unresolved = 0;
    // The fanotify feed's reader thread runs under SCHED_FIFO (else at the model thread's
    // nice value, or there is no reader).
    bool mount_reader_realtime = false;
    // The model thread runs under SCHED_FIFO (else at nice -10 or netnsd's own).
    bool model_thread_realtime = false;

    std::uint64_t audits = 0;
    std::array<std::uint64_t, all_divergence_kinds.size()> divergences{};
    double last_audit_seconds = 0; // how long the last audit took, scan and comparison

    // The /proc sweep of the host inventory: how many, how long each took (a histogram with
    // these upper bounds, in seconds, not cumulative), and how many processes the last read.
    static constexpr std::array<double, 10> sweep_buckets = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                             0.05,  0.1,    0.25,  0.5,  1};
    std::uint64_t sweeps = 0;
    std::array<std::uint64_t, sweep_buckets.size()> sweep_histogram{};
    double sweep_seconds_sum = 0;
    double last_sweep_seconds = 0;     // wall time of the last one, on its worker
    std::uint64_t sweep_processes = 0; // /proc entries it read
    // Of those, the ones whose namespace it read (the others had not run since the sweep before)
    std::uint64_t sweep_processes_read = 0;
    // The walk of the other mount namespaces, made with each sweep: how many the last one saw
    // (netnsd's own excluded) and its wall time.
    std::uint64_t mount_namespaces = 0;
    double last_mntns_walk_seconds = 0;
    std::uint64_t mntns_walks = 0; // with the sweeps, and after an attach in one of them
    // Their mounts followed between walks (kernel::foreign_mount_feed): how many of them are
    // marked (0 without fanotify mount events), and the events read.
    std::uint64_t mount_namespaces_followed = 0;
    std::uint64_t foreign_mount_events = 0;

    // The deep scan of every process's fds (fd and socket holders): how many, how long each
    // took (a histogram with these upper bounds, not cumulative), what the last one visited.
    static constexpr std::array<double, 10> deep_scan_buckets = {0.01, 0.025, 0.05, 0.1, 0.25,
                                                                 0.5,  1,     2.5,  5,   10};
    std::uint64_t deep_scans = 0;
    std::array<std::uint64_t, deep_scan_buckets.size()> deep_scan_histogram{};
    double deep_scan_seconds_sum = 0;
    std::uint64_t deep_scan_fds = 0;     // fds the last one visited
    std::uint64_t deep_scan_sockets = 0; // sockets it asked their namespace

    // The process connector (fork/exec/exit events): whether netnsd listens (--proc-events and
    // the kernel accepted), why not when it was asked for and failed, the events read, and how
    // often its queue overflowed (each overflow runs a sweep at once).
    bool proc_events = false;
    std::string proc_events_problem;
    std::uint64_t proc_events_read = 0;
    std::uint64_t proc_event_overruns = 0;
    // How far behind the kernel they are taken in: per batch read, from the kernel's time of
    // its oldest event to the end of its application (a namespace found or emptied by it is then
    // in the model, its event published next; process counts are queued to be coalesced).
    static constexpr std::array<double, 12> proc_event_lag_buckets = {
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1};
    std::uint64_t proc_event_batches = 0;
    std::array<std::uint64_t, proc_event_lag_buckets.size()> proc_event_lag_histogram{};
    double proc_event_lag_seconds_sum = 0;

    // The CNI cache (--cni-cache-dir, core::cni_cache): whether its dir is watched, the files
    // understood, the namespaces that have a pod from it, and the reads it refused.
    bool cni_cache_watched = false;
    std::uint64_t cni_cache_files = 0;
    std::uint64_t cni_cache_pods = 0;
    std::uint64_t cni_cache_skipped = 0;   // too large, not a regular file, unreadable, too many
    std::uint64_t cni_cache_malformed = 0; // not a libcni cache entry

    std::uint64_t resyncs_for(resync_reason why) const noexcept
    {
        return resyncs[static_cast<std::size_t>(why)];
    }
    std::uint64_t divergences_of(divergence_kind kind) const noexcept
    {
        return divergences[static_cast<std::size_t>(kind)];
    }

    friend bool operator==(const model_status&, const model_status&) = default;
};

std::string_view to_string(model_status::mount_source source) noexcept;

// One observation in a histogram kept as model_status keeps them: counted in the first bucket
// whose upper bound holds it (in none when above them all: the +Inf bucket is the count).
template <std::size_t N>
void observe(const std::array<double, N>& bounds, std::array<std::uint64_t, N>& buckets,
             std::uint64_t& count, double& sum, double value) noexcept
{
    ++count;
    sum += value;
    for (std::size_t i = 0; i < N; ++i)
        if (value <= bounds[i])
        {
            ++buckets[i];
            return;
        }
}

} // namespace netnsd::core
