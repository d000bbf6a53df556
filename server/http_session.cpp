#include "server/http_session.hpp"

#include <charconv>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_cat.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "core/log.hpp"

#include "api/metrics.hpp"
#include "api/problem.hpp"

#include "server/stream_session.hpp"
#include "server/websocket_session.hpp"
#ifdef NETNSD_BENCH_BEAST_WEBSOCKET
#include "server/beast_websocket_session.hpp"
#endif

namespace netnsd::server
{

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace
{

#ifdef NETNSD_BENCH_BEAST_WEBSOCKET
// The A/B's other side (bench/run --only websocket-ab): Beast's websocket::stream.
template <class Stream>
using event_websocket_session = beast_websocket_session<Stream>;
#else
template <class Stream>
using event_websocket_session = websocket_session<Stream>;
#endif

// A read that ended so that nothing can be said to the client any more: it went, or timed out,
// or (TLS) closed without close_notify or broke its records.
bool is_unanswerable(const beast::error_code& ec)
{
    namespace error = boost::asio::error;
    return ec == http::error::end_of_stream || ec == beast::error::timeout ||
           ec == error::operation_aborted || ec == error::eof || ec == error::connection_reset ||
           ec == boost::asio::ssl::error::stream_truncated ||
           ec.category() == error::get_ssl_category();
}

constexpr bool is_tls(const tls_stream*)
{
    return true;
}

constexpr bool is_tls(const client_stream*)
{
    return false;
}

} // namespace

template <class Stream>
basic_http_session<Stream>::basic_http_session(Stream&& stream, beast::flat_buffer&& buffer,
                                               std::shared_ptr<const void> hold,
                                               api::router& router, api::stream_hub& hub,
                                               session_set& sessions, worker_pools& workers)
    : stream_(std::move(stream)), hold_(std::move(hold)), buffer_(std::move(buffer)),
      router_(router), hub_(hub), sessions_(sessions), workers_(workers),
      deadline_timer_(stream_.get_executor())
{
    sessions_.insert(this);
    // The session keeps its own deadline (expire_after); the stream arms no timers.
    beast::get_lowest_layer(stream_).expires_never();
    auto& socket = beast::get_lowest_layer(stream_).socket();
    peer_ = describe_peer(socket);
    transport_ = transport_of(socket);
    if constexpr (is_tls(static_cast<Stream*>(nullptr)))
    {
        transport_.tls = true;
        transport_.client_subject = client_subject(stream_);
    }
}

template <class Stream>
basic_http_session<Stream>::~basic_http_session()
{
    sessions_.erase(this);
}

template <class Stream>
void basic_http_session<Stream>::run()
{
    do_read();
}

template <class Stream>
void basic_http_session<Stream>::close_gracefully()
{
    closing_ = true;
    if (!writing_)
        close_socket();
}

template <class Stream>
void basic_http_session<Stream>::close_now()
{
    closing_ = true;
    close_socket();
}

template <class Stream>
void basic_http_session<Stream>::do_read()
{
    if (closing_)
        return close_socket();
    method_.clear();
    target_.clear();
    route_ = "other";
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(body_limit);
    expire_after(read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&basic_http_session::on_header, shared_from_this()));
}

template <class Stream>
void basic_http_session<Stream>::on_header(beast::error_code ec, std::size_t bytes)
{
    started_ = std::chrono::steady_clock::now();
    // Beast checks header_limit per read, so a header that arrives over several reads can pass
    // it by up to the size of the earlier reads; the bytes it consumed for the header are exact.
    if (!ec && bytes > header_limit)
        ec = http::error::header_limit;
    if (ec || parser_->is_done())
        return on_read(ec, bytes);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&basic_http_session::on_read, shared_from_this()));
}

template <class Stream>
void basic_http_session<Stream>::on_read(beast::error_code ec, std::size_t)
{
    using api::problem_type;
    if (closing_ || is_unanswerable(ec))
    {
        log_io_error(peer_, "read", ec);
        return close_socket();
    }
    if (ec)
    {
        // The request cannot be trusted any further: answer once, then close.
        problem_type type = problem_type::bad_request;
        if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
            type = problem_type::header_too_large;
        else if (ec == http::error::body_limit)
            type = problem_type::payload_too_large;
        return answer(api::problem(type, ec.message()), false, 11, false);
    }

    auto& req = parser_->get();
    // RFC 9112 §6.3: a request whose last transfer coding is not chunked has no knowable end;
    // reading on would desynchronise the connection. §3.2: HTTP/1.1 requires Host.
    if (req.find(http::field::transfer_encoding) != req.end() && !req.chunked())
        return answer(api::problem(problem_type::bad_request,
                                   "the last transfer coding of a request must be chunked"),
                      false, req.version(), false);
    if (req.version() >= 11 && req.find(http::field::host) == req.end())
        return answer(api::problem(problem_type::bad_request, "HTTP/1.1 requests need a Host"),
                      false, req.version(), false);
    // §3.2 too: one Host, so that the Host check and the router see the same one.
    if (req.count(http::field::host) > 1)
        return answer(api::problem(problem_type::bad_request, "a request has one Host"), false,
                      req.version(), false);
    // Filled in place: its strings keep their capacity from one request to the next.
    auto& in = request_;
    in.peer = peer_;
    in.transport = transport_;
    in.method.assign(req.method_string());
    in.target.assign(req.target());
    in.has_body = !req.body().empty() || req.chunked();
    in.body.swap(req.body());
    std::size_t fields = 0;
    for (const auto& field : req)
    {
        if (fields == in.headers.size())
            in.headers.emplace_back();
        in.headers[fields].first.assign(field.name_string());
        in.headers[fields].second.assign(field.value());
        ++fields;
    }
    in.headers.resize(fields);
    method_ = in.method;
    target_ = in.target;
    auto outcome = router_.dispatch(in, websocket::is_upgrade(req), route_);
    if (auto* params = std::get_if<api::stream_params>(&outcome))
    {
        count_request(params->format == api::stream_format::websocket ? 101 : 200);
        return start_stream(std::move(*params));
    }
    if (auto* job = std::get_if<api::deferred>(&outcome))
        return run_deferred(std::move(*job), req.keep_alive(), req.version(),
                            req.method() == http::verb::head);
    const bool head = req.method() == http::verb::head;
    answer(std::get<api::response>(std::move(outcome)), req.keep_alive(), req.version(), head);
}

template <class Stream>
void basic_http_session<Stream>::start_stream(api::stream_params&& params)
{
    auto req = parser_->release();
    // The stream session has its own timers; this one ends now.
    expire_never();
    deadline_timer_.cancel();
    if constexpr (is_tls(static_cast<Stream*>(nullptr)))
    {
        // The TLS stream moves whole: its session state cannot be taken apart.
        if (params.format == api::stream_format::websocket)
        {
            std::make_shared<event_websocket_session<tls_stream>>(
                std::move(stream_), hub_, sessions_, std::move(params), std::move(peer_),
                std::move(hold_))
                ->run(std::move(req), take_buffered());
            return;
        }
        std::make_shared<stream_session<tls_stream>>(std::move(stream_), hub_, sessions_,
                                                     std::move(params), req.version(),
                                                     std::move(peer_), std::move(hold_))
            ->run();
    }
    else
    {
        if (params.format == api::stream_format::websocket)
        {
            std::make_shared<event_websocket_session<client_socket>>(
                stream_.release_socket(), hub_, sessions_, std::move(params), std::move(peer_))
                ->run(std::move(req), take_buffered());
            return;
        }
        std::make_shared<stream_session<client_stream>>(client_stream(stream_.release_socket()),
                                                        hub_, sessions_, std::move(params),
                                                        req.version(), std::move(peer_))
            ->run();
    }
}

template <class Stream>
std::string basic_http_session<Stream>::take_buffered()
{
    auto out = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    return out;
}

template <class Stream>
void basic_http_session<Stream>::run_deferred(api::deferred&& job, bool keep_alive,
                                              unsigned version, bool head)
{
    // No read timeout while the worker runs; the job's own limits (exec timeout) bound it.
    expire_never();
    auto& pool = job.where == api::deferred::pool::exec ? workers_.exec : workers_.admin;
    boost::asio::post(pool,
                      [self = shared_from_this(), work = std::move(job.work),
                       refresh = std::move(job.refresh), keep_alive, version, head]() mutable
                      {
                          std::function<api::response()> finish;
                          try
                          {
                              finish = work();
                          }
                          catch (const std::exception& e)
                          {
                              finish = [what = std::string(e.what())]
                              {
                                  return api::problem(api::problem_type::internal,
                                                      "the operation failed: " + what);
                              };
                          }
                          auto& workers = self->workers_;
                          auto executor = self->stream_.get_executor();
                          std::function<void()> then = [self = std::move(self),
                                                        finish = std::move(finish), keep_alive,
                                                        version, head]
                          {
                              self->answer(finish(), keep_alive, version, head);
                          };
                          // The model looks at what the job changed first, so that the answer shows
                          // it.
                          if (!refresh.empty() && workers.refresh_then)
                              workers.refresh_then(std::move(refresh), std::move(then));
                          else
                              boost::asio::post(executor, std::move(then));
                      });
}

template <class Stream>
void basic_http_session<Stream>::answer(api::response&& res, bool keep_alive, unsigned version,
                                        bool head)
{
    if (method_ != "GET" && method_ != "HEAD" && !method_.empty())
    {
        // One audit line per admin request: who, what, on which namespace, with what result.
        const auto status = std::to_string(res.status);
        const auto name = res.audit_name.empty() ? std::string("-") : res.audit_name;
        // Who, as the transport proved it: the Unix peer's uid, the TLS client's certificate.
        if (transport_.credentials)
            core::log::info("audit", {{"peer", peer_},
                                      {"uid", std::to_string(transport_.credentials->uid)},
                                      {"method", method_},
                                      {"path", target_},
                                      {"name", name},
                                      {"status", status}});
        else if (!transport_.client_subject.empty())
            core::log::info("audit", {{"peer", peer_},
                                      {"client", transport_.client_subject},
                                      {"method", method_},
                                      {"path", target_},
                                      {"name", name},
                                      {"status", status}});
        else
            core::log::info("audit", {{"peer", peer_},
                                      {"method", method_},
                                      {"path", target_},
                                      {"name", name},
                                      {"status", status}});
    }
    count_request(res.status);
    keep_alive_ = keep_alive && !closing_;
    // Kept until the write is done: the body is sent from its bytes.
    answered_ = std::move(res);
    const auto bytes = answered_.payload();
    const auto tail = answered_.tail();
    // HEAD: the length of the body a GET would get, and no body.
    write_head(version, bytes.size() + tail.size());
    body_ = head ? std::string_view{} : bytes;
    tail_ = head ? std::string_view{} : tail;
    do_write();
}

template <class Stream>
void basic_http_session<Stream>::write_head(unsigned version, std::size_t length)
{
    // The bytes Beast's serializer would write for this header (tests/server pin them): the
    // status line, Server, Content-Type, Cache-Control, the router's extra headers, Connection
    // only where it differs from the version's default, Content-Length. Written here, into a
    // string whose capacity stays with the session, rather than through a http::response,
    // whose fields are one allocation each: a third of a small request's allocations.
    auto& h = header_bytes_;
    h.clear();
    const auto status = answered_.status;
    char digits[24];
    const auto append_number = [&h, &digits](std::uint64_t n)
    {
        const auto end = std::to_chars(std::begin(digits), std::end(digits), n).ptr;
        h.append(digits, end);
    };
    h += "HTTP/";
    h += static_cast<char>('0' + version / 10);
    h += '.';
    h += static_cast<char>('0' + version % 10);
    h += ' ';
    append_number(status);
    h += ' ';
    h += http::obsolete_reason(static_cast<http::status>(status));
    h += "\r\nServer: netnsd/" NETNSD_VERSION "\r\nContent-Type: ";
    h += answered_.content_type;
    h += "\r\nCache-Control: no-store\r\n";
    for (const auto& [name, value] : answered_.headers)
    {
        // The router's headers are its own constants and checked names; a line break in one
        // would split the response, so it is never sent.
        if (name.find_first_of("\r\n") != std::string::npos ||
            value.find_first_of("\r\n") != std::string::npos)
            continue;
        h += name;
        h += ": ";
        h += value;
        h += "\r\n";
    }
    if (version >= 11 && !keep_alive_)
        h += "Connection: close\r\n";
    else if (version < 11 && keep_alive_)
        h += "Connection: keep-alive\r\n";
    h += "Content-Length: ";
    append_number(length);
    h += "\r\n\r\n";
}

template <class Stream>
void basic_http_session<Stream>::count_request(unsigned status)
{
    if (auto* stats = router_.stats())
    {
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started_;
        stats->observe_request(method_, route_, status, took.count());
    }
}

template <class Stream>
void basic_http_session<Stream>::do_write()
{
    writing_ = true;
    // Not a std::array of two: asio consumes one by leaving its first buffer empty, and a TLS
    // stream (Beast's flat_stream) then writes nothing and the write ends with the header.
    const auto wire = beast::buffers_cat(boost::asio::buffer(header_bytes_),
                                         boost::asio::buffer(body_.data(), body_.size()),
                                         boost::asio::buffer(tail_.data(), tail_.size()));
    expire_after(write_timeout);
    boost::asio::async_write(
        stream_, wire,
        beast::bind_front_handler(&basic_http_session::on_write, shared_from_this(), keep_alive_));
}

template <class Stream>
void basic_http_session<Stream>::on_write(bool keep_alive, beast::error_code ec, std::size_t)
{
    writing_ = false;
    if (ec)
    {
        log_io_error(peer_, "write", ec);
        return close_socket();
    }
    if (!keep_alive || closing_)
        return close_after_last_answer();
    do_read();
}

template <class Stream>
void basic_http_session<Stream>::close_after_last_answer()
{
    if constexpr (is_tls(static_cast<Stream*>(nullptr)))
    {
        // close_notify, so that the client knows the answer is complete; it need not answer.
        expire_after(tls_shutdown_timeout);
        stream_.async_shutdown(
            [self = shared_from_this()](beast::error_code ec)
            {
                log_io_error(self->peer_, "tls shutdown", ec);
                self->close_socket();
            });
    }
    else
        close_socket();
}

template <class Stream>
void basic_http_session<Stream>::close_socket()
{
    beast::error_code ignored;
    auto& socket = beast::get_lowest_layer(stream_).socket();
    socket.shutdown(client_socket::shutdown_send, ignored);
    socket.close(ignored);
    expire_never();
    deadline_timer_.cancel();
}

template <class Stream>
void basic_http_session<Stream>::expire_after(std::chrono::steady_clock::duration d)
{
    deadline_ = std::chrono::steady_clock::now() + d;
    // Armed for a later time, it looks then and waits on; armed for nothing, or too late for a
    // shorter deadline (the TLS close after a read's 30 s), it is armed anew.
    if (!deadline_armed_ || deadline_ < deadline_timer_.expiry())
        arm_deadline();
}

template <class Stream>
void basic_http_session<Stream>::arm_deadline()
{
    deadline_armed_ = true;
    deadline_timer_.expires_at(deadline_);
    // It does not keep the session: a session that ends destroys its timer, which cancels it.
    deadline_timer_.async_wait(
        [weak = this->weak_from_this()](beast::error_code ec)
        {
            if (auto self = weak.lock())
                self->on_deadline(ec);
        });
}

template <class Stream>
void basic_http_session<Stream>::on_deadline(beast::error_code ec)
{
    // Cancelled: re-armed for a nearer deadline, or the session closed.
    if (ec == boost::asio::error::operation_aborted)
        return;
    deadline_armed_ = false;
    if (deadline_ == std::chrono::steady_clock::time_point::max())
        return;
    if (std::chrono::steady_clock::now() < deadline_)
        return arm_deadline();
    // What Beast's timeout did: close the socket; the operation in flight ends with an error.
    log_io_error(peer_, "deadline", beast::error::timeout);
    close_socket();
}

template class basic_http_session<client_stream>;
template class basic_http_session<tls_stream>;

} // namespace netnsd::server
