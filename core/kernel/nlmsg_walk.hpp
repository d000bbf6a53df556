// for_each_nlmsg: the netlink messages of one datagram, with bounds of its own rather than
// mnl_nlmsg_ok(), which compares nlmsg_len as a signed int, so that a length of 2 GiB or more
// passes and mnl_nlmsg_next() jumps out of the buffer. Each message must fit with its padding,
// as libmnl walks attributes to its aligned end. Header only; stateless.
#pragma once

#include <cstddef>
#include <linux/netlink.h>
#include <span>
#include <system_error>

#include "core/errc.hpp"

namespace netnsd::core::kernel
{

// Calls on_message(nlh, nlmsg_len) for each message, in order, until one returns an error;
// errc::protocol when a message does not fit. `bytes` starts 4-byte aligned.
template <typename OnMessage>
std::error_code for_each_nlmsg(std::span<const std::byte> bytes, OnMessage&& on_message)
{
    for (std::size_t at = 0; at < bytes.size();)
    {
        const std::size_t left = bytes.size() - at;
        if (left < sizeof(nlmsghdr))
            return core::errc::protocol;
        const auto* nlh = reinterpret_cast<const nlmsghdr*>(bytes.data() + at);
        const std::size_t length = nlh->nlmsg_len;
        const std::size_t padded = (length + 3) & ~std::size_t{3};
        if (length < sizeof(nlmsghdr) || padded > left)
            return core::errc::protocol;
        at += padded;
        if (auto ec = on_message(nlh, length))
            return ec;
    }
    return {};
}

} // namespace netnsd::core::kernel
