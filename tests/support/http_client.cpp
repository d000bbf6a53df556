#include "support/http_client.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace netnsd::test
{
namespace
{

class socket_fd
{
public:
    explicit socket_fd(int fd) : fd_(fd) {}
    ~socket_fd()
    {
        if (fd_ >= 0)
            ::close(fd_);
    }
    socket_fd(const socket_fd&) = delete;
    socket_fd& operator=(const socket_fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

} // namespace

int connect_to(const endpoint& to)
{
    sockaddr_storage storage{};
    socklen_t size = 0;
    if (!to.unix_path.empty())
    {
        auto& addr = reinterpret_cast<sockaddr_un&>(storage);
        if (to.unix_path.size() >= sizeof addr.sun_path)
            return -1;
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, to.unix_path.data(), to.unix_path.size());
        size = sizeof addr;
    }
    else
    {
        auto& addr = reinterpret_cast<sockaddr_in&>(storage);
        addr.sin_family = AF_INET;
        addr.sin_port = htons(to.port);
        if (::inet_pton(AF_INET, to.host.c_str(), &addr.sin_addr) != 1)
            return -1;
        size = sizeof addr;
    }
    const int fd = ::socket(storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&storage), size) != 0)
    {
        ::close(fd);
        return -1;
    }
    return fd;
}

namespace
{

bool send_all(int fd, const std::string& bytes)
{
    std::size_t sent = 0;
    while (sent < bytes.size())
    {
        const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0)
            return false;
        sent += static_cast<std::size_t>(n);
    }
    return true;
}

} // namespace

std::string http_reply::header(const std::string& name) const
{
    for (const auto& [key, value] : headers)
        if (key.size() == name.size() && ::strncasecmp(key.c_str(), name.c_str(), key.size()) == 0)
            return value;
    return {};
}

std::optional<http_reply> parse_reply(const std::string& bytes, std::size_t* used)
{
    const auto head_end = bytes.find("\r\n\r\n");
    if (head_end == std::string::npos || bytes.compare(0, 5, "HTTP/") != 0)
        return std::nullopt;
    http_reply reply;
    const auto first_space = bytes.find(' ');
    reply.status = static_cast<unsigned>(std::stoul(bytes.substr(first_space + 1, 3)));
    std::size_t at = bytes.find("\r\n") + 2;
    std::size_t length = 0;
    while (at < head_end)
    {
        const auto eol = bytes.find("\r\n", at);
        const auto line = bytes.substr(at, eol - at);
        const auto colon = line.find(':');
        if (colon != std::string::npos)
        {
            auto value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ')
                value.erase(0, 1);
            reply.headers.emplace_back(line.substr(0, colon), value);
        }
        at = eol + 2;
    }
    const auto cl = reply.header("Content-Length");
    if (!cl.empty())
        length = std::stoul(cl);
    const auto body_start = head_end + 4;
    if (bytes.size() < body_start + length)
        return std::nullopt;
    reply.body = bytes.substr(body_start, length);
    if (used != nullptr)
        *used = body_start + length;
    return reply;
}

std::string exchange_raw(const endpoint& to, const std::string& bytes,
                         std::chrono::milliseconds timeout)
{
    socket_fd fd(connect_to(to));
    if (fd.get() < 0)
        return {};
    send_all(fd.get(), bytes);
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[65536];
    for (;;)
    {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        pollfd p{fd.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            break;
        const auto n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

std::optional<http_reply> http(const endpoint& to, const std::string& method,
                               const std::string& target, const std::string& body,
                               const std::vector<std::pair<std::string, std::string>>& headers)
{
    socket_fd fd(connect_to(to));
    if (fd.get() < 0)
        return std::nullopt;
    std::string req =
        method + " " + target + " HTTP/1.1\r\nHost: " + to.host + "\r\nConnection: close\r\n";
    for (const auto& [k, v] : headers)
        req += k + ": " + v + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT")
        req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    if (!send_all(fd.get(), req))
        return std::nullopt;
    std::string in;
    char buf[65536];
    for (;;)
    {
        const auto n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n <= 0)
            break;
        in.append(buf, static_cast<std::size_t>(n));
    }
    return parse_reply(in);
}

} // namespace netnsd::test
