#include "core/kernel/deep_scan.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <dirent.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <memory>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

#include "core/kernel/unique_fd.hpp"

namespace netnsd::core::kernel
{

bool is_socket_link(std::string_view link) noexcept
{
    return link.starts_with("socket:[") && link.ends_with("]");
}

namespace
{

using dir_ptr = std::unique_ptr<DIR, int (*)(DIR*)>;

template <typename T>
bool whole_number(std::string_view text, T& out)
{
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return !text.empty() && ec == std::errc{} && end == text.data() + text.size();
}

// Adds pid to the list once (the pids of one process come one after the other).
void note(std::vector<std::int32_t>& pids, std::int32_t pid)
{
    if (pids.empty() || pids.back() != pid)
        pids.push_back(pid);
}

// The namespace behind an fd on it: who it is, and what a new one needs remembered.
struct scan_state
{
    // Inode -> ns_id: the caller's namespaces alive when asked, and those this scan found.
    std::unordered_map<std::uint64_t, std::uint64_t>& ns_of_inode;
    deep_scan_result& out;
    // The device of every nsfs inode (all namespaces share one superblock), 0 when unknown.
    dev_t nsfs_dev = 0;
    // Inodes of nsfs files that are no network namespace (a mount namespace's bind mount).
    std::unordered_set<std::uint64_t> other_nsfs;

    // An fd on a namespace (an nsfs fd, or the SIOCGSKNS answer): its ns_id, 0 when unknown.
    // A known inode costs one fstat; only a new namespace is identified in full, once.
    std::uint64_t learn(int ns_fd)
    {
        struct stat st
        {
        };
        if (::fstat(ns_fd, &st) == 0)
            if (const auto known = ns_of_inode.find(st.st_ino); known != ns_of_inode.end())
                return known->second;
        const auto id = identify_netns(ns_fd);
        if (!id || id->ns_id == 0)
            return 0;
        if (ns_of_inode.emplace(id->ino, id->ns_id).second)
            out.found.emplace(id->ns_id,
                              swept_namespace{*id, handle_of_fd(ns_fd), user_ns_of(ns_fd)});
        return id->ns_id;
    }
};

// One process's fd table.
void scan_process(int proc_fd, std::int32_t pid, scan_state& state)
{
    std::array<char, 48> path{};
    auto* p = std::to_chars(path.data(), path.data() + 16, pid).ptr;
    for (char c : std::string_view("/fd"))
        *p++ = c;
    *p = '\0';
    // ENOENT (exited) and EACCES are normal: nothing to read.
    const int fd_dir = ::openat(proc_fd, path.data(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_dir < 0)
        return;
    dir_ptr dir(::fdopendir(fd_dir), &::closedir);
    if (!dir)
    {
        ::close(fd_dir);
        return;
    }
    ++state.out.processes;
    unique_fd pidfd; // opened at the first socket
    bool pidfd_failed = false;
    std::array<char, 64> link{};
    while (const dirent* ent = ::readdir(dir.get()))
    {
        int target = 0;
        if (!whole_number(std::string_view(ent->d_name), target))
            continue;
        ++state.out.fds;
        const auto n = ::readlinkat(::dirfd(dir.get()), ent->d_name, link.data(), link.size());
        if (n <= 0)
            continue;
        const std::string_view text(link.data(), static_cast<std::size_t>(n));
        if (const auto ino = parse_netns_link(text))
        {
            std::uint64_t ns_id = 0;
            if (const auto known = state.ns_of_inode.find(*ino); known != state.ns_of_inode.end())
                ns_id = known->second;
            else
            {
                // Opening the fd's link opens the namespace itself (as the process holds it).
                const unique_fd ns(
                    ::openat(::dirfd(dir.get()), ent->d_name, O_RDONLY | O_CLOEXEC | O_NOCTTY));
                if (ns)
                    ns_id = state.learn(ns.get());
            }
            if (ns_id != 0)
                note(state.out.fd_pids[ns_id], pid);
            continue;
        }
        if (text.starts_with('/'))
        {
            // An fd opened through a bind mount of a namespace reads as the mount's path
            // ("/run/netns/NAME"), or "/" once the mount is gone (detached, still held); only
            // the file's device says nsfs. statx without a sync: no round trip to a network
            // filesystem's server for the other paths.
            struct statx stx
            {
            };
            if (state.nsfs_dev == 0 ||
                ::statx(::dirfd(dir.get()), ent->d_name, AT_STATX_DONT_SYNC, STATX_INO, &stx) !=
                    0 ||
                ::makedev(stx.stx_dev_major, stx.stx_dev_minor) != state.nsfs_dev ||
                state.other_nsfs.contains(stx.stx_ino))
                continue;
            std::uint64_t ns_id = 0;
            if (const auto known = state.ns_of_inode.find(stx.stx_ino);
                known != state.ns_of_inode.end())
                ns_id = known->second;
            else if (const unique_fd ns(::openat(::dirfd(dir.get()), ent->d_name,
                                                 O_RDONLY | O_CLOEXEC | O_NOCTTY));
                     ns)
                ns_id = state.learn(ns.get());
            if (ns_id == 0)
                state.other_nsfs.insert(stx.stx_ino);
            else
                note(state.out.fd_pids[ns_id], pid);
            continue;
        }
        if (!is_socket_link(text))
            continue;
        ++state.out.sockets;
        if (!pidfd && !pidfd_failed)
        {
            pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
            pidfd_failed = !pidfd;
        }
        if (!pidfd)
        {
            ++state.out.socket_failures;
            continue;
        }
        // A copy of the socket (pidfd_getfd: the same open file, as if passed over
        // SCM_RIGHTS), asked its network namespace, then closed: netnsd holds it for
        // microseconds.
        const unique_fd sock(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), target, 0)));
        if (!sock)
        {
            ++state.out.socket_failures;
            continue;
        }
        const unique_fd ns(::ioctl(sock.get(), SIOCGSKNS));
        const auto ns_id = ns ? state.learn(ns.get()) : 0;
        if (ns_id == 0)
        {
            ++state.out.socket_failures;
            continue;
        }
        note(state.out.socket_pids[ns_id], pid);
    }
}

} // namespace

deep_scan_result deep_scan(const std::vector<sweep_known>& known)
{
    const auto started = std::chrono::steady_clock::now();
    deep_scan_result out;
    // Handles first, as the sweep does: an inode read after this is a live namespace's or a
    // new one's, never that of one freed before (whose inode may be reused).
    std::unordered_map<std::uint64_t, std::uint64_t> ns_of_inode;
    ns_of_inode.reserve(known.size());
    for (const auto& k : known)
    {
        if (k.handle && liveness_of(*k.handle) == ns_liveness::gone)
            out.gone.push_back(k.ns_id);
        else
            ns_of_inode.emplace(k.ino, k.ns_id);
    }
    dir_ptr proc(::opendir("/proc"), &::closedir);
    if (!proc)
        return out;
    const auto self = static_cast<std::int32_t>(::getpid());
    scan_state state{ns_of_inode, out, 0, {}};
    struct stat self_ns
    {
    };
    if (::stat("/proc/self/ns/net", &self_ns) == 0)
        state.nsfs_dev = self_ns.st_dev;
    while (const dirent* ent = ::readdir(proc.get()))
    {
        std::int32_t pid = 0;
        if (!whole_number(std::string_view(ent->d_name), pid) || pid <= 0 || pid == self)
            continue;
        scan_process(::dirfd(proc.get()), pid, state);
    }
    // readdir of /proc lists pids ascending, but that is not promised.
    for (auto* lists : {&out.fd_pids, &out.socket_pids})
        for (auto& [ns_id, pids] : *lists)
        {
            std::sort(pids.begin(), pids.end());
            pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
        }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return out;
}

} // namespace netnsd::core::kernel
