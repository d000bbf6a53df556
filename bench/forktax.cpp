// forktax: what a process-connector listener costs every fork and exit on the host. Rounds of
// N fork + _exit(0) + waitpid, alternately with no listener and with one (a child subscribed to
// fork/exec/exit events as netnsd subscribes, reading them as fast as they come); prints, per
// round, the wall time and the kernel CPU time per fork of the forker and its children, and
// the listener's CPU and event count. The connector is in the initial network namespace only:
// run this there (bench/inventory.py does). Needs CAP_NET_ADMIN.
//
//   g++ -O2 -std=c++20 bench/forktax.cpp -o bench/out/forktax
//   forktax FORKS ROUNDS   -> one line per round: "off|on wall_us_per_fork sys_us_per_fork
//                             listener_cpu_us events"
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace
{

constexpr std::uint32_t listen_op = 1;                      // PROC_CN_MCAST_LISTEN
constexpr std::uint32_t wanted = 0x1u | 0x2u | 0x80000000u; // FORK | EXEC | EXIT

bool send_op(int fd, const void* payload, std::uint16_t len)
{
    alignas(nlmsghdr) char buf[64] = {};
    auto* nlh = reinterpret_cast<nlmsghdr*>(buf);
    auto* cn = reinterpret_cast<cn_msg*>(buf + sizeof(nlmsghdr));
    nlh->nlmsg_len = static_cast<std::uint32_t>(sizeof(nlmsghdr) + sizeof(cn_msg) + len);
    nlh->nlmsg_type = NLMSG_DONE;
    nlh->nlmsg_pid = static_cast<std::uint32_t>(::getpid());
    cn->id.idx = CN_IDX_PROC;
    cn->id.val = CN_VAL_PROC;
    cn->len = len;
    std::memcpy(buf + sizeof(nlmsghdr) + sizeof(cn_msg), payload, len);
    return ::send(fd, buf, nlh->nlmsg_len, 0) >= 0;
}

volatile sig_atomic_t stop = 0;

// The listener: subscribes (filtered to fork/exec/exit where the kernel can), says ready on
// `ready`, reads until SIGTERM, writes its event count on `ready`, exits.
[[noreturn]] void listener(int ready)
{
    std::signal(SIGTERM, [](int) { stop = 1; });
    const int fd = ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_CONNECTOR);
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = CN_IDX_PROC;
    int big = 4 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big);
    const std::uint32_t filtered[2] = {listen_op, wanted};
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        !send_op(fd, &listen_op, sizeof listen_op) || !send_op(fd, filtered, sizeof filtered))
    {
        std::fprintf(stderr, "forktax: listener: %s\n", std::strerror(errno));
        std::_Exit(1);
    }
    long events = 0;
    char c = 'r';
    (void)!::write(ready, &c, 1);
    char buf[65536];
    while (!stop)
    {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0)
            continue;
        const auto n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0)
            ++events;
    }
    (void)!::write(ready, &events, sizeof events);
    std::_Exit(0);
}

double cpu_us(const timeval& t)
{
    return double(t.tv_sec) * 1e6 + double(t.tv_usec);
}

double sys_us()
{
    rusage self{}, children{};
    ::getrusage(RUSAGE_SELF, &self);
    ::getrusage(RUSAGE_CHILDREN, &children);
    return cpu_us(self.ru_stime) + cpu_us(children.ru_stime);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 3)
    {
        std::fprintf(stderr, "usage: forktax FORKS ROUNDS\n");
        return 2;
    }
    const long forks = std::strtol(argv[1], nullptr, 10);
    const long rounds = std::strtol(argv[2], nullptr, 10);
    for (long r = 0; r < 2 * rounds; ++r)
    {
        const bool on = r % 2 == 1;
        int pipefd[2];
        if (::pipe(pipefd) != 0)
            return 1;
        pid_t lpid = -1;
        if (on)
        {
            lpid = ::fork();
            if (lpid == 0)
                listener(pipefd[1]);
            char c = 0;
            if (::read(pipefd[0], &c, 1) != 1)
                return 1;
        }
        const double sys0 = sys_us();
        const auto t0 = std::chrono::steady_clock::now();
        for (long i = 0; i < forks; ++i)
        {
            const pid_t pid = ::fork();
            if (pid == 0)
                std::_Exit(0);
            ::waitpid(pid, nullptr, 0);
        }
        const double wall =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count();
        const double sys = sys_us() - sys0;
        long events = 0;
        double listener_cpu = 0;
        if (on)
        {
            ::kill(lpid, SIGTERM);
            if (::read(pipefd[0], &events, sizeof events) != sizeof events)
                events = -1;
            int status = 0;
            rusage ru{};
            ::wait4(lpid, &status, 0, &ru);
            listener_cpu = cpu_us(ru.ru_utime) + cpu_us(ru.ru_stime);
        }
        ::close(pipefd[0]);
        ::close(pipefd[1]);
        std::printf("%s %.2f %.2f %.0f %ld\n", on ? "on" : "off", wall / double(forks),
                    sys / double(forks), listener_cpu, events);
        std::fflush(stdout);
    }
    return 0;
}
