#include "core/kernel/proc_events.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "core/kernel/errno.hpp"

namespace netnsd::core::kernel
{

namespace
{

// The subscription with an event filter (struct proc_input, Linux 6.6; Debian 12's headers
// lack it). Older kernels ignore a message of this size, and keep the plain subscription.
struct proc_input
{
    std::uint32_t mcast_op;
    std::uint32_t event_type;
};
static_assert(sizeof(proc_input) == 8);

// struct proc_event's `what` (an enum inside the uapi struct, whose name ours shadows here).
constexpr std::uint32_t event_none = 0x0;        // PROC_EVENT_NONE: a subscription's answer
constexpr std::uint32_t event_fork = 0x1;        // PROC_EVENT_FORK
constexpr std::uint32_t event_exec = 0x2;        // PROC_EVENT_EXEC
constexpr std::uint32_t event_exit = 0x80000000; // PROC_EVENT_EXIT
constexpr std::uint32_t wanted_events = event_fork | event_exec | event_exit;

// Offsets in struct proc_event (the uapi's layout, stable): what, cpu, timestamp_ns, then the
// event's own fields.
constexpr std::size_t event_header = 16;
constexpr std::size_t ack_size = event_header + 4;
constexpr std::size_t pair_size = event_header + 8;  // exec: pid, tgid
constexpr std::size_t fork_size = event_header + 16; // parent pid, tgid; child pid, tgid

template <class T>
T load(const unsigned char* p) noexcept
{
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

bool decode_event(const unsigned char* p, std::size_t len, std::vector<proc_event>& out)
{
    if (len < event_header)
        return false;
    const auto what = load<std::uint32_t>(p);
    const unsigned char* data = p + event_header;
    proc_event e;
    e.timestamp_ns = load<std::uint64_t>(p + 8);
    switch (what)
    {
    case event_none:
        if (len < ack_size)
            return false;
        e.what = proc_event::kind::ack;
        e.err = load<std::uint32_t>(data);
        break;
    case event_fork:
        if (len < fork_size)
            return false;
        e.what = proc_event::kind::fork;
        e.pid = load<std::int32_t>(data + 8);
        e.tgid = load<std::int32_t>(data + 12);
        break;
    case event_exec:
    case event_exit:
        if (len < pair_size)
            return false;
        e.what = what == event_exec ? proc_event::kind::exec : proc_event::kind::exit;
        e.pid = load<std::int32_t>(data);
        e.tgid = load<std::int32_t>(data + 4);
        break;
    default:
        return true; // uid, gid, comm, ... (older kernels send them all): not ours
    }
    out.push_back(e);
    return true;
}

std::error_code send_op(int fd, const void* payload, std::uint16_t len)
{
    alignas(nlmsghdr) std::array<unsigned char, 64> buf{};
    nlmsghdr nlh{};
    nlh.nlmsg_len = static_cast<std::uint32_t>(sizeof(nlmsghdr) + sizeof(cn_msg) + len);
    nlh.nlmsg_type = NLMSG_DONE;
    cn_msg cn{};
    cn.id.idx = CN_IDX_PROC;
    cn.id.val = CN_VAL_PROC;
    cn.len = len;
    std::memcpy(buf.data(), &nlh, sizeof nlh);
    std::memcpy(buf.data() + sizeof nlh, &cn, sizeof cn);
    std::memcpy(buf.data() + sizeof nlh + sizeof cn, payload, len);
    if (::send(fd, buf.data(), nlh.nlmsg_len, 0) < 0)
        return last_error();
    return {};
}

void set_receive_buffer(int fd, int bytes)
{
    // Beyond rmem_max needs CAP_NET_ADMIN, which subscribing needs too; the plain one is the
    // fallback (capped at rmem_max).
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0)
        ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

unique_fd make_socket(int buffer, std::error_code& ec)
{
    unique_fd fd(
        ::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_CONNECTOR));
    if (!fd)
    {
        ec = last_error();
        return fd;
    }
    sockaddr_nl sa{};
    sa.nl_family = AF_NETLINK;
    sa.nl_groups = CN_IDX_PROC;
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0)
    {
        ec = last_error();
        return unique_fd{};
    }
    set_receive_buffer(fd.get(), buffer);
    ec = {};
    return fd;
}

// The socket, made in the network namespace of `path` by a thread that enters it and ends:
// no other thread of netnsd ever changes its namespace.
unique_fd make_socket_in(const std::string& path, int buffer, std::error_code& ec)
{
    unique_fd out;
    std::thread t(
        [&]
        {
            const unique_fd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            if (!ns)
            {
                ec = last_error();
                return;
            }
            if (::setns(ns.get(), CLONE_NEWNET) != 0)
            {
                ec = last_error();
                return;
            }
            out = make_socket(buffer, ec);
        });
    t.join();
    return out;
}

// The kernel handles a subscription in the sender's context and broadcasts its answer before
// send() returns; the waits are only margins: for the next datagram, and in all (other
// processes' events can come without end meanwhile).
constexpr int ack_wait_ms = 500;
constexpr auto ack_deadline = std::chrono::seconds(2);

// Until the answer is in, the socket gets every process's events on the host too, as every
// listener does: the handshake has a buffer large enough for a storm elsewhere not to drop the
// answer, and the configured one applies once subscribed. Should the answer be dropped anyway
// (ENOBUFS), the subscription is sent again: the kernel counts a socket's listen once.
constexpr int handshake_buffer = 4 << 20;
constexpr int subscribe_attempts = 4;

// errc::no_buffer_space: the queue overflowed, and the answer may have been lost with it.
std::error_code await_ack(int fd)
{
    std::vector<proc_event> events;
    std::array<unsigned char, 512> buf{};
    pollfd p{fd, POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + ack_deadline;
    while (std::chrono::steady_clock::now() < deadline && ::poll(&p, 1, ack_wait_ms) > 0)
    {
        const auto n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0)
        {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return last_error();
        }
        events.clear();
        decode_proc_events(std::span(buf.data(), static_cast<std::size_t>(n)), events);
        for (const auto& e : events)
            if (e.what == proc_event::kind::ack)
                return e.err == 0 ? std::error_code{} : errno_code(static_cast<int>(e.err));
        // Another subscriber's answer would be an ack too; any event shows delivery works, but
        // only our ack says the subscription itself was accepted: keep reading until it.
    }
    return std::make_error_code(std::errc::timed_out);
}

} // namespace

bool decode_proc_events(std::span<const unsigned char> datagram, std::vector<proc_event>& out)
{
    std::size_t off = 0;
    while (datagram.size() - off >= sizeof(nlmsghdr))
    {
        const auto nlh = load<nlmsghdr>(datagram.data() + off);
        if (nlh.nlmsg_len < sizeof(nlmsghdr) || nlh.nlmsg_len > datagram.size() - off)
            return false;
        const auto* payload = datagram.data() + off + sizeof(nlmsghdr);
        const std::size_t payload_len = nlh.nlmsg_len - sizeof(nlmsghdr);
        if (nlh.nlmsg_type == NLMSG_DONE)
        {
            if (payload_len < sizeof(cn_msg))
                return false;
            const auto cn = load<cn_msg>(payload);
            if (cn.len > payload_len - sizeof(cn_msg))
                return false;
            if (cn.id.idx == CN_IDX_PROC && cn.id.val == CN_VAL_PROC &&
                !decode_event(payload + sizeof(cn_msg), cn.len, out))
                return false;
        }
        off += NLMSG_ALIGN(nlh.nlmsg_len);
        if (off >= datagram.size())
            break;
    }
    return true;
}

std::error_code proc_connector::open(const std::string& netns_path, int buffer,
                                     std::chrono::milliseconds pause)
{
    fd_.reset();
    elsewhere_ = false;
    std::error_code ec;
    const int first_buffer = std::max(buffer, handshake_buffer);
    unique_fd fd = make_socket(first_buffer, ec);
    if (!fd)
        return ec;
    const std::uint32_t listen = PROC_CN_MCAST_LISTEN;
    ec = send_op(fd.get(), &listen, sizeof listen);
    if (ec == std::errc::connection_refused)
    {
        // Not the initial network namespace: the connector has no kernel socket here.
        fd = make_socket_in(netns_path, first_buffer, ec);
        if (!fd)
            return ec;
        elsewhere_ = true;
        ec = send_op(fd.get(), &listen, sizeof listen);
    }
    if (ec)
        return ec;
    if (pause.count() > 0)
        std::this_thread::sleep_for(pause);
    // The plain subscription is acknowledged to every listener; one with a filter is not
    // (the filter drops the answer), so the filter comes second, once the answer is in.
    for (int attempt = 1;
         (ec = await_ack(fd.get())) == std::errc::no_buffer_space && attempt < subscribe_attempts;
         ++attempt)
        if ((ec = send_op(fd.get(), &listen, sizeof listen)))
            break;
    if (ec)
    {
        const std::uint32_t ignore = PROC_CN_MCAST_IGNORE;
        send_op(fd.get(), &ignore, sizeof ignore);
        return ec;
    }
    const proc_input filtered{PROC_CN_MCAST_LISTEN, wanted_events};
    if ((ec = send_op(fd.get(), &filtered, sizeof filtered)))
        return ec;
    if (first_buffer != buffer)
        set_receive_buffer(fd.get(), buffer);
    fd_ = std::move(fd);
    return {};
}

proc_connector::read_result proc_connector::read(std::vector<proc_event>& out,
                                                 std::size_t max_datagrams)
{
    read_result r;
    constexpr std::size_t datagram_size = 256; // one event is 76 bytes
    std::array<std::array<unsigned char, datagram_size>, batch> bufs;
    std::array<iovec, batch> iov{};
    std::array<mmsghdr, batch> msgs{};
    while (r.datagrams < max_datagrams)
    {
        const auto want = std::min(batch, max_datagrams - r.datagrams);
        for (std::size_t i = 0; i < want; ++i)
        {
            iov[i] = {bufs[i].data(), bufs[i].size()};
            msgs[i] = {};
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        const int n =
            ::recvmmsg(fd_.get(), msgs.data(), static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
        if (n < 0)
        {
            if (errno == EINTR)
                continue;
            if (errno == ENOBUFS)
            {
                r.overrun = true; // the queue overflowed; reading on gets what came since
                continue;
            }
            if (errno != EAGAIN)
                r.error = last_error();
            return r;
        }
        for (int i = 0; i < n; ++i)
        {
            const auto idx = static_cast<std::size_t>(i);
            decode_proc_events(std::span(bufs[idx].data(),
                                         std::min<std::size_t>(msgs[idx].msg_len, datagram_size)),
                               out);
        }
        r.datagrams += static_cast<std::size_t>(n);
        if (static_cast<std::size_t>(n) < want)
            return r;
    }
    r.more = true;
    return r;
}

} // namespace netnsd::core::kernel
