#include "core/kernel/link_dump.hpp"

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <string>
#include <sys/socket.h>
#include <utility>

#include <libmnl/libmnl.h>

#include "core/errc.hpp"
#include "core/kernel/errno.hpp"
#include "core/kernel/nlmsg_walk.hpp"
#include "core/kernel/nsfs.hpp"
#include "core/kernel/nsid_netlink.hpp"
#include "core/kernel/unique_fd.hpp"

namespace netnsd::core::kernel
{
namespace
{

// A dump's skb never exceeds 32 KiB (netlink_recvmsg caps max_recvmsg_len there).
constexpr std::size_t receive_chunk = 64 * 1024;

constexpr int max_errno = 4095;

// struct rtnl_link_stats64 starts with these eight u64 counters in every kernel since 2.6.35;
// later kernels append fields, so only the prefix is required.
constexpr std::size_t stats64_prefix = 8 * sizeof(std::uint64_t);

nlmsghdr* put_dump_header(std::span<std::byte> buf, std::uint16_t type, std::uint32_t seq)
{
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = seq;
    return nlh;
}

template <std::size_t N>
struct attr_table
{
    std::array<const nlattr*, N + 1> at{};
};

template <std::size_t N>
int table_cb(const nlattr* attr, void* data)
{
    auto* table = static_cast<attr_table<N>*>(data);
    const auto type = mnl_attr_get_type(attr);
    if (type <= N)
        table->at[type] = attr; // newer attributes are fine to ignore
    return MNL_CB_OK;
}

bool is_u32(const nlattr* attr)
{
    return attr != nullptr && mnl_attr_validate(attr, MNL_TYPE_U32) == 0;
}

// A NUL-terminated string attribute, without its NUL; nullopt when it is not one.
std::optional<std::string> string_of(const nlattr* attr)
{
    if (attr == nullptr || mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) != 0)
        return std::nullopt;
    return std::string(mnl_attr_get_str(attr));
}

std::optional<nsid_t> nsid_of(const nlattr* attr)
{
    if (!is_u32(attr))
        return std::nullopt;
    const auto value = static_cast<nsid_t>(mnl_attr_get_u32(attr));
    if (value < 0)
        return std::nullopt; // NETNSA_NSID_NOT_ASSIGNED
    return value;
}

// The counters of a struct rtnl_link_stats64 attribute (IFLA_STATS64, IFLA_STATS_LINK_64);
// nullopt when there is none, or it is shorter than the eight.
std::optional<link_counters> counters_of(const nlattr* stats)
{
    if (stats == nullptr || mnl_attr_get_payload_len(stats) < stats64_prefix)
        return std::nullopt;
    std::array<std::uint64_t, 8> v{};
    std::memcpy(v.data(), mnl_attr_get_payload(stats), stats64_prefix);
    return link_counters{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
}

std::error_code parse_link(const nlmsghdr* nlh, std::vector<link_record>& out)
{
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(ifinfomsg)))
        return core::errc::protocol;
    const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
    attr_table<IFLA_MAX> tb;
    if (mnl_attr_parse(nlh, sizeof(ifinfomsg), table_cb<IFLA_MAX>, &tb) < 0)
        return core::errc::protocol;
    link_record link;
    link.ifindex = ifi->ifi_index;
    link.flags = ifi->ifi_flags;
    auto name = string_of(tb.at[IFLA_IFNAME]);
    if (!name)
        return core::errc::protocol; // every link has a name
    link.name = std::move(*name);
    if (tb.at[IFLA_OPERSTATE] != nullptr &&
        mnl_attr_validate(tb.at[IFLA_OPERSTATE], MNL_TYPE_U8) == 0)
        link.operstate = mnl_attr_get_u8(tb.at[IFLA_OPERSTATE]);
    if (is_u32(tb.at[IFLA_MTU]))
        link.mtu = mnl_attr_get_u32(tb.at[IFLA_MTU]);
    if (const auto* mac = tb.at[IFLA_ADDRESS])
    {
        const auto* p = static_cast<const std::uint8_t*>(mnl_attr_get_payload(mac));
        link.mac.assign(p, p + mnl_attr_get_payload_len(mac));
    }
    if (is_u32(tb.at[IFLA_MASTER]))
        link.master = static_cast<int>(mnl_attr_get_u32(tb.at[IFLA_MASTER]));
    if (is_u32(tb.at[IFLA_LINK]))
        link.link = static_cast<int>(mnl_attr_get_u32(tb.at[IFLA_LINK]));
    link.link_netnsid = nsid_of(tb.at[IFLA_LINK_NETNSID]);
    link.target_nsid = nsid_of(tb.at[IFLA_TARGET_NETNSID]);
    link.counters = counters_of(tb.at[IFLA_STATS64]);
    if (const auto* info = tb.at[IFLA_LINKINFO])
    {
        attr_table<IFLA_INFO_MAX> nested;
        if (mnl_attr_parse_nested(info, table_cb<IFLA_INFO_MAX>, &nested) < 0)
            return core::errc::protocol;
        if (auto kind = string_of(nested.at[IFLA_INFO_KIND]))
            link.kind = std::move(*kind);
    }
    out.push_back(std::move(link));
    return {};
}

std::error_code parse_stats(const nlmsghdr* nlh, std::vector<link_stats_record>& out)
{
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(if_stats_msg)))
        return core::errc::protocol;
    const auto* ifsm = static_cast<const if_stats_msg*>(mnl_nlmsg_get_payload(nlh));
    attr_table<IFLA_STATS_MAX> tb;
    if (mnl_attr_parse(nlh, sizeof(if_stats_msg), table_cb<IFLA_STATS_MAX>, &tb) < 0)
        return core::errc::protocol;
    const auto counters = counters_of(tb.at[IFLA_STATS_LINK_64]);
    if (!counters)
        return core::errc::protocol; // asked for, so every answer has it
    out.push_back({static_cast<int>(ifsm->ifindex), *counters});
    return {};
}

std::error_code parse_address(const nlmsghdr* nlh, std::vector<address_record>& out)
{
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(ifaddrmsg)))
        return core::errc::protocol;
    const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
    attr_table<IFA_MAX> tb;
    if (mnl_attr_parse(nlh, sizeof(ifaddrmsg), table_cb<IFA_MAX>, &tb) < 0)
        return core::errc::protocol;
    address_record addr;
    addr.family = ifa->ifa_family;
    addr.prefix_len = ifa->ifa_prefixlen;
    addr.scope = ifa->ifa_scope;
    addr.ifindex = static_cast<int>(ifa->ifa_index);
    std::size_t size = 0;
    if (addr.family == AF_INET)
        size = 4;
    else if (addr.family == AF_INET6)
        size = 16;
    else
        return {}; // another family (none is dumped with AF_UNSPEC today): not an IP address
    const nlattr* where = tb.at[IFA_LOCAL] != nullptr ? tb.at[IFA_LOCAL] : tb.at[IFA_ADDRESS];
    if (where == nullptr || mnl_attr_get_payload_len(where) != size)
        return core::errc::protocol;
    std::array<char, INET6_ADDRSTRLEN> text{};
    if (::inet_ntop(addr.family, mnl_attr_get_payload(where), text.data(),
                    static_cast<socklen_t>(text.size())) == nullptr)
        return core::errc::protocol;
    addr.address = text.data();
    if (auto label = string_of(tb.at[IFA_LABEL]))
        addr.label = std::move(*label);
    addr.target_nsid = nsid_of(tb.at[IFA_TARGET_NETNSID]);
    out.push_back(std::move(addr));
    return {};
}

} // namespace

std::size_t build_link_dump(std::span<std::byte> buf, std::uint32_t seq,
                            std::optional<nsid_t> target)
{
    auto* nlh = put_dump_header(buf, RTM_GETLINK, seq);
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    if (target)
        mnl_attr_put_u32(nlh, IFLA_TARGET_NETNSID, static_cast<std::uint32_t>(*target));
    // Without the IPv6 statistics in IFLA_AF_SPEC (37 + 7 counters per link, each summed over
    // every CPU) and VF statistics, none of which netnsd reads. IFLA_STATS64 stays: on 6.18 a
    // link's message shrinks from 1468 to 1100 bytes (a scrape at 5000 namespaces barely moved:
    // its cost there is the way into each namespace).
    mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    return nlh->nlmsg_len;
}

std::size_t build_link_get(std::span<std::byte> buf, std::uint32_t seq,
                           std::optional<nsid_t> target, int ifindex)
{
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = RTM_GETLINK;
    nlh->nlmsg_flags = NLM_F_REQUEST;
    nlh->nlmsg_seq = seq;
    auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = ifindex;
    if (target)
        mnl_attr_put_u32(nlh, IFLA_TARGET_NETNSID, static_cast<std::uint32_t>(*target));
    mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS); // as build_link_dump's
    return nlh->nlmsg_len;
}

std::size_t build_stats_dump(std::span<std::byte> buf, std::uint32_t seq)
{
    auto* nlh = put_dump_header(buf, RTM_GETSTATS, seq);
    // A strict socket rejects a dump that names an ifindex or sets the padding.
    auto* ifsm = static_cast<if_stats_msg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(if_stats_msg)));
    ifsm->family = AF_UNSPEC;
    ifsm->filter_mask = IFLA_STATS_FILTER_BIT(IFLA_STATS_LINK_64);
    return nlh->nlmsg_len;
}

std::size_t build_address_dump(std::span<std::byte> buf, std::uint32_t seq,
                               std::optional<nsid_t> target)
{
    auto* nlh = put_dump_header(buf, RTM_GETADDR, seq);
    // A strict socket rejects a dump whose header asks for a prefix length, flags or scope.
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_UNSPEC;
    if (target)
        mnl_attr_put_u32(nlh, IFA_TARGET_NETNSID, static_cast<std::uint32_t>(*target));
    return nlh->nlmsg_len;
}

std::error_code parse_dump_datagram(std::span<const std::byte> bytes, dump_datagram& out)
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
            {
                out.done = true;
                // A dump that failed part-way ends with NLMSG_DONE carrying the negated errno.
                if (length >= mnl_nlmsg_size(sizeof(int)))
                {
                    int code = 0;
                    std::memcpy(&code, mnl_nlmsg_get_payload(nlh), sizeof(code));
                    if (code > 0 || code < -max_errno)
                        return core::errc::protocol;
                    out.error = -code;
                }
                break;
            }
            case NLMSG_ERROR:
            {
                if (length < mnl_nlmsg_size(sizeof(nlmsgerr)))
                    return core::errc::protocol;
                const auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
                if (err->error > 0 || err->error < -max_errno)
                    return core::errc::protocol;
                out.error = -err->error;
                out.done = true; // an error ends the dump; an ack (0) would too, but none is asked
                break;
            }
            case RTM_NEWLINK:
                if (auto ec = parse_link(nlh, out.links))
                    return ec;
                break;
            case RTM_NEWADDR:
                if (auto ec = parse_address(nlh, out.addresses))
                    return ec;
                break;
            case RTM_NEWSTATS:
                if (auto ec = parse_stats(nlh, out.stats))
                    return ec;
                break;
            case RTM_DELLINK:
                if (auto ec = parse_link(nlh, out.deleted_links))
                    return ec;
                break;
            case RTM_DELADDR:
                if (auto ec = parse_address(nlh, out.deleted_addresses))
                    return ec;
                break;
            default:
                break;
            }
            return {};
        });
}

unique_fd open_thread_netns()
{
    return unique_fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
}

// --- link_dumper ---------------------------------------------------------------------------

std::error_code link_dumper::open()
{
    if (auto ec = socket_.open())
        return ec;
    return set_strict(true);
}

std::error_code link_dumper::open_in(int netns_fd, int home_fd)
{
    // This thread's namespace, to come back to.
    unique_fd opened_home;
    if (home_fd < 0)
    {
        opened_home = open_thread_netns();
        if (!opened_home)
            return last_error();
        home_fd = opened_home.get();
    }
    if (::setns(netns_fd, CLONE_NEWNET) != 0)
        return last_error();
    const auto made = open();
    if (::setns(home_fd, CLONE_NEWNET) != 0)
    {
        socket_.close();
        return errc::thread_netns_lost;
    }
    if (made)
        socket_.close(); // not the previous namespace's socket: this dumper reads none now
    return made;
}

std::error_code link_dumper::set_strict(bool on)
{
    int value = on ? 1 : 0;
    if (mnl_socket_setsockopt(socket_.get(), NETLINK_GET_STRICT_CHK, &value, sizeof(value)) < 0)
        return last_error();
    return {};
}

template <typename OnDatagram>
std::error_code link_dumper::read_answer(std::uint32_t seq, OnDatagram&& on_datagram)
{
    // Kept from answer to answer: a scrape asks thousands of namespaces in a row.
    if (buf_.size() != receive_chunk)
        buf_.resize(receive_chunk);
    auto& buf = buf_;
    for (;;)
    {
        std::size_t n = 0;
        if (auto ec = socket_.receive(buf, n))
            return ec;
        // Answers to earlier requests cannot be pending (each is read to its end), but a
        // datagram that is not this request's is skipped rather than trusted.
        const auto* first = reinterpret_cast<const nlmsghdr*>(buf.data());
        if (n >= sizeof(nlmsghdr) &&
            (first->nlmsg_seq != seq || first->nlmsg_pid != socket_.port()))
            continue;
        std::error_code ec;
        if (on_datagram(std::span<const std::byte>(buf.data(), n), ec) || ec)
            return ec;
    }
}

std::error_code link_dumper::dump_raw(std::span<const std::byte> request, std::uint32_t seq,
                                      dump_datagram& out)
{
    if (auto ec = socket_.send(request))
        return ec;
    return read_answer(seq,
                       [&](std::span<const std::byte> datagram, std::error_code& ec)
                       {
                           ec = parse_dump_datagram(datagram, out);
                           return out.done;
                       });
}

std::error_code link_dumper::get_link(std::optional<nsid_t> target, int ifindex, link_record& out)
{
    std::array<std::byte, 64> req;
    const auto seq = next_seq();
    const auto len = build_link_get(req, seq, target, ifindex);
    if (auto ec = socket_.send({req.data(), len}))
        return ec;
    return read_answer(seq,
                       [&](std::span<const std::byte> datagram, std::error_code& ec)
                       {
                           dump_datagram answer;
                           if ((ec = parse_dump_datagram(datagram, answer)))
                               return true;
                           if (answer.error != 0)
                               ec = errno_code(answer.error);
                           else if (answer.links.size() != 1 ||
                                    answer.links.front().ifindex != ifindex ||
                                    answer.links.front().target_nsid != target)
                               ec = core::errc::protocol;
                           else
                               out = std::move(answer.links.front());
                           return true;
                       });
}

std::error_code link_dumper::dump_kind(bool links, std::optional<nsid_t> target, dump_datagram& out)
{
    std::array<std::byte, 64> req;
    for (int attempt = 1;; ++attempt)
    {
        out = {};
        const auto seq = next_seq();
        const auto len =
            links ? build_link_dump(req, seq, target) : build_address_dump(req, seq, target);
        if (auto ec = dump_raw({req.data(), len}, seq, out))
            return ec;
        if (out.error != 0)
            return errno_code(out.error);
        if (!out.interrupted || attempt == max_dump_attempts)
            return {};
    }
}

std::error_code link_dumper::dump_stats(std::vector<link_stats_record>& out)
{
    std::array<std::byte, 64> req;
    dump_datagram answer;
    for (int attempt = 1;; ++attempt)
    {
        answer = {};
        const auto seq = next_seq();
        const auto len = build_stats_dump(req, seq);
        if (auto ec = dump_raw({req.data(), len}, seq, answer))
            return ec;
        if (answer.error != 0)
            return errno_code(answer.error);
        if (!answer.interrupted || attempt == max_dump_attempts)
            break;
    }
    out = std::move(answer.stats);
    return {};
}

std::error_code link_dumper::dump(std::optional<nsid_t> target, netns_contents& out)
{
    dump_datagram links;
    if (auto ec = dump_kind(true, target, links))
        return ec;
    dump_datagram addresses;
    if (auto ec = dump_kind(false, target, addresses))
        return ec;
    if (target)
    {
        // The kernel echoes the target in each answer it made for it. One that does not came
        // from the socket's own namespace: the attribute was ignored (a socket without
        // NETLINK_GET_STRICT_CHK, for addresses), and the answer is not the target's.
        for (const auto& link : links.links)
            if (link.target_nsid != target)
                return core::errc::protocol;
        for (const auto& addr : addresses.addresses)
            if (addr.target_nsid != target)
                return core::errc::protocol;
    }
    out.links = std::move(links.links);
    out.addresses = std::move(addresses.addresses);
    return {};
}

std::error_code link_dumper::dump_links(std::optional<nsid_t> target, std::vector<link_record>& out)
{
    dump_datagram links;
    if (auto ec = dump_kind(true, target, links))
        return ec;
    if (target)
        for (const auto& link : links.links)
            if (link.target_nsid != target)
                return core::errc::protocol;
    out = std::move(links.links);
    return {};
}

} // namespace netnsd::core::kernel

namespace netnsd::core::kernel
{
namespace
{

} // namespace

unique_fd open_located(const netns_locator& where)
{
    auto is_it = [&](const unique_fd& fd)
    {
        if (!fd)
            return false;
        if (where.ns_id != 0)
            return netns_id_of(fd.get()) == where.ns_id;
        return identify_netns(fd.get()).has_value();
    };
    if (where.is_self)
    {
        unique_fd fd(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
        if (is_it(fd))
            return fd;
    }
    for (const auto& path : where.paths)
    {
        unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
        if (is_it(fd))
            return fd;
    }
    for (const int pid : where.pids)
    {
        const auto path = "/proc/" + std::to_string(pid) + "/ns/net";
        unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (is_it(fd))
            return fd;
    }
    return {};
}

namespace
{

} // namespace

std::error_code dump_netns(const netns_locator& where, netns_dump& out)
{
    out = {};
    nsid_client nsids;
    if (auto ec = nsids.open())
        return ec;
    std::optional<nsid_t> nsid;
    {
        const auto fd = open_located(where);
        if (!fd)
            return errc::not_found;
        std::error_code ec;
        nsid = nsids.nsid_of_fd(fd.get(), ec);
        if (ec)
            return ec;
        if (!nsid && !where.is_self)
        {
            // No nsid: a socket made inside, and the fd closed before the dump.
            link_dumper inside;
            if (auto open_ec = inside.open_in(fd.get()))
                return open_ec;
            return inside.dump(std::nullopt, out.contents);
        }
    }
    link_dumper dumper;
    if (auto ec = dumper.open())
        return ec;
    // netnsd's own namespace is dumped as itself, with no target (an nsid it may have for
    // itself would do the same, but a dump by nsid of the own namespace is a detour).
    const auto target = where.is_self ? std::nullopt : nsid;
    if (auto ec = dumper.dump(target, out.contents))
        return ec;
    out.nsid = target;
    out.numbered_here = true;
    {
        const unique_fd self(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
        std::error_code ec;
        if (self)
            out.self_nsid = nsids.nsid_of_fd(self.get(), ec);
    }
    // The names of the peers' links, each asked of its own namespace (by nsid, or netnsd's
    // own), one link at a time: a dump of netnsd's namespace would list every veth it has.
    for (const auto& link : out.contents.links)
    {
        if (!link.link_netnsid || !link.link)
            continue;
        const bool self = link.link_netnsid == out.self_nsid;
        link_record peer;
        if (dumper.get_link(self ? std::nullopt : link.link_netnsid, *link.link, peer))
            continue; // gone meanwhile: the peer is shown without its name
        out.peer_links.push_back({*link.link_netnsid, *link.link, std::move(peer.name)});
    }
    return {};
}

std::vector<std::pair<std::uint64_t, nsid_t>> nsids_of(const std::vector<netns_locator>& all)
{
    std::vector<std::pair<std::uint64_t, nsid_t>> out;
    nsid_client nsids;
    if (nsids.open())
        return out;
    for (const auto& where : all)
    {
        const auto fd = open_located(where);
        if (!fd)
            continue;
        std::error_code ec;
        if (const auto nsid = nsids.nsid_of_fd(fd.get(), ec); nsid && !ec)
            out.emplace_back(where.ns_id, *nsid);
    }
    return out;
}

} // namespace netnsd::core::kernel
