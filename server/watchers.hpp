// watchers: the asio shell around the monitor's kernel fds, on the model thread's io_context.
// It only waits: inotify, fanotify and the nsid socket for readability, /proc/self/mountinfo
// for POLLPRI (asio's wait_error) where fanotify is missing, and calls the monitor, which reads.
// Work the monitor spreads over turns (entry changes, nsid matching) is posted back to the
// same io_context one slice at a time. After each handler, `settled` runs: the model thread
// publishes what changed. The fds stay owned by the monitor. Owned by the model thread.
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/monitor.hpp"

namespace netnsd::server
{

class watchers
{
public:
    // mountinfo only: how long after a mount change live entries are re-verified: a burst of
    // mount changes (one per namespace created) costs one pass over the live entries, not one
    // per change.
    static constexpr std::chrono::milliseconds verify_delay{20};

    watchers(boost::asio::io_context& ioc, core::monitor& monitor, std::function<void()> settled);
    ~watchers();
    watchers(const watchers&) = delete;
    watchers& operator=(const watchers&) = delete;

    void start();
    void stop();
    // The process connector overflowed (events were lost): called after the events read are
    // applied; the model thread runs a sweep at once.
    void on_proc_overrun(std::function<void()> f) { proc_overrun_ = std::move(f); }

    // How often a namespace whose last holder (process or mount) went is asked whether the kernel
    // has freed it yet (it does so on a workqueue, after the exit event): 1.3 us per ask.
    static constexpr std::chrono::milliseconds unheld_recheck{10};
    // Asks those again every unheld_recheck while there are any (core::monitor::has_unheld):
    // after a change that can leave a namespace without a holder (an exit, an unmount).
    void arm_unheld_recheck();

private:
    // A wait ended: false after stop or cancel; a failed wait is logged, and the fd read anyway.
    bool ready(boost::system::error_code ec, std::string_view what);
    // Runs a step of the monitor on a later turn of the loop (once per flag), again while it
    // says there is more: entry changes (core::monitor::dir_changes_per_turn) and nsid matching
    // (core::monitor::nsid_probes_per_turn) a slice per turn.
    void later(bool& posted, bool (core::monitor::*step)());
    void do_wait_dir();
    void on_dir(boost::system::error_code ec);
    void do_wait_nsid();
    void on_nsid(boost::system::error_code ec);
    void do_wait_mount_events();
    void on_mount_events(boost::system::error_code ec);
    void do_wait_mountinfo();
    void on_mountinfo(boost::system::error_code ec);
    void on_verify(boost::system::error_code ec);
    void do_wait_proc_events();
    void on_proc_events(boost::system::error_code ec);
    void arm_process_flush();

    core::monitor& monitor_;
    std::function<void()> settled_;
    boost::asio::posix::stream_descriptor inotify_;
    boost::asio::posix::stream_descriptor netlink_;
    boost::asio::posix::stream_descriptor mounts_;
    boost::asio::posix::stream_descriptor proc_events_;
    boost::asio::steady_timer verify_;
    boost::asio::steady_timer unheld_;
    boost::asio::steady_timer flush_;
    bool flush_armed_ = false;
    std::function<void()> proc_overrun_;
    bool proc_pending_ = false; // a later() turn of the process events is posted
    bool unheld_armed_ = false;
    bool verify_pending_ = false;
    bool resolving_ = false; // a later() turn of resolve_nsids is posted
    bool pumping_ = false;   // a later() turn of pump is posted
    bool stopped_ = false;
};

} // namespace netnsd::server
