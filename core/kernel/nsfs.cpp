#include "core/kernel/nsfs.hpp"

#include <cstdint>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>

namespace netnsd::core::kernel
{
namespace
{

// NS_GET_ID = _IOR(NSIO, 0xd, __u64); newer than Debian 12's headers.
constexpr unsigned long ns_get_id = _IOR(NSIO, 0xd, std::uint64_t);

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

} // namespace netnsd::core::kernel
