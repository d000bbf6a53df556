// watchers: the asio shell around the monitor's kernel fds. It only waits: inotify and the
// nsid socket for readability, /proc/self/mountinfo for POLLPRI (asio's wait_error), and calls
// the monitor, which reads. The fds stay owned by the monitor. Owned by main; loop thread only.
#pragma once

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/monitor.hpp"

namespace netnsd::server
{

class watchers
{
public:
    // How long after a mount change live entries are re-verified: a burst of mount changes
    // (one per namespace created) costs one pass over the live entries, not one per change.
    static constexpr std::chrono::milliseconds verify_delay{20};

    watchers(boost::asio::io_context& ioc, core::monitor& monitor);
    ~watchers();
    watchers(const watchers&) = delete;
    watchers& operator=(const watchers&) = delete;

    void start();
    void stop();

private:
    void do_wait_dir();
    void on_dir(boost::system::error_code ec);
    void do_wait_nsid();
    void on_nsid(boost::system::error_code ec);
    // Matches new nsids with their namespaces a slice per turn of the loop, so that requests
    // are served in between (core::monitor::nsid_probes_per_turn).
    void resolve_nsids_later();
    void do_wait_mounts();
    void on_mounts(boost::system::error_code ec);
    void on_verify(boost::system::error_code ec);

    core::monitor& monitor_;
    boost::asio::posix::stream_descriptor inotify_;
    boost::asio::posix::stream_descriptor netlink_;
    boost::asio::posix::stream_descriptor mountinfo_;
    boost::asio::steady_timer verify_;
    bool verify_pending_ = false;
    bool resolving_ = false; // a resolve_nsids_later() turn is posted
    bool stopped_ = false;
};

} // namespace netnsd::server
