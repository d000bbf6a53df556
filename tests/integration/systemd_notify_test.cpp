// systemd's readiness protocol (Type=notify) on the real daemon: netnsd is started with
// $NOTIFY_SOCKET naming a datagram socket the test reads, as systemd would. READY=1 must come
// only once the first scan is done and the API answers, WATCHDOG=1 every half WATCHDOG_USEC,
// and STOPPING=1 on SIGTERM.
#include <chrono>
#include <cstddef>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "support/netns_ops.hpp"
#include "support/oracle.hpp"
#include "support/process.hpp"

namespace
{

using namespace netnsd::test;
using namespace std::chrono_literals;

const std::string token_arg = "--token-file=/run/netnsd-test/token";

// The receiving end of $NOTIFY_SOCKET: a path ("/run/...") or an abstract name ("@...").
class notify_socket
{
public:
    explicit notify_socket(std::string name) : name_(std::move(name))
    {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        REQUIRE(name_.size() < sizeof(address.sun_path));
        name_.copy(address.sun_path, name_.size());
        if (name_.front() == '@')
            address.sun_path[0] = '\0';
        else
            ::unlink(name_.c_str());
        const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
        REQUIRE(::bind(fd_, reinterpret_cast<const sockaddr*>(&address), size) == 0);
    }
    ~notify_socket()
    {
        ::close(fd_);
        if (name_.front() == '/')
            ::unlink(name_.c_str());
    }
    notify_socket(const notify_socket&) = delete;
    notify_socket& operator=(const notify_socket&) = delete;

    std::string env() const { return "NOTIFY_SOCKET=" + name_; }

    // The next datagram, or nullopt when none came within `timeout`.
    std::optional<std::string> next(std::chrono::milliseconds timeout = 10s) const
    {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1)
            return std::nullopt;
        char buffer[4096];
        const auto n = ::recv(fd_, buffer, sizeof buffer, 0);
        if (n < 0)
            return std::nullopt;
        return std::string(buffer, static_cast<std::size_t>(n));
    }

    // The next datagram that is not a watchdog ping.
    std::optional<std::string> next_state(std::chrono::milliseconds timeout = 10s) const
    {
        for (;;)
        {
            auto message = next(timeout);
            if (!message || *message != "WATCHDOG=1")
                return message;
        }
    }

private:
    std::string name_;
    int fd_ = -1;
};

bool has_line(const std::string& message, const std::string& line)
{
    return ("\n" + message + "\n").find("\n" + line + "\n") != std::string::npos;
}

} // namespace

TEST_CASE("sd_notify (systemd): READY=1 comes after the first scan, STOPPING=1 on SIGTERM")
{
    // Enough namespaces that a READY=1 sent before the scan would be caught out.
    constexpr int count = 100;
    for (int i = 0; i < count; ++i)
        REQUIRE(create_netns("pre" + std::to_string(i)));
    const notify_socket sock("/run/netnsd-notify.sock");
    netnsd_process d({token_arg}, {}, netnsd_binary(), {sock.env()});

    const auto ready = sock.next();
    INFO(d.log());
    REQUIRE(ready);
    CHECK(has_line(*ready, "READY=1"));
    // At the moment READY=1 arrives, the API answers and already lists every namespace.
    const auto listed = api_live(d.where());
    REQUIRE(listed);
    CHECK(listed->size() == count);
    CHECK(*listed == ip_list());

    // SIGTERM, and the exit; the datagram waits in the socket.
    CHECK(d.stop() == 0);
    const auto stopping = sock.next_state();
    REQUIRE(stopping);
    CHECK(has_line(*stopping, "STOPPING=1"));
    // Nothing after STOPPING=1, and READY=1 was sent once.
    CHECK(!sock.next(100ms));
}

TEST_CASE("sd_notify (systemd): an abstract NOTIFY_SOCKET gets READY=1 and WATCHDOG=1 every half "
          "WATCHDOG_USEC")
{
    const notify_socket sock("@netnsd-test-notify-" + std::to_string(::getpid()));
    // 400 ms: a ping every 200 ms.
    netnsd_process d({token_arg}, {}, netnsd_binary(), {sock.env(), "WATCHDOG_USEC=400000"});
    const auto ready = sock.next();
    INFO(d.log());
    REQUIRE(ready);
    CHECK(has_line(*ready, "READY=1"));
    CHECK(d.ready());

    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i)
    {
        const auto ping = sock.next(2s);
        REQUIRE(ping);
        CHECK(*ping == "WATCHDOG=1");
    }
    // The first ping goes with READY=1; three more take at least two periods.
    CHECK(std::chrono::steady_clock::now() - start >= 300ms);

    // SIGTERM, and the exit; the datagram waits in the socket.
    CHECK(d.stop() == 0);
    const auto stopping = sock.next_state();
    REQUIRE(stopping);
    CHECK(has_line(*stopping, "STOPPING=1"));
}

TEST_CASE("sd_notify (systemd): WATCHDOG_PID of another process turns the watchdog off")
{
    const notify_socket sock("/run/netnsd-notify.sock");
    netnsd_process d({token_arg}, {}, netnsd_binary(),
                     {sock.env(), "WATCHDOG_USEC=100000", "WATCHDOG_PID=1"});
    const auto ready = sock.next();
    INFO(d.log());
    REQUIRE(ready);
    CHECK(has_line(*ready, "READY=1"));
    // Ten periods without a ping.
    CHECK(!sock.next(500ms));
    CHECK(d.stop() == 0);
    const auto stopping = sock.next();
    REQUIRE(stopping);
    CHECK(has_line(*stopping, "STOPPING=1"));
}
