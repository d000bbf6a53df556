#include "server/stream_session.hpp"

#include <cstdio>

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>

namespace netnsd::server
{

namespace asio = boost::asio;
namespace beast = boost::beast;

namespace
{

std::string hex(std::size_t n)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%zx", n);
    return buf;
}

} // namespace

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
    header_ = chunked_ ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.0 200 OK\r\n";
    header_ += "Server: netnsd/" NETNSD_VERSION "\r\n";
    header_ +=
        sse ? "Content-Type: text/event-stream\r\n" : "Content-Type: application/x-ndjson\r\n";
    header_ += "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n";
    header_ += chunked_ ? "Transfer-Encoding: chunked\r\n\r\n" : "Connection: close\r\n\r\n";
    writing_ = true;
    asio::async_write(
        stream_, asio::buffer(header_),
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
    std::vector<asio::const_buffer> buffers;
    buffers.reserve(outbox_.size() + 2);
    std::size_t size = 0;
    for (const auto& m : outbox_)
        size += m->size();
    if (chunked_)
    {
        framing_ = hex(size) + "\r\n";
        buffers.emplace_back(asio::buffer(framing_));
    }
    for (const auto& m : outbox_)
        buffers.emplace_back(asio::buffer(*m));
    if (chunked_)
        buffers.emplace_back(asio::buffer("\r\n", 2));
    writing_ = true;
    asio::async_write(
        stream_, buffers,
        beast::bind_front_handler(&stream_session<Stream>::on_write, shared_from_this()));
}

template <class Stream>
void stream_session<Stream>::on_write(beast::error_code ec, std::size_t)
{
    writing_ = false;
    outbox_.clear();
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
        static const std::string comment = ": keep-alive\n\n";
        framing_ = chunked_ ? hex(comment.size()) + "\r\n" + comment + "\r\n" : comment;
        writing_ = true;
        asio::async_write(
            stream_, asio::buffer(framing_),
            beast::bind_front_handler(&stream_session<Stream>::on_write, shared_from_this()));
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
    framing_ = "0\r\n\r\n";
    writing_ = true;
    asio::async_write(
        stream_, asio::buffer(framing_),
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
