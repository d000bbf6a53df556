// netns_admin: what `ip netns add/attach/del/set/pids/identify` do, natively (syscalls and
// rtnetlink through libmnl; the steps of iproute2's ip/ipnetns.c). Free functions without state.
// Every call blocks (mounts, the kernel's net_mutex, a /proc scan), so they run on a worker
// thread, never on the loop; create_netns switches the calling thread's network namespace and
// always switches it back before returning. Expected failures come back as std::error_code
// (errno, or core::errc) with a sentence in `detail` for the problem response; nothing throws
// for kernel errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <sys/types.h>
#include <system_error>
#include <vector>

#include "core/model.hpp"

namespace netnsd::core::kernel
{

// Prepares the run dir like iproute2's `ip netns add`: mkdir 0755, flock, make it a shared
// mount point (self-bind, private, shared when it is not one yet). Unlike ip, nothing is done
// when it already is a shared mount point (statx and statmount, 6.8+), so the namespaces
// mounted below it are not walked again on every create.
std::error_code prepare_run_dir(const std::string& dir, std::string& detail);

// `ip netns add`: a new network namespace bound on DIR/NAME. errc::already_exists when the
// name is taken (also by a stale file). Nothing is left behind on failure. errc::thread_netns_lost
// means the calling thread could not return to its namespace and must not be reused.
// `home`: an fd of the calling thread's network namespace, to come back to after the unshare;
// -1 opens /proc/thread-self/ns/net for the call.
std::error_code create_netns(const std::string& dir, const std::string& name, std::string& detail,
                             int home = -1);

// `ip netns attach`: names the network namespace of process `pid` DIR/NAME.
// errc::no_such_process when the process does not exist (nothing is created then).
std::error_code attach_netns(const std::string& dir, const std::string& name, pid_t pid,
                             std::string& detail);

// What a delete learnt on the way: the namespace the name pointed at (nullopt for a stale
// entry), so that the caller can tell whether it lives on (pids_in, an nsid that stays).
struct delete_outcome
{
    std::optional<ns_identity> identity;
    // Whether the namespace outlived its name, known at once from its nsfs handle (taken
    // before the unmount, looked at after the unlink); nullopt where the kernel cannot tell.
    std::optional<bool> alive;
};

// `ip netns del`: lazy unmount, then unlink. errc::not_found when there is no such entry,
// errc::busy when mounts were stacked on it (one is removed, the name stays),
// errc::not_a_namespace for a directory.
std::error_code delete_netns(const std::string& dir, const std::string& name, delete_outcome& out,
                             std::string& detail);

// RTM_NEWNSID for the namespace behind `fd`: `nsid`, or NETNSA_NSID_NOT_ASSIGNED for auto; with
// `echo` the kernel sends the new nsid back before the ack. buf holds at least 64 bytes.
std::size_t build_newnsid(std::span<std::byte> buf, std::uint32_t seq, int fd, nsid_t nsid,
                          bool echo);

// `ip netns set NAME N|auto` (want = nullopt for auto). Returns the nsid the namespace now has
// in the calling thread's namespace. errc::nsid_assigned, errc::nsid_in_use,
// errc::not_a_namespace, errc::not_found.
std::optional<nsid_t> set_nsid(const std::string& dir, const std::string& name,
                               std::optional<nsid_t> want, std::error_code& ec,
                               std::string& detail);

// The namespace NAME binds now: errc::not_found when there is no such entry,
// errc::not_a_namespace when it is stale.
std::optional<ns_identity> live_identity(const std::string& dir, const std::string& name,
                                         std::error_code& ec, std::string& detail);

// `ip netns pids`: every process whose /proc/PID/ns/net is `id`, ascending. Processes that
// vanish or cannot be inspected during the scan are skipped.
std::vector<pid_t> pids_in(const ns_identity& id);

// `ip netns identify PID`: the namespace of /proc/PID/ns/net. errc::no_such_process.
std::optional<ns_identity> identity_of_pid(pid_t pid, std::error_code& ec);

} // namespace netnsd::core::kernel
