// listener: accepts connections on one address (TCP, or a Unix socket) and starts an
// http_session for each. Every listener of the process shares one session_set, and with it the
// limit of max_connections open at once (beyond it a new connection is closed at once and
// counted). A Unix socket's file is created with mode 0660, replaces a stale socket left by a
// process that died, never a live one or another kind of file, and is removed again by stop();
// with a group (--admin-group) it is that group's. A TCP listener given TLS contexts speaks only
// HTTPS (tls_accept first). Owned by main; loop thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/config.hpp"
#include "server/connection.hpp"
#include "server/http_session.hpp"
#include "server/session_set.hpp"

namespace netnsd::server
{

// Why an address cannot be served: the step that failed and the error ("bind: Address already
// in use").
class listen_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

class tls_contexts;

struct listener_options
{
    // HTTPS on a TCP address (ignored for a Unix socket, which stays plain).
    const tls_contexts* tls = nullptr;
    // The Unix socket file's group; root's when none.
    std::optional<std::uint32_t> socket_group;
};

class listener
{
public:
    static constexpr std::size_t max_connections = 4096;
    // After a failed accept (EMFILE, ENFILE, ENOBUFS), wait this long before the next one.
    static constexpr std::chrono::milliseconds accept_backoff{100};

    // Binds and listens. Throws listen_error when the address cannot be used (start-up only).
    listener(boost::asio::io_context& ioc, const listen_address& where, api::router& router,
             api::stream_hub& hub, session_set& sessions, worker_pools& workers,
             const listener_options& options = {});
    ~listener();
    listener(const listener&) = delete;
    listener& operator=(const listener&) = delete;

    void start();
    // Stops accepting (and removes a Unix socket's file); the open connections stay.
    void stop();
    // What it listens on, as --listen spells it, with the port the kernel picked for port 0.
    std::string address() const;
    // The TCP port; 0 for a Unix socket.
    std::uint16_t port() const;
    bool serves_tls() const noexcept { return tls_ != nullptr; }

private:
    void do_accept();
    void on_accept(boost::system::error_code ec, client_socket socket);
    void remove_socket_file();

    client_acceptor acceptor_;
    boost::asio::steady_timer retry_;
    listen_address where_;
    std::uint64_t socket_inode_ = 0; // of a Unix socket's file, once bound
    bool failing_ = false;           // log accept failures once per run of them
    bool at_limit_ = false;          // and the connection limit once per run of rejections
    api::router& router_;
    api::stream_hub& hub_;
    session_set& sessions_;
    worker_pools& workers_;
    const tls_contexts* tls_ = nullptr;
};

} // namespace netnsd::server
