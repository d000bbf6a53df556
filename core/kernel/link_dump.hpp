// What is inside a network namespace, over rtnetlink (libmnl): its links (RTM_GETLINK) and
// addresses (RTM_GETADDR), dumped from netnsd's own namespace by the target's nsid
// (IFLA_TARGET_NETNSID, IFA_TARGET_NETNSID), or, for a namespace netnsd has no nsid for, on a
// socket made inside it by a short setns. The builders and the decoder are pure (bytes in,
// records out) and tested on byte layouts captured from Linux 6.18. A `link_dumper` is owned by
// whoever makes it and used on one thread: the dumps block (microseconds to milliseconds), so
// that thread is a worker, never the loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/kernel/rtnl_socket.hpp"
#include "core/kernel/unique_fd.hpp"
#include "core/model.hpp"

struct mnl_socket;

namespace netnsd::core::kernel
{

// The first eight counters of IFLA_STATS64 (struct rtnl_link_stats64), as `ip -s link` shows.
struct link_counters
{
    std::uint64_t rx_packets = 0;
    std::uint64_t tx_packets = 0;
    std::uint64_t rx_bytes = 0;
    std::uint64_t tx_bytes = 0;
    std::uint64_t rx_errors = 0;
    std::uint64_t tx_errors = 0;
    std::uint64_t rx_dropped = 0;
    std::uint64_t tx_dropped = 0;

    friend bool operator==(const link_counters&, const link_counters&) = default;
};

// One RTM_NEWLINK of a dump.
struct link_record
{
    int ifindex = 0;
    std::string name;           // IFLA_IFNAME (bytes, as the kernel has them)
    std::string kind;           // IFLA_LINKINFO/IFLA_INFO_KIND; empty for lo, a physical NIC
    std::uint8_t operstate = 0; // IF_OPER_*
    std::uint32_t flags = 0;    // IFF_*
    std::uint32_t mtu = 0;
    std::vector<std::uint8_t> mac; // IFLA_ADDRESS; empty when the link has none
    std::optional<int> master;     // IFLA_MASTER: the bridge (or bond, vrf) it is a port of
    // IFLA_LINK: the ifindex of the link this one sits on (a veth's peer), in the namespace
    // that link_netnsid names, or in this one when link_netnsid is absent.
    std::optional<int> link;
    // IFLA_LINK_NETNSID: the namespace of `link`, as an nsid of the namespace the socket is in.
    std::optional<nsid_t> link_netnsid;
    std::optional<link_counters> counters; // IFLA_STATS64
    // IFLA_TARGET_NETNSID, which the kernel echoes in each answer to a dump by nsid.
    std::optional<nsid_t> target_nsid;
};

// One RTM_NEWADDR of a dump.
struct address_record
{
    std::uint8_t family = 0; // AF_INET or AF_INET6
    std::string address;     // IFA_LOCAL if present (IPv4), else IFA_ADDRESS; as text
    std::uint8_t prefix_len = 0;
    std::uint8_t scope = 0; // RT_SCOPE_*
    int ifindex = 0;
    std::string label;                 // IFA_LABEL (IPv4 only)
    std::optional<nsid_t> target_nsid; // IFA_TARGET_NETNSID, echoed as for links
};

// One RTM_NEWSTATS of a stats dump (RTM_GETSTATS with IFLA_STATS_LINK_64): a link's counters
// by ifindex, without the rest of its RTM_NEWLINK, whose IFLA_LINK_NETNSID costs the kernel a
// walk of the nsid table for every veth (see link_gather's own_links).
struct link_stats_record
{
    int ifindex = 0;
    link_counters counters;
};

// What one datagram of a dump (or of a notification) said.
struct dump_datagram
{
    std::vector<link_record> links;
    std::vector<link_stats_record> stats;
    std::vector<address_record> addresses;
    // RTM_DELLINK and RTM_DELADDR: only notifications carry them, one message per datagram.
    std::vector<link_record> deleted_links;
    std::vector<address_record> deleted_addresses;
    int error = 0;            // errno from an NLMSG_ERROR (or the error code after NLMSG_DONE)
    bool done = false;        // NLMSG_DONE ended the dump
    bool interrupted = false; // NLM_F_DUMP_INTR: the tables changed during the dump
};

// Request builders. Each writes one dump request into `buf` (at least 64 bytes) and returns its
// length. With `target`, the kernel answers for the namespace with that nsid.
// Links: with IFLA_EXT_MASK RTEXT_FILTER_SKIP_STATS, which leaves IFLA_STATS64 in but not the
// IPv6 and VF statistics (netnsd reads neither; they are most of the kernel's work per link).
std::size_t build_link_dump(std::span<std::byte> buf, std::uint32_t seq,
                            std::optional<nsid_t> target);
std::size_t build_address_dump(std::span<std::byte> buf, std::uint32_t seq,
                               std::optional<nsid_t> target);
// One link by ifindex (no NLM_F_DUMP), with the same IFLA_EXT_MASK.
std::size_t build_link_get(std::span<std::byte> buf, std::uint32_t seq,
                           std::optional<nsid_t> target, int ifindex);

// Every link's IFLA_STATS_LINK_64 of the socket's namespace (RTM_GETSTATS, NLM_F_DUMP).
std::size_t build_stats_dump(std::span<std::byte> buf, std::uint32_t seq);

// Walks every message of one datagram whatever its bytes; errc::protocol for malformed ones.
// `bytes` starts 4-byte aligned. Messages of other types are skipped.
std::error_code parse_dump_datagram(std::span<const std::byte> bytes, dump_datagram& out);

// A namespace's links and addresses, as one pair of dumps saw them.
struct netns_contents
{
    std::vector<link_record> links;
    std::vector<address_record> addresses;
};

// The calling thread's network namespace, open (/proc/self would name the main thread's); an
// empty fd and errno on failure.
unique_fd open_thread_netns();

// A request/reply rtnetlink socket with NETLINK_GET_STRICT_CHK: without it the kernel ignores
// IFA_TARGET_NETNSID and answers with the caller's own addresses (seen on Linux 6.18).
class link_dumper
{
public:
    // A dump the tables changed under (NLM_F_DUMP_INTR) is read again, at most this many times.
    static constexpr int max_dump_attempts = 3;

    // A socket in the calling thread's network namespace.
    std::error_code open();
    // A socket in the namespace behind `netns_fd`: the calling thread enters it, makes the
    // socket and returns at once (the socket stays in the namespace it was made in). The caller
    // closes `netns_fd`, and must not keep this dumper: an open socket holds its namespace
    // alive. errc::thread_netns_lost when the thread could not return: it must not be reused.
    // `home_fd`, when given, is the calling thread's own namespace to return to (a thread that
    // enters many keeps it open, rather than opening it each time); otherwise it is opened here.
    // A socket already held is closed once the new one is made: one dumper can read namespace
    // after namespace, keeping its receive buffer.
    std::error_code open_in(int netns_fd, int home_fd = -1);
    void close() noexcept { socket_.close(); }

    // Links and addresses of the namespace with that nsid (from the socket's namespace), or of
    // the socket's own namespace without one. Each answer to a dump by nsid must echo the
    // target: one that does not (a kernel that ignored the attribute) is errc::protocol.
    std::error_code dump(std::optional<nsid_t> target, netns_contents& out);
    // Links only (RTM_GETLINK, no addresses), with the same check of the echoed target.
    std::error_code dump_links(std::optional<nsid_t> target, std::vector<link_record>& out);

    // One dump of either kind, with every record as the kernel sent it (no target check).
    std::error_code dump_raw(std::span<const std::byte> request, std::uint32_t seq,
                             dump_datagram& out);

    // The counters of every link of the socket's own namespace (RTM_GETSTATS).
    std::error_code dump_stats(std::vector<link_stats_record>& out);

    // One link of that namespace (or the socket's own) by ifindex: RTM_GETLINK without
    // NLM_F_DUMP, one answer. ENODEV when there is no such link.
    std::error_code get_link(std::optional<nsid_t> target, int ifindex, link_record& out);

    std::uint32_t next_seq() noexcept { return socket_.next_seq(); }
    // Turns NETLINK_GET_STRICT_CHK off: only for the test that shows what it is for.
    std::error_code set_strict(bool on);

private:
    std::error_code dump_kind(bool links, std::optional<nsid_t> target, dump_datagram& out);

    // Reads answers to `seq` until `on_datagram` says the answer is complete (returns true) or
    // fails; datagrams that are not this request's are skipped.
    template <typename OnDatagram>
    std::error_code read_answer(std::uint32_t seq, OnDatagram&& on_datagram);

    rtnl_socket socket_;
    std::vector<std::byte> buf_; // receive buffer, allocated at the first answer and kept
};

// Where a namespace can be opened, for dump_netns: netnsd's own, or one of these paths (an
// entry of the netns dir, any nsfs mount) or processes, the first that still is it.
struct netns_locator
{
    std::uint64_t ns_id = 0; // NS_GET_ID each open is checked against; 0: not checked
    bool is_self = false;
    std::vector<std::string> paths;
    std::vector<int> pids;
};

// What dump_netns found.
struct netns_dump
{
    netns_contents contents;
    // The nsid netnsd's namespace has for it (the dump went by nsid), or nullopt (setns).
    std::optional<nsid_t> nsid;
    // The links' link_netnsid are nsids of netnsd's namespace (a dump by nsid, or of netnsd's
    // own namespace); false after a setns dump, whose nsids are the target's own.
    bool numbered_here = false;
    // The nsid netnsd's namespace has for itself after the dump, if any: the peers'
    // link_netnsid of a dump by nsid name netnsd's own namespace with it.
    std::optional<nsid_t> self_nsid;
    // The names of the peers' links, each asked of its namespace by nsid (RTM_GETLINK of one
    // ifindex): (nsid, ifindex, name). Peers of a setns dump are not looked up.
    struct peer_link
    {
        nsid_t nsid = 0;
        int ifindex = 0;
        std::string name;
    };
    std::vector<peer_link> peer_links;
};

// The namespace of the locator, open; an empty fd when none of its paths or processes is it.
unique_fd open_located(const netns_locator& where);

// Opens the namespace, asks netnsd's namespace for its nsid (GETNSID, which allocates none),
// and dumps it by nsid without entering it; without an nsid, through open_in() on the calling
// thread. Every fd and socket is closed before it returns. errc::not_found when no path or
// process of the locator is the namespace any more; errc::thread_netns_lost as open_in().
std::error_code dump_netns(const netns_locator& where, netns_dump& out);

// The nsid netnsd's namespace has for each of these namespaces that has one now (GETNSID by
// fd: nothing is allocated), by ns_id. A dump by nsid gives the peers' namespaces nsids the
// model learns only later (RTM_NEWNSID): this asks the kernel at once.
std::vector<std::pair<std::uint64_t, nsid_t>> nsids_of(const std::vector<netns_locator>& all);

} // namespace netnsd::core::kernel
