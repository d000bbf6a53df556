// capture_seeds: writes the seed corpora of fuzz_inotify and fuzz_netlink from what the kernel
// really sends, so that the fuzzers start from true layouts: inotify records read() from an
// inotify fd watching a directory as dir_watch does, and rtnetlink datagrams recv()'d while
// nsids are set, asked for, dumped, refused and freed. Needs root: it works in new mount and
// network namespaces of its own (private propagation), so nothing changes on the host, and the
// nsids are private. Not part of the test suite; run it by hand when a layout should be added:
//     capture_seeds tests/fuzz/corpus
#include <array>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sched.h>
#include <span>
#include <string>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <libmnl/libmnl.h>

#include "core/kernel/dir_watch.hpp"
#include "core/kernel/nsid_netlink.hpp"

namespace
{

namespace fs = std::filesystem;
using netnsd::core::kernel::dir_watch;

[[noreturn]] void die(const std::string& what)
{
    std::fprintf(stderr, "capture_seeds: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

void check(bool ok, const std::string& what)
{
    if (!ok)
        die(what);
}

void save(const fs::path& dir, const std::string& name, std::span<const std::byte> bytes)
{
    fs::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    std::printf("%s/%s: %zu bytes\n", dir.c_str(), name.c_str(), bytes.size());
}

// Everything queued on a non-blocking fd, as one read() or recv() returns it.
std::vector<std::byte> read_one(int fd, int wait_ms = 2000)
{
    pollfd p{fd, POLLIN, 0};
    check(::poll(&p, 1, wait_ms) == 1, "nothing to read");
    alignas(nlmsghdr) std::array<std::byte, 64 * 1024> buf;
    const auto n = ::read(fd, buf.data(), buf.size());
    check(n > 0, "read");
    return {buf.begin(), buf.begin() + n};
}

// --- inotify --------------------------------------------------------------------------------

void touch(const fs::path& p)
{
    const int fd = ::open(p.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    check(fd >= 0, "create " + p.string());
    ::close(fd);
}

void capture_inotify(const fs::path& out)
{
    char root_template[] = "/tmp/netnsd-capture-XXXXXX";
    check(::mkdtemp(root_template) != nullptr, "mkdtemp");
    const fs::path root = root_template;
    check(::mount("tmpfs", root.c_str(), "tmpfs", 0, "size=1m") == 0, "mount tmpfs");
    const fs::path netns = root / "netns";
    fs::create_directory(netns);
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    check(fd >= 0, "inotify_init1");
    int wd = ::inotify_add_watch(fd, netns.c_str(), dir_watch::dir_mask);
    check(wd >= 0, "watch netns");

    // `ip netns add`: the placeholder file, then (no event) its bind mount; `ip netns del`.
    touch(netns / "blue");
    fs::remove(netns / "blue");
    save(out, "create-delete", read_one(fd));
    // Renames into, out of and inside the dir: IN_MOVED_FROM/TO pairs with their cookies.
    touch(root / "outside");
    fs::rename(root / "outside", netns / "moved in");
    fs::rename(netns / "moved in", netns / "renamed");
    fs::rename(netns / "renamed", root / "moved out");
    save(out, "moves", read_one(fd));
    // A directory, a name of 255 bytes, and a name that is not UTF-8.
    fs::create_directory(netns / "a directory");
    touch(netns / std::string(255, 'n'));
    touch(netns / "\xff\xfe");
    save(out, "dir-longname-bytes", read_one(fd));
    // The dir as a mount of its own (as iproute2 makes it), watched, then unmounted:
    // IN_UNMOUNT, IN_IGNORED.
    check(::mount("tmpfs", netns.c_str(), "tmpfs", 0, "size=1m") == 0, "mount on netns");
    check(::inotify_add_watch(fd, netns.c_str(), dir_watch::dir_mask) >= 0, "watch the mount");
    check(::umount(netns.c_str()) == 0, "umount netns");
    save(out, "unmount", read_one(fd));
    // The dir removed: IN_DELETE_SELF, IN_IGNORED; then its parent watched while it is missing,
    // and the dir coming back (IN_CREATE|IN_ISDIR "netns") with its mode changed (IN_ATTRIB).
    wd = ::inotify_add_watch(fd, netns.c_str(), dir_watch::dir_mask);
    check(wd >= 0, "watch netns again");
    fs::remove_all(netns);
    save(out, "dir-deleted", read_one(fd));
    check(::inotify_add_watch(fd, root.c_str(), dir_watch::parent_mask) >= 0, "watch parent");
    fs::create_directory(netns);
    ::chmod(netns.c_str(), 0700);
    save(out, "parent-dir-created", read_one(fd));
    // The dir moved away while watched: IN_MOVE_SELF.
    check(::inotify_add_watch(fd, netns.c_str(), dir_watch::dir_mask) >= 0, "watch netns");
    fs::rename(netns, root / "elsewhere");
    save(out, "dir-moved", read_one(fd));
    ::close(fd);

    // IN_Q_OVERFLOW, laid out as the kernel queues it (wd -1, no name). Overflowing a real queue
    // would mean lowering the host's max_queued_events.
    inotify_event overflow{};
    overflow.wd = -1;
    overflow.mask = IN_Q_OVERFLOW;
    save(out, "overflow", std::as_bytes(std::span{&overflow, 1}));
    check(::umount2(root.c_str(), MNT_DETACH) == 0, "umount tmpfs");
    fs::remove(root);
}

// --- rtnetlink ------------------------------------------------------------------------------

struct route_socket
{
    explicit route_socket(unsigned group = 0)
    {
        sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
        check(sock != nullptr, "netlink socket");
        check(mnl_socket_bind(sock, 0, MNL_SOCKET_AUTOPID) == 0, "netlink bind");
        if (group != 0)
            check(mnl_socket_setsockopt(sock, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) == 0,
                  "join RTNLGRP_NSID");
    }
    ~route_socket() { mnl_socket_close(sock); }
    int fd() const { return mnl_socket_get_fd(sock); }
    void option(int name, int value) const
    {
        check(mnl_socket_setsockopt(sock, name, &value, sizeof value) == 0, "setsockopt");
    }
    void send(std::span<const std::byte> request) const
    {
        check(mnl_socket_sendto(sock, request.data(), request.size()) >= 0, "netlink send");
    }

    mnl_socket* sock = nullptr;
};

// RTM_NEWNSID: give the namespace behind `ns_fd` the nsid `nsid`, as `ip netns set` does.
std::vector<std::byte> newnsid(std::uint32_t seq, int ns_fd, std::int32_t nsid)
{
    alignas(nlmsghdr) std::array<std::byte, 64> buf{};
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = RTM_NEWNSID;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = seq;
    auto* gen = static_cast<rtgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtgenmsg)));
    gen->rtgen_family = AF_UNSPEC;
    mnl_attr_put_u32(nlh, NETNSA_FD, static_cast<std::uint32_t>(ns_fd));
    mnl_attr_put_u32(nlh, NETNSA_NSID, static_cast<std::uint32_t>(nsid));
    return {buf.begin(), buf.begin() + nlh->nlmsg_len};
}

std::vector<std::byte> built(std::size_t (*build)(std::span<std::byte>, std::uint32_t, int),
                             std::uint32_t seq, int arg)
{
    alignas(nlmsghdr) std::array<std::byte, 64> buf{};
    const auto len = build(buf, seq, arg);
    return {buf.begin(), buf.begin() + len};
}

// A child process in a network namespace of its own; its namespace lives while the child
// does or an fd holds it.
struct peer
{
    peer()
    {
        int ready[2];
        check(::pipe(ready) == 0, "pipe");
        pid = ::fork();
        check(pid >= 0, "fork");
        if (pid == 0)
        {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::unshare(CLONE_NEWNET) != 0)
                ::_exit(1);
            ::close(ready[0]);
            ::close(ready[1]); // the namespace exists
            ::pause();
            ::_exit(0);
        }
        ::close(ready[1]);
        char c;
        static_cast<void>(::read(ready[0], &c, 1));
        ::close(ready[0]);
        fd = ::open(("/proc/" + std::to_string(pid) + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC);
        check(fd >= 0, "open the peer's namespace");
    }
    void end()
    {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        ::close(fd);
    }

    pid_t pid = -1;
    int fd = -1;
};

void capture_netlink(const fs::path& out)
{
    route_socket events(RTNLGRP_NSID);
    route_socket client;
    client.option(NETLINK_EXT_ACK, 1);
    route_socket capped;
    capped.option(NETLINK_EXT_ACK, 1);
    capped.option(NETLINK_CAP_ACK, 1);
    std::uint32_t seq = 1000;

    peer first;
    peer second;
    // Set an nsid: the ack, and the RTM_NEWNSID event the monitor sees.
    client.send(newnsid(++seq, first.fd, 5));
    save(out, "ack", read_one(client.fd()));
    save(out, "event-newnsid", read_one(events.fd()));
    // GETNSID by fd (an answer with NETNSA_NSID) and for a namespace without one (-1).
    client.send(built(netnsd::core::kernel::build_getnsid_by_fd, ++seq, first.fd));
    save(out, "getnsid-reply", read_one(client.fd()));
    client.send(built(netnsd::core::kernel::build_getnsid_by_fd, ++seq, second.fd));
    save(out, "getnsid-not-assigned", read_one(client.fd()));
    // GETNSID for an nsid nobody has: ENOENT.
    client.send(built([](std::span<std::byte> b, std::uint32_t s, int n)
                      { return netnsd::core::kernel::build_getnsid_by_nsid(b, s, n); },
                      ++seq, 77));
    save(out, "error-enoent", read_one(client.fd()));
    // Refusals with the kernel's reason (extended acks), with and without the request copied.
    client.send(newnsid(++seq, first.fd, 6));
    save(out, "error-extack-already-has", read_one(client.fd()));
    capped.send(newnsid(++seq, second.fd, 5));
    save(out, "error-extack-in-use-capped", read_one(capped.fd()));
    // The kernel picks one (-1 asks for any): another event.
    client.send(newnsid(++seq, second.fd, -1));
    static_cast<void>(read_one(client.fd()));
    save(out, "event-newnsid-auto", read_one(events.fd()));
    // The dump: multipart messages, then NLMSG_DONE (maybe in the same datagram).
    client.send(built([](std::span<std::byte> b, std::uint32_t s, int)
                      { return netnsd::core::kernel::build_nsid_dump(b, s); },
                      ++seq, 0));
    save(out, "dump", read_one(client.fd()));
    // The namespaces freed: RTM_DELNSID, once the kernel's cleanup has run. (The second child
    // inherited an fd of the first's namespace, so it goes first.)
    second.end();
    first.end();
    save(out, "event-delnsid", read_one(events.fd(), 10000));
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 2)
    {
        std::fprintf(stderr, "usage: capture_seeds CORPUS_DIR (e.g. tests/fuzz/corpus)\n");
        return 2;
    }
    const fs::path corpus = fs::absolute(argv[1]);
    check(::unshare(CLONE_NEWNS | CLONE_NEWNET) == 0, "unshare (run as root)");
    check(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0, "make / private");
    capture_inotify(corpus / "fuzz_inotify");
    capture_netlink(corpus / "fuzz_netlink");
    return 0;
}
