// core/kernel/link_dump: the dump requests (read back with libmnl) and the decoder, fed the
// datagrams Linux 6.18 sent for a namespace with a veth, a bridge and addresses of both
// families (link_dump_captures.hpp says how they were made).
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <vector>

#include <doctest/doctest.h>
#include <libmnl/libmnl.h>

#include "core/errc.hpp"
#include "core/kernel/link_dump.hpp"

#include "link_dump_captures.hpp"

using netnsd::core::errc;
using netnsd::core::kernel::address_record;
using netnsd::core::kernel::build_address_dump;
using netnsd::core::kernel::build_link_dump;
using netnsd::core::kernel::dump_datagram;
using netnsd::core::kernel::link_record;
using netnsd::core::kernel::parse_dump_datagram;

namespace
{

std::vector<std::byte> from_hex(std::string_view hex)
{
    std::vector<std::byte> out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(
            static_cast<std::byte>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return out;
}

dump_datagram parse_all(const std::vector<std::string_view>& datagrams)
{
    dump_datagram out;
    for (const auto hex : datagrams)
    {
        const auto bytes = from_hex(hex);
        REQUIRE_FALSE(parse_dump_datagram(bytes, out));
    }
    return out;
}

std::vector<std::uint8_t> mac(std::initializer_list<std::uint8_t> bytes)
{
    return bytes;
}

struct attribute
{
    std::uint16_t type = 0;
    std::uint32_t u32 = 0;
};

int collect(const nlattr* attr, void* data)
{
    static_cast<std::vector<attribute>*>(data)->push_back(
        {mnl_attr_get_type(attr), mnl_attr_get_u32(attr)});
    return MNL_CB_OK;
}

// A datagram of one message of that type and payload, as the kernel lays it out.
std::vector<std::byte> message(std::uint16_t type, const void* payload, std::size_t size)
{
    std::vector<std::byte> buf(8192);
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = type;
    std::memcpy(mnl_nlmsg_put_extra_header(nlh, size), payload, size);
    buf.resize(nlh->nlmsg_len);
    return buf;
}

} // namespace

TEST_CASE("a link dump request asks for every link, of the target namespace when given one, "
          "without the IPv6 and VF statistics")
{
    std::vector<std::byte> buf(64, std::byte{0xAA});
    SUBCASE("with a target")
    {
        const auto len = build_link_dump(buf, 7, 3);
        const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
        CHECK(len == nlh->nlmsg_len);
        CHECK(len == 16 + sizeof(ifinfomsg) + 8 + 8);
        CHECK(nlh->nlmsg_type == RTM_GETLINK);
        CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
        CHECK(nlh->nlmsg_seq == 7);
        const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
        CHECK(ifi->ifi_family == AF_UNSPEC);
        CHECK(ifi->ifi_index == 0);
        CHECK(ifi->ifi_flags == 0);
        std::vector<attribute> attrs;
        mnl_attr_parse(nlh, sizeof(ifinfomsg), collect, &attrs);
        REQUIRE(attrs.size() == 2);
        CHECK(attrs[0].type == IFLA_TARGET_NETNSID);
        CHECK(attrs[0].u32 == 3);
        CHECK(attrs[1].type == IFLA_EXT_MASK);
        CHECK(attrs[1].u32 == RTEXT_FILTER_SKIP_STATS);
    }
    SUBCASE("without one")
    {
        const auto len = build_link_dump(buf, 7, std::nullopt);
        CHECK(len == 16 + sizeof(ifinfomsg) + 8);
        const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
        std::vector<attribute> attrs;
        mnl_attr_parse(nlh, sizeof(ifinfomsg), collect, &attrs);
        REQUIRE(attrs.size() == 1);
        CHECK(attrs[0].type == IFLA_EXT_MASK);
    }
}

TEST_CASE("a request for one link asks by ifindex, without NLM_F_DUMP, IPv6 or VF statistics")
{
    std::vector<std::byte> buf(64, std::byte{0xAA});
    const auto len = netnsd::core::kernel::build_link_get(buf, 5, 2, 7);
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
    CHECK(len == nlh->nlmsg_len);
    CHECK(nlh->nlmsg_type == RTM_GETLINK);
    CHECK(nlh->nlmsg_flags == NLM_F_REQUEST);
    const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
    CHECK(ifi->ifi_index == 7);
    std::vector<attribute> attrs;
    mnl_attr_parse(nlh, sizeof(ifinfomsg), collect, &attrs);
    REQUIRE(attrs.size() == 2);
    CHECK(attrs[0].type == IFLA_TARGET_NETNSID);
    CHECK(attrs[0].u32 == 2);
    CHECK(attrs[1].type == IFLA_EXT_MASK);
    CHECK(attrs[1].u32 == RTEXT_FILTER_SKIP_STATS);
}

TEST_CASE("an address dump request has a zero header (a strict socket refuses any filter in it)")
{
    std::vector<std::byte> buf(64, std::byte{0xAA});
    const auto len = build_address_dump(buf, 9, 0);
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
    CHECK(len == 16 + sizeof(ifaddrmsg) + 8);
    CHECK(nlh->nlmsg_type == RTM_GETADDR);
    CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
    const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
    CHECK(ifa->ifa_family == AF_UNSPEC);
    CHECK(ifa->ifa_prefixlen == 0);
    CHECK(ifa->ifa_flags == 0);
    CHECK(ifa->ifa_scope == 0);
    CHECK(ifa->ifa_index == 0);
    std::vector<attribute> attrs;
    mnl_attr_parse(nlh, sizeof(ifaddrmsg), collect, &attrs);
    REQUIRE(attrs.size() == 1);
    CHECK(attrs[0].type == IFA_TARGET_NETNSID);
    CHECK(attrs[0].u32 == 0);
}

TEST_CASE("the links of a real dump by nsid decode to what ip -d link showed")
{
    const auto out = parse_all(netnsd::test::captured::link_dump_by_nsid);
    CHECK(out.done);
    CHECK(out.error == 0);
    CHECK_FALSE(out.interrupted);
    CHECK(out.addresses.empty());
    REQUIRE(out.links.size() == 3);

    const link_record& lo = out.links[0];
    CHECK(lo.ifindex == 1);
    CHECK(lo.name == "lo");
    CHECK(lo.kind == "");
    CHECK(lo.operstate == IF_OPER_UNKNOWN);
    CHECK(lo.flags == (IFF_LOOPBACK | IFF_UP | IFF_RUNNING | IFF_LOWER_UP));
    CHECK(lo.mtu == 65536);
    CHECK(lo.mac == mac({0, 0, 0, 0, 0, 0}));
    CHECK_FALSE(lo.master);
    CHECK_FALSE(lo.link);
    CHECK_FALSE(lo.link_netnsid);
    CHECK(lo.target_nsid == 0);
    REQUIRE(lo.counters);

    const link_record& v1 = out.links[1];
    CHECK(v1.ifindex == 2);
    CHECK(v1.name == "v1");
    CHECK(v1.kind == "veth");
    CHECK(v1.operstate == IF_OPER_UP);
    CHECK(v1.flags == (IFF_BROADCAST | IFF_MULTICAST | IFF_UP | IFF_RUNNING | IFF_LOWER_UP));
    CHECK(v1.mtu == 1500);
    CHECK(v1.mac == mac({0x02, 0, 0, 0, 0, 0x02}));
    CHECK(v1.link == 2); // v0's ifindex in the caller's namespace
    // The peer's namespace as the caller numbers it: the caller's own namespace, which the
    // dump gave nsid 1 (a was 0), not the 0 that `ip -n a link` shows from inside a.
    CHECK(v1.link_netnsid == 1);
    CHECK(v1.target_nsid == 0);
    REQUIRE(v1.counters);

    const link_record& br0 = out.links[2];
    CHECK(br0.ifindex == 3);
    CHECK(br0.name == "br0");
    CHECK(br0.kind == "bridge");
    CHECK(br0.operstate == IF_OPER_DOWN); // no port, no carrier
    CHECK(br0.flags == (IFF_BROADCAST | IFF_MULTICAST | IFF_UP));
    CHECK(br0.mac == mac({0x02, 0, 0, 0, 0, 0x03}));
    CHECK_FALSE(br0.link_netnsid);
}

TEST_CASE("the addresses of a real dump by nsid decode to what ip addr showed")
{
    const auto out = parse_all(netnsd::test::captured::address_dump_by_nsid);
    CHECK(out.done);
    CHECK(out.links.empty());
    REQUIRE(out.addresses.size() == 5);
    struct row
    {
        std::uint8_t family;
        std::string address;
        std::uint8_t prefix;
        std::uint8_t scope;
        int ifindex;
        std::string label;
    };
    const std::vector<row> expected = {
        {AF_INET, "127.0.0.1", 8, RT_SCOPE_HOST, 1, "lo"},
        {AF_INET, "10.1.0.2", 24, RT_SCOPE_UNIVERSE, 2, "v1"},
        {AF_INET6, "::1", 128, RT_SCOPE_HOST, 1, ""},
        {AF_INET6, "fd00::2", 64, RT_SCOPE_UNIVERSE, 2, ""},
        {AF_INET6, "fe80::ff:fe00:2", 64, RT_SCOPE_LINK, 2, ""},
    };
    for (std::size_t i = 0; i < expected.size(); ++i)
    {
        const address_record& a = out.addresses[i];
        INFO("address ", i);
        CHECK(a.family == expected[i].family);
        CHECK(a.address == expected[i].address);
        CHECK(a.prefix_len == expected[i].prefix);
        CHECK(a.scope == expected[i].scope);
        CHECK(a.ifindex == expected[i].ifindex);
        CHECK(a.label == expected[i].label);
        CHECK(a.target_nsid == 0);
    }
}

TEST_CASE("an address dump on a socket without strict checking carries no target: the "
          "caller's own addresses")
{
    const auto out = parse_all(netnsd::test::captured::address_dump_by_nsid_not_strict);
    REQUIRE(out.addresses.size() == 4);
    CHECK(out.addresses[1].address == "10.1.0.1"); // v0, the caller's end
    for (const auto& a : out.addresses)
        CHECK_FALSE(a.target_nsid);
}

TEST_CASE("a dump that failed part-way ends with NLMSG_DONE carrying the errno")
{
    const int code = -EPERM;
    dump_datagram out;
    CHECK_FALSE(parse_dump_datagram(message(NLMSG_DONE, &code, sizeof(code)), out));
    CHECK(out.done);
    CHECK(out.error == EPERM);
}

TEST_CASE("a request the kernel refused is an NLMSG_ERROR with its errno")
{
    nlmsgerr err{};
    err.error = -EINVAL;
    dump_datagram out;
    CHECK_FALSE(parse_dump_datagram(message(NLMSG_ERROR, &err, sizeof(err)), out));
    CHECK(out.done);
    CHECK(out.error == EINVAL);
    SUBCASE("and an errno beyond the kernel's range is malformed")
    {
        err.error = -5000;
        dump_datagram bad;
        CHECK(parse_dump_datagram(message(NLMSG_ERROR, &err, sizeof(err)), bad) == errc::protocol);
    }
}

TEST_CASE("every truncation of a real link datagram is malformed, never read past its end")
{
    const auto whole = from_hex(netnsd::test::captured::link_dump_by_nsid.front());
    // Cut anywhere inside the first message (the whole datagram ends on message boundaries).
    const auto* first = reinterpret_cast<const nlmsghdr*>(whole.data());
    for (std::size_t cut = 1; cut < first->nlmsg_len; ++cut)
    {
        // A copy of exactly `cut` bytes, so a sanitizer sees any read past it.
        std::vector<std::byte> part(whole.begin(), whole.begin() + static_cast<long>(cut));
        dump_datagram out;
        INFO("cut at ", cut);
        CHECK(parse_dump_datagram(part, out) == errc::protocol);
        CHECK(out.links.empty());
    }
}

TEST_CASE("a link without a name is malformed")
{
    ifinfomsg ifi{};
    ifi.ifi_index = 4;
    dump_datagram out;
    CHECK(parse_dump_datagram(message(RTM_NEWLINK, &ifi, sizeof(ifi)), out) == errc::protocol);
}

TEST_CASE("an address whose length does not fit its family is malformed")
{
    std::vector<std::byte> buf(8192);
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = RTM_NEWADDR;
    auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
    ifa->ifa_family = AF_INET6;
    const std::uint32_t v4 = 0x0100007f;
    mnl_attr_put(nlh, IFA_ADDRESS, sizeof(v4), &v4);
    buf.resize(nlh->nlmsg_len);
    dump_datagram out;
    CHECK(parse_dump_datagram(buf, out) == errc::protocol);
}

TEST_CASE("a stats dump asks for every link's IFLA_STATS_LINK_64, with a zero ifindex and padding")
{
    std::vector<std::byte> buf(64, std::byte{0xAA});
    const auto len = netnsd::core::kernel::build_stats_dump(buf, 9);
    const auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data());
    CHECK(len == nlh->nlmsg_len);
    CHECK(len == 16 + sizeof(if_stats_msg));
    CHECK(nlh->nlmsg_type == RTM_GETSTATS);
    CHECK(nlh->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
    CHECK(nlh->nlmsg_seq == 9);
    const auto* ifsm = static_cast<const if_stats_msg*>(mnl_nlmsg_get_payload(nlh));
    CHECK(ifsm->family == AF_UNSPEC);
    CHECK(ifsm->pad1 == 0);
    CHECK(ifsm->pad2 == 0);
    CHECK(ifsm->ifindex == 0);
    CHECK(ifsm->filter_mask == (1U << (IFLA_STATS_LINK_64 - 1)));
}

namespace
{

// An RTM_NEWSTATS as the kernel lays it out: if_stats_msg, then IFLA_STATS_LINK_64 of `size`
// bytes (a struct rtnl_link_stats64 whose counters count up from `first`), when size > 0.
std::vector<std::byte> stats_message(std::uint32_t ifindex, std::size_t size, std::uint64_t first)
{
    std::vector<std::byte> buf(8192);
    auto* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = RTM_NEWSTATS;
    auto* ifsm = static_cast<if_stats_msg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(if_stats_msg)));
    ifsm->ifindex = ifindex;
    ifsm->filter_mask = 1U << (IFLA_STATS_LINK_64 - 1);
    if (size > 0)
    {
        std::vector<std::uint64_t> v(size / sizeof(std::uint64_t));
        for (std::size_t i = 0; i < v.size(); ++i)
            v[i] = first + i;
        mnl_attr_put(nlh, IFLA_STATS_LINK_64, size, v.data());
    }
    buf.resize(nlh->nlmsg_len);
    return buf;
}

} // namespace

TEST_CASE("a stats answer decodes to the link's ifindex and its first eight counters")
{
    dump_datagram out;
    REQUIRE_FALSE(parse_dump_datagram(stats_message(7, sizeof(rtnl_link_stats64), 100), out));
    REQUIRE(out.stats.size() == 1);
    CHECK(out.stats[0].ifindex == 7);
    const auto& c = out.stats[0].counters;
    // The order of struct rtnl_link_stats64.
    CHECK(c.rx_packets == 100);
    CHECK(c.tx_packets == 101);
    CHECK(c.rx_bytes == 102);
    CHECK(c.tx_bytes == 103);
    CHECK(c.rx_errors == 104);
    CHECK(c.tx_errors == 105);
    CHECK(c.rx_dropped == 106);
    CHECK(c.tx_dropped == 107);
    CHECK(out.links.empty());
    SUBCASE("an answer without the counters asked for, or with fewer than eight, is malformed")
    {
        dump_datagram bad;
        CHECK(parse_dump_datagram(stats_message(7, 0, 0), bad) == errc::protocol);
        CHECK(parse_dump_datagram(stats_message(7, 7 * sizeof(std::uint64_t), 0), bad) ==
              errc::protocol);
    }
}
