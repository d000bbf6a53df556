// rtnetlink for nsids, with libmnl: the message builders and the parser (pure, tested on real
// byte layouts), a request/reply client (GETNSID by fd or by nsid, the dump), and the event
// monitor joined to RTNLGRP_NSID. Sockets are owned by whoever holds these objects; every call
// is made on one thread (the loop), and the client's calls return within microseconds
// (RTM_GETNSID takes no RTNL lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "core/kernel/rtnl_socket.hpp"
#include "core/model.hpp"

struct mnl_socket;

namespace netnsd::core::kernel
{

// What one netlink message about nsids said.
struct nsid_message
{
    std::uint16_t type = 0; // RTM_NEWNSID or RTM_DELNSID
    std::uint32_t seq = 0;
    std::optional<nsid_t> nsid; // nullopt for NETNSA_NSID_NOT_ASSIGNED (-1) or a missing attribute
};

struct nsid_datagram
{
    std::vector<nsid_message> messages;
    int error = 0;            // errno from an NLMSG_ERROR with a non-zero code
    std::string extack;       // the kernel's reason in an NLMSG_ERROR (NLMSGERR_ATTR_MSG)
    bool acked = false;       // an NLMSG_ERROR with code 0
    bool done = false;        // NLMSG_DONE ended a dump
    bool interrupted = false; // NLM_F_DUMP_INTR: the table changed during the dump
};

// Request builders. Each writes one message into `buf` (at least 64 bytes) and returns its length.
std::size_t build_getnsid_by_fd(std::span<std::byte> buf, std::uint32_t seq, int fd);
std::size_t build_getnsid_by_nsid(std::span<std::byte> buf, std::uint32_t seq, nsid_t nsid);
std::size_t build_nsid_dump(std::span<std::byte> buf, std::uint32_t seq);

// Walks every message of one datagram, whatever its bytes. Returns errc::protocol for malformed
// ones. `bytes` starts 4-byte aligned, as a receive buffer declared alignas(nlmsghdr) does.
std::error_code parse_nsid_datagram(std::span<const std::byte> bytes, nsid_datagram& out);

// A request/reply rtnetlink socket (no multicast groups), blocking: GETNSID, the nsid dump, and
// (netns_admin) RTM_NEWNSID. The one place that sends a request and reads its answer.
class nsid_client
{
public:
    // ext_ack: ask for the kernel's reasons with errors (NETLINK_EXT_ACK; a kernel without it
    // still answers, only without the reason).
    std::error_code open(bool ext_ack = false);

    std::uint32_t next_seq() noexcept { return socket_.next_seq(); }
    // Sends one request and reads its answer to the end: the NLMSG_ERROR (an ack, or an error,
    // in reply.error and reply.extack) of a request with NLM_F_ACK, NLMSG_DONE of a dump, the
    // single reply otherwise. Messages that are not this request's (another seq or port) are
    // skipped. The error code is for the socket or a malformed answer, not the kernel's answer.
    std::error_code transact(std::span<const std::byte> request, std::uint32_t seq,
                             nsid_datagram& reply);

    // The nsid the daemon's namespace gives the namespace behind `fd`; nullopt if none.
    std::optional<nsid_t> nsid_of_fd(int fd, std::error_code& ec);
    // Whether `nsid` is allocated now (GETNSID with NETNSA_NSID; ENOENT when not).
    bool nsid_exists(nsid_t nsid, std::error_code& ec);
    // Every nsid the dump returns. Linux 6.18 truncates it at ~134 entries: a hint only.
    std::vector<nsid_t> dump(std::error_code& ec);

private:
    // transact(), with the kernel's error as the error code.
    std::error_code ask(std::span<const std::byte> request, std::uint32_t seq,
                        nsid_datagram& reply);

    rtnl_socket socket_;
};

// An nsid event: RTM_NEWNSID (added) or RTM_DELNSID (deleted), in kernel order.
struct nsid_event
{
    bool added = true;
    nsid_t nsid = 0;
};

// The RTNLGRP_NSID subscriber. Non-blocking; drain() reads until the socket is empty.
class nsid_monitor
{
public:
    // ENOBUFS means the kernel dropped events. The default buffer holds ~256 nsid events.
    static constexpr int receive_buffer_bytes = 4 << 20;

    std::error_code open();
    int fd() const noexcept;

    struct batch
    {
        std::vector<nsid_event> events;
        bool overrun = false; // ENOBUFS: events were lost, resynchronise
    };
    batch drain();

private:
    rtnl_socket socket_;
};

} // namespace netnsd::core::kernel
