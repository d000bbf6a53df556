// stream_session: one Server-Sent Events or NDJSON client of the event stream, over a chunked
// HTTP/1.1 response (close-delimited for HTTP/1.0). Beast writes the response header (its
// serializer) and frames the chunks (make_chunk, make_chunk_last); what its subscription hands
// out goes in one chunk per round, one write. SSE clients get a comment every
// keepalive_interval so proxies and dead peers show. A client whose queue overflows has its stream
// ended (it resumes with since= or Last-Event-ID). A template over its stream, plain or TLS (both
// compiled once, in stream_session.cpp). Owns itself through its pending handlers; loop thread
// only.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/serializer.hpp>

#include "api/stream.hpp"

#include "server/connection.hpp"
#include "server/session_set.hpp"

namespace netnsd::server
{

template <class Stream>
class stream_session final : public std::enable_shared_from_this<stream_session<Stream>>,
                             public closable
{
public:
    static constexpr std::chrono::seconds keepalive_interval{15};
    // Messages written per chunk.
    static constexpr std::size_t batch = 256;

    // `peer` names the client in the log; `hold` lives as long as the session (the TLS context
    // the stream was made with).
    stream_session(Stream&& stream, api::stream_hub& hub, session_set& sessions,
                   api::stream_params&& params, unsigned http_version, std::string peer,
                   std::shared_ptr<const void> hold = {});
    ~stream_session();

    void run();
    // Shutdown: the last chunk after the write in flight, then close.
    void close_gracefully() override;
    void close_now() override { close_socket(); }

private:
    void on_header(boost::beast::error_code ec, std::size_t bytes);
    void do_read();
    void on_read(boost::beast::error_code ec, std::size_t bytes);
    void do_write();
    // Writes buffers_: one chunk (or, on HTTP/1.0, the bytes as they are), one write.
    void write_buffers();
    void on_write(boost::beast::error_code ec, std::size_t bytes);
    void do_keepalive();
    void on_keepalive(boost::beast::error_code ec);
    // Ends the response properly: the last chunk (HTTP/1.1), then close_socket().
    void end_response();
    void close_socket();

    using std::enable_shared_from_this<stream_session<Stream>>::shared_from_this;

    Stream stream_;
    std::string peer_;
    std::shared_ptr<const void> hold_;
    boost::asio::steady_timer keepalive_;
    api::subscription subscription_;
    session_set& sessions_;
    bool chunked_;
    boost::beast::http::response<boost::beast::http::empty_body> header_;
    std::optional<boost::beast::http::response_serializer<boost::beast::http::empty_body>>
        serializer_;
    std::vector<api::subscription::message> outbox_; // the messages of the write in flight
    std::vector<boost::asio::const_buffer> buffers_; // and their bytes
    std::array<char, 512> discard_{};
    bool started_ = false;
    bool writing_ = false;
    bool closing_ = false;  // close_gracefully() was called
    bool finished_ = false; // end_response() or close_socket() was called: nothing more to write
};

extern template class stream_session<client_stream>;
extern template class stream_session<tls_stream>;

} // namespace netnsd::server
