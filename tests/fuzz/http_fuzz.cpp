// Fuzz target: the HTTP request path end to end. The input is written, as a client would, to
// one end of a Unix socketpair whose other end is a real server::http_session (Beast's parser
// with the session's limits, keep-alive and pipelining, the api router with metrics and admin
// enabled, every handler, and the websocket and SSE/NDJSON sessions a stream request becomes),
// then the client shuts down writing and reads every answer. The loop runs until nothing is
// left to do; then the sessions are closed as shutdown closes them, politely and then not.
// Admin requests that pass validation become jobs for worker pools of no threads, which are
// dropped unrun: nothing reaches the kernel. Checked: no crash, leak, UB, exception escaping a
// handler, and no session or subscription left behind.
#include <array>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>

#include "core/log.hpp"

#include "api/stream.hpp"

#include "server/connection.hpp"
#include "server/http_session.hpp"
#include "server/session_set.hpp"
#include "server/worker_pools.hpp"

#include "wired_router.hpp"

namespace
{

using namespace netnsd;
namespace asio = boost::asio;

// The loop objects main wires, over the fixture's model; they outlive every input.
struct fixture : fuzz::wired_router
{
    fixture()
    {
        // A peer that has gone makes writes fail with EPIPE, as in the daemon, not a signal.
        std::signal(SIGPIPE, SIG_IGN);
        // Audit lines carry the request's target: JSON escapes it. The test closes stderr
        // (-close_fd_mask=2; libFuzzer's and the sanitizers' reports still show).
        core::log::set_format(core::log::format::json);
    }
};

// The client: writes the input, shuts down writing, reads until the server closes.
class client
{
public:
    client(server::client_socket&& socket, std::string_view input)
        : socket_(std::move(socket)), input_(input)
    {
    }

    void start()
    {
        asio::async_write(socket_, asio::buffer(input_.data(), input_.size()),
                          [this](boost::system::error_code, std::size_t)
                          {
                              boost::system::error_code ignored;
                              socket_.shutdown(server::client_socket::shutdown_send, ignored);
                          });
        do_read();
    }

private:
    void do_read()
    {
        socket_.async_read_some(asio::buffer(sink_),
                                [this](boost::system::error_code ec, std::size_t)
                                {
                                    if (!ec)
                                        do_read();
                                });
    }

    server::client_socket socket_;
    std::string_view input_;
    std::array<char, 16 * 1024> sink_;
};

server::client_socket adopt(asio::io_context& ioc, int fd)
{
    return server::client_socket(ioc, server::stream_protocol(AF_UNIX, 0), fd);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static fixture f;
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        __builtin_trap();

    server::session_set sessions(&f.stats);
    asio::io_context ioc{1};
    std::optional<server::worker_pools> workers(std::in_place, 0, 0);
    // Runs every handler that can run now; the loop is idle when none can (all is local: a
    // socketpair, and timers of 30 s that never fire here).
    auto settle = [&]
    {
        ioc.restart();
        while (ioc.poll() != 0)
        {
        }
    };

    std::make_shared<server::http_session>(adopt(ioc, fds[0]), f.router, f.hub, sessions, *workers)
        ->run();
    client peer(adopt(ioc, fds[1]), {reinterpret_cast<const char*>(data), size});
    peer.start();
    settle();
    // What is left waits for events, a worker, or a client that sends nothing more: shut down
    // as the daemon does, politely (close frames, last chunks), then by closing the sockets.
    sessions.close_all();
    settle();
    sessions.abort_all();
    settle();
    workers.reset(); // the sessions whose admin jobs were never run go with them
    settle();
    if (sessions.size() != 0 || f.hub.size() != 0)
        __builtin_trap(); // a session or a subscription outlived its connection
    return 0;
}
