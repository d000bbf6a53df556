#include "server/sd_notify.hpp"

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

namespace netnsd::server
{
namespace
{

std::string take_env(const char* name)
{
    const char* value = std::getenv(name);
    std::string out = value != nullptr ? value : "";
    ::unsetenv(name);
    return out;
}

template <typename T>
bool parse_number(const std::string& text, T& out)
{
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc{} && ptr == end && !text.empty();
}

} // namespace

sd_notifier::sd_notifier()
{
    const std::string socket_name = take_env("NOTIFY_SOCKET");
    const std::string watchdog_usec = take_env("WATCHDOG_USEC");
    const std::string watchdog_pid = take_env("WATCHDOG_PID");

    if (!socket_name.empty())
    {
        if ((socket_name.front() != '/' && socket_name.front() != '@') ||
            socket_name.size() >= sizeof(address_.sun_path))
            problem_ = "NOTIFY_SOCKET '" + socket_name +
                       "' is neither an absolute path nor an abstract name ('@...') that fits";
        else
        {
            address_.sun_family = AF_UNIX;
            std::memcpy(address_.sun_path, socket_name.data(), socket_name.size());
            std::size_t size = offsetof(sockaddr_un, sun_path) + socket_name.size();
            if (socket_name.front() == '@')
                address_.sun_path[0] = '\0'; // abstract: no terminating NUL counted
            else
                ++size; // a path: count its NUL, as systemd does
            address_size_ = static_cast<socklen_t>(size);
            fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
            if (fd_ < 0)
                problem_ = std::string("cannot make the notify socket: ") + std::strerror(errno);
        }
    }

    if (!watchdog_usec.empty())
    {
        std::uint64_t usec = 0;
        pid_t pid = 0;
        // A WATCHDOG_PID of another process (the one that started netnsd) is not for us.
        const bool ours =
            watchdog_pid.empty() || (parse_number(watchdog_pid, pid) && pid == ::getpid());
        if (!parse_number(watchdog_usec, usec) || usec == 0)
            problem_ = "WATCHDOG_USEC '" + watchdog_usec + "' is not a whole number > 0";
        else if (ours)
            watchdog_ = std::chrono::microseconds(static_cast<std::int64_t>(usec));
    }
}

sd_notifier::~sd_notifier()
{
    if (fd_ >= 0)
        ::close(fd_);
}

bool sd_notifier::notify(std::string_view state) const
{
    if (fd_ < 0)
        return false;
    for (;;)
    {
        const auto sent = ::sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                                   reinterpret_cast<const sockaddr*>(&address_), address_size_);
        if (sent >= 0)
            return true;
        if (errno != EINTR)
            return false;
    }
}

} // namespace netnsd::server
