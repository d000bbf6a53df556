// tls_accept: the first steps of a connection on a TLS listener. It reads the first bytes: a
// TLS ClientHello goes on to the handshake (with the newest context of tls_contexts) and then
// to a tls_http_session; anything else is plain HTTP sent to an HTTPS port, answered with one
// 400 problem+json that says so, then closed (not left hanging until a timeout, and never
// served in plain text). The detection and the handshake have one deadline together. Owns
// itself through its pending handlers; the session_set knows it, so it counts against the
// connection limit and shutdown closes it. Loop thread only.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "api/router.hpp"
#include "api/stream.hpp"

#include "server/connection.hpp"
#include "server/session_set.hpp"
#include "server/worker_pools.hpp"

namespace netnsd::server
{

class tls_accept final : public std::enable_shared_from_this<tls_accept>, public closable
{
public:
    // For the ClientHello and the whole handshake.
    static constexpr std::chrono::seconds handshake_timeout{10};

    tls_accept(client_socket&& socket, std::shared_ptr<boost::asio::ssl::context> context,
               api::router& router, api::stream_hub& hub, session_set& sessions,
               worker_pools& workers);
    ~tls_accept();

    void run();
    // Nothing is owed to a client that has not finished its handshake: both close at once.
    void close_gracefully() override { close_socket(); }
    void close_now() override { close_socket(); }

private:
    void close_socket();
    void on_detect(boost::beast::error_code ec, bool is_tls);
    void on_handshake(boost::beast::error_code ec, std::size_t used);
    void on_refused(boost::beast::error_code ec, std::size_t bytes);
    void on_drain(boost::beast::error_code ec, std::size_t bytes);

    client_stream stream_;
    std::shared_ptr<boost::asio::ssl::context> context_;
    std::unique_ptr<tls_stream> tls_;
    boost::beast::flat_buffer buffer_;
    std::string refusal_;
    api::router& router_;
    api::stream_hub& hub_;
    session_set& sessions_;
    worker_pools& workers_;
};

} // namespace netnsd::server
