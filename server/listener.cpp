#include "server/listener.hpp"

#include <cerrno>
#include <memory>
#include <optional>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "core/log.hpp"

#include "api/metrics.hpp"

#include "server/tls.hpp"
#include "server/tls_accept.hpp"

namespace netnsd::server
{

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol;

namespace
{

[[noreturn]] void fail(const boost::system::error_code& ec, const char* what)
{
    throw listen_error(std::string(what) + ": " + ec.message());
}

[[noreturn]] void fail(int error, const char* what)
{
    fail(boost::system::error_code(error, boost::system::system_category()), what);
}

void check(const boost::system::error_code& ec, const char* what)
{
    if (ec)
        fail(ec, what);
}

// lstat(2); nullopt (errno set) when it fails.
std::optional<struct stat> lstat_of(const std::string& path)
{
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0)
        return std::nullopt;
    return st;
}

tcp::endpoint resolve(asio::io_context& ioc, const listen_address& where)
{
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(where.host, ec);
    if (!ec)
        return {address, where.port};
    // A host name such as "localhost": the first address it resolves to.
    tcp::resolver resolver(ioc);
    const auto results = resolver.resolve(where.host, std::to_string(where.port), ec);
    if (ec || results.empty())
        fail(ec ? ec : asio::error::host_not_found, "resolve");
    return results.begin()->endpoint();
}

// Makes `path` free for bind(): nothing there, or a socket nobody listens on any more (left by
// a process that died), which is removed. A live socket or any other file is an error.
void clear_stale_socket(asio::io_context& ioc, const std::string& path)
{
    const auto st = lstat_of(path);
    if (!st)
    {
        if (errno == ENOENT)
            return;
        fail(errno, "stat");
    }
    if (!S_ISSOCK(st->st_mode))
        fail(EEXIST, "a file that is not a socket is in the way");
    unix_socket::socket probe(ioc);
    boost::system::error_code ec;
    probe.connect(unix_socket::endpoint(path), ec);
    if (!ec)
        fail(EADDRINUSE, "another process serves on it");
    if (ec != asio::error::connection_refused)
        fail(ec, "connect");
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        fail(errno, "unlink the stale socket");
}

} // namespace

listener::listener(asio::io_context& ioc, const listen_address& where, api::router& router,
                   api::stream_hub& hub, session_set& sessions, worker_pools& workers,
                   const listener_options& options)
    : acceptor_(ioc), retry_(ioc), where_(where), router_(router), hub_(hub), sessions_(sessions),
      workers_(workers), tls_(where.is_unix() ? nullptr : options.tls)
{
    // Error codes, not Asio's exceptions: the message names the step, without source locations.
    boost::system::error_code ec;
    if (where.is_unix())
    {
        clear_stale_socket(ioc, where.path);
        const stream_protocol::endpoint endpoint{unix_socket::endpoint(where.path)};
        acceptor_.open(endpoint.protocol(), ec);
        check(ec, "socket");
        acceptor_.bind(endpoint, ec);
        check(ec, "bind");
        // Before listen(): until then a connect is refused, so no client ever sees the socket
        // with the umask's mode.
        // The group first, then the mode: members of --admin-group may connect (as docker.sock
        // admits the docker group), nobody else but root.
        const bool grouped =
            !options.socket_group || ::chown(where.path.c_str(), static_cast<uid_t>(-1),
                                             static_cast<gid_t>(*options.socket_group)) == 0;
        const auto st =
            grouped && ::chmod(where.path.c_str(), 0660) == 0 ? lstat_of(where.path) : std::nullopt;
        if (!st)
        {
            const int error = errno;
            ::unlink(where.path.c_str());
            fail(error, grouped ? "chmod" : "chown to the admin group");
        }
        socket_inode_ = st->st_ino;
    }
    else
    {
        const auto endpoint = resolve(ioc, where);
        acceptor_.open(stream_protocol::endpoint(endpoint).protocol(), ec);
        check(ec, "socket");
        acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
        check(ec, "SO_REUSEADDR");
        if (endpoint.address().is_v6())
        {
            acceptor_.set_option(asio::ip::v6_only(true), ec);
            check(ec, "IPV6_V6ONLY");
        }
        acceptor_.bind(stream_protocol::endpoint(endpoint), ec);
        check(ec, "bind");
    }
    acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    check(ec, "listen");
}

listener::~listener()
{
    remove_socket_file();
}

std::uint16_t listener::port() const
{
    const auto ip = ip_endpoint(acceptor_.local_endpoint());
    return ip ? ip->port() : 0;
}

std::string listener::address() const
{
    if (where_.is_unix())
        return where_.to_string();
    auto shown = where_;
    shown.port = port();
    return shown.to_string();
}

void listener::start()
{
    do_accept();
}

void listener::stop()
{
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    remove_socket_file();
}

void listener::remove_socket_file()
{
    // Only the file this listener bound: another netnsd may have replaced it since.
    if (socket_inode_ == 0)
        return;
    if (const auto st = lstat_of(where_.path); st && st->st_ino == socket_inode_)
        ::unlink(where_.path.c_str());
    socket_inode_ = 0;
}

void listener::do_accept()
{
    acceptor_.async_accept([this](boost::system::error_code ec, client_socket socket)
                           { on_accept(ec, std::move(socket)); });
}

void listener::on_accept(boost::system::error_code ec, client_socket socket)
{
    if (ec == asio::error::operation_aborted || !acceptor_.is_open())
        return;
    auto* stats = router_.stats();
    if (ec)
    {
        if (stats != nullptr)
            stats->count_connection_rejected(api::connection_rejection::accept_failed);
        // EMFILE and friends: keep serving the connections we have; try again a little later
        // (at once would spin: the pending connection stays pending).
        if (!failing_)
            core::log::warn("accept failed; retrying",
                            {{"listen", where_.to_string()},
                             {"error", ec.message()},
                             {"retry_ms", std::to_string(accept_backoff.count())}});
        failing_ = true;
        retry_.expires_after(accept_backoff);
        retry_.async_wait(
            [this](boost::system::error_code timer_ec)
            {
                if (!timer_ec && acceptor_.is_open())
                    do_accept();
            });
        return;
    }
    if (failing_)
        core::log::info("accept works again", {{"listen", where_.to_string()}});
    failing_ = false;
    if (sessions_.size() >= max_connections)
    {
        if (stats != nullptr)
            stats->count_connection_rejected(api::connection_rejection::limit);
        if (!at_limit_)
            core::log::warn("connection limit reached; closing new connections until one ends",
                            {{"limit", std::to_string(max_connections)}});
        at_limit_ = true;
        boost::system::error_code ignored;
        socket.close(ignored);
        return do_accept();
    }
    at_limit_ = false;
    tune_for_requests(socket);
    if (tls_ != nullptr)
        std::make_shared<tls_accept>(std::move(socket), tls_->current(), router_, hub_, sessions_,
                                     workers_)
            ->run();
    else
        std::make_shared<http_session>(std::move(socket), router_, hub_, sessions_, workers_)
            ->run();
    do_accept();
}

} // namespace netnsd::server
