// Fuzz target: the rtnetlink nsid parser (core/kernel/nsid_netlink), fed one datagram as recv()
// returns it from a NETLINK_ROUTE socket: RTM_NEWNSID/RTM_DELNSID events, GETNSID replies,
// NLMSG_ERROR acks and errors, multipart dumps ending in NLMSG_DONE, and anything else.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/kernel/nsid_netlink.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace netnsd::core::kernel;
    nsid_datagram out;
    const auto ec = parse_nsid_datagram({reinterpret_cast<const std::byte*>(data), size}, out);
    for (const auto& msg : out.messages)
        if (msg.nsid && *msg.nsid < 0)
            __builtin_trap(); // NETNSA_NSID_NOT_ASSIGNED is "none", never a negative nsid
    static_cast<void>(ec);
    return 0;
}
