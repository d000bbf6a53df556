// beast_websocket_session: the websocket client of the event stream as Beast's
// websocket::stream would serve it, for the A/B of bench/run --only websocket-ab only (the
// NETNSD_BENCH_BEAST_WEBSOCKET build option; never in the shipped binary). Where
// websocket_session writes the hub's shared frames, many in one writev, this one hands each
// event's text to websocket::stream::async_write, which frames it for this client and writes it
// on its own: one write per event. Everything else is as websocket_session does it, by Beast's
// means: pings answered, text ignored, binary closed with 1003, a message over 64 KiB with
// 1009 (read_message_max), a ping after ping_interval of silence and the client dropped after
// another (Beast's idle timeout with keep-alive pings), 1013 when its queue overflows, 1001 at
// shutdown. A template over its stream, plain or TLS. Owns itself through its pending handlers;
// loop thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "api/stream.hpp"

#include "server/connection.hpp"
#include "server/session_set.hpp"
#include "server/websocket_session.hpp"

namespace netnsd::server
{

template <class Stream>
class beast_websocket_session final
    : public std::enable_shared_from_this<beast_websocket_session<Stream>>,
      public closable
{
public:
    // websocket_session's limits, taken from it (the A/B must differ only in the framing).
    using shipped = websocket_session<Stream>;
    static constexpr std::size_t max_client_message = shipped::max_client_message;
    static constexpr std::chrono::seconds ping_interval = shipped::ping_interval;
    static constexpr std::chrono::seconds handshake_timeout = shipped::handshake_timeout;
    static constexpr std::chrono::seconds close_timeout = shipped::close_timeout;
    // Events taken from the subscription at once (each is still its own write).
    static constexpr std::size_t batch = shipped::batch;

    beast_websocket_session(Stream&& stream, api::stream_hub& hub, session_set& sessions,
                            api::stream_params&& params, std::string peer,
                            std::shared_ptr<const void> hold = {});
    ~beast_websocket_session();

    // `early` (bytes sent before the upgrade's answer) is not read: Beast's accept takes the
    // request parsed. Only for the benchmark's A/B.
    void run(boost::beast::http::request<boost::beast::http::string_body>&& upgrade,
             std::string early = {});
    // Shutdown: close 1001 after the write in flight, then Beast waits for the client's answer.
    void close_gracefully() override;
    void close_now() override { close_socket(); }

private:
    void on_accept(boost::beast::error_code ec);
    void do_read();
    void on_read(boost::beast::error_code ec, std::size_t bytes);
    void do_write();
    void on_write(boost::beast::error_code ec, std::size_t bytes);
    // Beast's closing handshake: the close frame after the write in flight, then the client's.
    void send_close_frame(boost::beast::websocket::close_code code);
    void on_close(boost::beast::error_code ec);
    void close_socket();

    using std::enable_shared_from_this<beast_websocket_session<Stream>>::shared_from_this;

    boost::beast::websocket::stream<Stream> ws_;
    std::string peer_;
    std::shared_ptr<const void> hold_;
    api::subscription subscription_;
    session_set& sessions_;
    boost::beast::flat_buffer inbox_;
    std::vector<api::subscription::message> outbox_; // taken from the subscription
    std::size_t next_ = 0;                           // outbox_[next_] is written next
    bool accepted_ = false;
    bool writing_ = false;
    bool closing_ = false; // the close frame is sent or waits for the write in flight
    bool finished_ = false;
};

extern template class beast_websocket_session<client_socket>;
extern template class beast_websocket_session<tls_stream>;

} // namespace netnsd::server
