// websocket_session: one websocket client of the event stream. Beast does the upgrade; after
// it, the session speaks the few frames this stream needs itself (RFC 6455), because that is
// what lets it write many events in one writev: every event is already a shared, complete text
// frame, so a client that fell behind by N events costs one system call, not N. Beast's
// websocket::stream writes one message per write: at 1000 subscribers it took 6.6x the time
// and 12x the CPU (bench/run --only websocket-ab, bench/RESULTS.md; beast_websocket_session is
// that side of the A/B, built only for it). It reads only to answer pings and
// close frames and to notice the peer going: text frames are ignored, binary ones closed with
// 1003, anything over 64 KiB with 1009. After ping_interval of silence it pings; silent for
// another interval, the peer is dropped. A client whose queue overflows is closed with 1013
// (try again later, with since=); shutdown closes with 1001. A template over its stream: the
// plain socket, or TLS (both compiled once, in websocket_session.cpp). Owns itself through its
// pending handlers; loop thread only.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "api/stream.hpp"
#include "api/ws_frame.hpp"

#include "server/connection.hpp"
#include "server/session_set.hpp"

namespace netnsd::server
{

template <class Stream>
class websocket_session final : public std::enable_shared_from_this<websocket_session<Stream>>,
                                public closable
{
public:
    // A client message over this is answered with close 1009.
    static constexpr std::size_t max_client_message = 64 * 1024;
    static constexpr std::chrono::seconds ping_interval{30};
    static constexpr std::chrono::seconds handshake_timeout{30};
    // How long to wait for the client's answer to our close frame.
    static constexpr std::chrono::seconds close_timeout{5};
    // Events written per system call, at most.
    static constexpr std::size_t batch = 256;

    // `peer` names the client in the log; `hold` lives as long as the session (the TLS context
    // the stream was made with).
    websocket_session(Stream&& stream, api::stream_hub& hub, session_set& sessions,
                      api::stream_params&& params, std::string peer,
                      std::shared_ptr<const void> hold = {});
    ~websocket_session();

    // `early`: bytes the client sent after its upgrade request, read with it (RFC 6455 §4.1
    // has it wait for the answer; frames sent before it, a close above all, are still heard).
    void run(boost::beast::http::request<boost::beast::http::string_body>&& upgrade,
             std::string early = {});
    // Shutdown: close 1001 after the write in flight, then wait for the client's answer.
    void close_gracefully() override;
    void close_now() override;

private:
    void on_accept(boost::beast::error_code ec);
    void do_read();
    void on_read(boost::beast::error_code ec, std::size_t bytes);
    // Acts on every whole frame in inbox_, then writes what is due and reads on.
    void take_frames();
    void do_write();
    void on_write(boost::beast::error_code ec, std::size_t bytes);
    void do_tick();
    void on_tick(boost::beast::error_code ec);
    // Sends a close frame with `code` after what is in flight; then waits for the client.
    void send_close_frame(api::ws::close_code code);
    void close_socket();

    using std::enable_shared_from_this<websocket_session<Stream>>::shared_from_this;

    Stream stream_;
    std::string peer_;
    std::shared_ptr<const void> hold_;
    // Only for the upgrade, over stream_; gone once the handshake is done.
    std::optional<boost::beast::websocket::stream<Stream&>> handshake_;
    boost::asio::steady_timer timer_;
    api::subscription subscription_;
    session_set& sessions_;

    std::array<char, 16 * 1024> read_chunk_{};
    std::string inbox_;                              // bytes read, not yet a whole frame
    std::size_t message_size_ = 0;                   // of the client's message being received
    std::deque<std::string> control_;                // pongs and the close frame: written first
    std::vector<api::subscription::message> outbox_; // in flight
    std::vector<std::string> control_outbox_;        // in flight
    bool accepted_ = false;
    bool writing_ = false;
    bool close_queued_ = false; // no more data after the close frame
    bool close_sent_ = false;   // our close frame is written or being written
    bool peer_closed_ = false;  // the client's close came: end once ours is written
    bool heard_ = true;         // anything read since the last tick
    bool ping_outstanding_ = false;
    bool finished_ = false;
};

extern template class websocket_session<client_socket>;
extern template class websocket_session<tls_stream>;

} // namespace netnsd::server
