// deep_scan: which network namespaces open fds and sockets hold, from the fd table of every
// process. One readdir of /proc/PID/fd per process and one readlinkat per fd: an fd whose link
// reads "net:[INODE]" is an nsfs file of a network namespace (one the caller does not know is
// opened through the link, identified and closed); one whose link is a path is asked its device
// (statx, AT_STATX_DONT_SYNC): an fd opened through a bind mount of a namespace reads as the
// mount point's path, and as "/" once that mount is detached (Linux 6.18), and only the device
// says it is nsfs; a "socket:[...]" one is copied into netnsd
// with pidfd_getfd (one pidfd per process that has sockets) and asked its namespace with
// SIOCGSKNS, which gives an fd on that namespace: NS_GET_ID, then both are closed at once.
// netnsd's own fds are not read: it holds namespaces only for the moment it identifies them.
// Like the sweep, the handles of the known namespaces are asked first, so that an inode freed
// and reused meanwhile is taken for a new namespace. Expensive on a big host (a syscall per fd,
// one more per fd read as a path, three per socket): it runs seldom, on a worker (the model
// thread's deep-scan pool), never on the model thread or the I/O thread. Stateless.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string_view>
#include <vector>

#include "core/kernel/proc_sweep.hpp"

namespace netnsd::core::kernel
{

// "socket:[12345]": whether an fd link names a socket.
bool is_socket_link(std::string_view link) noexcept;

struct deep_scan_result
{
    // ns_id -> the processes (ascending, each once) with an open fd on the namespace itself.
    std::map<std::uint64_t, std::vector<std::int32_t>> fd_pids;
    // ns_id -> the processes (ascending, each once) with a socket that lives in it.
    std::map<std::uint64_t, std::vector<std::int32_t>> socket_pids;
    // Namespaces the caller did not know, by ns_id (ns_id 0, kernels without NS_GET_ID: none).
    std::map<std::uint64_t, swept_namespace> found;
    // ns_ids whose handle said ESTALE: freed.
    std::vector<std::uint64_t> gone;
    std::size_t processes = 0;       // /proc entries whose fd table was read
    std::size_t fds = 0;             // fds visited (readlinkat)
    std::size_t sockets = 0;         // sockets asked their namespace
    std::size_t socket_failures = 0; // sockets that could not be asked (closed meanwhile, EPERM)
    double seconds = 0;              // wall time of the whole scan
};

deep_scan_result deep_scan(const std::vector<sweep_known>& known);

} // namespace netnsd::core::kernel
