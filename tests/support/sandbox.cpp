#include "support/sandbox.hpp"

#include <cerrno>
#include <cstring>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

namespace netnsd::test
{
namespace
{

std::string failed(const char* what)
{
    return std::string(what) + ": " + std::strerror(errno);
}

bool bring_loopback_up()
{
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
    bool ok = ::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ok = ok && ::ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    ::close(fd);
    return ok;
}

} // namespace

std::string enter_sandbox()
{
    if (::geteuid() != 0)
        return "integration tests need root (they create network namespaces)";
    if (::unshare(CLONE_NEWNS | CLONE_NEWNET) != 0)
        return failed("unshare(CLONE_NEWNS|CLONE_NEWNET)");
    if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        return failed("making / private");
    if (::mount("netnsd-test-run", "/run", "tmpfs", 0, "mode=0755") != 0)
        return failed("mounting tmpfs on /run");
    if (::mkdir("/run/netns", 0755) != 0)
        return failed("mkdir /run/netns");
    if (::mount("netnsd-test-netns", "/run/netns", "tmpfs", 0, "mode=0755") != 0)
        return failed("mounting tmpfs on /run/netns");
    ::mkdir("/etc/netns", 0755); // EEXIST is fine; the tmpfs hides whatever the host has there
    if (::mount("netnsd-test-etc", "/etc/netns", "tmpfs", 0, "mode=0755") != 0)
        return failed("mounting tmpfs on /etc/netns");
    if (!bring_loopback_up())
        return failed("bringing lo up");
    return {};
}

} // namespace netnsd::test
