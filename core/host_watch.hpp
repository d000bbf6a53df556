// host_watch: what the model thread knows of the host's namespaces beyond the registry, and
// how it tells the registry's inventory. It keeps an nsfs file handle per namespace (16 bytes;
// it holds nothing, and says when the namespace was freed), never an fd, and the nsfs mounts
// of netnsd's mount table (any path: docker's /run/docker/netns/*, podman's
// /run/user/UID/netns/*, the netns dir's entries) and of every other mount namespace. Its
// sources: the mount events and the walk of the mount table that the monitor makes (statmount
// facts), the walk of the other mount namespaces (kernel/mntns_walk) that the sweep's worker
// makes with every sweep and this applies, and the /proc sweep that a
// worker makes (kernel/proc_sweep) and this applies, and the deep scan of every process's fds
// (kernel/deep_scan), made and applied the same way. Owned by the monitor; model thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "core/kernel/deep_scan.hpp"
#include "core/kernel/mntns_walk.hpp"
#include "core/kernel/mount_watch.hpp"
#include "core/kernel/nsfs.hpp"
#include "core/kernel/proc_events.hpp"
#include "core/kernel/proc_sweep.hpp"
#include "core/registry.hpp"

namespace netnsd::core
{

class host_watch
{
public:
    explicit host_watch(registry& model) : model_(model) {}

    // netnsd's own network namespace (/proc/self/ns/net) is known from the start.
    void add_self(time_point now);
    // statmount described a mount (an event, or the walk); only nsfs mounts of network
    // namespaces matter. The mount point is opened, identified and closed at once.
    void mount_seen(const kernel::mount_facts& facts, time_point now);
    // A mount went; when its namespace is left with no visible holder, its handle is asked
    // whether it is freed.
    void mount_gone(std::uint64_t mount_id, time_point now);
    // The walk of the whole table (ascending mount ids): mounts known but not in it went.
    void rebuild_mounts(const std::vector<kernel::mount_facts>& nsfs_mounts, time_point now);
    // A walk of the other mount namespaces: their nsfs mounts not known yet are told, and those
    // known but not in it went (with their mount namespace, when it was not walked at all; a
    // namespace seen but not read keeps what was known of it). A namespace with a mount in
    // netnsd's own mount namespace is held by that: its mounts elsewhere (copies, mostly) are
    // not told.
    // `walk_number`: what begin_mount_walk() said when it began; a mount detached since (an
    // event the walk may have been too early to see) is not told again.
    void apply_mount_namespaces(const kernel::mntns_walk_result& walk, std::uint64_t walk_number,
                                time_point now);
    // A walk of the other mount namespaces is about to begin: its number, for
    // apply_mount_namespaces (which every begun walk must reach, failed or not).
    std::uint64_t begin_mount_walk() noexcept;
    // A detach event of the other mount namespaces' feed (kernel::foreign_mount_feed): a
    // mount the walk found went (with its mount namespace, maybe), as mount_gone says.
    void foreign_mount_detached(std::uint64_t mount_id, time_point now);
    // The inodes of every namespace the model has (what the walk need not open).
    std::set<std::uint64_t> known_inodes() const;

    // What the sweep needs: every namespace the model has, with its inode and handle.
    std::vector<kernel::sweep_known> sweep_input() const;
    // A sweep's result: the gone are destroyed, the new found, every count set; all at once.
    void apply_sweep(kernel::proc_sweep sweep, time_point now);
    // The same a slice at a time, so that the kernel's feeds are read in between: a host where
    // a thousand containers ended frees a thousand namespaces in one sweep, each an event to
    // publish. begin_sweep_application(sweep), then apply_sweep_slice(now) until it returns
    // false. A slice touches at most sweep_slice namespaces: the gone are destroyed first,
    // then the found learnt, then every namespace's processes and cgroup set. The process
    // events applied meanwhile are applied again after the last slice, as they are after a
    // sweep read /proc (sweep_started).
    static constexpr std::size_t sweep_slice = 64;
    void begin_sweep_application(kernel::proc_sweep sweep);
    bool apply_sweep_slice(time_point now);
    // A deep scan's result (its input is sweep_input() too): the gone are destroyed, the new
    // found, every namespace's fd and socket holders set.
    void apply_deep_scan(const kernel::deep_scan_result& scan, time_point now);

    // The process connector's events (kernel/proc_events), a batch at a time: a process that
    // forked or exec'd is looked up (one readlink of /proc/PID/ns/net) and a namespace new to
    // the model learnt as the sweep does, with its pids; one that exited leaves its namespace.
    // Coalesced: what only moves the process counts of known namespaces waits (at most
    // process_count_delay, flush_processes()), so that a fork storm sets a count (and its
    // bucket, which alone makes an event) a few times a second, not once per fork; a batch
    // that finds a namespace or takes the last process of one is applied at once, with what
    // waited. Threads are left out: they are counted with their process, as the sweep does.
    static constexpr std::chrono::milliseconds process_count_delay{100};
    void apply_proc_events(const std::vector<kernel::proc_event>& events, time_point now);
    // Applies the process moves that wait; true when there were some.
    bool flush_processes(time_point now);
    bool has_pending_processes() const noexcept { return !pending_.empty(); }
    // A sweep is about to read /proc (on a worker) with sweep_input(): the process events
    // applied until its result comes are applied again after it, which is older than them.
    void sweep_started() { since_sweep_.emplace(); }
    // Namespaces that lost their last holder to an exit while their handle still said alive:
    // the kernel frees a network namespace on a workqueue, some time after the exit event.
    // Asked again at each call until freed or held again (or given up, to the sweep, after
    // unheld_patience); true while some are left.
    static constexpr std::chrono::seconds unheld_patience{10};
    bool recheck_unheld(time_point now);
    bool has_unheld() const noexcept { return !unheld_.empty(); }

    std::size_t handles() const noexcept { return handles_.size(); }
    const std::optional<ns_identity>& self() const noexcept { return self_; }

private:
    // Who an open fd's namespace is; keeps its handle, and its user namespace until the model
    // has the namespace.
    std::optional<ns_identity> learn(int fd);
    // The same, of an fd already identified as `id`.
    std::optional<ns_identity> learn(int fd, const ns_identity& id);
    void tell_user_ns(std::uint64_t ns_id, const std::optional<kernel::user_ns_info>& u,
                      time_point now);
    void check_if_unheld(std::uint64_t ns_id, time_point now);
    // Its last process or mount went: asked now, and, while the kernel has not freed it yet (it
    // does so a moment after), again by recheck_unheld for a while.
    void holder_lost(std::uint64_t ns_id, time_point now);
    void gone(std::uint64_t ns_id, time_point now);
    // pid -> the inode of its namespace now (nullopt: it exited), applied to every namespace.
    using pid_moves = std::map<std::int32_t, std::optional<std::uint64_t>>;
    void apply_moves(const pid_moves& moves, time_point now);
    // Whether `moves` find a namespace the model lacks or take the last process of one.
    bool is_urgent(const pid_moves& moves) const;

    registry& model_;
    std::optional<ns_identity> self_;
    std::uint64_t own_mnt_ns_id_ = 0;             // netnsd's own mount namespace (NS_MNT_GET_INFO)
    std::optional<kernel::user_ns_info> user_ns_; // of the last namespace learn() saw
    std::map<std::uint64_t, kernel::ns_handle> handles_; // by ns_id
    // The lowest pid of each namespace at the last sweeps (its cgroup is the model's): a
    // runtime moves a new process into its container's cgroup just after the fork, so a cgroup
    // is settled (not read again while that pid stays the lowest) only once the pid was the
    // lowest in the sweep before the read; every cgroup_refresh-th sweep reads them all again.
    struct lowest_pid
    {
        std::int32_t pid = 0;
        int sweeps = 0; // consecutive sweeps it was the lowest
    };
    std::map<std::uint64_t, lowest_pid> lowest_; // by ns_id
    static constexpr int cgroup_refresh = 12;
    int sweeps_ = 0;
    struct known_mount
    {
        std::uint64_t ns_id = 0;
        std::uint64_t mnt_ns_id = 0;
        bool other_mnt_ns = false; // found by the walk of the other mount namespaces
    };
    std::map<std::uint64_t, known_mount> mounts_; // by mount id
    // The walks of the other mount namespaces begun, and those not applied yet; while one runs,
    // the mounts detached meanwhile (mount id -> walks begun by then): mount ids are never
    // reused, and a walk that began before the detach may still list the mount.
    std::uint64_t walks_begun_ = 0;
    std::uint64_t walks_running_ = 0;
    std::map<std::uint64_t, std::uint64_t> detached_while_walking_;
    // A sweep's result being applied, and how far.
    struct sweep_application
    {
        enum class phase
        {
            gone,
            found,
            counts,
        };
        // No default member initializers: clang 14 then finds it not default constructible
        // within host_watch (the optional below); begin_sweep_application sets them.
        kernel::proc_sweep sweep;
        phase at;
        std::size_t next;                        // in sweep.gone, found or counted
        std::vector<std::uint64_t> found_inodes; // sweep.found's keys
        std::vector<std::pair<std::uint64_t, std::uint64_t>> counted; // (ns_id, ino)
        std::map<std::uint64_t, lowest_pid> lowest;
    };
    std::optional<sweep_application> applying_;
    void apply_gone_slice(sweep_application& a, time_point now);
    void apply_found_slice(sweep_application& a, time_point now);
    void apply_counts_slice(sweep_application& a, time_point now);
    void finish_sweep(time_point now);
    std::optional<pid_moves> since_sweep_;       // while a sweep runs
    pid_moves pending_;                          // moves not applied yet
    std::map<std::uint64_t, time_point> unheld_; // ns_id -> when it lost its last holder
};

} // namespace netnsd::core
