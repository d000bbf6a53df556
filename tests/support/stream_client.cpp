#include "support/stream_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace netnsd::test
{

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

struct ws_client::impl
{
    asio::io_context ioc;
    websocket::stream<tcp::socket> ws{ioc};
    beast::flat_buffer buffer;
    bool ok = false;
    unsigned status = 0;
    std::optional<int> close;
    bool reading = false;
    bool done = false;
    boost::system::error_code result;
};

ws_client::ws_client(const endpoint& to, const std::string& target, int receive_buffer)
    : impl_(std::make_unique<impl>())
{
    boost::system::error_code ec;
    auto& sock = impl_->ws.next_layer();
    sock.open(tcp::v4(), ec);
    if (receive_buffer > 0)
        sock.set_option(asio::socket_base::receive_buffer_size(receive_buffer), ec);
    sock.connect({asio::ip::make_address(to.host), to.port}, ec);
    if (ec)
        return;
    websocket::response_type res;
    impl_->ws.handshake(res, to.host, target, ec);
    impl_->status = res.result_int();
    impl_->ok = !ec;
}

ws_client::~ws_client() = default;

bool ws_client::ok() const noexcept
{
    return impl_->ok;
}

unsigned ws_client::handshake_status() const noexcept
{
    return impl_->status;
}

std::optional<int> ws_client::close_code() const noexcept
{
    return impl_->close;
}

std::optional<nlohmann::json> ws_client::read(std::chrono::milliseconds timeout)
{
    auto& d = *impl_;
    if (!d.ok)
        return std::nullopt;
    // A read that times out stays pending (cancelling would break the websocket stream); the
    // next call waits for the same one.
    if (!d.reading)
    {
        d.reading = true;
        d.done = false;
        d.buffer.clear();
        d.ws.async_read(d.buffer,
                        [&d](boost::system::error_code ec, std::size_t)
                        {
                            d.done = true;
                            d.result = ec;
                        });
    }
    d.ioc.restart();
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!d.done && std::chrono::steady_clock::now() < until)
        d.ioc.run_one_until(until);
    if (!d.done)
        return std::nullopt;
    d.reading = false;
    if (d.result)
    {
        if (d.result == websocket::error::closed)
            d.close = d.ws.reason().code;
        d.ok = false;
        return std::nullopt;
    }
    return nlohmann::json::parse(beast::buffers_to_string(d.buffer.data()), nullptr, false);
}

struct wss_client::impl
{
    asio::io_context ioc;
    asio::ssl::context ctx{asio::ssl::context::tls_client};
    std::optional<websocket::stream<beast::ssl_stream<tcp::socket>>> ws;
    beast::flat_buffer buffer;
    bool ok = false;
    unsigned status = 0;
    bool reading = false;
    bool done = false;
    boost::system::error_code result;
};

wss_client::wss_client(const endpoint& to, const std::string& target, const std::string& ca_file)
    : impl_(std::make_unique<impl>())
{
    auto& d = *impl_;
    boost::system::error_code ec;
    d.ctx.load_verify_file(ca_file, ec);
    d.ctx.set_verify_mode(asio::ssl::verify_peer, ec);
    d.ws.emplace(d.ioc, d.ctx);
    auto& sock = beast::get_lowest_layer(*d.ws);
    sock.connect({asio::ip::make_address(to.host), to.port}, ec);
    if (ec)
        return;
    d.ws->next_layer().handshake(asio::ssl::stream_base::client, ec);
    if (ec)
        return;
    websocket::response_type res;
    d.ws->handshake(res, to.host + ":" + std::to_string(to.port), target, ec);
    d.status = res.result_int();
    d.ok = !ec;
}

wss_client::~wss_client() = default;

bool wss_client::ok() const noexcept
{
    return impl_->ok;
}

unsigned wss_client::handshake_status() const noexcept
{
    return impl_->status;
}

std::optional<nlohmann::json> wss_client::read(std::chrono::milliseconds timeout)
{
    auto& d = *impl_;
    if (!d.ok)
        return std::nullopt;
    if (!d.reading)
    {
        d.reading = true;
        d.done = false;
        d.buffer.clear();
        d.ws->async_read(d.buffer,
                         [&d](boost::system::error_code ec, std::size_t)
                         {
                             d.done = true;
                             d.result = ec;
                         });
    }
    d.ioc.restart();
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!d.done && std::chrono::steady_clock::now() < until)
        d.ioc.run_one_until(until);
    if (!d.done)
        return std::nullopt;
    d.reading = false;
    if (d.result)
    {
        d.ok = false;
        return std::nullopt;
    }
    return nlohmann::json::parse(beast::buffers_to_string(d.buffer.data()), nullptr, false);
}

bool ws_client::send_text(const std::string& text)
{
    boost::system::error_code ec;
    impl_->ws.text(true);
    impl_->ws.write(asio::buffer(text), ec);
    return !ec;
}

bool ws_client::send_binary(const std::string& bytes)
{
    boost::system::error_code ec;
    impl_->ws.binary(true);
    impl_->ws.write(asio::buffer(bytes), ec);
    return !ec;
}

void ws_client::close()
{
    boost::system::error_code ec;
    impl_->ws.next_layer().close(ec);
    impl_->ok = false;
}

// --- stream_reader --------------------------------------------------------------------------

stream_reader::stream_reader(const endpoint& to, const std::string& target, bool sse,
                             const std::string& last_event_id)
    : sse_(sse)
{
    fd_ = connect_to(to);
    if (fd_ < 0)
    {
        ended_ = true;
        return;
    }
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: " + to.host + "\r\n";
    req += sse ? "Accept: text/event-stream\r\n" : "Accept: application/x-ndjson\r\n";
    if (!last_event_id.empty())
        req += "Last-Event-ID: " + last_event_id + "\r\n";
    req += "\r\n";
    ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (raw_.find("\r\n\r\n") == std::string::npos)
        if (!fill(deadline))
            return;
    const auto head_end = raw_.find("\r\n\r\n");
    const auto head = raw_.substr(0, head_end);
    raw_.erase(0, head_end + 4);
    status_ = static_cast<unsigned>(std::stoul(head.substr(head.find(' ') + 1, 3)));
    chunked_ = head.find("Transfer-Encoding: chunked") != std::string::npos;
    if (const auto ct = head.find("Content-Type: "); ct != std::string::npos)
        content_type_ = head.substr(ct + 14, head.find("\r\n", ct) - ct - 14);
    if (const auto cl = head.find("Content-Length: "); cl != std::string::npos)
    {
        // Not a stream: a problem response. Keep its body as the only message.
        const auto length = std::stoul(head.substr(cl + 16));
        while (raw_.size() < length && fill(deadline))
        {
        }
        body_ = raw_.substr(0, length) + "\n";
        raw_.clear();
        chunked_ = false;
    }
}

stream_reader::~stream_reader()
{
    if (fd_ >= 0)
        ::close(fd_);
}

bool stream_reader::fill(std::chrono::steady_clock::time_point deadline)
{
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
        return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        return false;
    char buf[65536];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0)
    {
        ended_ = true;
        return false;
    }
    raw_.append(buf, static_cast<std::size_t>(n));
    return true;
}

bool stream_reader::dechunk()
{
    if (!chunked_)
    {
        body_ += raw_;
        raw_.clear();
        return true;
    }
    for (;;)
    {
        const auto eol = raw_.find("\r\n");
        if (eol == std::string::npos)
            return true;
        const auto size = std::stoul(raw_.substr(0, eol), nullptr, 16);
        if (size == 0)
        {
            ended_ = true;
            return false;
        }
        if (raw_.size() < eol + 2 + size + 2)
            return true;
        body_.append(raw_, eol + 2, size);
        raw_.erase(0, eol + 2 + size + 2);
    }
}

std::optional<stream_reader::message> stream_reader::read(std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;)
    {
        dechunk();
        const std::string separator = sse_ ? "\n\n" : "\n";
        const auto end = body_.find(separator);
        if (end != std::string::npos)
        {
            const auto block = body_.substr(0, end);
            body_.erase(0, end + separator.size());
            message m;
            if (!sse_)
            {
                m.data = nlohmann::json::parse(block, nullptr, false);
                return m;
            }
            std::size_t at = 0;
            bool comment_only = true;
            while (at <= block.size())
            {
                auto nl = block.find('\n', at);
                if (nl == std::string::npos)
                    nl = block.size();
                const auto line = block.substr(at, nl - at);
                at = nl + 1;
                if (line.starts_with(":"))
                    continue;
                comment_only = false;
                if (line.starts_with("id: "))
                    m.id = std::stoull(line.substr(4));
                else if (line.starts_with("event: "))
                    m.event = line.substr(7);
                else if (line.starts_with("data: "))
                    m.data = nlohmann::json::parse(line.substr(6), nullptr, false);
            }
            if (comment_only)
            {
                ++comments_;
                continue;
            }
            return m;
        }
        if (ended_ || !fill(deadline))
        {
            dechunk();
            if (body_.find(separator) != std::string::npos)
                continue;
            return std::nullopt;
        }
    }
}

std::optional<bool> tls_peer_ignoring_close_notify(const endpoint& to, const std::string& target,
                                                   const std::string& ca_file,
                                                   std::chrono::milliseconds timeout)
{
    namespace http = beast::http;
    asio::io_context ioc;
    asio::ssl::context ctx{asio::ssl::context::tls_client};
    boost::system::error_code ec;
    ctx.load_verify_file(ca_file, ec);
    ctx.set_verify_mode(asio::ssl::verify_peer, ec);
    beast::ssl_stream<tcp::socket> tls(ioc, ctx);
    auto& sock = beast::get_lowest_layer(tls);
    sock.connect({asio::ip::make_address(to.host), to.port}, ec);
    if (!ec)
        tls.handshake(asio::ssl::stream_base::client, ec);
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, to.host + ":" + std::to_string(to.port));
    req.set(http::field::connection, "close");
    if (!ec)
        http::write(tls, req, ec);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    if (!ec)
        http::read(tls, buffer, res, ec);
    if (ec)
        return std::nullopt;
    // From here on the raw socket: the close_notify arrives as bytes and is never answered.
    // The server's deadline ends the wait with end of file.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char bytes[4096];
    for (;;)
    {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return false;
        pollfd p{sock.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            continue;
        const auto n = ::recv(sock.native_handle(), bytes, sizeof bytes, 0);
        if (n <= 0)
            return true; // end of file (or reset): the server closed it
    }
}

} // namespace netnsd::test
