// wire: a client connection that stays open across requests, for the keep-alive, pipelining and
// shutdown tests (support/http_client.hpp opens one connection per call). Every read has a
// deadline; nothing sleeps. Test thread only.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "support/http_client.hpp"

namespace netnsd::test
{

inline constexpr std::chrono::milliseconds wire_deadline{5000};

class connection
{
public:
    // Connects at once; is_open() says whether it worked.
    explicit connection(const endpoint& to);
    ~connection();
    connection(connection&& other) noexcept;
    connection& operator=(connection&& other) noexcept;
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    bool is_open() const noexcept { return fd_ >= 0; }
    bool send(const std::string& bytes);
    // Half-closes: the server reads EOF after what was sent.
    void shutdown_send();

    // The exact bytes of the next response (head and Content-Length body), or nullopt when the
    // connection closed or the deadline passed first.
    std::optional<std::string> read_response(std::chrono::milliseconds deadline = wire_deadline);
    // The head only (through the blank line), for HEAD responses, which have no body.
    std::optional<std::string> read_head(std::chrono::milliseconds deadline = wire_deadline);

    // Exactly `n` bytes, or nullopt when the connection closed or the deadline passed first.
    std::optional<std::string> read_bytes(std::size_t n,
                                          std::chrono::milliseconds deadline = wire_deadline);
    // Reads until what came so far (pending()) contains `text`; false on close or deadline.
    bool read_until_contains(const std::string& text,
                             std::chrono::milliseconds deadline = wire_deadline);

    // Reads until the server closes the connection (EOF or reset). Returns whatever came
    // before, or nullopt when the deadline passed with the connection still open.
    std::optional<std::string>
    read_until_closed(std::chrono::milliseconds deadline = wire_deadline);

    // Bytes read but not yet returned.
    const std::string& pending() const noexcept { return in_; }

    void close();
    // Closes with a reset (SO_LINGER of 0), as a crashed or killed client's kernel does: the
    // server's next read or write on it fails.
    void reset();

private:
    // Reads once into in_; false on EOF, error or deadline.
    bool fill(std::chrono::steady_clock::time_point until, bool* closed = nullptr);

    int fd_ = -1;
    std::string in_;
};

// A GET with only a Host header, HTTP/1.1, keep-alive implied.
std::string get_request(const std::string& target, const std::string& extra_headers = {});

} // namespace netnsd::test
