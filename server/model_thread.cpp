#include "server/model_thread.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <memory>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>
#include <unordered_set>
#include <utility>

#include <boost/asio/post.hpp>

#include "core/kernel/deep_scan.hpp"
#include "core/kernel/mntns_walk.hpp"
#include "core/kernel/netns_dir.hpp"
#include "core/kernel/nsid_netlink.hpp"
#include "core/kernel/proc_sweep.hpp"
#include "core/log.hpp"

#include "api/cni_json.hpp"
#include "api/stream.hpp"

namespace netnsd::server
{

namespace asio = boost::asio;

namespace
{

double seconds_since(std::chrono::steady_clock::time_point t)
{
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// "0,1", or "any" when the threads are not bound.
std::string cpu_list(const std::vector<int>& cpus)
{
    std::string out;
    for (int cpu : cpus)
        out += (out.empty() ? "" : ",") + std::to_string(cpu);
    return out.empty() ? "any" : out;
}

} // namespace

model_thread::model_thread(settings s, core::revision_t base, model_feed& feed)
    : settings_(std::move(s)), feed_(feed), primary_(1, base),
      monitor_(primary_, settings_.netns_dir, settings_.mounts), links_flush_(ioc_),
      audit_timer_(ioc_), sweep_timer_(ioc_), walk_timer_(ioc_), foreign_mounts_pause_(ioc_),
      deep_scan_timer_(ioc_)
{
    // The journal of this registry is never read (the replica's is): one event is kept.
    primary_.record_changes(&recorded_);
    primary_.track_names_in_inventory(true);
    // At debug level, every event as the model made it, with its time to the microsecond: how
    // far behind the kernel the model is can be measured from outside (bench/events).
    if (settings_.watch_links)
        links_.emplace(primary_, settings_.netns_dir, settings_.assign_nsids,
                       settings_.link_receive_buffer);
    const bool debug = core::log::current_level() == core::log::level::debug;
    if (debug || links_)
        primary_.set_listener(
            [this, debug](const core::event& e)
            {
                // --watch-links notes the namespaces and nsids that came (it looks at them
                // after the handler, not inside the registry's call).
                if (links_)
                    links_->note(e);
                if (!debug)
                    return;
                const auto us =
                    std::chrono::duration_cast<std::chrono::microseconds>(e.time.time_since_epoch())
                        .count();
                core::log::debug("model event", {{"type", api::wire_name(e.type)},
                                                 {"name", e.name.value_or("")},
                                                 {"revision", std::to_string(e.revision)},
                                                 {"at_us", std::to_string(us)}});
            });
    if (!settings_.cni_cache_dir.empty())
        cni_.emplace(primary_, settings_.cni_cache_dir, &api::parse_cni_cache_entry);
    monitor_.ignore_mount_events(settings_.ignore_mount_events);
    if (settings_.ignore_mount_events)
        core::log::warn("fault injection: mount events are ignored (tests only)",
                        {{"variable", "NETNSD_TEST_IGNORE_MOUNT_EVENTS"}});
}

model_thread::~model_thread()
{
    if (thread_.joinable())
        stop();
}

std::error_code model_thread::open()
{
    if (auto ec = monitor_.open())
        return ec;
    if (settings_.proc_events)
    {
        // Subscribed before the first sweep: a process that starts between the two is in one.
        if (const auto ec =
                monitor_.open_proc_events(settings_.proc_events_netns, settings_.proc_events_buffer,
                                          settings_.proc_events_subscribe_pause))
            core::log::warn(
                "no process events: new namespaces are found by the /proc sweep only",
                {{"error", ec.message()},
                 {"sweep_interval_s", std::to_string(settings_.sweep_interval.count())}});
        else
            core::log::info(
                "process events: new namespaces are found as processes fork and exec",
                {{"socket_netns", monitor_.proc_events_elsewhere() ? settings_.proc_events_netns
                                                                   : std::string("own")}});
    }
    if (settings_.follow_mount_namespaces)
    {
        if (const auto ec = monitor_.open_foreign_mounts())
            core::log::warn(
                "the other mount namespaces are seen by the walks with each sweep only",
                {{"reason", "no mount events from them: " + ec.message()},
                 {"sweep_interval_s", std::to_string(settings_.sweep_interval.count())}});
        else
            core::log::info("following the other mount namespaces' mounts between walks",
                            {{"feed", "fanotify"}});
    }
    if (links_)
        if (auto ec = links_->open())
            return ec;
    if (cni_)
    {
        if (const auto ec = cni_->open(core::clock::now()))
        {
            core::log::warn("the CNI cache is not read: pods are not named",
                            {{"dir", cni_->dir()}, {"error", ec.message()}});
            cni_.reset();
        }
        else if (!cni_->watching())
            core::log::info("no CNI cache dir (yet): it is looked for with every sweep",
                            {{"dir", cni_->dir()}});
    }
    return {};
}

core::model_status model_thread::status() const
{
    auto s = monitor_.status();
    s.model_thread_realtime = realtime_;
    if (links_)
        s.resyncs[static_cast<std::size_t>(core::model_status::resync_reason::link_overrun)] =
            links_->overruns();
    if (cni_)
    {
        const auto& c = cni_->stats();
        s.cni_cache_watched = cni_->watching();
        s.cni_cache_files = c.files;
        s.cni_cache_pods = c.pods;
        s.cni_cache_skipped = c.skipped;
        s.cni_cache_malformed = c.malformed;
    }
    return s;
}

void model_thread::start()
{
    monitor_.start();
    // The first sweep before READY=1 too: the inventory is complete from the first answer.
    {
        const auto in = monitor_.begin_mount_walk();
        monitor_.apply_mount_namespaces(
            core::kernel::walk_mount_namespaces(in.known_inodes, in.follow_group), in.number);
    }
    if (monitor_.apply_sweep(sweeper_.sweep(monitor_.sweep_input())))
        while (monitor_.continue_sweep())
        {
        }
    if (cni_)
        cni_->sync(core::clock::now());
    // Before the first status is published: it says how mount events are read.
    if (const auto ec = monitor_.read_mounts_on_own_thread(settings::nice))
        core::log::warn("mount events are read on the model thread", {{"error", ec.message()}});
    else if (monitor_.status().mounts == core::model_status::mount_source::fanotify &&
             settings_.realtime_mount_reader)
    {
        if (const auto rt = monitor_.make_mount_reader_realtime(settings::reader_realtime_priority))
            core::log::warn("the mount-event reader stays at nice -10, not real-time",
                            {{"error", rt.message()}});
        else
            core::log::info("the mount-event reader runs under SCHED_FIFO",
                            {{"priority", std::to_string(settings::reader_realtime_priority)},
                             {"cpus", cpu_list(monitor_.mount_reader_cpus())}});
    }
    if (links_)
        links_->start(); // the tables as they are now: no events
    published_ = status();
    feed_.apply_now({std::move(recorded_), published_});
    recorded_.clear();
    watchers_.emplace(ioc_, monitor_, [this] { publish(); });
    watchers_->on_proc_overrun([this] { request_sweep(); });
    watchers_->start();
    if (links_)
    {
        links_fd_.emplace(ioc_, links_->fd());
        do_wait_links();
    }
    if (cni_)
    {
        cni_fd_.emplace(ioc_, cni_->fd());
        do_wait_cni();
    }
    if (monitor_.foreign_mounts_fd() >= 0)
        do_wait_foreign_mounts();
    arm_audit_timer();
    arm_sweep_timer();
    arm_deep_scan_timer();
    thread_ = std::thread(
        [this]
        {
            // Its own name in top -H, ps -L and perf: the thread that reads the kernel.
            ::pthread_setname_np(::pthread_self(), "netnsd-model");
            set_own_priority();
            publish(); // the status says so at once
            ioc_.run();
        });
}

void model_thread::set_own_priority()
{
    if (settings_.realtime_model_thread)
    {
        // SCHED_RESET_ON_FORK: a thread or process it starts is an ordinary one.
        sched_param param{};
        param.sched_priority = settings::model_realtime_priority;
        if (::sched_setscheduler(::gettid(), SCHED_FIFO | SCHED_RESET_ON_FORK, &param) == 0)
        {
            realtime_ = true;
            core::log::info("the model thread runs under SCHED_FIFO",
                            {{"priority", std::to_string(settings::model_realtime_priority)}});
            return;
        }
        core::log::warn(
            "the model thread is not real-time",
            {{"error", std::strerror(errno)}, {"nice", std::to_string(settings::nice)}});
    }
    if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), settings::nice) != 0)
        core::log::info(
            "the model thread keeps netnsd's priority",
            {{"nice", std::to_string(settings::nice)}, {"error", std::strerror(errno)}});
}

void model_thread::stop()
{
    // Behind every refresh already posted: they run (and their answers are published) first.
    asio::post(ioc_,
               [this]
               {
                   if (watchers_)
                       watchers_->stop();
                   links_stopped_ = true;
                   if (links_fd_)
                   {
                       boost::system::error_code ignored;
                       links_fd_->cancel(ignored);
                       links_fd_->release(); // link_watch owns the fd
                   }
                   links_flush_.cancel();
                   cni_stopped_ = true;
                   if (cni_fd_)
                   {
                       boost::system::error_code ignored;
                       cni_fd_->cancel(ignored);
                       cni_fd_->release(); // cni_cache owns the fd
                   }
                   foreign_mounts_stopped_ = true;
                   if (foreign_mounts_fd_)
                   {
                       boost::system::error_code ignored;
                       foreign_mounts_fd_->cancel(ignored);
                       foreign_mounts_fd_->release(); // the monitor owns the fd
                   }
                   walk_timer_.cancel();
                   foreign_mounts_pause_.cancel();
                   audit_timer_.cancel();
                   sweep_timer_.cancel();
                   deep_scan_timer_.cancel();
               });
    // An audit scan or a sweep still running on its pool posts its result to ioc_: let it land.
    audit_pool_.join();
    sweep_pool_.join();
    deep_scan_pool_.join();
    if (thread_.joinable())
        thread_.join();
}

void model_thread::do_wait_links()
{
    links_fd_->async_wait(asio::posix::stream_descriptor::wait_read,
                          [this](boost::system::error_code ec) { on_links(ec); });
}

void model_thread::on_links(boost::system::error_code ec)
{
    if (links_stopped_ || ec == asio::error::operation_aborted)
        return;
    if (links_->on_readable())
        // More than one turn's worth: read the rest on a later turn, after what else is ready.
        asio::post(ioc_, [this] { on_links({}); });
    else
        do_wait_links();
    publish();
}

void model_thread::do_wait_cni()
{
    cni_fd_->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this](boost::system::error_code ec)
                        {
                            if (cni_stopped_ || ec == asio::error::operation_aborted)
                                return;
                            cni_->on_readable(core::clock::now());
                            do_wait_cni();
                            publish();
                        });
}

void model_thread::do_wait_foreign_mounts()
{
    // Registered with the loop's epoll only while it is waited on: registered, every event
    // the kernel queues would wake the loop, read or not.
    foreign_mounts_fd_.emplace(ioc_, monitor_.foreign_mounts_fd());
    foreign_mounts_fd_->async_wait(asio::posix::stream_descriptor::wait_read,
                                   [this](boost::system::error_code ec) { on_foreign_mounts(ec); });
}

void model_thread::on_foreign_mounts(boost::system::error_code ec)
{
    if (foreign_mounts_stopped_ || ec == asio::error::operation_aborted)
        return;
    foreign_mounts_fd_->release(); // the monitor owns the fd
    foreign_mounts_fd_.reset();
    if (monitor_.on_foreign_mounts())
        request_walk();
    watchers_->arm_unheld_recheck();
    publish();
    // What comes meanwhile waits in the kernel's queue and is read in one go: one wakeup per
    // pause however fast the other mount namespaces mount.
    foreign_mounts_pause_.expires_after(foreign_mounts_pause);
    foreign_mounts_pause_.async_wait(
        [this](boost::system::error_code paused)
        {
            if (!paused && !foreign_mounts_stopped_)
                do_wait_foreign_mounts();
        });
}

void model_thread::request_walk()
{
    walk_wanted_ = true;
    maybe_start_walk();
}

void model_thread::maybe_start_walk()
{
    // A sweep walks as well: one that ends after this was asked is followed by a walk.
    if (!walk_wanted_ || walking_ || sweeping_ || walk_spaced_ || foreign_mounts_stopped_)
        return;
    walk_wanted_ = false;
    walking_ = true;
    asio::post(sweep_pool_,
               [this, in = monitor_.begin_mount_walk()]
               {
                   auto walk =
                       core::kernel::walk_mount_namespaces(in.known_inodes, in.follow_group);
                   asio::post(ioc_,
                              [this, walk = std::move(walk), number = in.number]
                              {
                                  monitor_.apply_mount_namespaces(walk, number);
                                  watchers_->arm_unheld_recheck();
                                  publish();
                                  walking_ = false;
                                  walk_spaced_ = true;
                                  walk_timer_.expires_after(std::max<std::chrono::nanoseconds>(
                                      walk_spacing,
                                      std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::duration<double>(10 * walk.seconds))));
                                  walk_timer_.async_wait(
                                      [this](boost::system::error_code ec)
                                      {
                                          walk_spaced_ = false;
                                          if (!ec)
                                              maybe_start_walk();
                                      });
                              });
               });
}

void model_thread::arm_link_flush()
{
    const auto at = links_->next_flush();
    if (!at || (links_flush_at_ && *links_flush_at_ <= *at))
        return;
    links_flush_at_ = at;
    links_flush_.expires_at(*at);
    links_flush_.async_wait(
        [this](boost::system::error_code ec)
        {
            links_flush_at_.reset();
            if (ec || links_stopped_)
                return;
            links_->flush(std::chrono::steady_clock::now());
            publish();
        });
}

void model_thread::publish()
{
    // A namespace found may be one a CNI cache entry names (or the one it named went): matched
    // before the changes go out, so that its owner's holders event goes in the same batch.
    if (cni_ && !cni_stopped_)
        cni_->sync(core::clock::now());
    if (links_ && !links_stopped_)
    {
        // What is left waits behind the handlers already queued (the kernel's feeds first).
        if (links_->sync() && !links_sync_posted_)
        {
            links_sync_posted_ = true;
            asio::post(ioc_,
                       [this]
                       {
                           links_sync_posted_ = false;
                           if (!links_stopped_)
                               publish();
                       });
        }
        arm_link_flush();
    }
    const bool status_changed = status() != published_;
    if (recorded_.empty() && !status_changed)
        return;
    model_feed::batch b;
    b.changes = std::move(recorded_);
    recorded_.clear();
    if (status_changed)
    {
        published_ = status();
        b.status = published_;
    }
    feed_.publish(std::move(b));
}

void model_thread::refresh_then(std::vector<std::string> names, std::function<void()> then)
{
    asio::post(ioc_,
               [this, names = std::move(names), then = std::move(then)]() mutable
               {
                   for (const auto& name : names)
                       monitor_.refresh(name);
                   publish();
                   feed_.publish_then(std::move(then));
               });
}

model_thread::audit_report model_thread::audit_now()
{
    auto done = std::make_shared<std::promise<audit_report>>();
    auto result = done->get_future();
    asio::post(ioc_, [this, done]
               { request_audit([done](const audit_report& r) { done->set_value(r); }); });
    return result.get();
}

void model_thread::arm_audit_timer()
{
    if (settings_.audit_interval.count() <= 0)
        return;
    audit_timer_.expires_after(settings_.audit_interval);
    audit_timer_.async_wait(
        [this](boost::system::error_code ec)
        {
            if (ec)
                return;
            request_audit([](const audit_report&) {});
            arm_audit_timer();
        });
}

void model_thread::arm_sweep_timer()
{
    sweep_timer_.expires_after(settings_.sweep_interval);
    sweep_timer_.async_wait(
        [this](boost::system::error_code ec)
        {
            if (ec)
                return;
            request_sweep();
            arm_sweep_timer();
        });
}

void model_thread::request_sweep()
{
    if (sweeping_)
    {
        // The one running read /proc before this was asked (process events lost since): one
        // more after it.
        sweep_again_ = true;
        return;
    }
    sweeping_ = true;
    // Its walk covers every attach read before now.
    walk_wanted_ = false;
    // One readlink per process (20000 on a busy host): on a worker, never on this thread,
    // which must keep reading mount events while their mounts exist. Applied here.
    asio::post(sweep_pool_,
               [this, known = monitor_.begin_sweep(), in = monitor_.begin_mount_walk()]
               {
                   // The other mount namespaces' nsfs mounts with each sweep: new mount
                   // namespaces (the kernel announces none) are found, and followed from then
                   // on, by these walks.
                   // The sweep first: it asks every known namespace's handle whether it is freed,
                   // and the walk is then not told of those inodes (the kernel may have given one
                   // to a namespace mounted somewhere: the walk opens that one).
                   auto sweep = sweeper_.sweep(known);
                   auto inodes = in.known_inodes;
                   const std::unordered_set<std::uint64_t> gone(sweep.gone.begin(),
                                                                sweep.gone.end());
                   for (const auto& k : known)
                       if (gone.count(k.ns_id) != 0)
                           inodes.erase(k.ino);
                   auto walk = core::kernel::walk_mount_namespaces(inodes, in.follow_group);
                   asio::post(ioc_,
                              [this, walk = std::move(walk), number = in.number,
                               sweep = std::move(sweep)]() mutable
                              {
                                  monitor_.apply_mount_namespaces(walk, number);
                                  sweep_applying(monitor_.apply_sweep(std::move(sweep)));
                              });
               });
}

void model_thread::sweep_applying(bool more)
{
    publish();
    if (more)
    {
        // The next slice after the handlers queued meanwhile (the kernel's feeds).
        asio::post(ioc_, [this] { sweep_applying(monitor_.continue_sweep()); });
        return;
    }
    watchers_->arm_unheld_recheck();
    if (cni_ && !cni_stopped_)
        cni_->retry(core::clock::now());
    publish();
    sweeping_ = false;
    if (std::exchange(sweep_again_, false))
        request_sweep();
    else
        maybe_start_walk();
}

model_thread::deep_scan_report model_thread::deep_scan_now()
{
    auto done = std::make_shared<std::promise<deep_scan_report>>();
    auto result = done->get_future();
    asio::post(ioc_, [this, done]
               { request_deep_scan([done](const deep_scan_report& r) { done->set_value(r); }); });
    return result.get();
}

void model_thread::arm_deep_scan_timer()
{
    if (settings_.deep_scan_interval.count() <= 0)
        return;
    deep_scan_timer_.expires_after(settings_.deep_scan_interval);
    deep_scan_timer_.async_wait(
        [this](boost::system::error_code ec)
        {
            if (ec)
                return;
            request_deep_scan([](const deep_scan_report&) {});
            arm_deep_scan_timer();
        });
}

void model_thread::request_deep_scan(std::function<void(const deep_scan_report&)> done)
{
    deep_scan_waiters_.push_back(std::move(done));
    if (deep_scan_waiters_.size() > 1)
        return; // one runs: its result answers every waiter
    // A readlink per fd of every process and three calls per socket (pidfd_getfd, SIOCGSKNS,
    // NS_GET_ID): on a worker of its own, never on this thread; applied here.
    asio::post(deep_scan_pool_,
               [this, known = monitor_.sweep_input()]
               {
                   auto scan = core::kernel::deep_scan(known);
                   asio::post(ioc_,
                              [this, scan = std::move(scan)]
                              {
                                  monitor_.apply_deep_scan(scan);
                                  publish();
                                  deep_scan_report report;
                                  report.processes = scan.processes;
                                  report.fds = scan.fds;
                                  report.sockets = scan.sockets;
                                  report.socket_failures = scan.socket_failures;
                                  report.found = scan.found.size();
                                  report.seconds = scan.seconds;
                                  for (const auto& h : primary_.host_namespaces())
                                  {
                                      report.held_by_fd += h.fd_pids.empty() ? 0u : 1u;
                                      report.held_by_socket += h.socket_pids.empty() ? 0u : 1u;
                                  }
                                  auto waiters = std::move(deep_scan_waiters_);
                                  deep_scan_waiters_.clear();
                                  for (auto& w : waiters)
                                      w(report);
                              });
               });
}

void model_thread::request_audit(std::function<void(const audit_report&)> done)
{
    audit_waiters_.push_back(std::move(done));
    if (auditing_)
        return;
    auditing_ = true;
    audit_started_ = std::chrono::steady_clock::now();
    // The scan opens and looks at every entry (and asks the nsid of those the model has none
    // for: O(nsids) each in the kernel), which takes a while at thousands: on a worker of its
    // own, with its own netlink socket, never on this thread, which must keep reading the kernel.
    asio::post(
        audit_pool_,
        [this, dir = settings_.netns_dir, started = audit_started_, known = primary_.known_nsids()]
        {
            core::kernel::nsid_client nsids;
            core::reconciler::kernel_scan scan;
            if (auto ec = nsids.open())
                scan.list_error = ec;
            else
            {
                core::kernel::netns_dir source(dir, nsids);
                scan = core::reconciler::scan(source, known);
            }
            asio::post(ioc_, [this, scan = std::move(scan), took = seconds_since(started)]
                       { finish_audit(scan, took); });
        });
}

void model_thread::finish_audit(const core::reconciler::kernel_scan& scan, double scan_seconds)
{
    audit_report report;
    report.entries = scan.entries.size();
    if (scan.list_error && scan.entries.empty() &&
        scan.list_error != std::errc::no_such_file_or_directory)
        core::log::warn("the audit could not scan the netns dir",
                        {{"error", scan.list_error.message()}});
    report.divergences = monitor_.audit(scan, scan_seconds);
    report.seconds = seconds_since(audit_started_);
    publish();
    auditing_ = false;
    auto waiters = std::move(audit_waiters_);
    audit_waiters_.clear();
    for (auto& w : waiters)
        w(report);
}

} // namespace netnsd::server
