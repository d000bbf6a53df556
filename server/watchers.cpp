#include "server/watchers.hpp"

#include "core/log.hpp"

namespace netnsd::server
{

namespace asio = boost::asio;
using descriptor = asio::posix::stream_descriptor;

watchers::watchers(asio::io_context& ioc, core::monitor& monitor)
    : monitor_(monitor), inotify_(ioc, monitor.inotify_fd()), netlink_(ioc, monitor.netlink_fd()),
      mountinfo_(ioc, monitor.mountinfo_fd())
{
}

watchers::~watchers()
{
    // The monitor closes its fds; the descriptors only borrowed them.
    inotify_.release();
    netlink_.release();
    mountinfo_.release();
}

void watchers::start()
{
    do_wait_dir();
    do_wait_nsid();
    do_wait_mounts();
}

void watchers::stop()
{
    stopped_ = true;
    boost::system::error_code ignored;
    inotify_.cancel(ignored);
    netlink_.cancel(ignored);
    mountinfo_.cancel(ignored);
}

void watchers::do_wait_dir()
{
    inotify_.async_wait(descriptor::wait_read,
                        [this](boost::system::error_code ec) { on_dir(ec); });
}

void watchers::on_dir(boost::system::error_code ec)
{
    if (stopped_ || ec == asio::error::operation_aborted)
        return;
    if (ec)
        core::log::warn("inotify wait: " + ec.message());
    monitor_.on_dir_readable();
    do_wait_dir();
}

void watchers::do_wait_nsid()
{
    netlink_.async_wait(descriptor::wait_read,
                        [this](boost::system::error_code ec) { on_nsid(ec); });
}

void watchers::on_nsid(boost::system::error_code ec)
{
    if (stopped_ || ec == asio::error::operation_aborted)
        return;
    if (ec)
        core::log::warn("netlink wait: " + ec.message());
    monitor_.on_nsid_readable();
    do_wait_nsid();
}

void watchers::do_wait_mounts()
{
    // The kernel flags a mount-table change as POLLPRI|POLLERR on /proc/self/mountinfo.
    mountinfo_.async_wait(descriptor::wait_error,
                          [this](boost::system::error_code ec) { on_mounts(ec); });
}

void watchers::on_mounts(boost::system::error_code ec)
{
    if (stopped_ || ec == asio::error::operation_aborted)
        return;
    monitor_.on_mounts_changed();
    do_wait_mounts();
}

} // namespace netnsd::server
