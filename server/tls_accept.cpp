#include "server/tls_accept.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/detect_ssl.hpp>

#include "api/problem.hpp"

#include "server/http_session.hpp"

namespace netnsd::server
{

namespace asio = boost::asio;
namespace beast = boost::beast;

tls_accept::tls_accept(client_socket&& socket, std::shared_ptr<asio::ssl::context> context,
                       api::router& router, api::stream_hub& hub, session_set& sessions,
                       worker_pools& workers)
    : stream_(std::move(socket)), context_(std::move(context)), router_(router), hub_(hub),
      sessions_(sessions), workers_(workers)
{
    sessions_.insert(this);
}

tls_accept::~tls_accept()
{
    sessions_.erase(this);
}

void tls_accept::run()
{
    stream_.expires_after(handshake_timeout);
    beast::async_detect_ssl(stream_, buffer_,
                            beast::bind_front_handler(&tls_accept::on_detect, shared_from_this()));
}

void tls_accept::close_socket()
{
    beast::error_code ignored;
    (tls_ ? lowest_socket(*tls_) : lowest_socket(stream_)).close(ignored);
}

void tls_accept::on_detect(beast::error_code ec, bool is_tls)
{
    if (ec)
    {
        log_io_error(stream_.socket(), "tls detection", ec);
        return close_socket();
    }
    if (!is_tls)
    {
        // Plain HTTP: say so once, in a way curl and browsers show, and close.
        const auto problem = api::problem(
            api::problem_type::https_required,
            "this port speaks HTTPS only: use https:// (plain HTTP is never served here)");
        refusal_ = "HTTP/1.1 400 Bad Request\r\nServer: netnsd/" NETNSD_VERSION
                   "\r\nContent-Type: application/problem+json\r\nCache-Control: no-store\r\n"
                   "Connection: close\r\nContent-Length: " +
                   std::to_string(problem.body.size()) + "\r\n\r\n" + problem.body;
        asio::async_write(stream_, asio::buffer(refusal_),
                          beast::bind_front_handler(&tls_accept::on_refused, shared_from_this()));
        return;
    }
    tls_ = std::make_unique<tls_stream>(std::move(stream_), *context_);
    // What detection read is the start of the ClientHello: the handshake takes it first.
    tls_->async_handshake(asio::ssl::stream_base::server, buffer_.data(),
                          beast::bind_front_handler(&tls_accept::on_handshake, shared_from_this()));
}

void tls_accept::on_refused(beast::error_code ec, std::size_t)
{
    beast::error_code ignored;
    auto& socket = stream_.socket();
    log_io_error(socket, "write", ec);
    if (!ec)
    {
        socket.shutdown(client_socket::shutdown_send, ignored);
        // Read what the client still sends until it closes or the deadline, so that closing
        // does not reset the connection before the client has read the answer.
        return on_drain({}, 0);
    }
    socket.close(ignored);
}

void tls_accept::on_drain(beast::error_code ec, std::size_t)
{
    if (ec)
    {
        beast::error_code ignored;
        stream_.socket().close(ignored);
        return;
    }
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(4096),
                            beast::bind_front_handler(&tls_accept::on_drain, shared_from_this()));
}

void tls_accept::on_handshake(beast::error_code ec, std::size_t used)
{
    if (ec)
    {
        // A client that does not speak TLS 1.2+, or a refused certificate.
        log_io_error(lowest_socket(*tls_), "tls handshake", ec);
        return close_socket();
    }
    buffer_.consume(used);
    beast::get_lowest_layer(*tls_).expires_never();
    std::make_shared<tls_http_session>(std::move(*tls_), std::move(buffer_), context_, router_,
                                       hub_, sessions_, workers_)
        ->run();
}

} // namespace netnsd::server
