#include "core/monitor.hpp"

#include <vector>

#include "core/log.hpp"

namespace netnsd::core
{
namespace
{

const char* to_string(monitor::resync_reason why)
{
    switch (why)
    {
    case monitor::resync_reason::start:
        return "start";
    case monitor::resync_reason::dir_changed:
        return "the netns dir changed";
    case monitor::resync_reason::inotify_overflow:
        return "inotify queue overflow";
    case monitor::resync_reason::netlink_overrun:
        return "netlink receive buffer overrun";
    }
    return "unknown";
}

} // namespace

monitor::monitor(registry& model, std::string netns_dir)
    : model_(model), watch_(netns_dir), source_(std::move(netns_dir), nsid_client_),
      reconciler_(model, source_)
{
}

std::error_code monitor::open()
{
    if (auto ec = watch_.open())
        return ec;
    if (auto ec = nsid_events_.open())
        return ec;
    if (auto ec = nsid_client_.open())
        return ec;
    std::error_code ec;
    mountinfo_ = kernel::open_mountinfo(ec);
    return ec;
}

void monitor::start()
{
    rearm_and_rescan(resync_reason::start);
}

void monitor::rearm_and_rescan(resync_reason why)
{
    std::error_code problem;
    const bool watching = watch_.arm(problem);
    const std::string before = problem_;
    problem_ = watching ? std::string{} : watch_.path() + ": " + problem.message();
    if (problem_ != before)
    {
        if (watching)
            log::info("watching the netns dir", {{"dir", watch_.path()}});
        else
            log::warn("cannot watch the netns dir; waiting for it to appear",
                      {{"dir", watch_.path()}, {"error", problem.message()}});
    }
    rescan(why);
}

void monitor::rescan(resync_reason why)
{
    ++resyncs_;
    ++resyncs_by_reason_[static_cast<std::size_t>(why)];
    if (why != resync_reason::start)
        log::info("rescan", {{"reason", to_string(why)}});
    if (!watch_.watching_dir())
    {
        reconciler_.dir_lost();
        return;
    }
    if (auto ec = reconciler_.rescan())
        log::warn("cannot read the netns dir", {{"dir", watch_.path()}, {"error", ec.message()}});
}

void monitor::on_dir_readable()
{
    using kind = kernel::dir_change::kind;
    const auto changes = watch_.drain();
    bool rearm = false;
    bool overflow = false;
    for (const auto& change : changes)
    {
        rearm = rearm || change.what == kind::dir_lost || change.what == kind::dir_changed;
        overflow = overflow || change.what == kind::overflow;
    }
    if (rearm)
    {
        rearm_and_rescan(resync_reason::dir_changed);
        return;
    }
    if (overflow)
    {
        rescan(resync_reason::inotify_overflow);
        return;
    }
    for (const auto& change : changes)
    {
        if (change.what == kind::entry_created)
            reconciler_.entry_appeared(change.name);
        else if (change.what == kind::entry_deleted)
            reconciler_.entry_vanished(change.name);
    }
}

bool monitor::on_nsid_readable()
{
    auto batch = nsid_events_.drain();
    if (batch.overrun)
    {
        rescan(resync_reason::netlink_overrun);
        return false;
    }
    // Additions are queued, so one pass over the candidates serves a whole run of them; a
    // deletion settles what is queued first, keeping the kernel's order.
    for (const auto& ev : batch.events)
    {
        if (ev.added)
            reconciler_.queue_nsids(std::span(&ev.nsid, 1));
        else
            reconciler_.nsid_deleted(ev.nsid);
    }
    return resolve_nsids();
}

bool monitor::on_mounts_changed()
{
    if (watch_.moved() || !watch_.watching_dir())
    {
        rearm_and_rescan(resync_reason::dir_changed);
        return false;
    }
    reconciler_.reprobe_stale();
    return true;
}

} // namespace netnsd::core
