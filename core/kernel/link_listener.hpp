// link_listener: the rtnetlink socket of --watch-links. It joins RTNLGRP_LINK,
// RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR with NETLINK_LISTEN_ALL_NSID, so that it hears the
// link and address changes of every namespace that has an nsid in netnsd's own, each with that
// nsid in a control message. A change in netnsd's own namespace carries netnsd's nsid for
// itself if it has one, and no control message otherwise. Opening it taxes the whole host: for
// every link or address notification anywhere, the kernel looks up the listener's nsid of the
// sender's namespace (a walk of the nsid table), which is why it is opt-in. Non-blocking; the
// model thread owns it and reads it, a bounded batch per turn. Also assign_nsid(): the `auto`
// of `ip netns set NAME auto`, by fd.
#pragma once

#include <cstddef>
#include <optional>
#include <system_error>
#include <vector>

#include "core/kernel/link_dump.hpp"
#include "core/kernel/rtnl_socket.hpp"
#include "core/model.hpp"

namespace netnsd::core::kernel
{

// One notification: what it said, and the nsid of the namespace it came from (nullopt: the
// socket's own namespace, which has no nsid for itself).
struct link_notification
{
    std::optional<nsid_t> nsid;
    dump_datagram what;
};

class link_listener
{
public:
    // A burst of link changes (a thousand namespaces made at once) must fit; ENOBUFS when it
    // does not, and the watcher dumps everything again.
    static constexpr int receive_buffer_bytes = 8 << 20;

    // `receive_buffer` other than the default: tests that make it overrun.
    std::error_code open(int receive_buffer = receive_buffer_bytes);
    int fd() const noexcept { return socket_.fd(); }
    bool is_open() const noexcept { return socket_.is_open(); }

    struct batch
    {
        std::vector<link_notification> notifications;
        bool overrun = false; // ENOBUFS: notifications were lost
        bool more = false;    // stopped at the limit: the socket may hold more
    };
    // Reads at most `limit` datagrams, without blocking. Malformed datagrams are skipped.
    batch drain(std::size_t limit);

private:
    rtnl_socket socket_;
};

// Gives the namespace behind `fd` an nsid in the calling thread's namespace (RTM_NEWNSID with
// the kernel's choice) and returns it; an existing nsid is returned as it is.
std::optional<nsid_t> assign_nsid(int fd, std::error_code& ec);

// The same, for the namespace of a locator (opened, then closed).
std::optional<nsid_t> assign_nsid(const netns_locator& where, std::error_code& ec);

} // namespace netnsd::core::kernel
