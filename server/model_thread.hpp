// model_thread: the kernel side of netnsd, on a thread and io_context of its own. It owns the
// monitor (inotify, fanotify or mountinfo, the nsid socket), the model it keeps (the primary
// registry), the periodic audit and the worker that scans the kernel for it. Nothing the I/O
// thread does -- fanning events out to a thousand clients, serving lists -- can delay reading
// the kernel: a mount must be looked at while it still exists, and the model must never trail
// the kernel by more than this thread's own work. The host inventory's /proc sweep and deep
// scan run on workers of their own, and are applied here.
//
// The primary registry records every change it makes; after each handler the thread publishes
// those changes (and its status, when it changed) to the model_feed, which replays them on the
// I/O thread's replica. Both registries are the same state machine fed the same calls, so they
// number every event the same way. The I/O thread asks for work by posting: refresh_then (an
// admin request changed names: look at them, then answer) and audit_now (from a worker).
// Owned by main.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "core/cni_cache.hpp"
#include "core/kernel/proc_sweep.hpp"
#include "core/link_watch.hpp"
#include "core/model_control.hpp"
#include "core/model_status.hpp"
#include "core/monitor.hpp"
#include "core/registry.hpp"

#include "server/model_feed.hpp"
#include "server/watchers.hpp"

namespace netnsd::server
{

class model_thread final : public core::model_control
{
public:
    struct settings
    {
        static constexpr std::string_view default_netns_dir = "/run/netns";
        static constexpr core::mount_choice default_mounts = core::mount_choice::automatic;
        static constexpr std::chrono::seconds default_audit_interval{60};
        // The /proc sweep of the host inventory: a namespace held only by processes is found
        // (and a freed one reported) within this; one readlink per process, on a worker.
        static constexpr std::chrono::seconds default_sweep_interval{5};
        // The deep scan of every process's fds and sockets (fd and socket holders): a syscall
        // per fd and three per socket, on a worker, seldom.
        static constexpr std::chrono::seconds default_deep_scan_interval{60};
        // The thread's nice value where it is not real-time (--model-thread nice, or without
        // CAP_SYS_NICE): it spends little CPU, but must apply the kernel's changes however
        // busy the I/O thread and the rest of the host are. Without CAP_SYS_NICE the thread
        // keeps netnsd's own (and says so).
        static constexpr int nice = -10;
        // The model thread's SCHED_FIFO priority, the lowest real-time one (--model-thread
        // realtime, the default): at nice -10 it still shared the CPU with 1000 stream clients'
        // I/O and the creator, and the model trailed the kernel by 10-28 ms now and then on a
        // saturated 2-core machine; real-time, by at most 4.2 ms (bench/events, held runs).
        // Its work per turn of its loop is bounded (the *_per_turn limits, sweep slices), and
        // the kernel's real-time throttling bounds it whatever happens.
        static constexpr int model_realtime_priority = 1;
        // The mount-event readers' SCHED_FIFO priority, above the model thread's, whose work
        // must never keep a reader from a mount while it exists: at nice -10 a reader could
        // wait 20-30 ms for a CPU on an oversubscribed host, and a namespace mounted for less
        // than that was missed (bench/events, short lives under load).
        static constexpr int reader_realtime_priority = model_realtime_priority + 1;

        std::string netns_dir{default_netns_dir};
        core::mount_choice mounts = default_mounts;
        std::chrono::seconds audit_interval = default_audit_interval; // 0: none but on demand
        std::chrono::seconds sweep_interval = default_sweep_interval; // >= 1
        std::chrono::seconds deep_scan_interval = default_deep_scan_interval; // 0: on demand
        // The process connector (fork/exec/exit events): a new namespace held by a process that
        // forked or exec'd into it is found at once rather than at the next sweep. Off by
        // default: while netnsd listens, every fork and exit on the host costs the kernel more
        // (bench/forktax). Outside the initial network namespace its socket is made in
        // proc_events_netns's.
        static constexpr std::string_view default_proc_events_netns = "/proc/1/ns/net";
        bool proc_events = false;
        std::string proc_events_netns{default_proc_events_netns};
        int proc_events_buffer = core::kernel::proc_connector::receive_buffer; // tests: small
        std::chrono::milliseconds proc_events_subscribe_pause{}; // tests: events pile up
        // The other mount namespaces' mount events between walks (core::monitor::
        // open_foreign_mounts). Off by default: every mount there then costs netnsd a little,
        // and an attach costs it a walk of every mount namespace (spaced, at most a tenth of a
        // CPU).
        bool follow_mount_namespaces = false;
        // The CNI cache (core::cni_cache): the Kubernetes pod of each namespace. Empty: off.
        static constexpr std::string_view default_cni_cache_dir = core::cni_cache::default_dir;
        std::string cni_cache_dir{default_cni_cache_dir};
        bool realtime_mount_reader = true; // --mount-reader realtime (else nice)
        bool realtime_model_thread = true; // --model-thread realtime (else nice)
        bool ignore_mount_events = false;  // fault injection for tests
        // --watch-links (core::link_watch) and --assign-nsids.
        bool watch_links = false;
        bool assign_nsids = false;
        int link_receive_buffer = 0; // fault injection for tests: a listener that overruns
    };

    model_thread(settings s, core::revision_t base, model_feed& feed);
    ~model_thread() override;
    model_thread(const model_thread&) = delete;
    model_thread& operator=(const model_thread&) = delete;

    // Opens the kernel feeds (start-up, on the main thread).
    std::error_code open();
    // The first scan, applied to the replica before this returns (so that READY=1 means a
    // complete model); then the thread starts. Call before the I/O loop runs.
    void start();
    // Finishes what is queued (refreshes posted by workers that were joined before), stops the
    // watchers and the audits, and joins the thread.
    void stop();

    // Any thread: the model looks at `names` (after reading what the kernel reported so far),
    // then `then` runs on the I/O thread once the replica has what that changed.
    void refresh_then(std::vector<std::string> names, std::function<void()> then);

    // A worker thread: runs an audit (or joins the one running) and waits for it.
    audit_report audit_now() override;
    // A worker thread: runs a deep scan (or joins the one running) and waits until the model
    // has its result.
    deep_scan_report deep_scan_now() override;

private:
    // Model thread: publishes what changed since the last call.
    void publish();
    void request_audit(std::function<void(const audit_report&)> done);
    void finish_audit(const core::reconciler::kernel_scan& scan, double scan_seconds);
    void arm_audit_timer();
    void arm_sweep_timer();
    void request_sweep();
    // On the thread: SCHED_FIFO (settings::model_realtime_priority), else nice -10.
    void set_own_priority();
    // A sweep's result is being applied, a slice per turn; `more`: slices are left.
    void sweep_applying(bool more);
    // The other mount namespaces' mount events (core::monitor::open_foreign_mounts): the fd's
    // wait, and the walks an attach asks for, one at a time and spaced (walk_spacing).
    void do_wait_foreign_mounts();
    void on_foreign_mounts(boost::system::error_code ec);
    void request_walk();
    void maybe_start_walk();
    void arm_deep_scan_timer();
    void request_deep_scan(std::function<void(const deep_scan_report&)> done);
    // --watch-links: the listener's wait, a later turn while it has more, the coalescing timer.
    void do_wait_links();
    void on_links(boost::system::error_code ec);
    void arm_link_flush();
    // --cni-cache-dir: the inotify fd's wait.
    void do_wait_cni();
    core::model_status status() const;

    settings settings_;
    model_feed& feed_;
    boost::asio::io_context ioc_{1};
    core::registry primary_;
    core::monitor monitor_;
    std::optional<core::link_watch> links_; // --watch-links
    std::optional<boost::asio::posix::stream_descriptor> links_fd_;
    boost::asio::steady_timer links_flush_;
    std::optional<std::chrono::steady_clock::time_point> links_flush_at_;
    bool links_sync_posted_ = false; // a publish() is posted for the namespaces link_watch left
    bool links_stopped_ = false;
    std::optional<core::cni_cache> cni_; // --cni-cache-dir
    std::optional<boost::asio::posix::stream_descriptor> cni_fd_;
    bool cni_stopped_ = false;
    std::vector<core::registry::change> recorded_;
    core::model_status published_;
    bool realtime_ = false; // the thread runs under SCHED_FIFO (set on the thread, read there)
    std::optional<watchers> watchers_; // once the monitor's fds are open
    boost::asio::steady_timer audit_timer_;
    boost::asio::thread_pool audit_pool_{1};
    bool auditing_ = false;
    std::chrono::steady_clock::time_point audit_started_;
    std::vector<std::function<void(const audit_report&)>> audit_waiters_;
    boost::asio::steady_timer sweep_timer_;
    // What each process was in at the last sweep (used by one sweep at a time: the first one in
    // start(), then on sweep_pool_).
    core::kernel::process_sweeper sweeper_;
    boost::asio::thread_pool sweep_pool_{1};
    bool sweeping_ = false;
    bool sweep_again_ = false; // asked while one ran (a process-event overrun)
    std::optional<boost::asio::posix::stream_descriptor> foreign_mounts_fd_;
    bool foreign_mounts_stopped_ = false;
    // A walk after an attach: at least walk_spacing after the last one ended, and at least ten
    // times as long as it took (so that walks take at most a tenth of a CPU however often the
    // other mount namespaces mount).
    static constexpr std::chrono::milliseconds walk_spacing{100};
    boost::asio::steady_timer walk_timer_;
    // After each read of the other mount namespaces' events, the next is this much later: a
    // namespace mounting in a loop wakes netnsd 50 times a second, not once per mount (the
    // kernel queues 16384 events; an overflow is a walk). Their detaches are applied that much
    // later at most.
    static constexpr std::chrono::milliseconds foreign_mounts_pause{20};
    boost::asio::steady_timer foreign_mounts_pause_;
    bool walk_wanted_ = false;
    bool walking_ = false;
    bool walk_spaced_ = false; // walk_timer_ runs
    boost::asio::steady_timer deep_scan_timer_;
    boost::asio::thread_pool deep_scan_pool_{1};
    std::vector<std::function<void(const deep_scan_report&)>> deep_scan_waiters_;
    std::thread thread_;
};

} // namespace netnsd::server
