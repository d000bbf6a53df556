#include "server/http_session.hpp"

#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "core/log.hpp"

#include "api/metrics.hpp"
#include "api/problem.hpp"

#include "server/stream_session.hpp"
#include "server/websocket_session.hpp"

namespace netnsd::server
{

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

http_session::http_session(client_socket&& socket, api::router& router, api::stream_hub& hub,
                           session_set& sessions, worker_pools& workers)
    : stream_(std::move(socket)), router_(router), hub_(hub), sessions_(sessions), workers_(workers)
{
    sessions_.insert(this);
    peer_ = describe_peer(stream_.socket());
}

http_session::~http_session()
{
    sessions_.erase(this);
}

void http_session::run()
{
    do_read();
}

void http_session::abort()
{
    closing_ = true;
    do_close();
}

void http_session::close()
{
    closing_ = true;
    if (!writing_)
        do_close();
}

void http_session::do_read()
{
    if (closing_)
        return do_close();
    method_.clear();
    target_.clear();
    route_ = "other";
    parser_.emplace();
    parser_->header_limit(header_limit);
    parser_->body_limit(body_limit);
    stream_.expires_after(read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&http_session::on_header, shared_from_this()));
}

void http_session::on_header(beast::error_code ec, std::size_t bytes)
{
    started_ = std::chrono::steady_clock::now();
    // Beast checks header_limit per read, so a header that arrives over several reads can pass
    // it by up to the size of the earlier reads; the bytes it consumed for the header are exact.
    if (!ec && bytes > header_limit)
        ec = http::error::header_limit;
    if (ec || parser_->is_done())
        return on_read(ec, bytes);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t)
{
    using api::problem_type;
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == boost::asio::error::operation_aborted || closing_)
        return do_close();
    if (ec)
    {
        // The request cannot be trusted any further: answer once, then close.
        problem_type type = problem_type::bad_request;
        if (ec == http::error::header_limit || ec == http::error::buffer_overflow)
            type = problem_type::header_too_large;
        else if (ec == http::error::body_limit)
            type = problem_type::payload_too_large;
        if (ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset)
            return do_close();
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
    api::request in;
    in.peer = peer_;
    in.method = std::string(req.method_string());
    in.target = std::string(req.target());
    in.has_body = !req.body().empty() || req.chunked();
    in.body = req.body();
    in.headers.reserve(static_cast<std::size_t>(std::distance(req.begin(), req.end())));
    for (const auto& field : req)
        in.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
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

void http_session::start_stream(api::stream_params&& params)
{
    auto req = parser_->release();
    stream_.expires_never();
    if (params.format == api::stream_format::websocket)
    {
        std::make_shared<websocket_session>(stream_.release_socket(), hub_, sessions_,
                                            std::move(params))
            ->run(std::move(req));
        return;
    }
    std::make_shared<stream_session>(stream_.release_socket(), hub_, sessions_, std::move(params),
                                     req.version())
        ->run();
}

void http_session::run_deferred(api::deferred&& job, bool keep_alive, unsigned version, bool head)
{
    // No read timeout while the worker runs; the job's own limits (exec timeout) bound it.
    stream_.expires_never();
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

void http_session::answer(api::response&& res, bool keep_alive, unsigned version, bool head)
{
    if (method_ != "GET" && method_ != "HEAD" && !method_.empty())
    {
        // One audit line per admin request: who, what, on which namespace, with what result.
        const auto status = std::to_string(res.status);
        core::log::info("audit", {{"peer", peer_},
                                  {"method", method_},
                                  {"path", target_},
                                  {"name", res.audit_name.empty() ? "-" : res.audit_name},
                                  {"status", status}});
    }
    count_request(res.status);
    response_ = {};
    response_.version(version);
    response_.result(res.status);
    response_.set(http::field::server, "netnsd/" NETNSD_VERSION);
    response_.set(http::field::content_type, res.content_type);
    response_.set(http::field::cache_control, "no-store");
    for (auto& [name, value] : res.headers)
        response_.set(name, value);
    response_.keep_alive(keep_alive && !closing_);
    // Kept until the write is done: the response's body spans its bytes.
    answered_ = std::move(res);
    const auto bytes = answered_.payload();
    if (head)
    {
        // HEAD: the length of the body a GET would get, and no body.
        response_.content_length(bytes.size());
    }
    else
    {
        response_.body() = {bytes.data(), bytes.size()};
        response_.prepare_payload();
    }
    do_write();
}

void http_session::count_request(unsigned status)
{
    if (auto* stats = router_.stats())
    {
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - started_;
        stats->observe_request(method_, route_, status, took.count());
    }
}

void http_session::do_write()
{
    writing_ = true;
    stream_.expires_after(write_timeout);
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&http_session::on_write, shared_from_this(),
                                                response_.keep_alive()));
}

void http_session::on_write(bool keep_alive, beast::error_code ec, std::size_t)
{
    writing_ = false;
    if (ec || !keep_alive || closing_)
        return do_close();
    do_read();
}

void http_session::do_close()
{
    beast::error_code ignored;
    stream_.socket().shutdown(client_socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
}

} // namespace netnsd::server
