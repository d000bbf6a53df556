// listener: accepts TCP connections and starts an http_session for each, up to
// max_connections open at once (beyond that a connection is closed at once). Owned by main;
// loop thread only.
#pragma once

#include <chrono>
#include <cstddef>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

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
             api::stream_hub& hub, worker_pools& workers);

    // After a failed accept (EMFILE, ENFILE, ENOBUFS), wait this long before the next one.
    static constexpr std::chrono::milliseconds accept_backoff{100};

    void start();
    void stop();
    // The shutdown backstop: close every connection at once.
    void abort();
    boost::asio::ip::tcp::endpoint local_endpoint() const { return acceptor_.local_endpoint(); }
    session_set& sessions() noexcept { return sessions_; }

private:
    void do_accept();
    void on_accept(boost::system::error_code ec, boost::asio::ip::tcp::socket socket);

    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer retry_;
    bool failing_ = false; // log accept failures once per run of them
    api::router& router_;
    api::stream_hub& hub_;
    worker_pools& workers_;
    session_set sessions_;
};

} // namespace netnsd::server
