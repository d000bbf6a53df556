#include "core/kernel/link_listener.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "core/errc.hpp"
#include "core/kernel/errno.hpp"
#include "core/kernel/netns_admin.hpp"
#include "core/kernel/nsid_netlink.hpp"

namespace netnsd::core::kernel
{
namespace
{

// A notification is one message of a few hundred bytes; a link with many attributes (a
// bridge, IFLA_STATS64, IFLA_AF_SPEC) stays well under this.
constexpr std::size_t datagram_bytes = 32 * 1024;

std::error_code set_int(int fd, int level, int option, int value)
{
    if (::setsockopt(fd, level, option, &value, sizeof(value)) != 0)
        return last_error();
    return {};
}

} // namespace

std::error_code link_listener::open(int receive_buffer)
{
    if (auto ec = socket_.open())
        return ec;
    const int fd = socket_.fd();
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return last_error();
    // SO_RCVBUFFORCE needs CAP_NET_ADMIN, which netnsd has; SO_RCVBUF (capped by rmem_max)
    // otherwise.
    if (set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, receive_buffer))
        (void)set_int(fd, SOL_SOCKET, SO_RCVBUF, receive_buffer);
    if (auto ec = set_int(fd, SOL_NETLINK, NETLINK_LISTEN_ALL_NSID, 1))
        return ec;
    for (const int group : {RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR})
        if (auto ec = set_int(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group))
            return ec;
    return {};
}

link_listener::batch link_listener::drain(std::size_t limit)
{
    batch out;
    alignas(nlmsghdr) std::array<std::byte, datagram_bytes> buf;
    alignas(cmsghdr) std::array<std::byte, CMSG_SPACE(sizeof(int))> control;
    for (std::size_t read = 0; read < limit;)
    {
        iovec iov{buf.data(), buf.size()};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.data();
        msg.msg_controllen = control.size();
        const auto n = ::recvmsg(fd(), &msg, MSG_DONTWAIT);
        if (n < 0)
        {
            if (errno == EINTR)
                continue;
            if (errno == ENOBUFS)
            {
                out.overrun = true;
                continue; // reported once; what is queued after it is still good
            }
            return out; // EAGAIN: empty
        }
        ++read;
        if ((msg.msg_flags & MSG_TRUNC) != 0)
        {
            out.overrun = true; // a notification we could not read whole is one lost
            continue;
        }
        link_notification note;
        for (auto* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID &&
                c->cmsg_len >= CMSG_LEN(sizeof(int)))
            {
                int nsid = 0;
                std::memcpy(&nsid, CMSG_DATA(c), sizeof(nsid));
                note.nsid = nsid;
            }
        if (parse_dump_datagram({buf.data(), static_cast<std::size_t>(n)}, note.what))
            continue;
        out.notifications.push_back(std::move(note));
    }
    out.more = true;
    return out;
}

std::optional<nsid_t> assign_nsid(int fd, std::error_code& ec)
{
    nsid_client sock;
    if ((ec = sock.open()))
        return std::nullopt;
    if (auto has = sock.nsid_of_fd(fd, ec); has || ec)
        return has;
    std::array<std::byte, 64> req;
    const auto seq = sock.next_seq();
    const auto len = build_newnsid(req, seq, fd, NETNSA_NSID_NOT_ASSIGNED, false);
    nsid_datagram reply;
    if ((ec = sock.transact({req.data(), len}, seq, reply)))
        return std::nullopt;
    // EEXIST: it got one meanwhile (another `ip netns set`, a veth peer): asked below.
    if (reply.error != 0 && reply.error != EEXIST)
    {
        ec = errno_code(reply.error);
        return std::nullopt;
    }
    return sock.nsid_of_fd(fd, ec);
}

std::optional<nsid_t> assign_nsid(const netns_locator& where, std::error_code& ec)
{
    const auto fd = open_located(where);
    if (!fd)
    {
        ec = core::errc::not_found;
        return std::nullopt;
    }
    return assign_nsid(fd.get(), ec);
}

} // namespace netnsd::core::kernel
