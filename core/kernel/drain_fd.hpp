// drain_fd: reads a non-blocking notification fd (inotify, fanotify) until it is empty, one
// read(2) at a time, handing each read's bytes on. Header only; any thread.
#pragma once

#include <cerrno>
#include <cstddef>
#include <span>
#include <unistd.h>

namespace netnsd::core::kernel
{

// Calls on_read(bytes) for each read until the fd has nothing more (EAGAIN) or on_read returns
// false (a malformed read: stop there).
template <typename OnRead>
void drain_fd(int fd, std::span<std::byte> buf, OnRead&& on_read)
{
    for (;;)
    {
        const auto n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; // EAGAIN: drained
        if (!on_read(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n))))
            return;
    }
}

} // namespace netnsd::core::kernel
