#include "server/connection.hpp"

#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <vector>

#include <boost/asio/error.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/websocket/error.hpp>

#include "core/log.hpp"

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

api::transport_info transport_of(client_socket& socket)
{
    api::transport_info info;
    boost::system::error_code ec;
    const auto local = socket.local_endpoint(ec);
    if (ec || local.data()->sa_family != AF_UNIX)
        return info;
    info.unix_socket = true;
    ucred cred{};
    socklen_t size = sizeof cred;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &size) != 0)
        return info;
    api::peer_credentials peer;
    peer.pid = static_cast<std::uint32_t>(cred.pid);
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    // The supplementary groups the peer had when it connected (Linux 4.13+); a peer with
    // more than fit the first try says how many it has (ERANGE).
    std::vector<gid_t> groups(64);
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    int rc = ::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes);
    if (rc != 0 && errno == ERANGE)
    {
        groups.resize(bytes / sizeof(gid_t));
        rc = ::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes);
    }
    if (rc == 0)
        peer.groups.assign(groups.begin(), groups.begin() + bytes / sizeof(gid_t));
    info.credentials = std::move(peer);
    return info;
}

std::string client_subject(tls_stream& stream)
{
    X509* cert = ::SSL_get1_peer_certificate(stream.native_handle());
    if (cert == nullptr)
        return {};
    std::string out;
    if (BIO* bio = ::BIO_new(::BIO_s_mem()))
    {
        if (::X509_NAME_print_ex(bio, ::X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0)
        {
            char* data = nullptr;
            const long n = BIO_get_mem_data(bio, &data);
            if (n > 0 && data != nullptr)
                out.assign(data, static_cast<std::size_t>(n));
        }
        ::BIO_free(bio);
    }
    ::X509_free(cert);
    return out;
}

void tune_for_requests(client_socket& socket)
{
    boost::system::error_code ignored;
    const auto local = socket.local_endpoint(ignored);
    if (ignored || !ip_endpoint(local))
        return;
    socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
}

namespace
{

bool is_ordinary_end(const boost::system::error_code& ec)
{
    return ec == boost::asio::error::operation_aborted || ec == boost::asio::error::eof ||
           ec == boost::beast::http::error::end_of_stream ||
           ec == boost::beast::websocket::error::closed ||
           ec == boost::asio::ssl::error::stream_truncated; // closed without close_notify
}

} // namespace

void log_io_error(std::string_view peer, std::string_view what, const boost::system::error_code& ec)
{
    if (!ec || is_ordinary_end(ec))
        return;
    if (core::log::current_level() > core::log::level::debug)
        return; // the message is built only when it is written
    core::log::debug("connection I/O failed",
                     {{"peer", peer}, {"what", what}, {"error", ec.message()}});
}

void log_io_error(client_socket& socket, std::string_view what, const boost::system::error_code& ec)
{
    if (!ec || is_ordinary_end(ec) || core::log::current_level() > core::log::level::debug)
        return;
    log_io_error(describe_peer(socket), what, ec);
}

} // namespace netnsd::server
