#include "wire.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

namespace netnsd::test
{

connection::connection(const endpoint& to) : fd_(connect_to(to)) {}

connection::~connection()
{
    close();
}

connection::connection(connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), in_(std::move(other.in_))
{
}

connection& connection::operator=(connection&& other) noexcept
{
    if (this != &other)
    {
        close();
        fd_ = std::exchange(other.fd_, -1);
        in_ = std::move(other.in_);
    }
    return *this;
}

void connection::close()
{
    if (fd_ >= 0)
        ::close(fd_);
    fd_ = -1;
}

void connection::reset()
{
    if (fd_ < 0)
        return;
    const linger abortive{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive);
    close();
}

bool connection::send(const std::string& bytes)
{
    std::size_t sent = 0;
    while (fd_ >= 0 && sent < bytes.size())
    {
        const auto n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        sent += static_cast<std::size_t>(n);
    }
    return fd_ >= 0;
}

void connection::shutdown_send()
{
    if (fd_ >= 0)
        ::shutdown(fd_, SHUT_WR);
}

bool connection::fill(std::chrono::steady_clock::time_point until, bool* closed)
{
    if (fd_ < 0)
        return false;
    for (;;)
    {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        pollfd p{fd_, POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return false;
        char buf[65536];
        const auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
        {
            // EOF, or a reset (the server closed with our bytes unread): closed either way.
            if (closed != nullptr)
                *closed = true;
            return false;
        }
        in_.append(buf, static_cast<std::size_t>(n));
        return true;
    }
}

std::optional<std::string> connection::read_response(std::chrono::milliseconds deadline)
{
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;)
    {
        std::size_t used = 0;
        if (parse_reply(in_, &used))
        {
            std::string out = in_.substr(0, used);
            in_.erase(0, used);
            return out;
        }
        if (!fill(until))
            return std::nullopt;
    }
}

std::optional<std::string> connection::read_head(std::chrono::milliseconds deadline)
{
    const auto until = std::chrono::steady_clock::now() + deadline;
    for (;;)
    {
        if (const auto end = in_.find("\r\n\r\n"); end != std::string::npos)
        {
            std::string out = in_.substr(0, end + 4);
            in_.erase(0, end + 4);
            return out;
        }
        if (!fill(until))
            return std::nullopt;
    }
}

std::optional<std::string> connection::read_bytes(std::size_t n, std::chrono::milliseconds deadline)
{
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (in_.size() < n)
        if (!fill(until))
            return std::nullopt;
    std::string out = in_.substr(0, n);
    in_.erase(0, n);
    return out;
}

bool connection::read_until_contains(const std::string& text, std::chrono::milliseconds deadline)
{
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (in_.find(text) == std::string::npos)
        if (!fill(until))
            return false;
    return true;
}

std::optional<std::string> connection::read_until_closed(std::chrono::milliseconds deadline)
{
    const auto until = std::chrono::steady_clock::now() + deadline;
    bool closed = false;
    while (fill(until, &closed))
    {
    }
    if (!closed)
        return std::nullopt;
    return std::exchange(in_, {});
}

std::string get_request(const std::string& target, const std::string& extra_headers)
{
    return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "\r\n";
}

} // namespace netnsd::test
