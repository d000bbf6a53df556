#include "core/monitor.hpp"

#include <chrono>
#include <climits>
#include <cstdlib>
#include <poll.h>
#include <sys/sysmacros.h>
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
    case monitor::resync_reason::mount_overflow:
        return "fanotify queue overflow";
    case monitor::resync_reason::link_overrun:
        return "link listener overrun";
    }
    return "unknown";
}

// The dir as mount points spell it: symlinks resolved (/var/run/netns is /run/netns).
std::string real_path(const std::string& path)
{
    char buf[PATH_MAX];
    return ::realpath(path.c_str(), buf) != nullptr ? std::string(buf) : std::string{};
}

// One line per mount event at debug level: which mount, what statmount said, and when the
// reader read it (CLOCK_REALTIME µs), to set beside a creator's record of its system calls.
void log_mount_change(const kernel::mount_change& change)
{
    using kind = kernel::mount_record::kind;
    if (log::current_level() > log::level::debug)
        return;
    const auto id = std::to_string(change.mount_id);
    const auto read_us = std::to_string(
        std::chrono::duration_cast<std::chrono::microseconds>(change.read_at.time_since_epoch())
            .count());
    if (change.what == kind::overflow)
        log::debug("mount event", {{"kind", "overflow"}, {"read_us", read_us}});
    else if (change.what == kind::detached)
        log::debug("mount event", {{"kind", "detached"}, {"id", id}, {"read_us", read_us}});
    else if (change.facts && change.lookups > 1)
        // statmount said ENOENT at first, though the mount was there (look_up_again).
        log::debug("mount event", {{"kind", "attached"},
                                   {"id", id},
                                   {"read_us", read_us},
                                   {"point", change.facts->mount_point},
                                   {"lookups", std::to_string(change.lookups)}});
    else if (change.facts)
        log::debug("mount event", {{"kind", "attached"},
                                   {"id", id},
                                   {"read_us", read_us},
                                   {"point", change.facts->mount_point}});
    else
        log::debug("mount event", {{"kind", "attached"},
                                   {"id", id},
                                   {"read_us", read_us},
                                   {"error", change.stat_error.message()}});
}

} // namespace

monitor::monitor(registry& model, std::string netns_dir, mount_choice mounts)
    : model_(model), mount_choice_(mounts), dir_watch_(netns_dir),
      source_(std::move(netns_dir), nsid_client_), hosts_(model), reconciler_(model, source_)
{
    status_.netns_dir = dir_watch_.path();
}

std::error_code monitor::open()
{
    if (auto ec = dir_watch_.open())
        return ec;
    if (auto ec = nsid_events_.open())
        return ec;
    if (auto ec = nsid_client_.open())
        return ec;
    std::error_code ec;
    if (mount_choice_ != mount_choice::mountinfo)
    {
        ec = mount_events_.open();
        // fanotify's events name mounts by id only: without listmount and statmount (6.8)
        // they would say nothing. They are probed here too.
        std::vector<std::uint64_t> ids;
        if (!ec)
            ec = kernel::list_mounts(ids);
        if (!ec)
        {
            status_.mounts = mount_source::fanotify;
            reconciler_.set_mount_events(true);
            log::info("following the mount table", {{"feed", "fanotify"}});
            return {};
        }
        mount_events_.close();
        if (mount_choice_ == mount_choice::fanotify)
            return ec;
    }
    mountinfo_ = kernel::open_mountinfo(ec);
    if (ec)
        return ec;
    status_.mounts = mount_source::mountinfo;
    reconciler_.set_mount_events(false);
    if (mount_choice_ == mount_choice::mountinfo)
        log::info("following the mount table", {{"feed", "mountinfo"}});
    else
        log::info(
            "following the mount table",
            {{"feed", "mountinfo"}, {"reason", "no fanotify mount events here: " + ec.message()}});
    return {};
}

int monitor::mount_fd() const noexcept
{
    return status_.mounts == mount_source::fanotify ? mount_events_.fd() : mountinfo_.get();
}

std::error_code monitor::read_mounts_on_own_thread(int nice)
{
    if (status_.mounts != mount_source::fanotify)
        return {};
    return mount_events_.start_reader(nice);
}

std::error_code monitor::make_mount_reader_realtime(int priority)
{
    const auto ec = mount_events_.make_reader_realtime(priority);
    status_.mount_reader_realtime = !ec;
    return ec;
}

void monitor::start()
{
    // Said once: what listns() would give (every network namespace by id, held by anything)
    // comes here from the sweep, the walk of the mount namespaces and the deep scan instead.
    if (const auto ec = kernel::probe_listns())
        log::info("namespaces are found by the sweeps",
                  {{"reason", "no listns() here: " + ec.message()}});
    hosts_.add_self(clock::now());
    rearm_and_rescan(resync_reason::start);
}

monitor::mount_walk_input monitor::begin_mount_walk()
{
    return {hosts_.known_inodes(), foreign_mounts_.is_open() ? foreign_mounts_.fd() : -1,
            hosts_.begin_mount_walk()};
}

void monitor::apply_mount_namespaces(const kernel::mntns_walk_result& walk, std::uint64_t number)
{
    ++status_.mntns_walks;
    if (walk.error)
    {
        if (!mntns_walk_failed_)
            log::info(
                "only netnsd's own mount namespace is seen",
                {{"reason", "no walk of the mount namespaces here: " + walk.error.message()}});
        mntns_walk_failed_ = true;
        hosts_.apply_mount_namespaces(walk, number, clock::now());
        return;
    }
    drain_all();
    hosts_.apply_mount_namespaces(walk, number, clock::now());
    status_.mount_namespaces = walk.walked.size() + walk.unread.size();
    status_.last_mntns_walk_seconds = walk.seconds;
    if (foreign_mounts_.is_open())
        status_.mount_namespaces_followed = walk.followed;
}

std::error_code monitor::open_foreign_mounts()
{
    if (status_.mounts != mount_source::fanotify)
        return std::make_error_code(std::errc::operation_not_supported);
    return foreign_mounts_.open();
}

bool monitor::on_foreign_mounts()
{
    bool walk = false;
    const auto now = clock::now();
    for (const auto& r : foreign_mounts_.drain())
    {
        ++status_.foreign_mount_events;
        if (r.what == kernel::mount_record::kind::detached)
            hosts_.foreign_mount_detached(r.mount_id, now);
        else
            walk = true; // attached (what, and in which namespace, the walk says), or overflow
    }
    return walk;
}

bool monitor::apply_sweep(kernel::proc_sweep sweep)
{
    observe(model_status::sweep_buckets, status_.sweep_histogram, status_.sweeps,
            status_.sweep_seconds_sum, sweep.seconds);
    status_.last_sweep_seconds = sweep.seconds;
    status_.sweep_processes = sweep.processes;
    status_.sweep_processes_read = sweep.processes_read;
    hosts_.begin_sweep_application(std::move(sweep));
    return continue_sweep();
}

bool monitor::continue_sweep()
{
    // Mount events first: a namespace mounted meanwhile is then known by its mount.
    drain_all();
    return hosts_.apply_sweep_slice(clock::now());
}

std::error_code monitor::open_proc_events(const std::string& netns_path, int buffer,
                                          std::chrono::milliseconds pause)
{
    const auto ec = proc_events_.open(netns_path, buffer, pause);
    status_.proc_events = !ec;
    status_.proc_events_problem = ec ? ec.message() : "";
    return ec;
}

bool monitor::on_proc_events()
{
    proc_batch_.clear();
    const auto r = proc_events_.read(proc_batch_, proc_events_per_turn);
    if (r.overrun)
    {
        ++status_.proc_event_overruns;
        proc_overrun_ = true;
    }
    if (r.error)
        log::warn("reading process events failed", {{"error", r.error.message()}});
    status_.proc_events_read += r.datagrams;
    if (!proc_batch_.empty())
    {
        // Mount events first, as for a sweep: a namespace mounted meanwhile is known by its
        // mount, and one whose mount went is asked about with the exits.
        drain_all();
        hosts_.apply_proc_events(proc_batch_, clock::now());
        observe_proc_event_lag();
    }
    return r.more;
}

void monitor::observe_proc_event_lag()
{
    std::uint64_t oldest = 0;
    for (const auto& e : proc_batch_)
        if (e.timestamp_ns != 0 && (oldest == 0 || e.timestamp_ns < oldest))
            oldest = e.timestamp_ns;
    if (oldest == 0)
        return;
    // Both on CLOCK_MONOTONIC (steady_clock's, with libstdc++ on Linux).
    const auto now_ns =
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now().time_since_epoch())
                                       .count());
    const double lag = now_ns > oldest ? static_cast<double>(now_ns - oldest) / 1e9 : 0.0;
    observe(model_status::proc_event_lag_buckets, status_.proc_event_lag_histogram,
            status_.proc_event_batches, status_.proc_event_lag_seconds_sum, lag);
}

void monitor::apply_deep_scan(const kernel::deep_scan_result& scan)
{
    drain_all();
    hosts_.apply_deep_scan(scan, clock::now());
    observe(model_status::deep_scan_buckets, status_.deep_scan_histogram, status_.deep_scans,
            status_.deep_scan_seconds_sum, scan.seconds);
    status_.deep_scan_fds = scan.fds;
    status_.deep_scan_sockets = scan.sockets;
}

void monitor::rearm_and_rescan(resync_reason why)
{
    std::error_code problem;
    const bool watching = dir_watch_.arm(problem);
    const std::string before = status_.problem;
    status_.watching = watching;
    status_.problem = watching ? std::string{} : dir_watch_.path() + ": " + problem.message();
    real_dir_ = watching ? real_path(dir_watch_.path()) : std::string{};
    if (status_.problem != before)
    {
        if (watching)
            log::info("watching the netns dir", {{"dir", dir_watch_.path()}});
        else
            log::warn("cannot watch the netns dir; waiting for it to appear",
                      {{"dir", dir_watch_.path()}, {"error", problem.message()}});
    }
    rescan(why);
}

void monitor::rescan(resync_reason why)
{
    ++status_.resyncs[static_cast<std::size_t>(why)];
    if (why != resync_reason::start)
        log::info("rescan", {{"reason", to_string(why)}});
    pending_.clear(); // older than what the scan finds
    if (!dir_watch_.watching_dir())
    {
        reconciler_.dir_lost();
        stacks_.clear();
        if (status_.mounts == mount_source::fanotify)
            rebuild_stacks(); // the mounts elsewhere still count
        return;
    }
    if (auto ec = reconciler_.rescan())
        log::warn("cannot read the netns dir",
                  {{"dir", dir_watch_.path()}, {"error", ec.message()}});
    if (status_.mounts == mount_source::fanotify)
        rebuild_stacks();
}

void monitor::rebuild_stacks()
{
    stacks_.clear();
    std::vector<std::uint64_t> ids;
    if (auto ec = kernel::list_mounts(ids))
    {
        log::warn("cannot list the mount table", {{"error", ec.message()}});
        return;
    }
    // Ascending ids: older mounts first, so each entry's stack is bottom to top.
    std::vector<kernel::mount_facts> nsfs;
    for (const auto id : ids)
    {
        std::error_code ec;
        const auto facts = kernel::stat_mount(id, ec);
        if (!facts)
            continue;
        if (facts->netns_inode())
            nsfs.push_back(*facts);
        const auto name = entry_of(facts->mount_point);
        if (name.empty())
            continue;
        probe_result layer;
        if (const auto ino = facts->netns_inode())
        {
            layer.state = entry_state::live;
            layer.identity = {0, makedev(facts->dev_major, facts->dev_minor), *ino};
        }
        stacks_.push(std::string(name), id, layer);
    }
    // The scan just looked at every entry: its top mounts are what the model holds, unless a
    // mount came between the scan's look at a name and this list. Its attach event will be
    // skipped (its mount is known now), so the reconciler hears of it here.
    std::vector<std::string> mounted_since;
    for (const auto& [name, slot] : model_.slots())
    {
        const auto* top = stacks_.top(name);
        if (top == nullptr)
            continue;
        if (slot.state == entry_state::live && top->shows.identity.ino == slot.identity.ino)
            stacks_.update_top(name, {entry_state::live, slot.identity,
                                      model_.nsid_of(slot.identity), true, false});
        else if (top->shows.state == entry_state::live)
            mounted_since.push_back(name);
    }
    for (const auto& name : mounted_since)
        reconciler_.mount_attached(name, identify_top(name));
    hosts_.rebuild_mounts(nsfs, clock::now());
}

std::string_view monitor::entry_of(std::string_view mount_point) const
{
    if (real_dir_.empty() || mount_point.size() <= real_dir_.size() + 1 ||
        !mount_point.starts_with(real_dir_) || mount_point[real_dir_.size()] != '/')
        return {};
    const auto name = mount_point.substr(real_dir_.size() + 1);
    return name.find('/') == std::string_view::npos ? name : std::string_view{};
}

bool monitor::covers_dir(std::string_view mount_point) const
{
    const std::string_view dir = real_dir_.empty() ? dir_watch_.path() : real_dir_;
    if (mount_point == "/" || mount_point == dir)
        return true;
    return dir.starts_with(mount_point) && dir.size() > mount_point.size() &&
           dir[mount_point.size()] == '/';
}

probe_result monitor::shows(std::string_view name, const kernel::mount_facts& facts)
{
    const auto ino = facts.netns_inode();
    if (!ino)
        return probe_result{}; // something else mounted on the name: stale
    // The mount is on top now (the event is just read): a look at the name finds its
    // namespace's id and nsid, unless it went or was covered in between.
    auto found = source_.probe(name);
    if (found.state == entry_state::live && found.identity.ino == *ino)
    {
        found.alias = false;
        return found;
    }
    probe_result known;
    known.state = entry_state::live;
    known.identity = {0, makedev(facts.dev_major, facts.dev_minor), *ino};
    return known;
}

probe_result monitor::identify_top(std::string_view name)
{
    auto now = stacks_.top(name)->shows;
    if (now.state == entry_state::live && now.identity.ns_id == 0)
    {
        const auto found = source_.probe(name);
        if (found.state == entry_state::live && found.identity.ino == now.identity.ino)
        {
            now = found;
            now.alias = false;
            stacks_.update_top(name, now);
        }
    }
    return now;
}

monitor::mount_followup monitor::apply_mount_change(const kernel::mount_change& change)
{
    using kind = kernel::mount_record::kind;
    log_mount_change(change);
    switch (change.what)
    {
    case kind::overflow:
        return mount_followup::rescan;
    case kind::attached:
    {
        if (!change.facts)
        {
            ++status_.mounts_unresolved;
            return mount_followup::none;
        }
        const auto& facts = *change.facts;
        hosts_.mount_seen(facts, clock::now());
        if (covers_dir(facts.mount_point))
            // Something mounted on the dir or above it: the watch may be blind now.
            return mount_followup::rearm;
        const auto name = entry_of(facts.mount_point);
        if (name.empty() || stacks_.has(facts.mount_id))
            return mount_followup::none;
        const auto top = shows(name, facts);
        stacks_.push(std::string(name), facts.mount_id, top);
        reconciler_.mount_attached(name, top);
        return mount_followup::none;
    }
    case kind::detached:
    {
        hosts_.mount_gone(change.mount_id, clock::now());
        const auto name = stacks_.pop(change.mount_id);
        if (!name)
            // Not an entry's mount. It may have been the dir's own (a self-bind, a tmpfs):
            // what it was is unknown now, so look whether the dir is still the same.
            return dir_watch_.watching_dir() && dir_watch_.moved() ? mount_followup::rearm
                                                                   : mount_followup::none;
        if (stacks_.top(*name) == nullptr)
        {
            reconciler_.mount_detached(*name, nullptr);
            return mount_followup::none;
        }
        // A lower mount is on top now.
        const auto now = identify_top(*name);
        reconciler_.mount_detached(*name, &now);
        return mount_followup::none;
    }
    }
    return mount_followup::none;
}

bool monitor::pump()
{
    using kind = kernel::dir_change::kind;
    // inotify first, then the mount events: every unmount that came before an unlink read here
    // is then among the mount events read, and is applied first (reconciler.hpp).
    auto fresh = dir_watch_.drain();
    std::vector<kernel::mount_change> mounts;
    if (status_.mounts == mount_source::fanotify)
        mounts = mount_events_.drain();
    if (ignore_mount_events_)
        mounts.clear();
    // The mount events are applied, all of them and in order, before anything makes the model
    // start over: each says what a mount was while it existed, which a look now cannot.
    auto followup = mount_followup::none;
    for (const auto& change : mounts)
        followup = std::max(followup, apply_mount_change(change));
    // A mount on the dir or above it matters when the dir now resolves elsewhere.
    bool rearm =
        followup == mount_followup::rearm && (!dir_watch_.watching_dir() || dir_watch_.moved());
    bool overflow = false;
    for (const auto& change : fresh)
    {
        rearm = rearm || change.what == kind::dir_lost || change.what == kind::dir_changed;
        overflow = overflow || change.what == kind::overflow;
    }
    if (rearm)
    {
        rearm_and_rescan(resync_reason::dir_changed);
        return false;
    }
    if (overflow || followup == mount_followup::rescan)
    {
        rescan(overflow ? resync_reason::inotify_overflow : resync_reason::mount_overflow);
        return false;
    }
    for (auto& change : fresh)
        pending_.push_back(std::move(change));
    apply_dir_changes(dir_changes_per_turn);
    return !pending_.empty();
}

void monitor::apply_dir_changes(std::size_t budget)
{
    using kind = kernel::dir_change::kind;
    for (; budget > 0 && !pending_.empty(); --budget)
    {
        const auto change = std::move(pending_.front());
        pending_.pop_front();
        if (change.what == kind::entry_created)
            reconciler_.entry_appeared(change.name);
        else if (change.what == kind::entry_deleted)
            reconciler_.entry_vanished(change.name);
    }
}

void monitor::drain_all()
{
    while (pump())
    {
    }
    if (on_nsid_readable())
        while (resolve_nsids())
        {
        }
    while (dir_changes_pending() && pump())
    {
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
    // The mount events queued before these notifications first (read after them, as inotify
    // is read before the mount events): a name mounted, then numbered (`ip netns add`, then
    // `set`) is added with its nsid rather than after an unnamed one.
    if (status_.mounts == mount_source::fanotify && !batch.events.empty())
        pump();
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
    if (ignore_mount_events_)
        return false;
    if (dir_watch_.moved() || !dir_watch_.watching_dir())
    {
        rearm_and_rescan(resync_reason::dir_changed);
        return false;
    }
    reconciler_.reprobe_stale();
    return true;
}

void monitor::refresh(std::string_view name)
{
    pump();
    // A stale entry is looked at all the same: it is what an attach that statmount could not
    // describe leaves (mounts_unresolved), and what a look settles.
    const auto slot = model_.slots().find(name);
    const bool stale = slot != model_.slots().end() && slot->second.state == entry_state::stale;
    if (status_.mounts == mount_source::fanotify && !ignore_mount_events_ &&
        dir_watch_.watching_dir() && pending_.empty() && !reconciler_.resolving_nsids() && !stale)
    {
        pollfd nsids{nsid_events_.fd(), POLLIN, 0};
        if (::poll(&nsids, 1, 0) == 0)
            return; // everything applied: a look would find what the events said
    }
    reconciler_.refresh(name);
}

void monitor::settle()
{
    drain_all();
    // mountinfo says only that something changed, and its watcher coalesces the costly
    // re-check: do both halves now.
    if (status_.mounts == mount_source::mountinfo && dir_watch_.watching_dir() &&
        !ignore_mount_events_)
        reconciler_.mounts_changed();
}

bool monitor::quiet() const
{
    if (!pending_.empty())
        return false;
    const auto readable = [](int fd)
    {
        if (fd < 0)
            return false;
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, 0) > 0;
    };
    if (readable(dir_watch_.fd()) || readable(nsid_events_.fd()))
        return false;
    // mountinfo says only that something changed, which settle() re-checks at once: quiet.
    return status_.mounts != mount_source::fanotify || !mount_events_.pending();
}

std::vector<reconciler::divergence> monitor::audit(const reconciler::kernel_scan& scan,
                                                   double scan_seconds)
{
    const auto started = std::chrono::steady_clock::now();
    settle();
    auto found = reconciler_.audit(
        scan, [this] { settle(); }, [this] { return quiet(); });
    ++status_.audits;
    bool entries = false;
    for (const auto& d : found)
    {
        ++status_.divergences[static_cast<std::size_t>(d.what)];
        entries = entries || d.what != divergence_kind::nsid;
        const auto nsid = d.nsid ? std::to_string(*d.nsid) : std::string("none");
        log::warn(
            "the model diverged from the kernel; repaired",
            {{"kind", to_string(d.what)}, {"name", d.name}, {"nsid", nsid}, {"detail", d.detail}});
    }
    // The mount events that would have told may be what was missed: read the table again.
    if (entries && status_.mounts == mount_source::fanotify)
        rebuild_stacks();
    status_.last_audit_seconds =
        scan_seconds +
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return found;
}

} // namespace netnsd::core
