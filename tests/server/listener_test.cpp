// listener over real loopback connections: many at once, the max_connections limit, and
// shutdown (stop() closes every session and the loop ends by itself).
#include <string>
#include <sys/resource.h>
#include <vector>

#include <doctest/doctest.h>

#include "server/listener.hpp"

#include "running_server.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "wire.hpp"

namespace
{

using namespace netnsd;
using test::connection;
using test::get_request;
using test::running_server;

constexpr std::size_t max_connections = server::listener::max_connections;

// Client and server ends of max_connections + 1 connections, and some to spare.
constexpr rlim_t descriptors_needed = 2 * max_connections + 64;

bool can_have_enough_descriptors()
{
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return false;
    return lim.rlim_max == RLIM_INFINITY || lim.rlim_max >= descriptors_needed;
}

bool raise_descriptor_limit()
{
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0)
        return false;
    if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < descriptors_needed)
    {
        lim.rlim_cur = descriptors_needed;
        return ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
    }
    return true;
}

bool served(connection& c)
{
    if (!c.send(get_request("/healthz")))
        return false;
    const auto r = c.read_response();
    return r && r->starts_with("HTTP/1.1 200 OK\r\n");
}

} // namespace

TEST_CASE("the listener serves 50 connections open at once")
{
    running_server srv;
    srv.start();
    std::vector<connection> clients;
    for (int i = 0; i < 50; ++i)
    {
        clients.emplace_back(srv.where());
        REQUIRE(clients.back().is_open());
    }
    // All requests go out before any answer is read: every session is live at once.
    for (auto& c : clients)
        REQUIRE(c.send(get_request("/healthz")));
    for (auto& c : clients)
    {
        const auto r = c.read_response();
        REQUIRE(r);
        CHECK(r->starts_with("HTTP/1.1 200 OK\r\n"));
    }
    CHECK(srv.open_sessions() == 50u);

    // A client that goes away ends its session.
    clients.clear();
    CHECK(test::eventually([&] { return srv.open_sessions() == 0u; }));
    CHECK(srv.stop());
}

TEST_CASE("at max_connections the listener closes a new connection at once" *
          doctest::skip(!can_have_enough_descriptors()))
{
    static_assert(max_connections == 4096);
    REQUIRE(raise_descriptor_limit());
    running_server srv;
    srv.start();

    std::vector<connection> clients;
    clients.reserve(max_connections);
    std::size_t failed = 0;
    for (std::size_t i = 0; i < max_connections; ++i)
    {
        clients.emplace_back(srv.where());
        if (!served(clients.back()))
            ++failed;
    }
    REQUIRE(failed == 0u);
    CHECK(srv.open_sessions() == max_connections);

    // One more: the kernel completes the handshake, the listener closes it unanswered.
    connection extra(srv.where());
    REQUIRE(extra.is_open());
    CHECK(extra.read_until_closed() == std::string());
    CHECK(srv.open_sessions() == max_connections);

    // Once one leaves, a new connection is served again.
    clients.pop_back();
    REQUIRE(test::eventually([&] { return srv.open_sessions() == max_connections - 1; }));
    connection next(srv.where());
    CHECK(served(next));
    // Every connection kept open is still served.
    CHECK(served(clients.front()));
    CHECK(served(clients.back()));
    CHECK(srv.stop());
}

TEST_CASE("stop() closes every connection and run() returns by itself")
{
    running_server srv;
    srv.start();

    // Idle keep-alive connections, each answered once.
    std::vector<connection> idle;
    for (int i = 0; i < 3; ++i)
    {
        idle.emplace_back(srv.where());
        REQUIRE(served(idle.back()));
    }
    // One that never sent anything, one stopped in the middle of a request.
    connection silent(srv.where());
    connection partial(srv.where());
    REQUIRE(partial.send("GET /healthz HTTP/1.1\r\nHo"));
    REQUIRE(test::eventually([&] { return srv.open_sessions() == 5u; }));

    CHECK_MESSAGE(srv.stop(), "io_context::run() did not return by itself after stop()");

    for (auto& c : idle)
        CHECK(c.read_until_closed() == std::string());
    CHECK(silent.read_until_closed() == std::string());
    CHECK(partial.read_until_closed() == std::string());
    // The acceptor is closed too.
    CHECK_FALSE(connection(srv.where()).is_open());
}

TEST_CASE("stop() on a listener with no connection ends the loop")
{
    running_server srv;
    srv.start();
    CHECK(srv.stop());
}
