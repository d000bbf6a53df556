#include "support/netns_ops.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

namespace netnsd::test
{

bool create_netns(const std::string& name)
{
    const std::string path = "/run/netns/" + name;
    const int file = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (file < 0)
        return false;
    ::close(file);
    const int saved = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    bool ok = saved >= 0 && ::unshare(CLONE_NEWNET) == 0 &&
              ::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) == 0;
    if (saved >= 0)
    {
        ok = ::setns(saved, CLONE_NEWNET) == 0 && ok;
        ::close(saved);
    }
    if (!ok)
        ::unlink(path.c_str());
    return ok;
}

bool delete_netns(const std::string& name)
{
    const std::string path = "/run/netns/" + name;
    ::umount2(path.c_str(), MNT_DETACH);
    return ::unlink(path.c_str()) == 0;
}

} // namespace netnsd::test
