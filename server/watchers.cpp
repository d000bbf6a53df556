#include "server/watchers.hpp"

#include <boost/asio/post.hpp>

#include "core/log.hpp"

namespace netnsd::server
{

namespace asio = boost::asio;
using descriptor = asio::posix::stream_descriptor;

watchers::watchers(asio::io_context& ioc, core::monitor& monitor, std::function<void()> settled)
    : monitor_(monitor), settled_(std::move(settled)), inotify_(ioc, monitor.inotify_fd()),
      netlink_(ioc, monitor.netlink_fd()), mounts_(ioc, monitor.mount_fd()), verify_(ioc)
{
}

watchers::~watchers()
{
    // The monitor closes its fds; the descriptors only borrowed them.
    inotify_.release();
    netlink_.release();
    mounts_.release();
}

void watchers::start()
{
    do_wait_dir();
    do_wait_nsid();
    if (monitor_.mount_feed() == core::model_status::mount_source::fanotify)
        do_wait_mount_events();
    else
        do_wait_mountinfo();
}

void watchers::stop()
{
    stopped_ = true;
    boost::system::error_code ignored;
    inotify_.cancel(ignored);
    netlink_.cancel(ignored);
    mounts_.cancel(ignored);
    verify_.cancel();
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

} // namespace netnsd::server
