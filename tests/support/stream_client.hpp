// Test clients of the event stream: a websocket client (Beast, client side) and an SSE/NDJSON
// reader over a raw socket that undoes the chunked encoding. Each read waits at most the given
// time. Test thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"

namespace netnsd::test
{

using namespace std::chrono_literals;

class ws_client
{
public:
    // Connects and upgrades; ok() is false if either failed (handshake_status() then says what
    // the server answered instead of 101). A non-zero receive buffer makes a slow reader.
    ws_client(const endpoint& to, const std::string& target, int receive_buffer = 0);
    ~ws_client();
    ws_client(const ws_client&) = delete;
    ws_client& operator=(const ws_client&) = delete;

    bool ok() const noexcept;
    unsigned handshake_status() const noexcept;

    // The next message as JSON; nullopt on timeout or when the server closed (see close_code).
    std::optional<nlohmann::json> read(std::chrono::milliseconds timeout = 5000ms);
    // The close code the server sent, once a read has seen the close.
    std::optional<int> close_code() const noexcept;

    bool send_text(const std::string& text);
    bool send_binary(const std::string& bytes);
    void close();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// A websocket client over TLS (wss://), trusting the CA in `ca_file`.
class wss_client
{
public:
    wss_client(const endpoint& to, const std::string& target, const std::string& ca_file);
    ~wss_client();
    wss_client(const wss_client&) = delete;
    wss_client& operator=(const wss_client&) = delete;

    bool ok() const noexcept;
    unsigned handshake_status() const noexcept;
    std::optional<nlohmann::json> read(std::chrono::milliseconds timeout = 5000ms);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// A TLS client that asks `target` with Connection: close, reads the answer, then never speaks
// TLS again: it does not answer the server's close_notify, and keeps the TCP connection open.
// Returns whether the server closed the connection within `timeout` (its own deadline for the
// close_notify exchange); nullopt when the request could not be made or answered.
std::optional<bool> tls_peer_ignoring_close_notify(const endpoint& to, const std::string& target,
                                                   const std::string& ca_file,
                                                   std::chrono::milliseconds timeout);

// An SSE or NDJSON client of GET /api/v1/events.
class stream_reader
{
public:
    struct message
    {
        std::optional<std::uint64_t> id; // SSE id:
        std::string event;               // SSE event:
        nlohmann::json data;
    };

    stream_reader(const endpoint& to, const std::string& target, bool sse,
                  const std::string& last_event_id = {});
    ~stream_reader();
    stream_reader(const stream_reader&) = delete;
    stream_reader& operator=(const stream_reader&) = delete;

    unsigned status() const noexcept { return status_; }
    const std::string& content_type() const noexcept { return content_type_; }
    // The next message; nullopt on timeout or end of stream (ended() tells which).
    std::optional<message> read(std::chrono::milliseconds timeout = 5000ms);
    bool ended() const noexcept { return ended_; }
    // SSE comment lines (keep-alives) seen so far.
    std::size_t comments() const noexcept { return comments_; }

private:
    bool fill(std::chrono::steady_clock::time_point deadline);
    bool dechunk();

    int fd_ = -1;
    bool sse_;
    unsigned status_ = 0;
    std::string content_type_;
    bool chunked_ = false;
    std::string raw_;  // bytes from the socket not yet decoded
    std::string body_; // decoded body not yet consumed
    bool ended_ = false;
    std::size_t comments_ = 0;
};

} // namespace netnsd::test
