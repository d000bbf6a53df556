// connection: the socket every session speaks over, whatever the listener it came from (TCP on
// IPv4 or IPv6, or a Unix socket), so that one set of sessions serves them all; over it, on a
// TCP listener with --tls-cert, TLS (Beast's ssl_stream, OpenSSL). Loop thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include "api/http.hpp"

namespace netnsd::server
{

using stream_protocol = boost::asio::generic::stream_protocol;
// Every connection lives on the one I/O loop, so its executor is the io_context's own type, not
// the type-erased any_io_executor: each handler, composed operation and work guard then copies
// and compares a pointer instead of dispatching through a table (~4% of a small request).
using loop_executor = boost::asio::io_context::executor_type;
using client_socket = stream_protocol::socket::rebind_executor<loop_executor>::other;
using client_acceptor = boost::asio::basic_socket_acceptor<stream_protocol, loop_executor>;
// The socket as Beast's basic_stream, for the HTTP and chunked stream sessions: its per-operation
// timeout bounds the TLS handshake; an HTTP session keeps its own deadline (http_session.hpp).
using client_stream = boost::beast::basic_stream<stream_protocol, loop_executor>;

// TLS over it. Beast's ssl_stream gathers a write of many buffers into one TLS record (up to
// 64 KiB) rather than one record and one system call per buffer.
using tls_stream = boost::beast::ssl_stream<client_stream>;

// The socket under any of them.
inline client_socket& lowest_socket(client_socket& s) noexcept
{
    return s;
}
inline client_socket& lowest_socket(client_stream& s) noexcept
{
    return s.socket();
}
inline client_socket& lowest_socket(tls_stream& s) noexcept
{
    return s.next_layer().socket();
}

// The address of an IPv4 or IPv6 endpoint; nullopt for a Unix socket's.
std::optional<boost::asio::ip::tcp::endpoint> ip_endpoint(const stream_protocol::endpoint& e);

// Who is on the other end, for the audit log: "192.0.2.1:40000", "[2001:db8::1]:40000", or on a
// Unix socket the peer's credentials, "unix:pid=123,uid=0,gid=0". "unknown" when the kernel
// cannot say (the peer has gone).
std::string describe_peer(client_socket& socket);

// The listener's kind and, on a Unix socket, the peer's credentials and groups as the kernel
// holds them for the connection (SO_PEERCRED, SO_PEERGROUPS).
api::transport_info transport_of(client_socket& socket);

// The subject of the client certificate a TLS handshake verified ("CN=alice,O=ops", RFC 2253),
// or empty when the client sent none.
std::string client_subject(tls_stream& stream);

// Turns on TCP_NODELAY on a TCP socket; nothing on a Unix one.
void tune_for_requests(client_socket& socket);

// An I/O operation of a connection failed: logged at debug level with what failed, the peer and
// why, as Beast's examples print it with fail(ec, what), so that a connection that ended
// early can be explained. The ordinary ends are not failures and are not logged: our own
// cancellation (a session closing its socket), and the peer closing the connection (end of
// file, websocket close, a TLS peer closing without close_notify, which Beast's examples
// ignore too).
void log_io_error(std::string_view peer, std::string_view what,
                  const boost::system::error_code& ec);
// The same, naming the peer from the socket (only when the line is written).
void log_io_error(client_socket& socket, std::string_view what,
                  const boost::system::error_code& ec);

} // namespace netnsd::server
