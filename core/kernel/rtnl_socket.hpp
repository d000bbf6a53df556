// rtnl_socket: an owned libmnl rtnetlink socket (NETLINK_ROUTE, close-on-exec, bound to a port
// the kernel picks), with what a requester needs besides: its port, a sequence counter, one
// send and one receive that retries EINTR. The nsid client and monitor and the link dumper hold
// one each; what they send and how they read the answers stays theirs. Any thread; one at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

struct mnl_socket;

namespace netnsd::core::kernel
{

class rtnl_socket
{
public:
    // Opens and binds a new socket in the calling thread's network namespace, replacing (and
    // closing) any socket held; its sequence numbers start from the time of day.
    std::error_code open();
    void close() noexcept { socket_.reset(); }
    bool is_open() const noexcept { return socket_ != nullptr; }
    mnl_socket* get() const noexcept { return socket_.get(); }
    int fd() const noexcept;
    std::uint32_t port() const noexcept { return port_; }
    std::uint32_t next_seq() noexcept { return ++seq_; }

    std::error_code send(std::span<const std::byte> request);
    // Blocks for one datagram into `buf` and sets `n` to its size (EINTR is retried).
    std::error_code receive(std::span<std::byte> buf, std::size_t& n);

private:
    struct closer
    {
        void operator()(mnl_socket* s) const noexcept;
    };
    std::unique_ptr<mnl_socket, closer> socket_;
    std::uint32_t port_ = 0;
    std::uint32_t seq_ = 0;
};

} // namespace netnsd::core::kernel
