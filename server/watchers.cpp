#include "server/watchers.hpp"

#include <boost/asio/post.hpp>

#include "core/log.hpp"

namespace netnsd::server
{

namespace asio = boost::asio;
using descriptor = asio::posix::stream_descriptor;

watchers::watchers(asio::io_context& ioc, core::monitor& monitor, std::function<void()> settled)
    : monitor_(monitor), settled_(std::move(settled)), inotify_(ioc, monitor.inotify_fd()),
      netlink_(ioc, monitor.netlink_fd()), mounts_(ioc, monitor.mount_fd()), proc_events_(ioc),
      verify_(ioc), unheld_(ioc), flush_(ioc)
{
    if (monitor.status().proc_events)
        proc_events_.assign(monitor.proc_events_fd());
}

watchers::~watchers()
{
    // The monitor closes its fds; the descriptors only borrowed them.
    inotify_.release();
    netlink_.release();
    mounts_.release();
    if (proc_events_.is_open())
        proc_events_.release();
}

void watchers::start()
{
    do_wait_dir();
    do_wait_nsid();
    if (monitor_.mount_feed() == core::model_status::mount_source::fanotify)
        do_wait_mount_events();
    else
        do_wait_mountinfo();
    if (proc_events_.is_open())
        do_wait_proc_events();
}

void watchers::stop()
{
    stopped_ = true;
    boost::system::error_code ignored;
    inotify_.cancel(ignored);
    netlink_.cancel(ignored);
    mounts_.cancel(ignored);
    proc_events_.cancel(ignored);
    verify_.cancel();
    unheld_.cancel();
    flush_.cancel();
}

bool watchers::ready(boost::system::error_code ec, std::string_view what)
{
    if (stopped_ || ec == asio::error::operation_aborted)
        return false;
    if (ec)
        core::log::warn("waiting on a kernel feed failed",
                        {{"feed", what}, {"error", ec.message()}});
    return true;
}

void watchers::later(bool& posted, bool (core::monitor::*step)())
{
    if (posted)
        return;
    posted = true;
    asio::post(inotify_.get_executor(),
               [this, &posted, step]
               {
                   posted = false;
                   if (stopped_)
                       return;
                   if ((monitor_.*step)())
                       later(posted, step);
                   settled_();
               });
}

void watchers::do_wait_dir()
{
    inotify_.async_wait(descriptor::wait_read,
                        [this](boost::system::error_code ec) { on_dir(ec); });
}

void watchers::on_dir(boost::system::error_code ec)
{
    if (!ready(ec, "inotify"))
        return;
    if (monitor_.on_dir_readable())
        later(pumping_, &core::monitor::pump);
    settled_();
    do_wait_dir();
}

void watchers::do_wait_nsid()
{
    netlink_.async_wait(descriptor::wait_read,
                        [this](boost::system::error_code ec) { on_nsid(ec); });
}

void watchers::on_nsid(boost::system::error_code ec)
{
    if (!ready(ec, "netlink"))
        return;
    if (monitor_.on_nsid_readable())
        later(resolving_, &core::monitor::resolve_nsids);
    if (monitor_.dir_changes_pending())
        later(pumping_, &core::monitor::pump);
    settled_();
    do_wait_nsid();
}

void watchers::do_wait_mount_events()
{
    mounts_.async_wait(descriptor::wait_read,
                       [this](boost::system::error_code ec) { on_mount_events(ec); });
}

void watchers::on_mount_events(boost::system::error_code ec)
{
    if (!ready(ec, "fanotify"))
        return;
    if (monitor_.on_mount_events())
        later(pumping_, &core::monitor::pump);
    arm_unheld_recheck();
    settled_();
    do_wait_mount_events();
}

void watchers::do_wait_mountinfo()
{
    // The kernel flags a mount-table change as POLLPRI|POLLERR on /proc/self/mountinfo.
    mounts_.async_wait(descriptor::wait_error,
                       [this](boost::system::error_code ec) { on_mountinfo(ec); });
}

void watchers::on_mountinfo(boost::system::error_code ec)
{
    if (!ready(ec, "mountinfo"))
        return;
    // Wait again first, then look. mountinfo reports a change once per poll (the poll itself
    // marks it seen), and arming the wait polls the fd (asio's EPOLL_CTL_MOD): a change made
    // while we looked would be marked seen by that poll and never reported, leaving a new
    // bind mount stale until some later mount. Armed first, such a change is either before
    // the look below, which sees it, or after the arming, which reports it.
    do_wait_mountinfo();
    if (monitor_.on_mounts_changed() && !verify_pending_)
    {
        verify_pending_ = true;
        verify_.expires_after(verify_delay);
        verify_.async_wait([this](boost::system::error_code timer_ec) { on_verify(timer_ec); });
    }
    settled_();
}

void watchers::on_verify(boost::system::error_code ec)
{
    verify_pending_ = false;
    if (stopped_ || ec)
        return;
    monitor_.verify_live();
    settled_();
}

void watchers::do_wait_proc_events()
{
    proc_events_.async_wait(descriptor::wait_read,
                            [this](boost::system::error_code ec) { on_proc_events(ec); });
}

void watchers::on_proc_events(boost::system::error_code ec)
{
    if (!ready(ec, "process events"))
        return;
    // One bounded batch now, the rest on later turns, so that a fork storm never holds up the
    // mount events; the wait is armed again only once the queue is read to its end.
    const bool more = monitor_.on_proc_events();
    if (monitor_.take_proc_overrun() && proc_overrun_)
        proc_overrun_();
    arm_unheld_recheck();
    arm_process_flush();
    settled_();
    if (!more)
    {
        do_wait_proc_events();
        return;
    }
    if (proc_pending_)
        return;
    proc_pending_ = true;
    asio::post(proc_events_.get_executor(),
               [this]
               {
                   proc_pending_ = false;
                   if (!stopped_)
                       on_proc_events({});
               });
}

void watchers::arm_unheld_recheck()
{
    if (unheld_armed_ || !monitor_.has_unheld())
        return;
    unheld_armed_ = true;
    unheld_.expires_after(unheld_recheck);
    unheld_.async_wait(
        [this](boost::system::error_code ec)
        {
            unheld_armed_ = false;
            if (stopped_ || ec)
                return;
            monitor_.recheck_unheld();
            settled_();
            arm_unheld_recheck();
        });
}

void watchers::arm_process_flush()
{
    if (flush_armed_ || !monitor_.has_pending_processes())
        return;
    flush_armed_ = true;
    flush_.expires_after(core::host_watch::process_count_delay);
    flush_.async_wait(
        [this](boost::system::error_code ec)
        {
            flush_armed_ = false;
            if (stopped_ || ec)
                return;
            monitor_.flush_processes();
            arm_unheld_recheck();
            settled_();
        });
}

} // namespace netnsd::server
