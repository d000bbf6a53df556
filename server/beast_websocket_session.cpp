#include "server/beast_websocket_session.hpp"

#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "core/log.hpp"

namespace netnsd::server
{

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

namespace
{

// The subscription hands out the hub's complete frames (api/ws_frame: unmasked, one per
// message); Beast frames the text itself, so it gets what follows the frame's header.
asio::const_buffer text_of(const std::string& frame)
{
    const auto length = static_cast<unsigned char>(frame[1]) & 0x7F;
    const std::size_t header = length < 126 ? 2 : length == 126 ? 4 : 10;
    return asio::buffer(std::string_view(frame).substr(header));
}

} // namespace

template <class Stream>
beast_websocket_session<Stream>::beast_websocket_session(Stream&& stream, api::stream_hub& hub,
                                                         session_set& sessions,
                                                         api::stream_params&& params,
                                                         std::string peer,
                                                         std::shared_ptr<const void> hold)
    : ws_(std::move(stream)), peer_(std::move(peer)), hold_(std::move(hold)),
      subscription_(hub, std::move(params), [this] { do_write(); }), sessions_(sessions)
{
    sessions_.insert(this);
}

template <class Stream>
beast_websocket_session<Stream>::~beast_websocket_session()
{
    sessions_.erase(this);
}

template <class Stream>
void beast_websocket_session<Stream>::run(beast::http::request<beast::http::string_body>&& upgrade,
                                          std::string /*early*/)
{
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = handshake_timeout;
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res)
        { res.set(beast::http::field::server, "netnsd/" NETNSD_VERSION); }));
    ws_.read_message_max(max_client_message);
    ws_.text(true);
    ws_.async_accept(upgrade, beast::bind_front_handler(&beast_websocket_session<Stream>::on_accept,
                                                        shared_from_this()));
}

template <class Stream>
void beast_websocket_session<Stream>::on_accept(beast::error_code ec)
{
    if (ec)
    {
        log_io_error(peer_, "websocket handshake", ec);
        return;
    }
    // Beast pings after half the idle timeout of silence and gives up after the whole.
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = close_timeout; // also bounds the closing handshake
    timeouts.idle_timeout = 2 * ping_interval;
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    beast::error_code ignored;
    lowest_socket(beast::get_lowest_layer(ws_))
        .set_option(asio::socket_base::send_buffer_size(stream_send_buffer_bytes), ignored);
    accepted_ = true;
    if (finished_)
        return close_socket();
    do_read();
    do_write();
}

template <class Stream>
void beast_websocket_session<Stream>::close_gracefully()
{
    if (!accepted_)
    {
        finished_ = true;
        beast::error_code ignored;
        lowest_socket(beast::get_lowest_layer(ws_)).close(ignored);
        return;
    }
    send_close_frame(websocket::close_code::going_away);
}

template <class Stream>
void beast_websocket_session<Stream>::do_read()
{
    ws_.async_read(inbox_, beast::bind_front_handler(&beast_websocket_session<Stream>::on_read,
                                                     shared_from_this()));
}

template <class Stream>
void beast_websocket_session<Stream>::on_read(beast::error_code ec, std::size_t)
{
    if (ec)
    {
        // Beast has answered a close, or sent 1009, or timed the client out, and torn down.
        if (ec == beast::error::timeout && !closing_)
        {
            core::log::debug(
                "websocket client silent for two ping intervals; dropped",
                {{"peer", peer_}, {"seconds", std::to_string(2 * ping_interval.count())}});
            subscription_.dropping(api::drop_reason::unresponsive);
        }
        log_io_error(peer_, "read", ec);
        return close_socket();
    }
    inbox_.consume(inbox_.size()); // text is ignored
    if (ws_.got_binary())
        send_close_frame(websocket::close_code::unknown_data);
    do_read();
}

template <class Stream>
void beast_websocket_session<Stream>::do_write()
{
    if (writing_ || !accepted_ || closing_ || finished_)
        return;
    if (subscription_.overflowed())
        return send_close_frame(websocket::close_code::try_again_later);
    if (next_ == outbox_.size())
    {
        outbox_ = subscription_.next(batch);
        next_ = 0;
        if (outbox_.empty())
            return;
    }
    writing_ = true;
    ws_.async_write(
        text_of(*outbox_[next_]),
        beast::bind_front_handler(&beast_websocket_session<Stream>::on_write, shared_from_this()));
}

template <class Stream>
void beast_websocket_session<Stream>::on_write(beast::error_code ec, std::size_t)
{
    writing_ = false;
    if (ec)
    {
        log_io_error(peer_, "write", ec);
        return close_socket();
    }
    ++next_;
    do_write();
}

template <class Stream>
void beast_websocket_session<Stream>::send_close_frame(websocket::close_code code)
{
    if (closing_ || finished_ || !accepted_)
        return;
    // Beast sends it after the write in flight; no event is written after it.
    closing_ = true;
    ws_.async_close(code, beast::bind_front_handler(&beast_websocket_session<Stream>::on_close,
                                                    shared_from_this()));
}

template <class Stream>
void beast_websocket_session<Stream>::on_close(beast::error_code ec)
{
    log_io_error(peer_, "websocket close", ec);
    close_socket();
}

template <class Stream>
void beast_websocket_session<Stream>::close_socket()
{
    finished_ = true;
    beast::error_code ignored;
    auto& socket = lowest_socket(beast::get_lowest_layer(ws_));
    socket.shutdown(client_socket::shutdown_both, ignored);
    socket.close(ignored);
}

template class beast_websocket_session<client_socket>;
template class beast_websocket_session<tls_stream>;

} // namespace netnsd::server
