#include "core/kernel/nsid_netlink.hpp"

#include <array>
#include <cerrno>
#include <ctime>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string>
#include <sys/socket.h>
#include <utility>

#include <libmnl/libmnl.h>

#include "core/errc.hpp"
#include "core/kernel/errno.hpp"
#include "core/kernel/nlmsg_walk.hpp"

namespace netnsd::core::kernel
{
namespace
{

// Large enough to drain many events per recv; a datagram never exceeds it.
constexpr std::size_t receive_chunk = 64 * 1024;

// The largest errno the kernel reports (MAX_ERRNO in include/linux/err.h).
constexpr int max_errno = 4095;

nlmsghdr* put_request(std::span<std::byte> buf, std::uint16_t type, std::uint16_t flags,
                      std::uint32_t seq)
{
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = flags;
    nlh->nlmsg_seq = seq;
    auto* gen = static_cast<rtgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtgenmsg)));
    gen->rtgen_family = AF_UNSPEC;
    return nlh;
}

int attr_cb(const nlattr* attr, void* data)
{
    auto** table = static_cast<const nlattr**>(data);
    const auto type = mnl_attr_get_type(attr);
    if (mnl_attr_type_valid(attr, NETNSA_MAX) < 0)
        return MNL_CB_OK; // newer attributes are fine to ignore
    if (type == NETNSA_NSID && mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
        return MNL_CB_ERROR;
    table[type] = attr;
    return MNL_CB_OK;
}

int extack_cb(const nlattr* attr, void* data)
{
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
        mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
        *static_cast<std::string*>(data) = mnl_attr_get_str(attr);
    return MNL_CB_OK;
}

// The NLMSGERR_ATTR_MSG of an NLMSG_ERROR whose nlmsgerr is known to fit: after the nlmsgerr,
// and after the copy of the request that an error carries unless NETLINK_CAP_ACK capped it.
std::string extack_message(const nlmsghdr* nlh)
{
    if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) == 0)
        return {};
    const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
    std::size_t offset = sizeof(nlmsgerr);
    if ((nlh->nlmsg_flags & NLM_F_CAPPED) == 0)
    {
        if (err->msg.nlmsg_len < sizeof(nlmsghdr))
            return {};
        offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
    }
    const auto aligned = (offset + 3) & ~std::size_t{3};
    if (mnl_nlmsg_size(aligned) > nlh->nlmsg_len)
        return {};
    std::string message;
    mnl_attr_parse(nlh, static_cast<unsigned>(offset), extack_cb, &message);
    return message;
}

} // namespace

std::size_t build_getnsid_by_fd(std::span<std::byte> buf, std::uint32_t seq, int fd)
{
    auto* nlh = put_request(buf, RTM_GETNSID, NLM_F_REQUEST, seq);
    mnl_attr_put_u32(nlh, NETNSA_FD, static_cast<std::uint32_t>(fd));
    return nlh->nlmsg_len;
}

std::size_t build_getnsid_by_nsid(std::span<std::byte> buf, std::uint32_t seq, nsid_t nsid)
{
    auto* nlh = put_request(buf, RTM_GETNSID, NLM_F_REQUEST, seq);
    mnl_attr_put_u32(nlh, NETNSA_NSID, static_cast<std::uint32_t>(nsid));
    return nlh->nlmsg_len;
}

std::size_t build_nsid_dump(std::span<std::byte> buf, std::uint32_t seq)
{
    return put_request(buf, RTM_GETNSID, NLM_F_REQUEST | NLM_F_DUMP, seq)->nlmsg_len;
}

std::error_code parse_nsid_datagram(std::span<const std::byte> bytes, nsid_datagram& out)
{
    return for_each_nlmsg(
        bytes,
        [&](const nlmsghdr* nlh, std::size_t length) -> std::error_code
        {
            if ((nlh->nlmsg_flags & NLM_F_DUMP_INTR) != 0)
                out.interrupted = true;
            switch (nlh->nlmsg_type)
            {
            case NLMSG_DONE:
                out.done = true;
                break;
            case NLMSG_ERROR:
            {
                if (length < mnl_nlmsg_size(sizeof(nlmsgerr)))
                    return core::errc::protocol;
                const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
                // 0 acks; an error is a negated errno, never below -MAX_ERRNO (and never INT_MIN,
                // which has no negation).
                if (err->error > 0 || err->error < -max_errno)
                    return core::errc::protocol;
                if (err->error == 0)
                    out.acked = true;
                else
                    out.error = -err->error;
                out.extack = extack_message(nlh);
                break;
            }
            case RTM_NEWNSID:
            case RTM_DELNSID:
            case RTM_GETNSID:
            { // very old kernels answered with RTM_GETNSID
                if (length < mnl_nlmsg_size(sizeof(rtgenmsg)))
                    return core::errc::protocol;
                std::array<const nlattr*, NETNSA_MAX + 1> table{};
                if (mnl_attr_parse(nlh, sizeof(rtgenmsg), attr_cb, table.data()) < 0)
                    return core::errc::protocol;
                nsid_message msg;
                msg.type = nlh->nlmsg_type == RTM_DELNSID ? RTM_DELNSID : RTM_NEWNSID;
                msg.seq = nlh->nlmsg_seq;
                if (table[NETNSA_NSID] != nullptr)
                {
                    // nsids are 0..INT32_MAX; -1 is NETNSA_NSID_NOT_ASSIGNED; nothing else exists.
                    const auto value = static_cast<nsid_t>(mnl_attr_get_u32(table[NETNSA_NSID]));
                    if (value < NETNSA_NSID_NOT_ASSIGNED)
                        return core::errc::protocol;
                    if (value != NETNSA_NSID_NOT_ASSIGNED)
                        msg.nsid = value;
                }
                out.messages.push_back(msg);
                break;
            }
            default:
                break; // NLMSG_NOOP, or anything newer
            }
            return {};
        });
}

// --- nsid_client ---------------------------------------------------------------------------

std::error_code nsid_client::open(bool ext_ack)
{
    if (auto ec = socket_.open())
        return ec;
    if (ext_ack)
    {
        int on = 1;
        mnl_socket_setsockopt(socket_.get(), NETLINK_EXT_ACK, &on, sizeof(on));
    }
    return {};
}

std::error_code nsid_client::transact(std::span<const std::byte> request, std::uint32_t seq,
                                      nsid_datagram& reply)
{
    if (auto ec = socket_.send(request))
        return ec;
    const auto flags = reinterpret_cast<const nlmsghdr*>(request.data())->nlmsg_flags;
    const bool acked = (flags & NLM_F_ACK) != 0;
    const bool dump = (flags & NLM_F_DUMP) == NLM_F_DUMP;
    alignas(nlmsghdr) std::array<std::byte, receive_chunk> buf;
    for (;;)
    {
        std::size_t n = 0;
        if (auto ec = socket_.receive(buf, n))
            return ec;
        // The whole datagram first: mnl_nlmsg_ok() alone lets a length of 2 GiB or more
        // through, and each message below is then known to fit with its padding.
        nsid_datagram whole;
        if (auto ec = parse_nsid_datagram({buf.data(), n}, whole))
            return ec;
        bool ended = false;
        const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
        for (int left = static_cast<int>(n); mnl_nlmsg_ok(nlh, left);
             nlh = mnl_nlmsg_next(nlh, &left))
        {
            // Replies to earlier requests cannot be pending (each transact reads its own to the
            // end), but skip any message that is not ours rather than trust that.
            if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != socket_.port())
                continue;
            nsid_datagram one;
            const auto padded = (std::size_t{nlh->nlmsg_len} + 3) & ~std::size_t{3};
            if (auto ec =
                    parse_nsid_datagram({reinterpret_cast<const std::byte*>(nlh), padded}, one))
                return ec;
            reply.messages.insert(reply.messages.end(), one.messages.begin(), one.messages.end());
            reply.interrupted = reply.interrupted || one.interrupted;
            reply.done = reply.done || one.done;
            if (nlh->nlmsg_type == NLMSG_ERROR)
            {
                reply.error = one.error;
                reply.acked = one.acked;
                reply.extack = std::move(one.extack);
            }
            ended = ended || nlh->nlmsg_type == NLMSG_ERROR || one.done ||
                    (!acked && !dump && !one.messages.empty());
        }
        if (ended)
            return {};
    }
}

std::error_code nsid_client::ask(std::span<const std::byte> request, std::uint32_t seq,
                                 nsid_datagram& reply)
{
    if (auto ec = transact(request, seq, reply))
        return ec;
    return reply.error != 0 ? errno_code(reply.error) : std::error_code{};
}

std::optional<nsid_t> nsid_client::nsid_of_fd(int fd, std::error_code& ec)
{
    std::array<std::byte, 64> req;
    const auto seq = next_seq();
    const auto len = build_getnsid_by_fd(req, seq, fd);
    nsid_datagram reply;
    ec = ask({req.data(), len}, seq, reply);
    if (ec)
        return std::nullopt;
    if (reply.messages.empty())
    {
        ec = core::errc::protocol;
        return std::nullopt;
    }
    return reply.messages.front().nsid;
}

bool nsid_client::nsid_exists(nsid_t nsid, std::error_code& ec)
{
    std::array<std::byte, 64> req;
    const auto seq = next_seq();
    const auto len = build_getnsid_by_nsid(req, seq, nsid);
    nsid_datagram reply;
    ec = ask({req.data(), len}, seq, reply);
    if (ec == std::errc::no_such_file_or_directory)
    {
        ec.clear();
        return false;
    }
    return !ec && !reply.messages.empty() && reply.messages.front().nsid == nsid;
}

std::vector<nsid_t> nsid_client::dump(std::error_code& ec)
{
    std::array<std::byte, 64> req;
    const auto seq = next_seq();
    const auto len = build_nsid_dump(req, seq);
    nsid_datagram reply;
    ec = ask({req.data(), len}, seq, reply);
    std::vector<nsid_t> out;
    for (const auto& msg : reply.messages)
        if (msg.nsid)
            out.push_back(*msg.nsid);
    return out;
}

// --- nsid_monitor --------------------------------------------------------------------------

std::error_code nsid_monitor::open()
{
    if (auto ec = socket_.open())
        return ec;
    const int fd = socket_.fd();
    int group = RTNLGRP_NSID;
    if (mnl_socket_setsockopt(socket_.get(), NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0)
        return last_error();
    // SO_RCVBUFFORCE ignores rmem_max (we run as root); fall back to what rmem_max allows.
    const int size = receive_buffer_bytes;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    return {};
}

int nsid_monitor::fd() const noexcept
{
    return socket_.fd();
}

nsid_monitor::batch nsid_monitor::drain()
{
    batch out;
    alignas(nlmsghdr) std::array<std::byte, receive_chunk> buf;
    for (;;)
    {
        const auto n = ::recv(fd(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0)
        {
            if (errno == EINTR)
                continue;
            if (errno == ENOBUFS)
            {
                out.overrun = true;
                continue; // the error is reported once; keep reading what is queued
            }
            break; // EAGAIN: empty
        }
        nsid_datagram datagram;
        if (parse_nsid_datagram({buf.data(), static_cast<std::size_t>(n)}, datagram))
        {
            out.overrun = true; // unreadable: treat like a loss and resynchronise
            continue;
        }
        for (const auto& msg : datagram.messages)
            if (msg.nsid)
                out.events.push_back({msg.type == RTM_NEWNSID, *msg.nsid});
    }
    return out;
}

} // namespace netnsd::core::kernel
