// mntns_walk: the nsfs bind mounts of network namespaces in every mount namespace of the host
// other than netnsd's own (a container's, an `unshare -m` shell's, a systemd unit's
// PrivateMounts), which netnsd's mount table does not show. The mount namespaces are walked with
// NS_MNT_GET_NEXT / NS_MNT_GET_PREV (ioctls on a mount-namespace fd, 6.12+): each gives the next
// namespace's fd and id, and skips those netnsd lacks CAP_SYS_ADMIN over. Each one's mounts are
// listed with listmount and described with statmount, both by mount namespace id (6.11+). A
// mount-namespace fd pins that namespace and every mount in it, so every network namespace
// bound there: each is opened, used and closed at once, and at most two are open at a time
// (the one walked from and the next). A bound network namespace netnsd does not know yet is
// identified by entering the mount namespace for a moment, on a thread of the walk's own
// (setns(CLONE_NEWNS) needs an unshared fs_struct and changes the thread's root), opening the
// mount point, and closing it at once. Stateless; called on the sweep's worker.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "core/kernel/nsfs.hpp"
#include "core/model.hpp"

namespace netnsd::core::kernel
{

// The id of netnsd's own mount namespace (NS_GET_MNTNS_ID), or 0 where the kernel has none.
std::uint64_t own_mnt_ns_id() noexcept;

// One nsfs bind mount of a network namespace in another mount namespace.
struct foreign_mount
{
    std::uint64_t mnt_ns_id = 0;
    std::uint64_t mount_id = 0;
    std::string mount_point; // as that mount namespace sees it; raw bytes
    std::uint64_t ino = 0;   // of the network namespace it binds
    // When the walk opened it (its inode was not among those it was given): who it is, its
    // handle and its user namespace.
    std::optional<ns_identity> identity;
    std::optional<ns_handle> handle;
    std::optional<user_ns_info> user_ns;
};

struct mntns_walk_result
{
    // ENOTTY/EINVAL: no NS_MNT_GET_NEXT (before 6.12); ENOSYS: no listmount/statmount; EPERM.
    // Nothing else is meaningful then.
    std::error_code error;
    std::uint64_t own_mnt_ns_id = 0;
    // The mount namespaces walked whole (netnsd's own excluded), and those seen whose mounts
    // could not be read (the caller keeps what it knew of those).
    std::set<std::uint64_t> walked;
    std::set<std::uint64_t> unread;
    std::vector<foreign_mount> mounts; // by mount namespace, then ascending mount id
    std::size_t mounts_listed = 0;     // every mount of every namespace walked
    std::size_t entered = 0;           // mount namespaces entered to identify a new namespace
    std::size_t followed = 0;          // marked in the follow group (those it could mark)
    double seconds = 0;
};

// Whether the kernel has listns() (Linux 6.19: every namespace of a type by id, no /proc or mount
// walk needed): ENOSYS where it has not (6.18 and before), success where it answers at all. Only
// probed: netnsd does not call it yet (no kernel here to run it on).
std::error_code probe_listns() noexcept;

// Walks every other mount namespace once. `known_inodes`: network namespaces the caller has
// identified already (their mounts are reported by inode alone, without opening them).
// `follow_group`: a foreign_mount_feed's fd, in which every namespace walked is marked before
// its mounts are listed (so that no mount attached after the listing goes unreported), or -1.
mntns_walk_result walk_mount_namespaces(const std::set<std::uint64_t>& known_inodes,
                                        int follow_group = -1);

} // namespace netnsd::core::kernel
