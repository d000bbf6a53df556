// nsfs probes: is this fd a network namespace, and which one; and nsfs file handles, which
// name a namespace without holding it. Stateless; any thread.
#pragma once

#include <array>
#include <optional>
#include <string>

#include "core/model.hpp"

namespace netnsd::core::kernel
{

// The identity of the network namespace behind `fd`, or nullopt when the fd is anything else
// (the empty placeholder `ip netns add` creates before its bind mount, a directory, another
// namespace type). Checks fstatfs == NSFS_MAGIC and NS_GET_NSTYPE == CLONE_NEWNET; ns_id is
// NS_GET_ID where the kernel has it, else 0.
std::optional<ns_identity> identify_netns(int fd) noexcept;
// Only the ns_id of the network namespace behind `fd` (the same checks, no inode: one syscall
// fewer, for callers that know the ns_id they want); nullopt when it is no network namespace or
// the kernel has no NS_GET_ID.
std::optional<std::uint64_t> netns_id_of(int fd) noexcept;

// The user namespace that owns the namespace behind `fd` (NS_GET_USERNS, then NS_GET_ID and
// NS_GET_OWNER_UID on it, closed at once): its ns_id and its owner's uid.
struct user_ns_info
{
    std::uint64_t ns_id = 0;
    std::uint32_t owner_uid = 0;
};
std::optional<user_ns_info> user_ns_of(int fd) noexcept;

// An nsfs file handle (name_to_handle_at on a namespace file; 16 bytes on Linux 6.18: the
// namespace's id, type and inode). Unlike an fd it holds nothing: the namespace can go while
// netnsd keeps the handle, and the handle then says so.
struct ns_handle
{
    int type = 0;
    unsigned size = 0;
    std::array<unsigned char, 64> bytes{};
};

// The handle of the namespace `path` binds (symlinks followed); nullopt where the kernel has no
// nsfs handles (before 6.18) or the path is no namespace.
std::optional<ns_handle> handle_of(const std::string& path) noexcept;
// The same of an open namespace fd (name_to_handle_at with AT_EMPTY_PATH): no race with the
// path going away or changing after the fd was identified.
std::optional<ns_handle> handle_of_fd(int fd) noexcept;

enum class ns_liveness
{
    alive,   // something still holds the namespace
    gone,    // it was freed (ESTALE)
    unknown, // the kernel cannot tell (no FD_NSFS_ROOT)
};

// Whether the namespace of `handle` still exists: open_by_handle_at, closed at once. The
// answer is exact the moment it is given: freeing happens when the last holder lets go.
ns_liveness liveness_of(const ns_handle& handle) noexcept;

} // namespace netnsd::core::kernel
