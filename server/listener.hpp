// listener: accepts TCP connections and starts an http_session for each, up to
// max_connections open at once (beyond that a connection is closed at once). Owned by main;
// loop thread only.
#pragma once

#include <cstddef>

#include <boost/asio/ip/tcp.hpp>

#include "server/config.hpp"
#include "server/http_session.hpp"

namespace netnsd::server
{

class listener
{
public:
    static constexpr std::size_t max_connections = 4096;

    // Throws boost::system::system_error when the address cannot be bound (start-up only).
    listener(boost::asio::io_context& ioc, const listen_address& where, api::router& router,
             api::stream_hub& hub);

    void start();
    void stop();
    boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
    session_set& sessions() noexcept { return sessions_; }

private:
    void do_accept();
    void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

    boost::asio::ip::tcp::acceptor acceptor_;
    api::router& router_;
    api::stream_hub& hub_;
    session_set sessions_;
};

} // namespace netnsd::server
