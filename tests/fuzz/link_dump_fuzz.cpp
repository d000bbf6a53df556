// Fuzz target: the rtnetlink link and address decoder (core/kernel/link_dump), fed one
// datagram as recv() returns it from a dump: RTM_NEWLINK with nested IFLA_LINKINFO and
// IFLA_STATS64, RTM_NEWADDR of either family, NLMSG_DONE with an errno, NLMSG_ERROR, and
// anything else. Seeds: the datagrams Linux 6.18 sent (tests/core/kernel/link_dump_captures.hpp).
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/kernel/link_dump.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace netnsd::core::kernel;
    dump_datagram out;
    const auto ec = parse_dump_datagram({reinterpret_cast<const std::byte*>(data), size}, out);
    for (const auto& a : out.addresses)
        if (a.address.empty() || (a.family != 2 && a.family != 10))
            __builtin_trap(); // only IPv4 and IPv6 addresses, always with their text
    if (out.error < 0 || out.error > 4095)
        __builtin_trap();
    static_cast<void>(ec);
    return 0;
}
