// proc_events: the kernel's process connector (NETLINK_CONNECTOR, CN_IDX_PROC), which reports
// every fork, exec and exit on the host as it happens, so that a process that entered a new
// network namespace (clone with CLONE_NEWNET, or unshare then exec: `unshare -n sleep`) is
// seen at once instead of at the next /proc sweep. It reports no namespace change itself: a
// process that unshares without forking or exec'ing is seen by the sweep only.
//
// Where it works. The connector's kernel socket exists in the initial network namespace only:
// from any other, subscribing fails with ECONNREFUSED. Then the socket is made in the network
// namespace of `netns_path` (by default /proc/1/ns/net) by a thread of its own that enters it
// with setns and ends. The kernel also ignores subscriptions from outside the initial pid and
// user namespaces (a daemon in a container): it answers a subscription it accepted with an
// acknowledgement, and open() fails when none comes, closing the socket. So a socket is kept
// only where the kernel accepted it, the initial network namespace, which is never freed: it
// keeps nothing alive.
//
// Cost. While a listener exists the kernel builds and broadcasts a message on every fork, exec
// and exit of the host (bench/forktax); the subscription asks for those three only (kernels
// 6.6+ filter the others out before they reach the socket). Owned by the monitor; model thread
// only (open() starts and joins a thread of its own when it needs another namespace).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "core/kernel/unique_fd.hpp"

namespace netnsd::core::kernel
{

struct proc_event
{
    enum class kind : std::uint8_t
    {
        ack,  // the kernel's answer to a subscription (err: 0 or an errno)
        fork, // pid: the new task (a thread when pid != tgid); tgid: its process
        exec, // pid, tgid: the task that exec'd
        exit, // pid, tgid: the task that ended (a thread when pid != tgid)
    };
    kind what = kind::ack;
    std::int32_t pid = 0;
    std::int32_t tgid = 0;
    std::uint32_t err = 0;
    // When the kernel made it: CLOCK_MONOTONIC in ns (the uapi's timestamp_ns, ktime_get_ns()),
    // std::chrono::steady_clock's clock, so that netnsd can tell how long an event waited (in a
    // time namespace with a monotonic offset, netnsd's clock is shifted by it; the kernel's not).
    std::uint64_t timestamp_ns = 0;

    bool is_thread() const noexcept { return pid != tgid; }
    friend bool operator==(const proc_event&, const proc_event&) = default;
};

// Every connector process event in one datagram (several netlink messages may share one),
// appended to `out`; other events (uid, comm, ...) and other connectors' messages are skipped.
// False when the datagram is malformed (what was decoded before the fault is kept).
bool decode_proc_events(std::span<const unsigned char> datagram, std::vector<proc_event>& out);

class proc_connector
{
public:
    // The socket's receive buffer: at ~1 KiB of kernel memory per queued event, some 4000
    // events (a storm of 2000 forks and exits) wait for the model thread before an overrun.
    static constexpr int receive_buffer = 4 << 20;
    // Datagrams per recvmmsg call (each is one event of 76 bytes).
    static constexpr std::size_t batch = 64;

    // Subscribes to fork, exec and exit. ECONNREFUSED from netnsd's own network namespace
    // means it is not the initial one: the socket is made in `netns_path`'s instead. Fails
    // when the kernel does not acknowledge the subscription (outside the initial pid or user
    // namespace) or refuses it (EPERM without CAP_NET_ADMIN).
    // `buffer`: the receive buffer's size (tests make it small to overrun it). `pause`: a wait
    // between subscribing and reading the answer (tests: other processes' events pile up).
    std::error_code open(const std::string& netns_path, int buffer = receive_buffer,
                         std::chrono::milliseconds pause = {});
    // Whether the socket was made in netns_path's namespace rather than netnsd's own.
    bool elsewhere() const noexcept { return elsewhere_; }
    int fd() const noexcept { return fd_.get(); }
    bool is_open() const noexcept { return static_cast<bool>(fd_); }

    struct read_result
    {
        std::size_t datagrams = 0;
        bool overrun = false; // ENOBUFS: events were lost
        bool more = false;    // stopped at max_datagrams with more queued, maybe
        std::error_code error;
    };
    // Reads up to max_datagrams queued datagrams without blocking, decoding into `out`.
    read_result read(std::vector<proc_event>& out, std::size_t max_datagrams);

private:
    unique_fd fd_;
    bool elsewhere_ = false;
};

} // namespace netnsd::core::kernel
