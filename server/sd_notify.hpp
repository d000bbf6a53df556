// sd_notify: systemd's readiness protocol without libsystemd. When $NOTIFY_SOCKET is set (a
// path, or '@' for an abstract socket name), each state ("READY=1", "STOPPING=1",
// "WATCHDOG=1", "STATUS=...") is one datagram sent to it; when it is not set, nothing is sent.
// The watchdog is on when $WATCHDOG_USEC is set and $WATCHDOG_PID is unset or this process.
// Built once by main, which reads the environment before anything else runs; loop thread only.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/un.h>

namespace netnsd::server
{

class sd_notifier
{
public:
    // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, then removes them from the
    // environment so that no child process (exec) sends in netnsd's name.
    sd_notifier();
    ~sd_notifier();
    sd_notifier(const sd_notifier&) = delete;
    sd_notifier& operator=(const sd_notifier&) = delete;

    // True when $NOTIFY_SOCKET named a usable address.
    bool enabled() const noexcept { return fd_ >= 0; }
    // Sends one datagram; false when disabled or the send failed (never throws, never blocks).
    bool notify(std::string_view state) const;
    // WATCHDOG_USEC when the watchdog applies to this process; WATCHDOG=1 is due at least this
    // often (netnsd sends it every half of it).
    std::optional<std::chrono::microseconds> watchdog_interval() const noexcept
    {
        return watchdog_;
    }
    // Why $NOTIFY_SOCKET or $WATCHDOG_USEC was ignored; empty when nothing was.
    const std::string& problem() const noexcept { return problem_; }

private:
    int fd_ = -1;
    sockaddr_un address_{};
    socklen_t address_size_ = 0;
    std::optional<std::chrono::microseconds> watchdog_;
    std::string problem_;
};

} // namespace netnsd::server
