#include "server/websocket_session.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include "core/log.hpp"

namespace netnsd::server
{

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ws = api::ws;

template <class Stream>
websocket_session<Stream>::websocket_session(Stream&& stream, api::stream_hub& hub,
                                             session_set& sessions, api::stream_params&& params,
                                             std::string peer, std::shared_ptr<const void> hold)
    : stream_(std::move(stream)), peer_(std::move(peer)), hold_(std::move(hold)),
      timer_(stream_.get_executor()), subscription_(hub, std::move(params), [this] { do_write(); }),
      sessions_(sessions)
{
    handshake_.emplace(stream_);
    sessions_.insert(this);
}

template <class Stream>
websocket_session<Stream>::~websocket_session()
{
    sessions_.erase(this);
}

template <class Stream>
void websocket_session<Stream>::run(beast::http::request<beast::http::string_body>&& upgrade,
                                    std::string early)
{
    inbox_ = std::move(early);
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = handshake_timeout;
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    handshake_->set_option(timeouts);
    handshake_->set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res)
        { res.set(beast::http::field::server, "netnsd/" NETNSD_VERSION); }));
    handshake_->async_accept(
        upgrade,
        beast::bind_front_handler(&websocket_session<Stream>::on_accept, shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_accept(beast::error_code ec)
{
    if (ec)
    {
        log_io_error(peer_, "websocket handshake", ec);
        return; // the session ends with this handler
    }
    // From here on the session speaks the frames itself; Beast has read nothing beyond the
    // upgrade request (it came parsed), so no bytes are left behind in it.
    handshake_.reset();
    beast::error_code ignored;
    lowest_socket(stream_).set_option(asio::socket_base::send_buffer_size(stream_send_buffer_bytes),
                                      ignored);
    accepted_ = true;
    if (finished_)
        return close_socket();
    if (!close_queued_)
        do_tick();
    // Frames that came with the upgrade request first (a close sent before our answer).
    take_frames();
}

template <class Stream>
void websocket_session<Stream>::close_gracefully()
{
    if (!accepted_)
    {
        // The handshake is Beast's: closing the socket ends it at once.
        finished_ = true;
        beast::error_code ignored;
        lowest_socket(stream_).close(ignored);
        return;
    }
    send_close_frame(ws::close_code::going_away);
}

template <class Stream>
void websocket_session<Stream>::close_now()
{
    if (!accepted_)
        return close_gracefully();
    close_socket();
}

template <class Stream>
void websocket_session<Stream>::do_read()
{
    stream_.async_read_some(
        asio::buffer(read_chunk_),
        beast::bind_front_handler(&websocket_session<Stream>::on_read, shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_read(beast::error_code ec, std::size_t bytes)
{
    if (ec || finished_)
    {
        log_io_error(peer_, "read", ec);
        return close_socket(); // the peer went (or we are done): nothing more to say
    }
    heard_ = true;
    ping_outstanding_ = false;
    inbox_.append(read_chunk_.data(), bytes);
    take_frames();
}

template <class Stream>
void websocket_session<Stream>::take_frames()
{
    for (;;)
    {
        ws::client_frame frame;
        const auto result = ws::parse_client_frame(inbox_, max_client_message, frame);
        if (result == ws::parse_result::need_more)
            break;
        if (result == ws::parse_result::too_big)
        {
            send_close_frame(ws::close_code::too_big);
            return do_read();
        }
        if (result == ws::parse_result::protocol_error)
        {
            send_close_frame(ws::close_code::protocol_error);
            return do_read();
        }
        inbox_.erase(0, frame.wire_size);
        switch (frame.op)
        {
        case ws::opcode::text:
        case ws::opcode::continuation:
            // Ignored, but a message over the limit is refused however it is fragmented.
            message_size_ += frame.payload.size();
            if (message_size_ > max_client_message)
            {
                send_close_frame(ws::close_code::too_big);
                return do_read();
            }
            if (frame.fin)
                message_size_ = 0;
            break;
        case ws::opcode::binary:
            // This stream only speaks; binary input means a confused client.
            {
                send_close_frame(ws::close_code::unsupported_data);
                return do_read();
            }
        case ws::opcode::ping:
            if (!close_queued_)
                control_.push_back(ws::server_frame(ws::opcode::pong, frame.payload));
            break;
        case ws::opcode::pong:
            break;
        case ws::opcode::close:
            if (close_queued_)
            {
                // The answer to ours, or the client's own close crossing ours (RFC 6455 §5.5.1
                // allows both at once; an endpoint sends one close frame, never a second as an
                // echo). Done once ours is written.
                peer_closed_ = true;
                if (close_sent_ && !writing_)
                    return close_socket();
                return do_write();
            }
            // The client's close: echo it (§5.5.1), then end (the server closes the TCP
            // connection first, §7.1.1).
            control_.push_back(ws::server_frame(ws::opcode::close, frame.payload.substr(0, 2)));
            close_queued_ = true;
            peer_closed_ = true;
            do_write();
            return do_read();
        }
    }
    do_write();
    do_read();
}

template <class Stream>
void websocket_session<Stream>::send_close_frame(ws::close_code code)
{
    if (close_queued_ || finished_)
        return;
    close_queued_ = true;
    control_.push_back(ws::close_frame(code));
    if (accepted_)
        do_write();
}

template <class Stream>
void websocket_session<Stream>::do_write()
{
    if (writing_ || !accepted_ || finished_)
        return;
    if (!close_queued_ && subscription_.overflowed())
        send_close_frame(ws::close_code::try_again_later);
    std::vector<asio::const_buffer> buffers;
    control_outbox_.assign(std::make_move_iterator(control_.begin()),
                           std::make_move_iterator(control_.end()));
    control_.clear();
    bool sends_close = false;
    for (const auto& frame : control_outbox_)
    {
        buffers.emplace_back(asio::buffer(frame));
        sends_close = sends_close || (static_cast<unsigned char>(frame[0]) & 0x0F) == 0x8;
    }
    // Events never follow a close frame.
    if (!close_queued_)
    {
        outbox_ = subscription_.next(batch);
        for (const auto& m : outbox_)
            buffers.emplace_back(asio::buffer(*m));
    }
    if (buffers.empty())
        return;
    if (sends_close)
    {
        close_sent_ = true;
        // Wait for the client's answer, but not forever.
        timer_.expires_after(close_timeout);
        timer_.async_wait(
            beast::bind_front_handler(&websocket_session<Stream>::on_tick, shared_from_this()));
    }
    writing_ = true;
    asio::async_write(
        stream_, buffers,
        beast::bind_front_handler(&websocket_session<Stream>::on_write, shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_write(beast::error_code ec, std::size_t)
{
    writing_ = false;
    outbox_.clear();
    control_outbox_.clear();
    if (ec)
    {
        log_io_error(peer_, "write", ec);
        return close_socket();
    }
    if (peer_closed_ && close_sent_)
        return close_socket(); // both close frames said
    do_write();
}

template <class Stream>
void websocket_session<Stream>::do_tick()
{
    timer_.expires_after(ping_interval);
    timer_.async_wait(
        beast::bind_front_handler(&websocket_session<Stream>::on_tick, shared_from_this()));
}

template <class Stream>
void websocket_session<Stream>::on_tick(beast::error_code ec)
{
    if (ec || finished_)
        return;
    if (close_sent_)
        return close_socket(); // the client never answered our close
    if (!heard_ && ping_outstanding_)
    {
        core::log::debug("websocket client silent for two ping intervals; dropped",
                         {{"peer", peer_}, {"seconds", std::to_string(2 * ping_interval.count())}});
        subscription_.dropping(api::drop_reason::unresponsive);
        return close_socket();
    }
    if (!heard_)
    {
        control_.push_back(ws::server_frame(ws::opcode::ping, {}));
        ping_outstanding_ = true;
        do_write();
    }
    heard_ = false;
    do_tick();
}

template <class Stream>
void websocket_session<Stream>::close_socket()
{
    auto& socket = lowest_socket(stream_);
    if (finished_ && !socket.is_open())
        return;
    finished_ = true;
    timer_.cancel();
    beast::error_code ignored;
    socket.shutdown(client_socket::shutdown_both, ignored);
    socket.close(ignored);
}

template class websocket_session<client_socket>;
template class websocket_session<tls_stream>;

} // namespace netnsd::server
