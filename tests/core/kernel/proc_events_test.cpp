// core/kernel/proc_events: the process connector's decoder, on datagrams captured from this
// project's kernel (Linux 6.18): a subscription's acknowledgement, a process forked, exec'd,
// a thread forked and ended, the process ended. The subscription itself needs the initial
// network namespace and CAP_NET_ADMIN: the integration tests run it.
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "core/kernel/proc_events.hpp"

using netnsd::core::kernel::decode_proc_events;
using netnsd::core::kernel::proc_event;
using kind = proc_event::kind;

namespace
{

std::vector<unsigned char> from_hex(std::string_view hex)
{
    std::vector<unsigned char> out;
    const auto nibble = [](char c)
    {
        return static_cast<unsigned char>(c <= '9' ? c - '0' : c - 'a' + 10);
    };
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<unsigned char>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
    return out;
}

// Captured with a subscribed NETLINK_CONNECTOR socket while python3 started a thread, joined
// it and exec'd /bin/true (pids 5395 parent, 5437 process, 5438 thread).
constexpr std::string_view ack_hex =
    "4c000000030000008c0200000000000001000000010000008c0200000100000028000000000000000000000001"
    "70a350fa280000000000000000000000000000000000000000000000000000";
constexpr std::string_view fork_hex =
    "4c000000030000008d0200000000000001000000010000008d0200000000000028000000010000000000000004"
    "20a550fa28000013150000131500003d1500003d1500000000000000000000";
constexpr std::string_view exec_hex =
    "4c000000030000008e0200000000000001000000010000008e0200000000000028000000020000000100000059"
    "d0a850fa2800003d1500003d15000000000000000000000000000000000000";
constexpr std::string_view thread_fork_hex =
    "4c000000030000008f0200000000000001000000010000008f02000000000000280000000100000001000000576c"
    "3152fa28000013150000131500003e1500003d1500000000000000000000";
constexpr std::string_view thread_exit_hex =
    "4c000000030000008e0200000000000001000000010000008e02000000000000280000000000008000000000"
    "1bdc5352fa2800003e1500003d15000000000000ffffffff0000000000000000";
constexpr std::string_view exit_hex =
    "4c00000003000000910200000000000001000000010000009102000000000000280000000000008001000000de"
    "11a352fa2800003d1500003d15000000000000110000001315000013150000";

std::vector<proc_event> decode(std::string_view hex, bool expect_ok = true)
{
    const auto bytes = from_hex(hex);
    std::vector<proc_event> out;
    CHECK(decode_proc_events(std::span(bytes.data(), bytes.size()), out) == expect_ok);
    return out;
}

} // namespace

TEST_CASE("a subscription's acknowledgement decodes as an ack with its error")
{
    const auto ev = decode(ack_hex);
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].what == kind::ack);
    CHECK(ev[0].err == 0);
}

TEST_CASE("each event carries the kernel's CLOCK_MONOTONIC time of it, in order")
{
    // ktime_get_ns() when the kernel made each (the capture's machine had been up 12.5 hours).
    const auto fork = decode(fork_hex);
    const auto exec = decode(exec_hex);
    const auto exit = decode(exit_hex);
    REQUIRE(fork.size() == 1);
    REQUIRE(exec.size() == 1);
    REQUIRE(exit.size() == 1);
    CHECK(fork[0].timestamp_ns == 45055559933956);
    CHECK(fork[0].timestamp_ns < exec[0].timestamp_ns);
    CHECK(exec[0].timestamp_ns < exit[0].timestamp_ns);
}

TEST_CASE("a fork names the child, an exec and an exit the task, with their processes")
{
    CHECK(decode(fork_hex) == std::vector{proc_event{kind::fork, 5437, 5437, 0, 45055559933956}});
    CHECK(decode(exec_hex) == std::vector{proc_event{kind::exec, 5437, 5437, 0, 45055560175705}});
    CHECK(decode(exit_hex) == std::vector{proc_event{kind::exit, 5437, 5437, 0, 45055593353694}});
    CHECK_FALSE(decode(fork_hex)[0].is_thread());
}

TEST_CASE("a thread's fork and exit name the thread and its process")
{
    const auto forked = decode(thread_fork_hex);
    REQUIRE(forked.size() == 1);
    CHECK(forked[0] == proc_event{kind::fork, 5438, 5437, 0, 45055585905751});
    CHECK(forked[0].is_thread());
    CHECK(decode(thread_exit_hex) ==
          std::vector{proc_event{kind::exit, 5438, 5437, 0, 45055588162587}});
}

TEST_CASE("several messages in one datagram all decode, in order")
{
    const std::string joined =
        std::string(fork_hex) + std::string(exec_hex) + std::string(exit_hex);
    const auto ev = decode(joined);
    REQUIRE(ev.size() == 3);
    CHECK(ev[0].what == kind::fork);
    CHECK(ev[1].what == kind::exec);
    CHECK(ev[2].what == kind::exit);
}

TEST_CASE("events the subscription did not ask for are skipped, not errors")
{
    // The exec capture with what = PROC_EVENT_COMM (0x200), as kernels before 6.6 send.
    std::string comm(exec_hex);
    comm.replace(72, 8, "00020000");
    CHECK(decode(comm).empty());
}

TEST_CASE("a truncated or lying datagram is refused without reading past its end")
{
    SUBCASE("cut inside the event")
    {
        CHECK(decode(fork_hex.substr(0, 100), false).empty());
    }
    SUBCASE("nlmsg_len beyond the datagram")
    {
        std::string longer(fork_hex);
        longer.replace(0, 2, "ff");
        CHECK(decode(longer, false).empty());
    }
    SUBCASE("cn_msg.len beyond the message")
    {
        std::string lying(fork_hex);
        lying.replace(64, 4, "ff00");
        CHECK(decode(lying, false).empty());
    }
    SUBCASE("an event too short for its kind")
    {
        std::string shorter(fork_hex);
        shorter.replace(64, 4, "1400"); // cn_msg.len 20: the header and 4 bytes
        CHECK(decode(shorter, false).empty());
    }
}
