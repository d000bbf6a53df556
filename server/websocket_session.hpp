// websocket_session: one websocket client of the event stream. Writes what its subscription
// hands out, one frame in flight; reads only to answer control frames and to notice the peer
// going away. Beast's keep-alive pings (after idle_timeout / 2 of silence) drop dead peers.
// A client whose queue overflows is closed with 1013 (try again later, with since=); shutdown
// closes with 1001. Owns itself through its pending handlers; loop thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "api/stream.hpp"

#include "server/session_set.hpp"

namespace netnsd::server
{

class websocket_session final : public std::enable_shared_from_this<websocket_session>,
                                public closable
{
public:
    // A client message over this is answered with close 1009 (Beast does it).
    static constexpr std::size_t max_client_message = 64 * 1024;
    // With no traffic for half of this, a ping goes out; no answer by the end closes.
    static constexpr std::chrono::seconds idle_timeout{60};
    static constexpr std::chrono::seconds handshake_timeout{30};

    websocket_session(boost::asio::ip::tcp::socket&& socket, api::stream_hub& hub,
                      session_set& sessions, api::stream_params&& params);
    ~websocket_session();

    void run(boost::beast::http::request<boost::beast::http::string_body>&& upgrade);
    void close() override;
    void abort() override;

private:
    void on_accept(boost::beast::error_code ec);
    void do_read();
    void on_read(boost::beast::error_code ec, std::size_t bytes);
    void do_write();
    void on_write(boost::beast::error_code ec, std::size_t bytes);
    void do_close(boost::beast::websocket::close_code code);
    void on_close(boost::beast::error_code ec);

    boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
    boost::beast::flat_buffer read_buffer_;
    api::subscription subscription_;
    session_set& sessions_;
    std::vector<api::subscription::message> outbox_;
    std::size_t sent_ = 0;
    bool accepted_ = false;
    bool writing_ = false;
    bool closing_ = false;
};

} // namespace netnsd::server
