#include "core/kernel/rtnl_socket.hpp"

#include <cerrno>
#include <ctime>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "core/kernel/errno.hpp"

namespace netnsd::core::kernel
{

void rtnl_socket::closer::operator()(mnl_socket* s) const noexcept
{
    mnl_socket_close(s);
}

std::error_code rtnl_socket::open()
{
    std::unique_ptr<mnl_socket, closer> sock(mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC));
    if (!sock)
        return last_error();
    if (mnl_socket_bind(sock.get(), 0, MNL_SOCKET_AUTOPID) < 0)
        return last_error();
    socket_ = std::move(sock);
    port_ = mnl_socket_get_portid(socket_.get());
    seq_ = static_cast<std::uint32_t>(std::time(nullptr));
    return {};
}

int rtnl_socket::fd() const noexcept
{
    return socket_ ? mnl_socket_get_fd(socket_.get()) : -1;
}

std::error_code rtnl_socket::send(std::span<const std::byte> request)
{
    if (!socket_)
        return std::make_error_code(std::errc::bad_file_descriptor);
    if (mnl_socket_sendto(socket_.get(), request.data(), request.size()) < 0)
        return last_error();
    return {};
}

std::error_code rtnl_socket::receive(std::span<std::byte> buf, std::size_t& n)
{
    if (!socket_)
        return std::make_error_code(std::errc::bad_file_descriptor);
    for (;;)
    {
        const auto got = mnl_socket_recvfrom(socket_.get(), buf.data(), buf.size());
        if (got >= 0)
        {
            n = static_cast<std::size_t>(got);
            return {};
        }
        if (errno != EINTR)
            return last_error();
    }
}

} // namespace netnsd::core::kernel
