#include "core/host_watch.hpp"

#include <algorithm>
#include <fcntl.h>
#include <set>
#include <span>

#include "core/kernel/unique_fd.hpp"

namespace netnsd::core
{

std::optional<ns_identity> host_watch::learn(int fd)
{
    const auto id = kernel::identify_netns(fd);
    return id ? learn(fd, *id) : std::nullopt;
}

std::optional<ns_identity> host_watch::learn(int fd, const ns_identity& id)
{
    if (id.ns_id == 0)
        return std::nullopt;
    if (handles_.count(id.ns_id) == 0)
        if (auto h = kernel::handle_of_fd(fd))
            handles_.emplace(id.ns_id, *h);
    user_ns_ = kernel::user_ns_of(fd);
    return id;
}

void host_watch::tell_user_ns(std::uint64_t ns_id, const std::optional<kernel::user_ns_info>& u,
                              time_point now)
{
    if (u)
        model_.set_user_ns(ns_id, u->ns_id, u->owner_uid, now);
}

namespace
{

registry::first_look look_of(std::vector<std::int32_t> pids, std::string cgroup,
                             const std::optional<kernel::user_ns_info>& u)
{
    return {std::move(pids), std::move(cgroup), u ? u->ns_id : 0, u ? u->owner_uid : 0};
}

} // namespace

void host_watch::add_self(time_point now)
{
    own_mnt_ns_id_ = kernel::own_mnt_ns_id();
    const kernel::unique_fd fd(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    if (fd)
        self_ = learn(fd.get());
    if (self_)
    {
        model_.found_namespace(*self_, true, now, look_of({}, {}, user_ns_));
    }
}

void host_watch::mount_seen(const kernel::mount_facts& facts, time_point now)
{
    const auto ino = facts.netns_inode();
    if (!ino || mounts_.count(facts.mount_id) != 0)
        return;
    std::optional<ns_identity> id;
    // The mount is on top of its point when the event is read, unless something covered it or
    // it went since: then the inode no longer matches, and only a namespace the model already
    // has with that inode can be named.
    const kernel::unique_fd fd(
        ::open(facts.mount_point.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    std::optional<kernel::user_ns_info> user_ns;
    if (fd)
    {
        const auto seen = kernel::identify_netns(fd.get());
        if (seen && seen->ino == *ino)
        {
            id = learn(fd.get(), *seen);
            user_ns = user_ns_;
        }
    }
    if (!id)
        for (const auto& [ns_id, known] : model_.host_identities())
            if (known.ino == *ino)
                id = known;
    if (!id || id->ns_id == 0)
        return;
    mounts_.emplace(facts.mount_id, known_mount{id->ns_id, own_mnt_ns_id_, false});
    model_.namespace_mounted(*id, facts.mount_id, facts.mount_point, now, own_mnt_ns_id_);
    tell_user_ns(id->ns_id, user_ns, now);
}

void host_watch::mount_gone(std::uint64_t mount_id, time_point now)
{
    auto it = mounts_.find(mount_id);
    if (it == mounts_.end())
        return;
    const auto ns_id = it->second.ns_id;
    mounts_.erase(it);
    model_.namespace_unmounted(mount_id, now);
    holder_lost(ns_id, now);
}

void host_watch::rebuild_mounts(const std::vector<kernel::mount_facts>& nsfs_mounts, time_point now)
{
    std::set<std::uint64_t> present;
    for (const auto& f : nsfs_mounts)
        present.insert(f.mount_id);
    std::vector<std::uint64_t> went;
    for (const auto& [mount_id, m] : mounts_)
        if (!m.other_mnt_ns && present.count(mount_id) == 0)
            went.push_back(mount_id);
    for (const auto id : went)
        mount_gone(id, now);
    for (const auto& f : nsfs_mounts)
        mount_seen(f, now);
}

std::set<std::uint64_t> host_watch::known_inodes() const
{
    std::set<std::uint64_t> out;
    for (const auto& [ns_id, id] : model_.host_identities())
        out.insert(id.ino);
    return out;
}

std::uint64_t host_watch::begin_mount_walk() noexcept
{
    ++walks_running_;
    return ++walks_begun_;
}

void host_watch::foreign_mount_detached(std::uint64_t mount_id, time_point now)
{
    if (walks_running_ != 0)
        detached_while_walking_.emplace(mount_id, walks_begun_);
    if (const auto it = mounts_.find(mount_id); it != mounts_.end() && it->second.other_mnt_ns)
        mount_gone(mount_id, now);
}

void host_watch::apply_mount_namespaces(const kernel::mntns_walk_result& walk,
                                        std::uint64_t walk_number, time_point now)
{
    if (walks_running_ != 0)
        --walks_running_;
    // Walks end in the order they began (one worker): the detaches before this one began are
    // in it already, and no later walk can list them.
    const auto detached_since = [&](std::uint64_t mount_id)
    {
        const auto it = detached_while_walking_.find(mount_id);
        return it != detached_while_walking_.end() && it->second >= walk_number;
    };
    const auto forget_before = [&]
    {
        std::erase_if(detached_while_walking_,
                      [&](const auto& d) { return d.second < walk_number || walks_running_ == 0; });
    };
    if (walk.error)
    {
        forget_before();
        return;
    }
    // Every mount namespace made by copying another (`ip netns exec`, `unshare -m`, a
    // container's) has copies of its nsfs mounts: a namespace mounted in netnsd's own mount
    // namespace is held by that, and its copies elsewhere are left out, or every exec would
    // change the mounts of every named namespace. Once its own mounts go, the copies are what
    // hold it, and the next walk shows them.
    std::set<std::uint64_t> mounted_here; // ns_ids
    for (const auto& [mount_id, m] : mounts_)
        if (!m.other_mnt_ns)
            mounted_here.insert(m.ns_id);
    std::set<std::uint64_t> present;
    for (const auto& m : walk.mounts)
        present.insert(m.mount_id);
    std::vector<std::uint64_t> went;
    for (const auto& [mount_id, m] : mounts_)
        if (m.other_mnt_ns &&
            ((present.count(mount_id) == 0 && walk.unread.count(m.mnt_ns_id) == 0) ||
             mounted_here.count(m.ns_id) != 0))
            went.push_back(mount_id);
    for (const auto id : went)
        mount_gone(id, now);
    const auto known = model_.host_identities();
    for (const auto& m : walk.mounts)
    {
        if (mounts_.count(m.mount_id) != 0 || detached_since(m.mount_id))
            continue;
        // The walk opened the namespaces it was not told of; the others are the model's, by
        // inode (unique among live namespaces).
        std::optional<ns_identity> id = m.identity;
        if (!id)
            for (const auto& [ns_id, k] : known)
                if (k.ino == m.ino)
                    id = k;
        if (!id || id->ns_id == 0 || mounted_here.count(id->ns_id) != 0)
            continue;
        // Unless the model's is freed already and the kernel gave its inode to the one mounted
        // here: its handle says so. It is destroyed now, and the mount left to the next walk,
        // which is no longer told of the inode and opens the namespace.
        if (!m.identity)
        {
            if (!model_.host(id->ns_id))
                continue; // destroyed just now, for another of its mounts
            if (const auto h = handles_.find(id->ns_id);
                h != handles_.end() && kernel::liveness_of(h->second) == kernel::ns_liveness::gone)
            {
                gone(id->ns_id, now);
                continue;
            }
        }
        if (m.handle && handles_.count(id->ns_id) == 0)
            handles_.emplace(id->ns_id, *m.handle);
        mounts_.emplace(m.mount_id, known_mount{id->ns_id, m.mnt_ns_id, true});
        model_.namespace_mounted(*id, m.mount_id, m.mount_point, now, m.mnt_ns_id, true);
        tell_user_ns(id->ns_id, m.user_ns, now);
    }
    forget_before();
}

void host_watch::check_if_unheld(std::uint64_t ns_id, time_point now)
{
    const auto h = model_.host(ns_id);
    if (!h || h->held_by() != 0)
        return;
    const auto handle = handles_.find(ns_id);
    // The last holder may have let go a moment ago; the kernel frees the namespace after the
    // unmount's last reference drops, which can be later than this look. The sweep asks again.
    if (handle != handles_.end() &&
        kernel::liveness_of(handle->second) == kernel::ns_liveness::gone)
        gone(ns_id, now);
}

void host_watch::holder_lost(std::uint64_t ns_id, time_point now)
{
    check_if_unheld(ns_id, now);
    if (const auto h = model_.host(ns_id); h && h->held_by() == 0)
        unheld_.emplace(ns_id, now);
}

void host_watch::gone(std::uint64_t ns_id, time_point now)
{
    handles_.erase(ns_id);
    std::erase_if(mounts_, [ns_id](const auto& m) { return m.second.ns_id == ns_id; });
    model_.namespace_gone(ns_id, now);
}

std::vector<kernel::sweep_known> host_watch::sweep_input() const
{
    std::vector<kernel::sweep_known> out;
    const auto known = model_.host_identities();
    out.reserve(known.size());
    for (const auto& [ns_id, id] : known)
    {
        kernel::sweep_known k;
        k.ns_id = ns_id;
        k.ino = id.ino;
        if (auto h = handles_.find(ns_id); h != handles_.end())
            k.handle = h->second;
        if (const auto l = lowest_.find(ns_id);
            l != lowest_.end() && l->second.sweeps >= 2 && sweeps_ % cgroup_refresh != 0)
        {
            k.settled_pid = l->second.pid;
            k.settled_cgroup = std::string(model_.cgroup_of(ns_id));
        }
        out.push_back(std::move(k));
    }
    return out;
}

void host_watch::apply_proc_events(const std::vector<kernel::proc_event>& events, time_point now)
{
    pid_moves moves;
    for (const auto& e : events)
    {
        if (e.is_thread() || e.what == kernel::proc_event::kind::ack)
            continue;
        if (e.what == kernel::proc_event::kind::exit)
            moves[e.pid] = std::nullopt;
        else // fork or exec: where it is now (nowhere when it has exited since)
            moves[e.pid] = kernel::netns_inode_of(e.pid);
    }
    if (moves.empty())
        return;
    if (since_sweep_)
        for (const auto& [pid, ino] : moves)
            (*since_sweep_)[pid] = ino;
    for (const auto& [pid, ino] : moves)
        pending_[pid] = ino; // the later state of a pid replaces the earlier
    if (is_urgent(pending_))
        flush_processes(now);
}

bool host_watch::flush_processes(time_point now)
{
    if (pending_.empty())
        return false;
    const auto moves = std::move(pending_);
    pending_.clear();
    apply_moves(moves, now);
    return true;
}

bool host_watch::is_urgent(const pid_moves& moves) const
{
    // The inodes the moves name (few), struck off as the model's namespaces are walked: one
    // left over is a namespace new to the model.
    std::vector<std::uint64_t> unknown;
    bool leaving = false; // an exit (or a fork whose child is gone already)
    for (const auto& [pid, ino] : moves)
    {
        if (ino)
            unknown.push_back(*ino);
        else
            leaving = true;
    }
    std::sort(unknown.begin(), unknown.end());
    unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
    bool emptied = false;
    model_.for_each_host(
        [&](const ns_identity& id, const std::vector<std::int32_t>& pids)
        {
            if (const auto it = std::lower_bound(unknown.begin(), unknown.end(), id.ino);
                it != unknown.end() && *it == id.ino)
                unknown.erase(it);
            // A namespace all of whose processes exit. (One whose last process moved to
            // another namespace waits for the flush: setns then exec, seldom.)
            if (!leaving || emptied || pids.empty() || pids.size() > moves.size())
                return;
            emptied = std::all_of(pids.begin(), pids.end(),
                                  [&](std::int32_t pid)
                                  {
                                      const auto m = moves.find(pid);
                                      return m != moves.end() && !m->second;
                                  });
        });
    return emptied || !unknown.empty();
}

void host_watch::apply_moves(const pid_moves& moves, time_point now)
{
    std::map<std::uint64_t, std::uint64_t> known; // inode -> ns_id
    for (const auto& [ns_id, id] : model_.host_identities())
        known.emplace(id.ino, ns_id);
    // Namespaces new to the model, each learnt from one of its processes.
    std::map<std::uint64_t, std::vector<std::int32_t>> fresh; // inode -> pids
    for (const auto& [pid, ino] : moves)
        if (ino && known.count(*ino) == 0)
            fresh[*ino].push_back(pid);
    for (const auto& [ino, pids] : fresh)
    {
        std::optional<kernel::process_namespace> opened;
        for (const auto pid : pids)
            if ((opened = kernel::open_netns_of(pid, ino)))
                break;
        if (!opened || opened->ns.identity.ns_id == 0)
            continue;
        const auto& id = opened->ns.identity;
        if (opened->ns.handle && handles_.count(id.ns_id) == 0)
            handles_.emplace(id.ns_id, *opened->ns.handle);
        // Its inode may have been a namespace the model knew, freed and reused since: the
        // ns_id tells. Known by ns_id: the pids are set below like any other's.
        if (model_.host(id.ns_id))
        {
            known[ino] = id.ns_id;
            continue;
        }
        model_.found_namespace(id, self_ && id == *self_, now,
                               look_of(pids, opened->cgroup.value_or(""), opened->ns.user_ns));
        unheld_.erase(id.ns_id);
    }
    // Every namespace's processes, once: those that left or moved out go, those that came in
    // join.
    std::vector<std::uint64_t> lost;
    for (const auto& [ns_id, id] : model_.host_identities())
    {
        const auto* before = model_.processes_of(ns_id);
        if (!before)
            continue;
        std::vector<std::int32_t> after;
        after.reserve(before->size());
        bool changed = false;
        for (const auto pid : *before)
        {
            const auto m = moves.find(pid);
            if (m == moves.end() || m->second == id.ino)
                after.push_back(pid);
            else
                changed = true;
        }
        for (const auto& [pid, ino] : moves)
            if (ino == id.ino && !std::binary_search(before->begin(), before->end(), pid))
            {
                after.push_back(pid);
                changed = true;
            }
        if (!changed)
            continue;
        std::sort(after.begin(), after.end());
        const bool emptied = after.empty() && !before->empty();
        model_.set_processes(ns_id, after, now);
        if (emptied)
            lost.push_back(ns_id);
        else if (!after.empty())
            unheld_.erase(ns_id);
    }
    for (const auto ns_id : lost)
        holder_lost(ns_id, now);
}

bool host_watch::recheck_unheld(time_point now)
{
    for (auto it = unheld_.begin(); it != unheld_.end();)
    {
        const auto h = model_.host(it->first);
        if (!h || h->held_by() != 0 || now - it->second > unheld_patience)
        {
            it = unheld_.erase(it);
            continue;
        }
        check_if_unheld(it->first, now);
        it = model_.host(it->first) ? std::next(it) : unheld_.erase(it);
    }
    return !unheld_.empty();
}

void host_watch::apply_sweep(kernel::proc_sweep sweep, time_point now)
{
    begin_sweep_application(std::move(sweep));
    while (apply_sweep_slice(now))
    {
    }
}

void host_watch::begin_sweep_application(kernel::proc_sweep sweep)
{
    auto& a = applying_.emplace();
    a.sweep = std::move(sweep);
    a.at = sweep_application::phase::gone;
    a.next = 0;
    a.found_inodes.reserve(a.sweep.found.size());
    for (const auto& [ino, found] : a.sweep.found)
        a.found_inodes.push_back(ino);
}

bool host_watch::apply_sweep_slice(time_point now)
{
    if (!applying_)
        return false;
    auto& a = *applying_;
    using phase = sweep_application::phase;
    if (a.at == phase::gone)
        apply_gone_slice(a, now);
    else if (a.at == phase::found)
        apply_found_slice(a, now);
    else
        apply_counts_slice(a, now);
    if (a.at != phase::counts || a.next < a.counted.size())
        return true;
    finish_sweep(now);
    return false;
}

void host_watch::apply_gone_slice(sweep_application& a, time_point now)
{
    const auto& ids = a.sweep.gone;
    const auto end = std::min(ids.size(), a.next + sweep_slice);
    const std::span slice(ids.begin() + static_cast<std::ptrdiff_t>(a.next),
                          ids.begin() + static_cast<std::ptrdiff_t>(end));
    // The mounts of the whole slice in one pass (gone() makes one per namespace).
    std::erase_if(mounts_, [&](const auto& m)
                  { return std::find(slice.begin(), slice.end(), m.second.ns_id) != slice.end(); });
    for (const auto ns_id : slice)
    {
        handles_.erase(ns_id);
        model_.namespace_gone(ns_id, now);
    }
    a.next = end;
    if (a.next < ids.size())
        return;
    // Handles the model no longer needs (destroyed by RTM_DELNSID meanwhile).
    std::erase_if(handles_, [this](const auto& h) { return !model_.host(h.first).has_value(); });
    a.at = sweep_application::phase::found;
    a.next = 0;
}

void host_watch::apply_found_slice(sweep_application& a, time_point now)
{
    const auto& sweep = a.sweep;
    const auto end = std::min(a.found_inodes.size(), a.next + sweep_slice);
    for (; a.next < end; ++a.next)
    {
        const auto ino = a.found_inodes[a.next];
        const auto& found = sweep.found.at(ino);
        if (found.identity.ns_id == 0)
            continue;
        if (found.handle && handles_.count(found.identity.ns_id) == 0)
            handles_.emplace(found.identity.ns_id, *found.handle);
        const auto seen = sweep.pids_by_inode.find(ino);
        const auto cgroup = sweep.cgroup_by_inode.find(ino);
        model_.found_namespace(
            found.identity, self_ && found.identity == *self_, now,
            look_of(seen == sweep.pids_by_inode.end() ? std::vector<std::int32_t>{} : seen->second,
                    cgroup == sweep.cgroup_by_inode.end() ? std::string() : cgroup->second,
                    found.user_ns));
    }
    if (a.next < a.found_inodes.size())
        return;
    // Every namespace the model has now; one learnt from here on (by a mount or a process
    // event) is newer than this sweep, and counted by the next.
    for (const auto& [ns_id, id] : model_.host_identities())
        a.counted.emplace_back(ns_id, id.ino);
    a.at = sweep_application::phase::counts;
    a.next = 0;
}

void host_watch::apply_counts_slice(sweep_application& a, time_point now)
{
    static const std::vector<std::int32_t> none;
    const auto& sweep = a.sweep;
    const auto end = std::min(a.counted.size(), a.next + sweep_slice);
    for (; a.next < end; ++a.next)
    {
        const auto [ns_id, ino] = a.counted[a.next];
        const auto it = sweep.pids_by_inode.find(ino);
        model_.set_processes(ns_id, it == sweep.pids_by_inode.end() ? none : it->second, now);
        const auto cgroup = sweep.cgroup_by_inode.find(ino);
        const std::string_view cg = cgroup == sweep.cgroup_by_inode.end()
                                        ? std::string_view()
                                        : std::string_view(cgroup->second);
        model_.set_cgroup(ns_id, cg, now);
        if (it != sweep.pids_by_inode.end() && !it->second.empty())
        {
            const auto before = lowest_.find(ns_id);
            const bool same = before != lowest_.end() && before->second.pid == it->second.front();
            a.lowest.emplace(ns_id,
                             lowest_pid{it->second.front(), same ? before->second.sweeps + 1 : 1});
        }
    }
}

void host_watch::finish_sweep(time_point now)
{
    ++sweeps_;
    lowest_ = std::move(applying_->lowest);
    applying_.reset();
    // The process events that came while the sweep read /proc (and while it was applied) are
    // newer than what it read; those that came before are in what it read.
    pending_.clear();
    if (since_sweep_)
    {
        const auto moves = std::move(*since_sweep_);
        since_sweep_.reset();
        if (!moves.empty())
            apply_moves(moves, now);
    }
    // The handles were asked before the processes were read: a namespace whose last process
    // left meanwhile is asked again now rather than at the next sweep.
    for (const auto ns_id : model_.unheld_namespaces())
        check_if_unheld(ns_id, now);
}

void host_watch::apply_deep_scan(const kernel::deep_scan_result& scan, time_point now)
{
    for (const auto ns_id : scan.gone)
        gone(ns_id, now);
    std::erase_if(handles_, [this](const auto& h) { return !model_.host(h.first).has_value(); });
    // Namespaces that only an fd or a socket showed: held by nothing a sweep or a mount event
    // sees, so found here or never.
    for (const auto& [ns_id, found] : scan.found)
    {
        if (found.handle && handles_.count(ns_id) == 0)
            handles_.emplace(ns_id, *found.handle);
        model_.found_namespace(found.identity, self_ && found.identity == *self_, now,
                               look_of({}, {}, found.user_ns));
    }
    static const std::vector<std::int32_t> none;
    const auto pids = [](const auto& by_ns, std::uint64_t ns_id) -> const auto&
    {
        const auto it = by_ns.find(ns_id);
        return it == by_ns.end() ? none : it->second;
    };
    for (const auto& [ns_id, id] : model_.host_identities())
        model_.set_deep_holders(ns_id, pids(scan.fd_pids, ns_id), pids(scan.socket_pids, ns_id),
                                now);
    // An fd or socket that held a namespace may have been its last holder.
    for (const auto ns_id : model_.unheld_namespaces())
        check_if_unheld(ns_id, now);
}

} // namespace netnsd::core
