// proc_sweep: which network namespace every process of the host is in, from /proc. One
// readlinkat of PID/ns/net per process, relative to a /proc dirfd ("net:[INODE]": every
// namespace is an inode of the kernel's one nsfs, so the inode names it while it lives). Only a
// namespace whose inode the caller does not know yet is opened (to learn its ns_id and file
// handle), and closed at once. A freed namespace's inode can be reused at once, so a known
// namespace whose inode is read again is asked through its nsfs handle, after the read, whether
// it still lives (if it does, the inode read was its own); one that is gone is reported so, and
// its inode treated as new. A thread that unshared on its own (/proc/PID/task/TID/ns/net
// differs from its process's) makes its process a holder of that namespace too.
//
// A process_sweeper remembers, from one sweep to the next, each process's CPU time and what it
// was in. A process whose CPU time has not moved has not run since: it cannot have called
// setns(2) or unshare(2), nor made or lost a thread, so its namespaces are the ones read then,
// and the one it is in is alive. One clock_gettime(2) of its CPU-time clock (a pid lookup, no
// path walk) stands for the readlink, the thread check and the namespace's liveness check. On a
// host of mostly idle processes that is most of a sweep's kernel time.
// Runs on a worker (the model thread's sweep pool), never on the model thread; one sweep at a
// time per sweeper.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/kernel/nsfs.hpp"
#include "core/model.hpp"

namespace netnsd::core::kernel
{

// "net:[4026531840]" -> 4026531840; nullopt for anything else.
std::optional<std::uint64_t> parse_netns_link(std::string_view link) noexcept;

// A namespace the sweep saw for the first time: who it is, and its handle when the kernel has
// nsfs handles.
struct swept_namespace
{
    ns_identity identity{};
    std::optional<ns_handle> handle;
    std::optional<user_ns_info> user_ns;
};

struct proc_sweep
{
    // Inode of each namespace that processes are in -> their pids, ascending.
    std::map<std::uint64_t, std::vector<std::int32_t>> pids_by_inode;
    // Inode -> the cgroup v2 path of its lowest pid (for its owner; core/owner.hpp): read, or
    // the known one's settled_cgroup.
    std::map<std::uint64_t, std::string> cgroup_by_inode;
    std::size_t cgroups_read = 0; // /proc/PID/cgroup files read (the others were settled)
    // Inode -> namespaces opened because their inode was not known (or its namespace is gone).
    std::map<std::uint64_t, swept_namespace> found;
    // ns_ids whose handle said ESTALE: freed.
    std::vector<std::uint64_t> gone;
    std::size_t processes = 0; // /proc entries read
    // Of those, the ones whose namespace link was read (new, or they ran since the last sweep
    // of the same process_sweeper); the others had not run, and were taken from it.
    std::size_t processes_read = 0;
    double seconds = 0; // wall time of the whole sweep
};

// known: ns_id -> (inode, handle) of every namespace the model has.
struct sweep_known
{
    std::uint64_t ns_id = 0;
    std::uint64_t ino = 0;
    std::optional<ns_handle> handle;
    // The cgroup of its lowest pid, when the caller trusts it not to have changed: the sweep
    // does not read it again while that pid is still the lowest (0: read it).
    std::int32_t settled_pid = 0;
    std::string settled_cgroup;
};

class process_sweeper
{
public:
    // with_threads: a thread that unshared on its own (/proc/PID/task/TID/ns/net not its
    // process's) makes its process a holder of that namespace too: one fstatat more per process
    // read, and the task dir read only for processes with several threads.
    proc_sweep sweep(const std::vector<sweep_known>& known, bool with_threads = true);

    // Processes remembered from the last sweep.
    std::size_t remembered() const noexcept { return processes_.size(); }

private:
    // A process as the last sweep read it: its CPU time (ns, read before its link) and the
    // inode of its namespace. Ascending pid. 24 bytes each: ~600 KB at 25000 processes.
    struct process
    {
        std::int32_t pid = 0;
        std::uint64_t cpu_ns = 0;
        std::uint64_t ino = 0;
    };
    // A thread of a remembered process in another namespace than its process (rare).
    // Ascending pid.
    struct thread
    {
        std::int32_t pid = 0;
        std::int32_t tid = 0;
        std::uint64_t ino = 0;
    };
    std::vector<process> processes_;
    std::vector<thread> threads_;
};

// One sweep without a memory of the last: every process read.
proc_sweep sweep_processes(const std::vector<sweep_known>& known, bool with_threads = true);

// The CPU time of process `pid` (all its threads, the exited ones included; ns), from its
// CPU-time clock; nullopt when it has exited.
std::optional<std::uint64_t> process_cpu_ns(std::int32_t pid) noexcept;

// One process, as the sweep reads it (for the process connector's events): the inode of its
// network namespace (one readlink), nullopt when it has exited.
std::optional<std::uint64_t> netns_inode_of(std::int32_t pid) noexcept;
// Its namespace opened, identified and closed (only when it still has inode `ino`), with its
// cgroup v2 path for its owner.
struct process_namespace
{
    swept_namespace ns;
    std::optional<std::string> cgroup;
};
std::optional<process_namespace> open_netns_of(std::int32_t pid, std::uint64_t ino);

// What the API shows of one process: /proc/PID/comm, the real uid (status), and its cgroup v2
// path (the "0::" line of /proc/PID/cgroup). nullopt when it has exited.
struct process_info
{
    std::int32_t pid = 0;
    std::string comm;
    std::optional<std::uint32_t> uid;
    std::optional<std::string> cgroup;
};
std::optional<process_info> read_process(std::int32_t pid);

// The decoders, pure: the Uid: line of /proc/PID/status (the real uid), and the cgroup v2 path
// of /proc/PID/cgroup ("0::/system.slice/x.service").
std::optional<std::uint32_t> parse_status_uid(std::string_view status) noexcept;
std::optional<std::string> parse_cgroup_v2(std::string_view cgroup);

} // namespace netnsd::core::kernel
