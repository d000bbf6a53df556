// core/kernel/nsid_netlink: the request builders (checked byte for byte against
// the requests iproute2 sends, and parsed back with libmnl) and the datagram parser (fed datagrams
// built with libmnl, laid out as the kernel sends them).
#include <array>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <optional>
#include <span>
#include <sys/socket.h>
#include <vector>

#include <doctest/doctest.h>
#include <libmnl/libmnl.h>

#include "core/errc.hpp"
#include "core/kernel/nsid_netlink.hpp"

#include "support/builders.hpp"

using netnsd::core::errc;
using netnsd::core::kernel::build_getnsid_by_fd;
using netnsd::core::kernel::build_getnsid_by_nsid;
using netnsd::core::kernel::build_nsid_dump;
using netnsd::core::kernel::nsid_datagram;
using netnsd::core::kernel::parse_nsid_datagram;

namespace
{

// ---- Reading a built request back with libmnl ---------------------------------------------

struct attribute
{
    std::uint16_t type = 0;
    std::uint16_t length = 0; // nla_len: header + payload, without padding
    std::uint32_t u32 = 0;    // the payload, when it is 4 bytes

    friend bool operator==(const attribute&, const attribute&) = default;
};

int collect_attribute(const nlattr* attr, void* data)
{
    auto* out = static_cast<std::vector<attribute>*>(data);
    const auto payload = mnl_attr_get_payload_len(attr);
    out->push_back({mnl_attr_get_type(attr), attr->nla_len,
                    payload == sizeof(std::uint32_t) ? mnl_attr_get_u32(attr) : 0});
    return MNL_CB_OK;
}

struct request_buffer
{
    request_buffer() { bytes.fill(std::byte{0xAA}); } // the builder must write every byte it uses

    const nlmsghdr* header() const { return reinterpret_cast<const nlmsghdr*>(bytes.data()); }

    std::vector<attribute> attributes() const
    {
        std::vector<attribute> out;
        REQUIRE(mnl_attr_parse(header(), sizeof(rtgenmsg), collect_attribute, &out) >= 0);
        return out;
    }

    alignas(nlmsghdr) std::array<std::byte, 64> bytes;
};

// ---- Datagrams as the kernel sends them, built with libmnl --------------------------------

class datagram
{
public:
    datagram() { buf_.fill(std::byte{0}); }

    // RTM_NEWNSID / RTM_DELNSID: rtgenmsg{AF_UNSPEC} and, when given, NETNSA_NSID (s32).
    nlmsghdr* nsid(std::uint16_t type, std::uint32_t seq, std::optional<std::int32_t> nsid,
                   std::uint16_t flags = 0)
    {
        auto* nlh = start(type, flags, seq);
        auto* gen = static_cast<rtgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtgenmsg)));
        gen->rtgen_family = AF_UNSPEC;
        if (nsid)
            mnl_attr_put_u32(nlh, NETNSA_NSID, static_cast<std::uint32_t>(*nsid));
        return nlh;
    }

    // An NLMSG_ERROR: `code` is 0 for an ack, else minus an errno.
    void error(std::uint32_t seq, int code)
    {
        auto* nlh = start(NLMSG_ERROR, 0, seq);
        auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nlmsgerr)));
        err->error = code;
        err->msg.nlmsg_type = RTM_GETNSID;
        err->msg.nlmsg_seq = seq;
    }

    // NLMSG_DONE ends a dump; its payload is an int (0).
    void done(std::uint32_t seq, std::uint16_t flags = NLM_F_MULTI)
    {
        auto* nlh = start(NLMSG_DONE, flags, seq);
        mnl_nlmsg_put_extra_header(nlh, sizeof(int));
    }

    // A message of any type with `payload` zero bytes.
    nlmsghdr* other(std::uint16_t type, std::size_t payload)
    {
        auto* nlh = start(type, 0, 0);
        mnl_nlmsg_put_extra_header(nlh, payload);
        return nlh;
    }

    std::span<const std::byte> bytes()
    {
        close();
        return {buf_.data(), used_};
    }

private:
    nlmsghdr* start(std::uint16_t type, std::uint16_t flags, std::uint32_t seq)
    {
        close();
        auto* nlh = mnl_nlmsg_put_header(buf_.data() + used_);
        nlh->nlmsg_type = type;
        nlh->nlmsg_flags = flags;
        nlh->nlmsg_seq = seq;
        open_ = nlh;
        return nlh;
    }

    void close()
    {
        if (open_ == nullptr)
            return;
        used_ += (open_->nlmsg_len + 3u) & ~3u;
        open_ = nullptr;
    }

    alignas(nlmsghdr) std::array<std::byte, 4096> buf_;
    std::size_t used_ = 0;
    nlmsghdr* open_ = nullptr;
};

nsid_datagram parsed(std::span<const std::byte> bytes)
{
    nsid_datagram out;
    REQUIRE_FALSE(parse_nsid_datagram(bytes, out));
    return out;
}

} // namespace

TEST_CASE("a GETNSID request by fd is 28 bytes with NETNSA_FD")
{
    request_buffer buf;
    const auto len = build_getnsid_by_fd(buf.bytes, 1234, 7);

    CHECK(len == 28);
    const auto* nlh = buf.header();
    CHECK(mnl_nlmsg_ok(nlh, static_cast<int>(len)));
    CHECK(nlh->nlmsg_len == 28);
    CHECK(nlh->nlmsg_type == RTM_GETNSID);
    CHECK(nlh->nlmsg_flags == NLM_F_REQUEST);
    CHECK(nlh->nlmsg_seq == 1234);
    CHECK(nlh->nlmsg_pid == 0);
    // rtgenmsg{AF_UNSPEC}, padded to 4 bytes with zeros.
    CHECK(buf.bytes[16] == std::byte{AF_UNSPEC});
    CHECK(buf.bytes[17] == std::byte{0});
    CHECK(buf.bytes[18] == std::byte{0});
    CHECK(buf.bytes[19] == std::byte{0});
    CHECK(buf.attributes() == std::vector<attribute>{{NETNSA_FD, 8, 7}});
}

TEST_CASE("a GETNSID request by nsid is 28 bytes with NETNSA_NSID")
{
    request_buffer buf;
    const auto len = build_getnsid_by_nsid(buf.bytes, 9, 42);

    CHECK(len == 28);
    CHECK(buf.header()->nlmsg_len == 28);
    CHECK(buf.header()->nlmsg_type == RTM_GETNSID);
    CHECK(buf.header()->nlmsg_flags == NLM_F_REQUEST);
    CHECK(buf.header()->nlmsg_seq == 9);
    CHECK(buf.bytes[16] == std::byte{AF_UNSPEC});
    CHECK(buf.attributes() == std::vector<attribute>{{NETNSA_NSID, 8, 42}});
}

TEST_CASE("an nsid dump request is 20 bytes with NLM_F_REQUEST|NLM_F_DUMP and no attribute")
{
    request_buffer buf;
    const auto len = build_nsid_dump(buf.bytes, 77);

    CHECK(len == 20);
    CHECK(buf.header()->nlmsg_len == 20);
    CHECK(buf.header()->nlmsg_type == RTM_GETNSID);
    CHECK(buf.header()->nlmsg_flags == (NLM_F_REQUEST | NLM_F_DUMP));
    CHECK(buf.header()->nlmsg_seq == 77);
    CHECK(buf.header()->nlmsg_pid == 0);
    CHECK(buf.bytes[16] == std::byte{AF_UNSPEC});
    CHECK(buf.bytes[17] == std::byte{0});
    CHECK(buf.attributes() == std::vector<attribute>{});
}

TEST_CASE("parse_nsid_datagram reads an RTM_NEWNSID with its nsid")
{
    datagram d;
    d.nsid(RTM_NEWNSID, 0, 5);
    const auto out = parsed(d.bytes());

    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].type == RTM_NEWNSID);
    CHECK(out.messages[0].seq == 0);
    CHECK(out.messages[0].nsid == 5);
    CHECK(out.error == 0);
    CHECK_FALSE(out.acked);
    CHECK_FALSE(out.done);
    CHECK_FALSE(out.interrupted);
}

TEST_CASE("parse_nsid_datagram reads an RTM_DELNSID with its nsid")
{
    datagram d;
    d.nsid(RTM_DELNSID, 0, 12);
    const auto out = parsed(d.bytes());

    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].type == RTM_DELNSID);
    CHECK(out.messages[0].nsid == 12);
}

TEST_CASE("parse_nsid_datagram reads the answer to a GETNSID")
{
    datagram d;
    d.nsid(RTM_NEWNSID, 4242, 0);
    const auto out = parsed(d.bytes());

    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].seq == 4242);
    CHECK(out.messages[0].nsid == 0); // nsid 0 is a valid nsid
}

TEST_CASE("parse_nsid_datagram reports no nsid for NETNSA_NSID_NOT_ASSIGNED")
{
    datagram d;
    d.nsid(RTM_NEWNSID, 3, NETNSA_NSID_NOT_ASSIGNED);
    const auto out = parsed(d.bytes());

    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].type == RTM_NEWNSID);
    CHECK(out.messages[0].nsid == std::nullopt);
}

TEST_CASE("parse_nsid_datagram reports no nsid when NETNSA_NSID is missing")
{
    datagram d;
    d.nsid(RTM_NEWNSID, 3, std::nullopt);
    const auto out = parsed(d.bytes());

    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].nsid == std::nullopt);
}

TEST_CASE("parse_nsid_datagram treats an RTM_GETNSID answer (old kernels) as RTM_NEWNSID")
{
    datagram d;
    d.nsid(RTM_GETNSID, 8, 3);
    const auto out = parsed(d.bytes());

    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].type == RTM_NEWNSID);
    CHECK(out.messages[0].nsid == 3);
}

TEST_CASE("parse_nsid_datagram reads several messages of one datagram in order")
{
    datagram d;
    d.nsid(RTM_NEWNSID, 0, 1);
    d.nsid(RTM_NEWNSID, 0, 2);
    d.nsid(RTM_DELNSID, 0, 1);
    d.nsid(RTM_NEWNSID, 0, 300);
    const auto out = parsed(d.bytes());

    REQUIRE(out.messages.size() == 4);
    CHECK(out.messages[0].type == RTM_NEWNSID);
    CHECK(out.messages[0].nsid == 1);
    CHECK(out.messages[1].type == RTM_NEWNSID);
    CHECK(out.messages[1].nsid == 2);
    CHECK(out.messages[2].type == RTM_DELNSID);
    CHECK(out.messages[2].nsid == 1);
    CHECK(out.messages[3].type == RTM_NEWNSID);
    CHECK(out.messages[3].nsid == 300);
}

TEST_CASE("parse_nsid_datagram reads an ack")
{
    datagram d;
    d.error(5, 0);
    const auto out = parsed(d.bytes());

    CHECK(out.acked);
    CHECK(out.error == 0);
    CHECK(out.messages.empty());
}

TEST_CASE("parse_nsid_datagram reads an error as a positive errno")
{
    datagram d;
    d.error(5, -ENOENT);
    const auto out = parsed(d.bytes());

    CHECK(out.error == ENOENT);
    CHECK_FALSE(out.acked);
    CHECK(out.messages.empty());
}

TEST_CASE("parse_nsid_datagram refuses an NLMSG_ERROR too short for its nlmsgerr")
{
    datagram d;
    d.other(NLMSG_ERROR, sizeof(int));
    nsid_datagram out;
    CHECK(parse_nsid_datagram(d.bytes(), out) == errc::protocol);
}

TEST_CASE("parse_nsid_datagram reads a dump and its NLMSG_DONE")
{
    datagram d;
    d.nsid(RTM_NEWNSID, 77, 1, NLM_F_MULTI);
    d.nsid(RTM_NEWNSID, 77, 2, NLM_F_MULTI);
    d.done(77);
    const auto out = parsed(d.bytes());

    REQUIRE(out.messages.size() == 2);
    CHECK(out.messages[0].seq == 77);
    CHECK(out.messages[1].nsid == 2);
    CHECK(out.done);
    CHECK_FALSE(out.interrupted);
}

TEST_CASE("parse_nsid_datagram reads NLMSG_DONE alone")
{
    datagram d;
    d.done(77);
    const auto out = parsed(d.bytes());
    CHECK(out.done);
    CHECK(out.messages.empty());
}

TEST_CASE("parse_nsid_datagram reports NLM_F_DUMP_INTR")
{
    SUBCASE("on a message of the dump")
    {
        datagram d;
        d.nsid(RTM_NEWNSID, 77, 1, NLM_F_MULTI | NLM_F_DUMP_INTR);
        const auto out = parsed(d.bytes());
        CHECK(out.interrupted);
        CHECK(out.messages.size() == 1);
    }
    SUBCASE("on NLMSG_DONE")
    {
        datagram d;
        d.nsid(RTM_NEWNSID, 77, 1, NLM_F_MULTI);
        d.done(77, NLM_F_MULTI | NLM_F_DUMP_INTR);
        const auto out = parsed(d.bytes());
        CHECK(out.interrupted);
        CHECK(out.done);
    }
}

TEST_CASE("parse_nsid_datagram refuses a truncated datagram")
{
    datagram d;
    d.nsid(RTM_NEWNSID, 0, 1);
    d.nsid(RTM_NEWNSID, 0, 2);
    const auto whole = d.bytes();
    REQUIRE(whole.size() == 56);
    nsid_datagram out;

    SUBCASE("inside the last message's attribute")
    {
        CHECK(parse_nsid_datagram(whole.first(52), out) == errc::protocol);
    }
    SUBCASE("inside the last message's header")
    {
        CHECK(parse_nsid_datagram(whole.first(36), out) == errc::protocol);
    }
    SUBCASE("shorter than one header")
    {
        CHECK(parse_nsid_datagram(whole.first(8), out) == errc::protocol);
    }
}

TEST_CASE("parse_nsid_datagram refuses a message whose length is below the header size")
{
    datagram d;
    auto* nlh = d.nsid(RTM_NEWNSID, 0, 1);
    const auto bytes = d.bytes();
    REQUIRE(bytes.size() == 28);
    nlh->nlmsg_len = 8;
    nsid_datagram out;
    CHECK(parse_nsid_datagram(bytes, out) == errc::protocol);
}

TEST_CASE("parse_nsid_datagram refuses an nsid message too short for its rtgenmsg")
{
    datagram d;
    d.other(RTM_NEWNSID, 0);
    nsid_datagram out;
    CHECK(parse_nsid_datagram(d.bytes(), out) == errc::protocol);
}

TEST_CASE("parse_nsid_datagram refuses a NETNSA_NSID that is not 32 bits")
{
    datagram d;
    auto* nlh = d.nsid(RTM_NEWNSID, 0, std::nullopt);
    mnl_attr_put_u16(nlh, NETNSA_NSID, 5);
    nsid_datagram out;
    CHECK(parse_nsid_datagram(d.bytes(), out) == errc::protocol);
}

TEST_CASE("parse_nsid_datagram ignores attributes it does not know")
{
    datagram d;
    auto* nlh = d.nsid(RTM_NEWNSID, 0, std::nullopt);
    mnl_attr_put_u64(nlh, 30, 0x1122334455667788u);
    mnl_attr_put_u32(nlh, NETNSA_NSID, 6);
    mnl_attr_put_u32(nlh, NETNSA_CURRENT_NSID, 9);
    mnl_attr_put_u64(nlh, NETNSA_MAX + 1, 1);
    const auto out = parsed(d.bytes());

    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].nsid == 6);
}

TEST_CASE("parse_nsid_datagram skips message types it does not know")
{
    datagram d;
    d.other(NLMSG_NOOP, 0);
    d.other(RTM_NEWLINK, 16);
    d.nsid(RTM_NEWNSID, 0, 4);
    const auto out = parsed(d.bytes());

    REQUIRE(out.messages.size() == 1);
    CHECK(out.messages[0].nsid == 4);
    CHECK(out.error == 0);
    CHECK_FALSE(out.done);
}

TEST_CASE("parse_nsid_datagram of an empty datagram reads nothing")
{
    nsid_datagram out;
    CHECK_FALSE(parse_nsid_datagram({}, out));
    CHECK(out.messages.empty());
}

// ---- Extended acks, as captured from Linux (tests/fuzz/corpus/fuzz_netlink) ---------------

// RTM_NEWNSID for a namespace that has an nsid already, with NETLINK_EXT_ACK: the request is
// copied after the nlmsgerr, then NLMSGERR_ATTR_MSG and NLMSGERR_ATTR_OFFS.
alignas(nlmsghdr) constexpr std::array<unsigned char, 108> extack_already_has = {
    0x6c, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x02, 0xed, 0x03, 0x00, 0x00, 0xc7, 0x60, 0x10, 0x8f,
    0xef, 0xff, 0xff, 0xff, 0x24, 0x00, 0x00, 0x00, 0x58, 0x00, 0x05, 0x00, 0xed, 0x03, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00,
    0x08, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x01, 0x00, 0x50, 0x65, 0x65, 0x72,
    0x20, 0x6e, 0x65, 0x74, 0x6e, 0x73, 0x20, 0x61, 0x6c, 0x72, 0x65, 0x61, 0x64, 0x79, 0x20, 0x68,
    0x61, 0x73, 0x20, 0x61, 0x20, 0x6e, 0x73, 0x69, 0x64, 0x20, 0x61, 0x73, 0x73, 0x69, 0x67, 0x6e,
    0x65, 0x64, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00, 0x14, 0x00, 0x00, 0x00,
};

// The same refusal for an nsid in use, with NETLINK_CAP_ACK too: no copy of the request.
alignas(nlmsghdr) constexpr std::array<unsigned char, 84> extack_in_use_capped = {
    0x54, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x03, 0xee, 0x03, 0x00, 0x00, 0x43, 0x59,
    0xe2, 0xf1, 0xef, 0xff, 0xff, 0xff, 0x24, 0x00, 0x00, 0x00, 0x58, 0x00, 0x05, 0x00,
    0xee, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x27, 0x00, 0x01, 0x00, 0x54, 0x68,
    0x65, 0x20, 0x73, 0x70, 0x65, 0x63, 0x69, 0x66, 0x69, 0x65, 0x64, 0x20, 0x6e, 0x73,
    0x69, 0x64, 0x20, 0x69, 0x73, 0x20, 0x61, 0x6c, 0x72, 0x65, 0x61, 0x64, 0x79, 0x20,
    0x75, 0x73, 0x65, 0x64, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00, 0x1c, 0x00, 0x00, 0x00,
};

TEST_CASE("parse_nsid_datagram reads the kernel's reason from an extended ack")
{
    SUBCASE("after the copy of the request")
    {
        const auto out = parsed(std::as_bytes(std::span{extack_already_has}));
        CHECK(out.error == EEXIST);
        CHECK(out.extack == "Peer netns already has a nsid assigned");
    }
    SUBCASE("capped: right after the nlmsgerr")
    {
        const auto out = parsed(std::as_bytes(std::span{extack_in_use_capped}));
        CHECK(out.error == EEXIST);
        CHECK(out.extack == "The specified nsid is already used");
    }
    SUBCASE("none without NLM_F_ACK_TLVS")
    {
        datagram d;
        d.error(5, -EEXIST);
        CHECK(parsed(d.bytes()).extack.empty());
    }
}

// ---- Found by fuzz_netlink (tests/fuzz/corpus/fuzz_netlink/regression-*) -----------------

TEST_CASE("parse_nsid_datagram refuses a message length of 2 GiB or more")
{
    // mnl_nlmsg_ok() compares nlmsg_len as a signed int, so 0xffffff8b passed as -117, and
    // mnl_nlmsg_next() then stepped 4 GiB past the buffer.
    alignas(nlmsghdr) std::array<unsigned char, 16> bytes;
    bytes.fill(0xff);
    bytes[0] = 0x8b;
    nsid_datagram out;
    CHECK(parse_nsid_datagram(std::as_bytes(std::span{bytes}), out) == errc::protocol);
}

TEST_CASE("parse_nsid_datagram refuses a last message whose padding is missing")
{
    // libmnl walks attributes up to the aligned end of a message: 3 bytes past a datagram
    // that ends unpadded.
    datagram d;
    auto* nlh = d.nsid(RTM_NEWNSID, 0, 1);
    const auto whole = d.bytes();
    nlh->nlmsg_len = 25;
    nsid_datagram out;
    CHECK(parse_nsid_datagram(whole.first(25), out) == errc::protocol);
}

TEST_CASE("parse_nsid_datagram refuses an NLMSG_ERROR code that is no errno")
{
    // -INT_MIN overflows (UBSan); a positive code or one below -4095 is no errno either.
    for (const int code : {INT_MIN, -4096, 1, INT_MAX})
    {
        CAPTURE(code);
        datagram d;
        d.error(5, code);
        nsid_datagram out;
        CHECK(parse_nsid_datagram(d.bytes(), out) == errc::protocol);
    }
    datagram d;
    d.error(5, -4095);
    CHECK(parsed(d.bytes()).error == 4095);
}

TEST_CASE("parse_nsid_datagram refuses a negative nsid other than NETNSA_NSID_NOT_ASSIGNED")
{
    for (const std::int32_t nsid : {-2, static_cast<std::int32_t>(0xcaffffff), INT32_MIN})
    {
        CAPTURE(nsid);
        datagram d;
        d.nsid(RTM_NEWNSID, 0, nsid);
        nsid_datagram out;
        CHECK(parse_nsid_datagram(d.bytes(), out) == errc::protocol);
    }
}
