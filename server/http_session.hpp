// http_session: one HTTP/1.1 connection. Reads a request with bounded header and body and a
// timeout, hands it to the api router, writes the answer, and repeats while keep-alive holds.
// GET /api/v1/events becomes a websocket_session (on upgrade) or a stream_session (SSE,
// NDJSON). Owns itself through its pending handlers (sessions are the only shared_ptr in the
// server); the session_set knows it by plain pointer so shutdown can close it. A template over
// its stream, as Beast's server-flex example has it: plain (the socket) or TLS, so that the
// plain path has no indirection it did not have before. Both are compiled once, in
// http_session.cpp. Loop thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "api/router.hpp"
#include "api/stream.hpp"

#include "server/connection.hpp"
#include "server/session_set.hpp"
#include "server/worker_pools.hpp"

namespace netnsd::server
{

template <class Stream>
class basic_http_session final : public std::enable_shared_from_this<basic_http_session<Stream>>,
                                 public closable
{
public:
    // Limits on what a client can send; each has a test in tests/server.
    static constexpr std::size_t header_limit = 8 * 1024;
    static constexpr std::size_t body_limit = 64 * 1024;
    static constexpr std::chrono::seconds read_timeout{30};
    static constexpr std::chrono::seconds write_timeout{30};
    static constexpr std::chrono::seconds tls_shutdown_timeout{2};

    // `buffer` holds what was read already (a TLS handshake's detection); `hold` is kept as
    // long as the connection (the TLS context it was made with).
    basic_http_session(Stream&& stream, boost::beast::flat_buffer&& buffer,
                       std::shared_ptr<const void> hold, api::router& router, api::stream_hub& hub,
                       session_set& sessions, worker_pools& workers);
    // A plain connection, as a listener accepts it. (A template, so that the explicit
    // instantiation of the TLS session leaves it out: clang 14 would not.)
    template <class S = Stream>
    requires std::is_same_v<S, client_stream>
    basic_http_session(client_socket&& socket, api::router& router, api::stream_hub& hub,
                       session_set& sessions, worker_pools& workers)
        : basic_http_session(client_stream(std::move(socket)), {}, {}, router, hub, sessions,
                             workers)
    {
    }
    ~basic_http_session();

    void run();
    // Shutdown: stop after the response in flight (then TLS close_notify), or now if idle.
    void close_gracefully() override;
    void close_now() override;

private:
    void do_read();
    void on_header(boost::beast::error_code ec, std::size_t bytes);
    void on_read(boost::beast::error_code ec, std::size_t bytes);
    // Hands the connection to a websocket or SSE/NDJSON session; this session ends.
    void start_stream(api::stream_params&& params);
    // Runs an admin job on a worker, then answers from its continuation on the loop.
    void run_deferred(api::deferred&& job, bool keep_alive, unsigned version, bool head);
    void answer(api::response&& res, bool keep_alive, unsigned version, bool head);
    // Counts the request being answered (netnsd_http_requests_total and its duration).
    void count_request(unsigned status);
    // The status line and header of answered_ into header_bytes_.
    void write_head(unsigned version, std::size_t length);
    void do_write();
    void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t bytes);
    // After the last answer: TLS says close_notify first (bounded by tls_shutdown_timeout).
    void close_after_last_answer();
    void close_socket();
    // What was read after the request that was parsed (empties the buffer).
    std::string take_buffered();
    // The connection's one deadline (reading a request, writing an answer, TLS close_notify):
    // a time point moved forward on each step, and a timer that looks at it only when it
    // fires, re-armed for a later deadline then. Beast's basic_stream arms and cancels a
    // timer around every read and write, which cost ~6% of a small HTTPS request.
    void expire_after(std::chrono::steady_clock::duration d);
    void expire_never() noexcept { deadline_ = std::chrono::steady_clock::time_point::max(); }
    void arm_deadline();
    void on_deadline(boost::beast::error_code ec);

    using std::enable_shared_from_this<basic_http_session<Stream>>::shared_from_this;

    Stream stream_;
    std::shared_ptr<const void> hold_;
    boost::beast::flat_buffer buffer_;
    std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
    api::request request_; // the request being answered, as the router reads it
    // The response in flight: its body is answered_'s payload, the router's own string or one
    // shared with the list cache (sent without a copy, and without an allocation to hold it).
    api::response answered_;
    std::string_view body_; // empty for HEAD
    std::string_view tail_; // after body_ (response::shared_tail); empty for HEAD
    bool keep_alive_ = false;
    // Its header, sent with the body in one gathered write (a composed write over Beast's
    // serializer cost ~14% of a small request).
    std::string header_bytes_;
    api::router& router_;
    api::stream_hub& hub_;
    session_set& sessions_;
    worker_pools& workers_;
    std::string peer_;
    api::transport_info transport_;
    std::string method_; // of the request being answered, for the audit log
    std::string target_;
    std::string_view route_ = "other";              // the route template it matched, for metrics
    std::chrono::steady_clock::time_point started_; // its header arrived
    boost::asio::steady_timer deadline_timer_;
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    bool deadline_armed_ = false;
    bool writing_ = false;
    bool closing_ = false; // close_gracefully() was called: no more requests are read
};

using http_session = basic_http_session<client_stream>;
using tls_http_session = basic_http_session<tls_stream>;

extern template class basic_http_session<client_stream>;
extern template class basic_http_session<tls_stream>;

} // namespace netnsd::server
