// proc_sweep: which network namespace every process of the host is in, from /proc. One
// readlinkat of PID/ns/net per process, relative to a /proc dirfd ("net:[INODE]": every
// namespace is an inode of the kernel's one nsfs, so the inode names it while it lives). Only a
// namespace whose inode the caller does not know yet is opened (to learn its ns_id and file
// handle), and closed at once. The nsfs handles of the namespaces the caller knows are checked
// first: a freed namespace's inode can be reused at once, so the inodes of the gone ones are
// treated as new. A thread that unshared on its own (/proc/PID/task/TID/ns/net differs from its
// process's) makes its process a holder of that namespace too.
// Stateless; runs on a worker (the model thread's sweep pool), never on the model thread.
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
    double seconds = 0;        // wall time of the whole sweep
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

// with_threads: a thread that unshared on its own (/proc/PID/task/TID/ns/net not its process's)
// makes its process a holder of that namespace too: one fstatat more per process, and the task
// dir read only for processes with several threads.
proc_sweep sweep_processes(const std::vector<sweep_known>& known, bool with_threads = true);

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
