#include "core/kernel/nsfs.hpp"

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/kernel/unique_fd.hpp"

namespace netnsd::core::kernel
{
namespace
{

// NS_GET_ID = _IOR(NSIO, 0xd, __u64); newer than Debian 12's headers.
constexpr unsigned long ns_get_id = _IOR(NSIO, 0xd, std::uint64_t);
// The nsfs root as a mount fd for open_by_handle_at (Linux 6.18); newer than Debian 12's
// headers too.
constexpr int fd_nsfs_root = -10003;

// struct file_handle with room for the handle; the kernel's has a flexible array member.
struct handle_buffer
{
    unsigned int handle_bytes;
    int handle_type;
    unsigned char f_handle[64];
};

} // namespace

std::optional<ns_identity> identify_netns(int fd) noexcept
{
    struct statfs fs
    {
    };
    if (::fstatfs(fd, &fs) != 0 || fs.f_type != NSFS_MAGIC)
        return std::nullopt;
    if (::ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET)
        return std::nullopt;
    struct stat st
    {
    };
    if (::fstat(fd, &st) != 0)
        return std::nullopt;
    ns_identity id;
    id.dev = st.st_dev;
    id.ino = st.st_ino;
    std::uint64_t ns_id = 0;
    if (::ioctl(fd, ns_get_id, &ns_id) == 0)
        id.ns_id = ns_id;
    return id;
}

std::optional<std::uint64_t> netns_id_of(int fd) noexcept
{
    struct statfs fs
    {
    };
    if (::fstatfs(fd, &fs) != 0 || fs.f_type != NSFS_MAGIC)
        return std::nullopt;
    if (::ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET)
        return std::nullopt;
    std::uint64_t ns_id = 0;
    if (::ioctl(fd, ns_get_id, &ns_id) != 0)
        return std::nullopt;
    return ns_id;
}

std::optional<user_ns_info> user_ns_of(int fd) noexcept
{
    const unique_fd user(::ioctl(fd, NS_GET_USERNS));
    if (!user)
        return std::nullopt;
    user_ns_info info;
    std::uint64_t ns_id = 0;
    if (::ioctl(user.get(), ns_get_id, &ns_id) != 0)
        return std::nullopt;
    info.ns_id = ns_id;
    uid_t uid = 0;
    if (::ioctl(user.get(), NS_GET_OWNER_UID, &uid) != 0)
        return std::nullopt;
    info.owner_uid = uid;
    return info;
}

} // namespace netnsd::core::kernel

namespace netnsd::core::kernel
{

namespace
{

std::optional<ns_handle> handle_at(int dirfd, const char* path, int flags) noexcept
{
    handle_buffer buf{};
    buf.handle_bytes = sizeof buf.f_handle;
    int mount_id = 0;
    if (::name_to_handle_at(dirfd, path, reinterpret_cast<file_handle*>(&buf), &mount_id, flags) !=
            0 ||
        buf.handle_bytes > sizeof buf.f_handle)
        return std::nullopt;
    ns_handle h;
    h.type = buf.handle_type;
    h.size = buf.handle_bytes;
    std::memcpy(h.bytes.data(), buf.f_handle, buf.handle_bytes);
    return h;
}

} // namespace

std::optional<ns_handle> handle_of(const std::string& path) noexcept
{
    return handle_at(AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW);
}

std::optional<ns_handle> handle_of_fd(int fd) noexcept
{
    return handle_at(fd, "", AT_EMPTY_PATH);
}

ns_liveness liveness_of(const ns_handle& handle) noexcept
{
    handle_buffer buf{};
    buf.handle_bytes = handle.size;
    buf.handle_type = handle.type;
    std::memcpy(buf.f_handle, handle.bytes.data(), handle.size);
    // Held for no longer than this call: the fd is closed at once.
    const unique_fd fd(::open_by_handle_at(fd_nsfs_root, reinterpret_cast<file_handle*>(&buf),
                                           O_RDONLY | O_CLOEXEC));
    if (fd)
        return ns_liveness::alive;
    return errno == ESTALE ? ns_liveness::gone : ns_liveness::unknown;
}

} // namespace netnsd::core::kernel
