#include "core/kernel/mntns_walk.hpp"

#include <chrono>
#include <fcntl.h>
#include <map>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>

#include "core/kernel/errno.hpp"
#include "core/kernel/mount_watch.hpp"
#include "core/kernel/unique_fd.hpp"

namespace netnsd::core::kernel
{
namespace
{

// Newer than Debian 12's uapi headers (linux-libc-dev 6.1): defined here, probed at run time.
struct mnt_ns_info
{
    std::uint32_t size;
    std::uint32_t nr_mounts;
    std::uint64_t mnt_ns_id;
};
constexpr std::uint32_t mnt_ns_info_size_ver0 = 16; // MNT_NS_INFO_SIZE_VER0
static_assert(sizeof(mnt_ns_info) == mnt_ns_info_size_ver0);
constexpr unsigned long nsio = 0xb7;
constexpr unsigned long ns_mnt_get_info = _IOR(nsio, 10, mnt_ns_info); // NS_MNT_GET_INFO (6.12)
constexpr unsigned long ns_mnt_get_next = _IOR(nsio, 11, mnt_ns_info); // NS_MNT_GET_NEXT (6.12)
constexpr unsigned long ns_mnt_get_prev = _IOR(nsio, 12, mnt_ns_info); // NS_MNT_GET_PREV (6.12)

std::uint64_t mnt_ns_id_of(int fd) noexcept
{
    mnt_ns_info info{mnt_ns_info_size_ver0, 0, 0};
    if (::ioctl(fd, ns_mnt_get_info, &info) != 0)
        return 0;
    return info.mnt_ns_id;
}

// The walk proper, on a thread of its own (it may setns into the namespaces it walks).
class walker
{
public:
    walker(const std::set<std::uint64_t>& known, int follow_group, mntns_walk_result& out)
        : known_(known), follow_group_(follow_group), out_(out)
    {
    }

    void run()
    {
        // setns(CLONE_NEWNS) refuses a thread that shares its fs_struct (EINVAL); without it
        // the walk still reports every mount, by inode.
        can_enter_ = ::unshare(CLONE_FS) == 0;
        const unique_fd own(::open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC));
        if (!own)
        {
            out_.error = last_error();
            return;
        }
        out_.own_mnt_ns_id = mnt_ns_id_of(own.get());
        if (out_.own_mnt_ns_id == 0)
        {
            out_.error = last_error();
            return;
        }
        // Both ways from netnsd's own: the kernel's list is in creation order, and netnsd's
        // own is anywhere in it.
        for (const auto step : {ns_mnt_get_prev, ns_mnt_get_next})
            if (!walk_from(own.get(), step))
                return;
    }

private:
    // Returns false when the kernel has no such walk (the first step failed otherwise than
    // ENOENT, the end).
    bool walk_from(int own, unsigned long step)
    {
        unique_fd current;
        for (bool first = true;; first = false)
        {
            mnt_ns_info info{mnt_ns_info_size_ver0, 0, 0};
            unique_fd next(::ioctl(current ? current.get() : own, step, &info));
            const auto ec = next ? std::error_code{} : last_error();
            // The namespace walked from is let go at once: an fd pins it and its mounts.
            current.reset();
            if (!next)
            {
                if (ec.value() == ENOENT || !first)
                    return true; // the end (or the one walked from went: the next sweep goes on)
                out_.error = ec;
                return false;
            }
            visit(next.get(), info.mnt_ns_id);
            current = std::move(next);
        }
    }

    void visit(int fd, std::uint64_t mnt_ns_id)
    {
        if (follow_group_ >= 0 && !mark_mount_namespace(follow_group_, fd))
            ++out_.followed;
        std::vector<std::uint64_t> ids;
        if (list_mounts(ids, mnt_ns_id))
        {
            out_.unread.insert(mnt_ns_id);
            return;
        }
        out_.walked.insert(mnt_ns_id);
        out_.mounts_listed += ids.size();
        bool entered = false;
        for (const auto id : ids)
        {
            std::error_code ec;
            const auto facts = stat_mount(id, ec, mnt_ns_id);
            const auto ino = facts ? facts->netns_inode() : std::nullopt;
            if (!ino)
                continue;
            foreign_mount m{mnt_ns_id, id, facts->mount_point, *ino, {}, {}, {}};
            if (known_.count(*ino) == 0)
            {
                if (const auto seen = identified_.find(*ino); seen != identified_.end())
                    m.identity = seen->second;
                else
                    identify(fd, entered, m);
            }
            out_.mounts.push_back(std::move(m));
        }
    }

    // Opens the mount point inside its mount namespace: who it binds, its handle, its user
    // namespace. The mount may be covered, or gone; then the inode does not match and the
    // mount stays known by inode alone.
    void identify(int mntns_fd, bool& entered, foreign_mount& m)
    {
        if (!can_enter_)
            return;
        if (!entered)
        {
            if (::setns(mntns_fd, CLONE_NEWNS) != 0)
                return;
            entered = true;
            ++out_.entered;
        }
        const unique_fd fd(
            ::open(m.mount_point.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
        if (!fd)
            return;
        const auto id = identify_netns(fd.get());
        if (!id || id->ino != m.ino || id->ns_id == 0)
            return;
        m.identity = id;
        m.handle = handle_of_fd(fd.get());
        m.user_ns = user_ns_of(fd.get());
        identified_.emplace(m.ino, *id);
    }

    const std::set<std::uint64_t>& known_;
    int follow_group_ = -1;
    mntns_walk_result& out_;
    std::map<std::uint64_t, ns_identity> identified_; // by inode, in this walk
    bool can_enter_ = false;
};

} // namespace

std::error_code probe_listns() noexcept
{
    // listns(req, ids, nr_ids, flags) is 470 in the common syscall table. With no request the
    // kernel that has it refuses the arguments (EFAULT or EINVAL); one without says ENOSYS.
    constexpr long sys_listns = 470;
    if (::syscall(sys_listns, nullptr, nullptr, 0, 0) == 0)
        return {};
    const auto ec = last_error();
    return ec.value() == ENOSYS ? ec : std::error_code{};
}

std::uint64_t own_mnt_ns_id() noexcept
{
    const unique_fd own(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
    return own ? mnt_ns_id_of(own.get()) : 0;
}

mntns_walk_result walk_mount_namespaces(const std::set<std::uint64_t>& known_inodes,
                                        int follow_group)
{
    const auto start = std::chrono::steady_clock::now();
    mntns_walk_result out;
    // A thread of its own: setns changes the calling thread's root and mount namespace, and
    // the caller's thread is reused for other work. It ends with the walk, taking both along.
    std::thread([&] { walker(known_inodes, follow_group, out).run(); }).join();
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

} // namespace netnsd::core::kernel
