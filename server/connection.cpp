#include "server/connection.hpp"

#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace netnsd::server
{

std::optional<boost::asio::ip::tcp::endpoint> ip_endpoint(const stream_protocol::endpoint& e)
{
    const auto family = e.data()->sa_family;
    if (family != AF_INET && family != AF_INET6)
        return std::nullopt;
    // The generic endpoint holds the sockaddr; tcp::endpoint knows how to read it.
    boost::asio::ip::tcp::endpoint ip;
    ip.resize(e.size());
    std::memcpy(ip.data(), e.data(), e.size());
    return ip;
}

std::string describe_peer(client_socket& socket)
{
    boost::system::error_code ec;
    const auto remote = socket.remote_endpoint(ec);
    if (ec)
        return "unknown";
    if (const auto ip = ip_endpoint(remote))
    {
        const auto address = ip->address();
        const auto text = address.to_string();
        return (address.is_v6() ? "[" + text + "]" : text) + ":" + std::to_string(ip->port());
    }
    if (remote.data()->sa_family == AF_UNIX)
    {
        ucred cred{};
        socklen_t size = sizeof cred;
        if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0)
            return "unix";
        return "unix:pid=" + std::to_string(cred.pid) + ",uid=" + std::to_string(cred.uid) +
               ",gid=" + std::to_string(cred.gid);
    }
    return "unknown";
}

void tune_for_requests(client_socket& socket)
{
    boost::system::error_code ignored;
    const auto local = socket.local_endpoint(ignored);
    if (ignored || !ip_endpoint(local))
        return;
    socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
}

} // namespace netnsd::server
