#include "server/stream_session.hpp"

#include <span>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/write.hpp>

namespace netnsd::server
{

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

template <class Stream>
stream_session<Stream>::stream_session(Stream&& stream, api::stream_hub& hub, session_set& sessions,
                                       api::stream_params&& params, unsigned http_version,
                                       std::string peer, std::shared_ptr<const void> hold)
    : stream_(std::move(stream)), peer_(std::move(peer)), hold_(std::move(hold)),
      keepalive_(stream_.get_executor()),
      subscription_(hub, std::move(params), [this] { do_write(); }), sessions_(sessions),
      chunked_(http_version >= 11)
{
    sessions_.insert(this);
    beast::error_code ignored;
    lowest_socket(stream_).set_option(asio::socket_base::send_buffer_size(stream_send_buffer_bytes),
                                      ignored);
}

template <class Stream>
stream_session<Stream>::~stream_session()
{
    sessions_.erase(this);
}

template <class Stream>
void stream_session<Stream>::run()
{
    const bool sse = subscription_.params().format == api::stream_format::sse;
    // HTTP/1.1: chunked, so that the end of the stream is an end, not a broken connection.
    // HTTP/1.0 has no chunks: the response ends when the connection does.
    header_.version(chunked_ ? 11 : 10);
    header_.result(http::status::ok);
    header_.set(http::field::server, "netnsd/" NETNSD_VERSION);
    header_.set(http::field::content_type, sse ? "text/event-stream" : "application/x-ndjson");
    header_.set(http::field::cache_control, "no-store");
    header_.set("X-Accel-Buffering", "no"); // nginx: pass each chunk on as it comes
    if (chunked_)
        header_.chunked(true);
    else
        header_.set(http::field::connection, "close");
    serializer_.emplace(header_);
    writing_ = true;
    http::async_write_header(
        stream_, *serializer_,
        beast::bind_front_handler(&stream_session<Stream>::on_header, shared_from_this()));
}

template <class Stream>
void stream_session<Stream>::on_header(beast::error_code ec, std::size_t)
{
    writing_ = false;
    if (ec)
    {
        log_io_error(peer_, "write", ec);
        return close_socket();
    }
    started_ = true;
    do_read();
    if (subscription_.params().format == api::stream_format::sse)
        do_keepalive();
    do_write();
}

template <class Stream>
void stream_session<Stream>::do_read()
{
    // Clients send nothing more; a read completes only when they go away.
    stream_.async_read_some(
        asio::buffer(discard_),
        beast::bind_front_handler(&stream_session<Stream>::on_read, shared_from_this()));
}

template <class Stream>
void stream_session<Stream>::on_read(beast::error_code ec, std::size_t)
{
    if (ec)
    {
        log_io_error(peer_, "read", ec); // the client went away (end of file is not logged)
        return close_socket();
    }
    do_read();
}

template <class Stream>
void stream_session<Stream>::do_write()
{
    if (writing_ || !started_ || finished_)
        return;
    if (closing_ || subscription_.overflowed())
        return end_response();
    outbox_ = subscription_.next(batch);
    if (outbox_.empty())
        return;
    for (const auto& m : outbox_)
        buffers_.emplace_back(asio::buffer(*m));
    write_buffers();
}

template <class Stream>
void stream_session<Stream>::write_buffers()
{
    writing_ = true;
    auto on_write =
        beast::bind_front_handler(&stream_session<Stream>::on_write, shared_from_this());
    const std::span<const asio::const_buffer> buffers(buffers_);
    // One write, and one system call (or TLS record) per 64 messages, however many there are.
    if (chunked_)
        asio::async_write(stream_, http::make_chunk(buffers), std::move(on_write));
    else
        asio::async_write(stream_, buffers, std::move(on_write));
}

template <class Stream>
void stream_session<Stream>::on_write(beast::error_code ec, std::size_t)
{
    writing_ = false;
    outbox_.clear();
    buffers_.clear();
    if (ec)
    {
        log_io_error(peer_, "write", ec);
        return close_socket();
    }
    if (finished_)
        return close_socket();
    do_write();
}

template <class Stream>
void stream_session<Stream>::do_keepalive()
{
    keepalive_.expires_after(keepalive_interval);
    keepalive_.async_wait(
        beast::bind_front_handler(&stream_session<Stream>::on_keepalive, shared_from_this()));
}

template <class Stream>
void stream_session<Stream>::on_keepalive(beast::error_code ec)
{
    if (ec || finished_)
        return;
    if (!writing_)
    {
        static constexpr std::string_view comment = ": keep-alive\n\n";
        buffers_.emplace_back(asio::buffer(comment));
        write_buffers();
    }
    do_keepalive();
}

template <class Stream>
void stream_session<Stream>::close_gracefully()
{
    closing_ = true;
    if (!started_)
        return close_socket();
    if (!writing_)
        end_response();
}

template <class Stream>
void stream_session<Stream>::end_response()
{
    finished_ = true;
    keepalive_.cancel();
    if (!chunked_)
        return close_socket();
    writing_ = true;
    asio::async_write(
        stream_, http::make_chunk_last(),
        beast::bind_front_handler(&stream_session<Stream>::on_write, shared_from_this()));
}

template <class Stream>
void stream_session<Stream>::close_socket()
{
    finished_ = true;
    keepalive_.cancel();
    beast::error_code ignored;
    lowest_socket(stream_).shutdown(client_socket::shutdown_both, ignored);
    lowest_socket(stream_).close(ignored);
}

template class stream_session<client_stream>;
template class stream_session<tls_stream>;

} // namespace netnsd::server
