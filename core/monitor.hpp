// monitor: the kernel feeds (inotify on the netns dir, the RTNLGRP_NSID socket, and the mount
// table: fanotify mount events, or POLLPRI on /proc/self/mountinfo where the kernel has none)
// wired to the reconciler. It owns their fds; the server's shell waits on them and calls the
// on_* members when one is ready. Subscribes before it scans, so nothing between the two is
// lost. Owned by the model thread, which nothing else touches; what other threads need of it is
// in status(), which the model thread copies out.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "core/host_watch.hpp"
#include "core/kernel/dir_watch.hpp"
#include "core/kernel/mount_watch.hpp"
#include "core/kernel/netns_dir.hpp"
#include "core/kernel/nsid_netlink.hpp"
#include "core/kernel/proc_events.hpp"
#include "core/kernel/unique_fd.hpp"
#include "core/model_status.hpp"
#include "core/mount_stacks.hpp"
#include "core/reconciler.hpp"
#include "core/registry.hpp"

namespace netnsd::core
{

class monitor
{
public:
    using resync_reason = model_status::resync_reason;
    using mount_source = model_status::mount_source;

    monitor(registry& model, std::string netns_dir, mount_choice mounts = mount_choice::automatic);

    // Opens every feed. Fails only when the kernel refuses inotify or netlink outright (or
    // fanotify, when it was asked for by name).
    std::error_code open();
    // Arms the watches and builds the model (the first scan).
    void start();
    // With fanotify: mount events are read on threads of their own from now on (at `nice`),
    // each looked up as soon as the kernel reports it, however long the caller's thread is held
    // up in the kernel (kernel::mount_watch::start_reader); mount_fd() then changes, so call
    // this before waiting on it. Nothing to do with mountinfo.
    std::error_code read_mounts_on_own_thread(int nice);
    // Then puts those threads under SCHED_FIFO at `priority`
    // (kernel::mount_watch::make_reader_realtime); status().mount_reader_realtime says whether
    // it took.
    std::error_code make_mount_reader_realtime(int priority);
    // The CPUs the mount readers are bound to, one each (empty: one reader, not bound).
    const std::vector<int>& mount_reader_cpus() const noexcept
    {
        return mount_events_.reader_cpus();
    }

    int inotify_fd() const noexcept { return dir_watch_.fd(); }
    int netlink_fd() const noexcept { return nsid_events_.fd(); }
    // The mount feed: readable (fanotify) or POLLPRI (mountinfo), per mount_feed().
    int mount_fd() const noexcept;
    mount_source mount_feed() const noexcept { return status_.mounts; }

    // Probes per turn of the loop while new nsids are matched with their namespaces.
    static constexpr std::size_t nsid_probes_per_turn = 64;
    // Entries of the netns dir looked at per turn of the loop: a burst of thousands (or a
    // queue overflow's worth) is spread over turns, so that mount events, which must be read
    // while their mount still exists, never wait long behind it.
    static constexpr std::size_t dir_changes_per_turn = 64;

    // inotify or fanotify is readable: reads both (inotify first), applies the mount events,
    // then up to dir_changes_per_turn entry changes. True when entry changes are left: call
    // pump() again on a later turn.
    bool on_dir_readable() { return pump(); }
    bool on_mount_events() { return pump(); }
    bool pump();
    // True when new nsids are still to be matched: call resolve_nsids() on a later turn. With
    // mount events it pumps first: see dir_changes_pending() after.
    bool on_nsid_readable();
    // Entry changes read and not applied yet: call pump() on a later turn.
    bool dir_changes_pending() const noexcept { return !pending_.empty(); }
    // Resumes the matching for nsid_probes_per_turn probes; true when there is more.
    bool resolve_nsids() { return reconciler_.resolve_nsids(nsid_probes_per_turn); }
    // mountinfo only: returns true when live entries should be re-verified (verify_live())
    // soon; the caller coalesces that over a burst of mount changes (each `ip netns add` is one).
    bool on_mounts_changed();
    void verify_live() { reconciler_.verify_live(); }

    // After netnsd itself changed `name` (admin endpoints): applies what the kernel reported so
    // far, so that the response already reflects the change. With mount events that is all it
    // takes when nothing is left over: the change's own notifications (its inotify event, its
    // mount or unmount, its nsid) were queued before this was asked, and the model is exact
    // once all of them are applied. Otherwise (mountinfo, paused mount events, changes or nsid
    // notifications left for a later turn, a stale entry) it also looks at the name now.
    void refresh(std::string_view name);
    // The looks at entries the reconciler made so far.
    std::size_t probes() const noexcept { return reconciler_.probes(); }

    // Compares a scan made elsewhere (reconciler::scan, on a worker, which took scan_seconds)
    // with the model, after reading everything the feeds have queued; repairs and counts what
    // differs.
    std::vector<reconciler::divergence> audit(const reconciler::kernel_scan& scan,
                                              double scan_seconds);

    // Fault injection for tests (NETNSD_TEST_IGNORE_MOUNT_EVENTS): mount events are read and
    // dropped, as if the kernel had lost them, so that an audit has a divergence to find.
    void ignore_mount_events(bool on) noexcept { ignore_mount_events_ = on; }

    const std::string& netns_dir() const noexcept { return dir_watch_.path(); }
    bool watching() const noexcept { return dir_watch_.watching_dir(); }
    // Everything other threads show of the monitor: dir, problems, counters.
    const model_status& status() const noexcept { return status_; }
    const reconciler& reconciliation() const noexcept { return reconciler_; }

    // The host inventory's kernel side: the sweep's input, made here; the sweep itself runs on
    // a worker (kernel::sweep_processes), and its result is applied here after reading what
    // the feeds have queued.
    std::vector<kernel::sweep_known> sweep_input() const { return hosts_.sweep_input(); }
    // A slice at a time (host_watch::sweep_slice namespaces), each after what the feeds have
    // queued: true when there is more, for continue_sweep() on a later turn of the loop, until
    // it returns false. A thousand namespaces freed at once never keep a mount event waiting
    // for more than one slice.
    bool apply_sweep(kernel::proc_sweep sweep);
    bool continue_sweep();
    // A sweep's input when the sweep is about to run: process events from now until its
    // result is applied are applied again after it.
    std::vector<kernel::sweep_known> begin_sweep()
    {
        hosts_.sweep_started();
        return hosts_.sweep_input();
    }

    // The process connector (kernel/proc_events), when asked for: subscribes (socket made in
    // `netns_path`'s namespace when netnsd's own is not the initial one). A failure leaves the
    // sweep alone to find processes, and says why in status().
    std::error_code open_proc_events(const std::string& netns_path,
                                     int buffer = kernel::proc_connector::receive_buffer,
                                     std::chrono::milliseconds pause = {});
    int proc_events_fd() const noexcept { return proc_events_.fd(); }
    bool proc_events_elsewhere() const noexcept { return proc_events_.elsewhere(); }
    // Datagrams (one event each) read and applied per turn of the loop.
    static constexpr std::size_t proc_events_per_turn = 256;
    // The connector is readable: reads and applies up to proc_events_per_turn events. True
    // when more may be queued: call it again on a later turn.
    bool on_proc_events();
    // The connector overflowed since the last call (events were lost): a sweep is due now.
    bool take_proc_overrun() noexcept { return std::exchange(proc_overrun_, false); }
    // Namespaces whose last process exited but that the kernel has not freed yet, asked again;
    // true while some are left (call again a little later).
    bool recheck_unheld() { return hosts_.recheck_unheld(clock::now()); }
    bool has_unheld() const noexcept { return hosts_.has_unheld(); }
    // Process counts that wait (host_watch::process_count_delay), applied.
    void flush_processes() { hosts_.flush_processes(clock::now()); }
    bool has_pending_processes() const noexcept { return hosts_.has_pending_processes(); }

    // The other mount namespaces' nsfs mounts: kernel::walk_mount_namespaces on the sweep's
    // worker, with what begin_mount_walk() gives, applied (before the sweep's result, when it
    // comes with one) by apply_mount_namespaces with the walk's number.
    struct mount_walk_input
    {
        std::set<std::uint64_t> known_inodes;
        int follow_group = -1; // the foreign mount feed's fd, where it is open
        std::uint64_t number = 0;
    };
    mount_walk_input begin_mount_walk();
    void apply_mount_namespaces(const kernel::mntns_walk_result& walk, std::uint64_t number);
    // Between walks, their mount events (kernel::foreign_mount_feed), where mount events are
    // fanotify's: a mount the walk found that goes is known gone at once, and a mount attached
    // there asks for a walk. Off without them (the walks alone then), and says why.
    std::error_code open_foreign_mounts();
    int foreign_mounts_fd() const noexcept { return foreign_mounts_.fd(); }
    // The feed is readable: everything queued is read and its detaches applied. True when a
    // walk is due (a mount was attached, or events were lost).
    bool on_foreign_mounts();
    // The deep scan (kernel::deep_scan, on a worker, with sweep_input()), applied the same way.
    void apply_deep_scan(const kernel::deep_scan_result& scan);

private:
    // The batch just applied: how long its oldest event waited (model_status's histogram).
    void observe_proc_event_lag();
    void rearm_and_rescan(resync_reason why);
    void rescan(resync_reason why);
    // Reads the mount table whole (listmount) and notes the mounts on entries of the dir.
    void rebuild_stacks();
    // What a mount event asks for beyond its own change: nothing, or the model to start over
    // (after the rest of the batch, which is older than any look taken now).
    enum class mount_followup
    {
        none,
        rescan, // the fanotify queue overflowed: mount events were lost
        rearm,  // something was mounted on the dir or above it, or its own mount went
    };
    mount_followup apply_mount_change(const kernel::mount_change& change);
    // What an entry with this mount on top shows: a look at the name fills in the namespace's
    // id and nsid when the name still shows this mount's namespace.
    probe_result shows(std::string_view name, const kernel::mount_facts& facts);
    // What the top mount of `name` (which has one) shows, with its namespace's id and nsid
    // once the name is looked at (a mount's facts give only the inode); kept as the top's.
    probe_result identify_top(std::string_view name);
    // The entry name when `mount_point` is directly in the dir; empty otherwise.
    std::string_view entry_of(std::string_view mount_point) const;
    // Whether `mount_point` is the dir or one of its ancestors.
    bool covers_dir(std::string_view mount_point) const;
    void apply_dir_changes(std::size_t budget);
    // Reads and applies everything the feeds have queued, without a budget.
    void drain_all();
    void settle();
    // Nothing queued by the kernel that is not applied yet (inotify, mount events, nsids).
    bool quiet() const;

    registry& model_;
    mount_choice mount_choice_;
    kernel::dir_watch dir_watch_;
    kernel::nsid_monitor nsid_events_;
    kernel::nsid_client nsid_client_;
    kernel::netns_dir source_;
    kernel::mount_watch mount_events_;
    kernel::unique_fd mountinfo_;
    mount_stacks stacks_;
    host_watch hosts_;
    reconciler reconciler_;
    std::deque<kernel::dir_change> pending_; // entry changes read, not applied yet
    std::string real_dir_;                   // the dir as the mount table spells it (realpath)
    model_status status_;
    bool ignore_mount_events_ = false;
    kernel::proc_connector proc_events_;
    kernel::foreign_mount_feed foreign_mounts_;
    std::vector<kernel::proc_event> proc_batch_; // reused by each turn
    bool proc_overrun_ = false;
    bool mntns_walk_failed_ = false; // said once
};

} // namespace netnsd::core
