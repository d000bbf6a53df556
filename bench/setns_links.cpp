// bench/setns_links: the per-namespace exporter's way of reading interface counters, for
// bench/ifmetrics.py to compare a /metrics scrape with. For each name on stdin (one a line):
// open /run/netns/NAME, setns into it, make a NETLINK_ROUTE socket there, dump its links
// (RTM_GETLINK, without the IPv6 and VF statistics), read every IFLA_STATS64, close the socket,
// setns back. Prints one JSON line:
// namespaces, links, the sum of rx_bytes (so the reads are not optimised away), seconds.
//
//   g++ -O2 -std=c++20 bench/setns_links.cpp -o bench/out/setns_links
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace
{

[[noreturn]] void die(const std::string& what)
{
    std::fprintf(stderr, "setns_links: %s: %s\n", what.c_str(), std::strerror(errno));
    std::exit(1);
}

// The links of the calling thread's namespace: how many, and their rx_bytes added up.
void dump_links(std::uint64_t& links, std::uint64_t& rx_bytes)
{
    const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        die("socket");
    // With the same IFLA_EXT_MASK as netnsd's dumps (RTEXT_FILTER_SKIP_STATS: no IPv6 or VF
    // statistics, IFLA_STATS64 kept), so that only the way into the namespace differs.
    struct
    {
        nlmsghdr nlh;
        ifinfomsg ifm;
        rtattr mask_attr;
        std::uint32_t mask;
    } req{};
    req.nlh.nlmsg_len = sizeof req;
    req.nlh.nlmsg_type = RTM_GETLINK;
    req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nlh.nlmsg_seq = 1;
    req.ifm.ifi_family = AF_UNSPEC;
    req.mask_attr.rta_len = RTA_LENGTH(sizeof req.mask);
    req.mask_attr.rta_type = IFLA_EXT_MASK;
    req.mask = RTEXT_FILTER_SKIP_STATS;
    if (::send(fd, &req, sizeof req, 0) < 0)
        die("send");
    static std::vector<char> buf(64 * 1024);
    for (bool done = false; !done;)
    {
        const auto n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n < 0)
            die("recv");
        auto len = static_cast<unsigned>(n);
        for (auto* nlh = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(nlh, len);
             nlh = NLMSG_NEXT(nlh, len))
        {
            if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_ERROR)
            {
                done = true;
                break;
            }
            if (nlh->nlmsg_type != RTM_NEWLINK)
                continue;
            ++links;
            auto* ifm = static_cast<ifinfomsg*>(NLMSG_DATA(nlh));
            int alen = static_cast<int>(IFLA_PAYLOAD(nlh));
            for (auto* rta = IFLA_RTA(ifm); RTA_OK(rta, alen); rta = RTA_NEXT(rta, alen))
                if (rta->rta_type == IFLA_STATS64 && RTA_PAYLOAD(rta) >= sizeof(rtnl_link_stats64))
                {
                    rtnl_link_stats64 st;
                    std::memcpy(&st, RTA_DATA(rta), sizeof st);
                    rx_bytes += st.rx_bytes;
                }
        }
    }
    ::close(fd);
}

} // namespace

int main()
{
    const int home = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (home < 0)
        die("open /proc/thread-self/ns/net");
    std::vector<std::string> names;
    for (std::string line; std::getline(std::cin, line);)
        if (!line.empty())
            names.push_back(line);
    std::uint64_t links = 0;
    std::uint64_t rx_bytes = 0;
    const auto start = std::chrono::steady_clock::now();
    for (const auto& name : names)
    {
        const int ns = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
        if (ns < 0)
            die("open " + name);
        if (::setns(ns, CLONE_NEWNET) != 0)
            die("setns " + name);
        ::close(ns);
        dump_links(links, rx_bytes);
        if (::setns(home, CLONE_NEWNET) != 0)
            die("setns back");
    }
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"namespaces\":%zu,\"links\":%llu,\"rx_bytes\":%llu,\"seconds\":%.6f}\n",
                names.size(), static_cast<unsigned long long>(links),
                static_cast<unsigned long long>(rx_bytes), s);
    return 0;
}
