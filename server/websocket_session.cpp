#include "server/websocket_session.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/websocket/error.hpp>

#include "core/log.hpp"

namespace netnsd::server
{

namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace
{

// Frames handed out per round; each is written as its own websocket message.
constexpr std::size_t batch = 64;

} // namespace

websocket_session::websocket_session(boost::asio::ip::tcp::socket&& socket, api::stream_hub& hub,
                                     session_set& sessions, api::stream_params&& params)
    : ws_(std::move(socket)), subscription_(hub, std::move(params), [this] { do_write(); }),
      sessions_(sessions)
{
    sessions_.insert(this);
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(
        boost::asio::socket_base::send_buffer_size(stream_send_buffer_bytes), ignored);
}

websocket_session::~websocket_session()
{
    sessions_.erase(this);
}

void websocket_session::run(beast::http::request<beast::http::string_body>&& upgrade)
{
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = handshake_timeout;
    timeouts.idle_timeout = idle_timeout;
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.read_message_max(max_client_message);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res)
        { res.set(beast::http::field::server, "netnsd/" NETNSD_VERSION); }));
    ws_.async_accept(upgrade,
                     beast::bind_front_handler(&websocket_session::on_accept, shared_from_this()));
}

void websocket_session::on_accept(beast::error_code ec)
{
    if (ec)
        return; // the handshake failed; the session ends with this handler
    accepted_ = true;
    if (closing_)
        return do_close(websocket::close_code::going_away);
    do_read();
    do_write();
}

void websocket_session::close()
{
    if (closing_)
        return;
    closing_ = true;
    if (!accepted_)
    {
        beast::error_code ignored;
        beast::get_lowest_layer(ws_).socket().close(ignored);
        return;
    }
    if (!writing_)
        do_close(websocket::close_code::going_away);
}

void websocket_session::abort()
{
    closing_ = true;
    writing_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
}

void websocket_session::do_read()
{
    ws_.async_read(read_buffer_,
                   beast::bind_front_handler(&websocket_session::on_read, shared_from_this()));
}

void websocket_session::on_read(beast::error_code ec, std::size_t)
{
    if (ec)
    {
        // closed, timed out (no pong), or too big: Beast has already sent 1009 for the last.
        if (ec == websocket::error::message_too_big)
            core::log::debug("websocket client sent a message over the limit; closed 1009");
        closing_ = true;
        return;
    }
    read_buffer_.consume(read_buffer_.size());
    if (!ws_.got_text())
    {
        // This stream only speaks; binary input means a confused client.
        closing_ = true;
        if (!writing_)
            do_close(websocket::close_code::unknown_data);
        return;
    }
    do_read(); // text frames are ignored
}

void websocket_session::do_write()
{
    if (writing_ || !accepted_)
        return;
    if (closing_)
        return;
    if (subscription_.overflowed())
    {
        closing_ = true;
        return do_close(websocket::close_code::try_again_later);
    }
    if (sent_ == outbox_.size())
    {
        outbox_ = subscription_.next(batch);
        sent_ = 0;
        if (outbox_.empty())
            return;
    }
    writing_ = true;
    ws_.text(true);
    ws_.async_write(boost::asio::buffer(*outbox_[sent_]),
                    beast::bind_front_handler(&websocket_session::on_write, shared_from_this()));
}

void websocket_session::on_write(beast::error_code ec, std::size_t)
{
    writing_ = false;
    if (ec)
    {
        closing_ = true;
        return;
    }
    ++sent_;
    if (closing_)
        return do_close(websocket::close_code::going_away);
    do_write();
}

void websocket_session::do_close(websocket::close_code code)
{
    closing_ = true;
    writing_ = true; // no more writes after the close frame
    ws_.async_close(code,
                    beast::bind_front_handler(&websocket_session::on_close, shared_from_this()));
}

void websocket_session::on_close(beast::error_code)
{
    // The read loop ends with the close; the session goes when its last handler returns.
}

} // namespace netnsd::server
