#include "core/registry.hpp"

#include <algorithm>
#include <utility>

#include "core/owner.hpp"

namespace netnsd::core
{
namespace
{

registry::change make_change(registry::change::kind what, std::string name, probe_result probe,
                             ns_identity id, nsid_t nsid, time_point time)
{
    registry::change c;
    c.what = what;
    c.name = std::move(name);
    c.probe = probe;
    c.identity = id;
    c.nsid = nsid;
    c.time = time;
    return c;
}

} // namespace

registry::registry(std::size_t journal_capacity, revision_t base)
    : revision_(base), start_revision_(base), journal_(journal_capacity, base)
{
}

std::optional<nsid_t> registry::nsid_of(const ns_identity& id) const
{
    auto it = namespaces_.find(id);
    if (it == namespaces_.end())
        return std::nullopt;
    return it->second.nsid;
}

std::map<ns_identity, nsid_t> registry::known_nsids() const
{
    std::map<ns_identity, nsid_t> known;
    for (const auto& [id, record] : namespaces_)
        if (id.ns_id != 0 && record.nsid)
            known.emplace_hint(known.end(), id, *record.nsid);
    return known;
}

std::vector<std::string> registry::names_of(const ns_identity& id) const
{
    auto it = namespaces_.find(id);
    if (it == namespaces_.end())
        return {};
    return {it->second.live_names.begin(), it->second.live_names.end()};
}

entry registry::to_entry(const slot_map::value_type& item) const
{
    const auto& [name, s] = item;
    entry e{name, s.state, std::nullopt, std::nullopt, s.first_seen};
    if (s.state == entry_state::live)
    {
        e.identity = s.identity;
        e.nsid = nsid_of(s.identity);
    }
    return e;
}

std::optional<entry> registry::find(std::string_view name) const
{
    auto it = slots_.find(name);
    if (it == slots_.end())
        return std::nullopt;
    return to_entry(*it);
}

std::vector<nsid_row> registry::nsids() const
{
    std::vector<nsid_row> rows;
    rows.reserve(nsids_.size());
    for (const auto& [nsid, id] : nsids_)
    {
        nsid_row row{nsid, std::nullopt};
        if (id)
        {
            auto ns = namespaces_.find(*id);
            if (ns != namespaces_.end() && !ns->second.live_names.empty())
                row.name = *ns->second.live_names.begin();
        }
        rows.push_back(std::move(row));
    }
    return rows;
}

void registry::record(change c)
{
    if (recorder_ != nullptr)
        recorder_->push_back(std::move(c));
}

void registry::apply(const change& c)
{
    switch (c.what)
    {
    case change::kind::probed:
        apply_probe(c.name, c.probe, c.time);
        return;
    case change::kind::erased:
        erase(c.name, c.time);
        return;
    case change::kind::nsid_set:
        set_nsid(c.identity, c.nsid, c.time);
        return;
    case change::kind::nsid_unnamed:
        add_unnamed_nsid(c.nsid, c.time);
        return;
    case change::kind::nsid_destroyed:
        destroy_nsid(c.nsid, c.time);
        return;
    case change::kind::ns_found:
        found_namespace(c.identity, c.flag, c.time,
                        {c.pids, c.name, c.mount_id, static_cast<std::uint32_t>(c.nsid)});
        return;
    case change::kind::ns_mounted:
        namespace_mounted(c.identity, c.mount_id, c.name, c.time, c.mnt_ns_id, c.flag);
        return;
    case change::kind::ns_unmounted:
        namespace_unmounted(c.mount_id, c.time);
        return;
    case change::kind::ns_processes:
        set_processes(c.identity.ns_id, c.pids, c.time);
        return;
    case change::kind::ns_gone:
        namespace_gone(c.identity.ns_id, c.time);
        return;
    case change::kind::ns_cgroup:
        set_cgroup(c.identity.ns_id, c.name, c.time);
        return;
    case change::kind::ns_user_ns:
        set_user_ns(c.identity.ns_id, c.mount_id, static_cast<std::uint32_t>(c.nsid), c.time);
        return;
    case change::kind::ns_deep:
        set_deep_holders(c.identity.ns_id, c.pids, c.socket_pids, c.time);
        return;
    case change::kind::link:
        link_changed(c.link, c.time);
        return;
    case change::kind::ns_pod:
        set_pod(c.identity.ns_id, c.pod, c.time);
        return;
    }
}

void registry::apply_probe(std::string_view name, const probe_result& probe, time_point now)
{
    const auto before = generation_;
    do_apply_probe(name, probe, now);
    if (generation_ != before)
        record(make_change(change::kind::probed, std::string(name), probe, {}, 0, now));
}

void registry::do_apply_probe(std::string_view name, const probe_result& probe, time_point now)
{
    auto it = slots_.find(name);
    if (it == slots_.end())
    {
        it = slots_.emplace(std::string(name), slot{entry_state::stale, {}, now}).first;
        ++generation_;
    }
    slot& s = it->second;
    const bool was_live = s.state == entry_state::live;
    const bool is_live = probe.state == entry_state::live;

    if (was_live && is_live && s.identity == probe.identity)
    {
        if (probe.nsid)
            do_set_nsid(probe.identity, *probe.nsid, now);
        return;
    }
    if (was_live)
    {
        // Unmounted, or another namespace mounted in its place: the old one went away.
        auto before = to_entry(*it);
        const auto old = s.identity;
        detach(it->first, s.identity);
        s.state = entry_state::stale;
        s.identity = {};
        emit(event_type::deleted, now, it->first, before.nsid, std::move(before));
        names_changed(old, false, now);
    }
    if (is_live)
    {
        s.state = entry_state::live;
        s.identity = probe.identity;
        attach(it->first, probe.identity, probe.nsid);
        emit(event_type::added, now, it->first, nsid_of(probe.identity), to_entry(*it));
        names_changed(probe.identity, true, now);
    }
}

void registry::erase(std::string_view name, time_point now)
{
    auto it = slots_.find(name);
    if (it == slots_.end())
        return;
    record(make_change(change::kind::erased, std::string(name), {}, {}, 0, now));
    std::optional<entry> before;
    if (it->second.state == entry_state::live)
    {
        before = to_entry(*it);
        detach(it->first, it->second.identity);
    }
    ++generation_;
    auto node = slots_.extract(it);
    if (before)
    {
        auto nsid = before->nsid;
        const auto old = *before->identity;
        emit(event_type::deleted, now, std::move(node.key()), nsid, std::move(before));
        names_changed(old, false, now);
    }
}

void registry::set_nsid(const ns_identity& id, nsid_t nsid, time_point now)
{
    const auto before = generation_;
    do_set_nsid(id, nsid, now);
    if (generation_ != before)
        record(make_change(change::kind::nsid_set, {}, {}, id, nsid, now));
}

void registry::do_set_nsid(const ns_identity& id, nsid_t nsid, time_point now)
{
    auto ns = namespaces_.find(id);
    if (ns == namespaces_.end())
        return; // no live name refers to it; the nsid stays unnamed until one does
    if (ns->second.nsid == nsid)
        return;
    // An nsid is permanent, so a namespace never has two; a different one means our record
    // was wrong (an event was lost). Trust the kernel's answer.
    if (ns->second.nsid)
        nsids_.erase(*ns->second.nsid);
    ns->second.nsid = nsid;
    claim_nsid(nsid, id);
    for (const auto& name : ns->second.live_names)
    {
        auto it = slots_.find(name);
        emit(event_type::nsid_set, now, name, nsid, to_entry(*it));
    }
}

void registry::add_unnamed_nsid(nsid_t nsid, time_point now)
{
    if (nsids_.count(nsid) != 0)
        return;
    record(make_change(change::kind::nsid_unnamed, {}, {}, {}, nsid, now));
    nsids_.emplace(nsid, std::nullopt);
    emit(event_type::nsid_set, now, std::nullopt, nsid, std::nullopt);
}

void registry::destroy_nsid(nsid_t nsid, time_point now)
{
    auto it = nsids_.find(nsid);
    if (it == nsids_.end())
        return;
    if (destroying_)
    {
        const std::uint64_t ns_id =
            it->second && hosts_.count(it->second->ns_id) != 0 ? it->second->ns_id : 0;
        destroying_(ns_id, nsid);
        it = nsids_.find(nsid);
        if (it == nsids_.end())
            return;
    }
    record(make_change(change::kind::nsid_destroyed, {}, {}, {}, nsid, now));
    if (it->second && it->second->ns_id != 0)
    {
        // A namespace of the inventory: one destroyed event for it, with its ns_id.
        auto host = hosts_.find(it->second->ns_id);
        if (host != hosts_.end())
        {
            drop_host(host, now);
            return;
        }
    }
    if (it->second)
    {
        auto ns = namespaces_.find(*it->second);
        if (ns != namespaces_.end())
        {
            ns->second.nsid.reset();
            if (ns->second.live_names.empty())
                namespaces_.erase(ns);
        }
    }
    nsids_.erase(it);
    emit(event_type::destroyed, now, std::nullopt, nsid, std::nullopt);
}

void registry::attach(const std::string& name, const ns_identity& id, std::optional<nsid_t> nsid)
{
    ++live_count_;
    auto& ns = namespaces_[id];
    ns.live_names.insert(name);
    if (nsid && ns.nsid != nsid)
    {
        if (ns.nsid)
            nsids_.erase(*ns.nsid);
        ns.nsid = nsid;
        claim_nsid(*nsid, id); // replaces an unnamed record of the same nsid
    }
}

void registry::claim_nsid(nsid_t nsid, const ns_identity& id)
{
    auto& owner = nsids_[nsid];
    if (owner && *owner != id)
    {
        // The kernel reuses the lowest free nsid: if we missed the RTM_DELNSID of the previous
        // holder, that namespace is gone; drop its claim.
        auto old = namespaces_.find(*owner);
        if (old != namespaces_.end() && old->second.nsid == nsid)
        {
            old->second.nsid.reset();
            if (old->second.live_names.empty())
                namespaces_.erase(old);
        }
    }
    owner = id;
}

void registry::detach(const std::string& name, const ns_identity& id)
{
    --live_count_;
    auto ns = namespaces_.find(id);
    if (ns == namespaces_.end())
        return;
    ns->second.live_names.erase(name);
    // A nameless namespace with an nsid is kept: its RTM_DELNSID is still to come.
    if (ns->second.live_names.empty() && !ns->second.nsid)
        namespaces_.erase(ns);
}

void registry::emit(event_type type, time_point now, std::optional<std::string> name,
                    std::optional<nsid_t> nsid, std::optional<entry> subject,
                    std::optional<host_namespace> host)
{
    // Every event changes what the inventory shows (names, nsids); found and holders change
    // nothing the entries' lists show.
    ++host_generation_;
    if (type != event_type::found && type != event_type::holders)
        ++generation_;
    // Journal first: a listener that reads the journal must find the event there.
    journal_.append(event{type, ++revision_, now, std::move(name), nsid,
                          subject ? std::make_shared<const entry>(std::move(*subject)) : nullptr,
                          std::move(host), nullptr});
    if (listener_)
        listener_(journal_.newest());
}

// The inventory.

host_namespace registry::to_host(const host_record& r) const
{
    host_namespace h;
    h.identity = r.identity;
    h.nsid = nsid_of(r.identity);
    h.is_self = r.is_self;
    h.names = names_of(r.identity);
    h.mounts = r.mounts;
    h.processes = r.pids.size();
    if (r.deep)
    {
        h.fd_pids = r.deep->fd_pids;
        h.socket_pids = r.deep->socket_pids;
    }
    h.first_seen = r.first_seen;
    h.owner = attribute_owner(r.cgroup, h.mounts, h.names, r.pod.get());
    h.user_ns_id = r.user_ns_id;
    h.user_ns_owner_uid = r.user_ns_owner_uid;
    return h;
}

std::vector<host_namespace> registry::host_namespaces() const
{
    std::vector<host_namespace> out;
    out.reserve(hosts_.size());
    for (const auto& [ns_id, r] : hosts_)
        out.push_back(to_host(r));
    return out;
}

std::optional<host_namespace> registry::host(std::uint64_t ns_id) const
{
    auto it = hosts_.find(ns_id);
    if (it == hosts_.end())
        return std::nullopt;
    return to_host(it->second);
}

std::vector<std::uint64_t> registry::unheld_namespaces() const
{
    std::vector<std::uint64_t> out;
    for (const auto& [ns_id, r] : hosts_)
    {
        if (!r.mounts.empty() || !r.pids.empty() || r.deep)
            continue;
        const auto named = namespaces_.find(r.identity);
        if (named == namespaces_.end() || named->second.live_names.empty())
            out.push_back(ns_id);
    }
    return out;
}

const std::vector<std::int32_t>* registry::processes_of(std::uint64_t ns_id) const
{
    auto it = hosts_.find(ns_id);
    return it == hosts_.end() ? nullptr : &it->second.pids;
}

std::optional<std::uint64_t> registry::host_of_pid(std::int32_t pid) const
{
    for (const auto& [ns_id, r] : hosts_)
        if (std::binary_search(r.pids.begin(), r.pids.end(), pid))
            return ns_id;
    return std::nullopt;
}

std::map<std::uint64_t, ns_identity> registry::host_identities() const
{
    std::map<std::uint64_t, ns_identity> out;
    for (const auto& [ns_id, r] : hosts_)
        out.emplace_hint(out.end(), ns_id, r.identity);
    return out;
}

void registry::found_namespace(const ns_identity& id, bool is_self, time_point now, first_look look)
{
    if (id.ns_id == 0 || hosts_.count(id.ns_id) != 0)
        return;
    auto c = make_change(change::kind::ns_found, look.cgroup, {}, id,
                         static_cast<nsid_t>(look.user_ns_owner_uid), now);
    c.flag = is_self;
    c.pids = look.pids;
    c.mount_id = look.user_ns_id;
    record(std::move(c));
    auto& r = hosts_[id.ns_id];
    r.identity = id;
    r.is_self = is_self;
    r.first_seen = now;
    r.pids = std::move(look.pids);
    r.cgroup = std::move(look.cgroup);
    if (look.user_ns_id != 0)
    {
        r.user_ns_id = look.user_ns_id;
        r.user_ns_owner_uid = look.user_ns_owner_uid;
    }
    emit(event_type::found, now, std::nullopt, nsid_of(id), std::nullopt, to_host(r));
}

void registry::namespace_mounted(const ns_identity& id, std::uint64_t mount_id,
                                 std::string_view path, time_point now, std::uint64_t mnt_ns_id,
                                 bool other_mnt_ns)
{
    if (id.ns_id == 0 || mount_owner_.count(mount_id) != 0)
        return;
    auto c = make_change(change::kind::ns_mounted, std::string(path), {}, id, 0, now);
    c.mount_id = mount_id;
    c.mnt_ns_id = mnt_ns_id;
    c.flag = other_mnt_ns;
    record(std::move(c));
    const ns_mount m{mount_id, std::string(path), mnt_ns_id, other_mnt_ns};
    mount_owner_.emplace(mount_id, id.ns_id);
    auto it = hosts_.find(id.ns_id);
    if (it == hosts_.end())
    {
        // Found by its mount: one event that says so, with the mount.
        auto& r = hosts_[id.ns_id];
        r.identity = id;
        r.first_seen = now;
        r.mounts.push_back(m);
        emit(event_type::found, now, std::nullopt, nsid_of(id), std::nullopt, to_host(r));
        return;
    }
    auto& mounts = it->second.mounts;
    mounts.insert(std::lower_bound(mounts.begin(), mounts.end(), mount_id,
                                   [](const ns_mount& a, std::uint64_t b)
                                   { return a.mount_id < b; }),
                  m);
    emit_holders(it->second, now);
}

void registry::namespace_unmounted(std::uint64_t mount_id, time_point now)
{
    auto owner = mount_owner_.find(mount_id);
    if (owner == mount_owner_.end())
        return;
    auto c = make_change(change::kind::ns_unmounted, {}, {}, {}, 0, now);
    c.mount_id = mount_id;
    record(std::move(c));
    auto it = hosts_.find(owner->second);
    mount_owner_.erase(owner);
    if (it == hosts_.end())
        return;
    std::erase_if(it->second.mounts, [&](const ns_mount& m) { return m.mount_id == mount_id; });
    emit_holders(it->second, now);
}

void registry::set_processes(std::uint64_t ns_id, const std::vector<std::int32_t>& pids,
                             time_point now)
{
    auto it = hosts_.find(ns_id);
    if (it == hosts_.end() || it->second.pids == pids)
        return;
    auto c = make_change(change::kind::ns_processes, {}, {}, {ns_id, 0, 0}, 0, now);
    c.pids = pids;
    record(std::move(c));
    const auto before = process_bucket(it->second.pids.size());
    it->second.pids = pids;
    ++host_generation_;
    // Coalesced: a fork storm moves the count often, its bucket seldom.
    if (process_bucket(pids.size()) != before)
        emit_holders(it->second, now);
}

void registry::set_cgroup(std::uint64_t ns_id, std::string_view cgroup, time_point now)
{
    auto it = hosts_.find(ns_id);
    if (it == hosts_.end() || it->second.cgroup == cgroup)
        return;
    record(make_change(change::kind::ns_cgroup, std::string(cgroup), {}, {ns_id, 0, 0}, 0, now));
    const auto before = to_host(it->second).owner;
    it->second.cgroup = std::string(cgroup);
    ++host_generation_;
    if (to_host(it->second).owner != before)
        emit_holders(it->second, now);
}

void registry::set_pod(std::uint64_t ns_id, const std::optional<ns_pod>& pod, time_point now)
{
    auto it = hosts_.find(ns_id);
    if (it == hosts_.end())
        return;
    if (const auto& had = it->second.pod; had ? pod && *had == *pod : !pod)
        return;
    auto c = make_change(change::kind::ns_pod, {}, {}, {ns_id, 0, 0}, 0, now);
    c.pod = pod;
    record(std::move(c));
    const auto before = to_host(it->second).owner;
    it->second.pod = pod ? std::make_unique<const ns_pod>(*pod) : nullptr;
    ++host_generation_;
    if (to_host(it->second).owner != before)
        emit_holders(it->second, now);
}

void registry::set_user_ns(std::uint64_t ns_id, std::uint64_t user_ns_id, std::uint32_t owner_uid,
                           time_point now)
{
    auto it = hosts_.find(ns_id);
    if (it == hosts_.end() || it->second.user_ns_id != 0)
        return; // fixed for the namespace's life: the first answer stands
    auto c = make_change(change::kind::ns_user_ns, {}, {}, {ns_id, 0, 0},
                         static_cast<nsid_t>(owner_uid), now);
    c.mount_id = user_ns_id;
    record(std::move(c));
    it->second.user_ns_id = user_ns_id;
    it->second.user_ns_owner_uid = owner_uid;
    ++host_generation_; // no event: a fact of its creation, shown from now on
}

void registry::set_deep_holders(std::uint64_t ns_id, const std::vector<std::int32_t>& fd_pids,
                                const std::vector<std::int32_t>& socket_pids, time_point now)
{
    auto it = hosts_.find(ns_id);
    if (it == hosts_.end())
        return;
    const auto* deep = it->second.deep.get();
    if (deep ? deep->fd_pids == fd_pids && deep->socket_pids == socket_pids
             : fd_pids.empty() && socket_pids.empty())
        return;
    auto c = make_change(change::kind::ns_deep, {}, {}, {ns_id, 0, 0}, 0, now);
    c.pids = fd_pids;
    c.socket_pids = socket_pids;
    record(std::move(c));
    auto& r = it->second;
    const bool had_fd = deep && !deep->fd_pids.empty();
    const bool had_socket = deep && !deep->socket_pids.empty();
    r.deep = fd_pids.empty() && socket_pids.empty()
                 ? nullptr
                 : std::make_unique<const deep_holders>(deep_holders{fd_pids, socket_pids});
    ++host_generation_;
    if (had_fd != !fd_pids.empty() || had_socket != !socket_pids.empty())
        emit_holders(r, now);
}

void registry::namespace_gone(std::uint64_t ns_id, time_point now)
{
    auto it = hosts_.find(ns_id);
    if (it == hosts_.end())
        return;
    if (destroying_)
    {
        destroying_(ns_id, nsid_of(it->second.identity));
        it = hosts_.find(ns_id);
        if (it == hosts_.end())
            return;
    }
    record(make_change(change::kind::ns_gone, {}, {}, {ns_id, 0, 0}, 0, now));
    drop_host(it, now);
}

void registry::link_changed(std::shared_ptr<const link_change> what, time_point now)
{
    if (!what)
        return;
    auto c = make_change(change::kind::link, {}, {}, {what->ns_id, 0, 0}, 0, now);
    c.link = what;
    record(std::move(c));
    const auto host = hosts_.find(what->ns_id);
    std::optional<nsid_t> nsid;
    if (host != hosts_.end())
        nsid = nsid_of(host->second.identity);
    // Nothing a list shows changed: the generations stay (no cached body is made stale).
    ++revision_;
    journal_.append(event{what->is_address ? event_type::address : event_type::link, revision_, now,
                          what->name, nsid, nullptr, std::nullopt, std::move(what)});
    if (listener_)
        listener_(journal_.newest());
}

void registry::names_changed(const ns_identity& id, bool create, time_point now)
{
    if (id.ns_id == 0 || !names_in_inventory_)
        return;
    auto it = hosts_.find(id.ns_id);
    if (it != hosts_.end())
    {
        emit_holders(it->second, now);
        return;
    }
    if (!create)
        return;
    auto& r = hosts_[id.ns_id];
    r.identity = id;
    r.first_seen = now;
    emit(event_type::found, now, std::nullopt, nsid_of(id), std::nullopt, to_host(r));
}

void registry::emit_holders(const host_record& r, time_point now)
{
    emit(event_type::holders, now, std::nullopt, nsid_of(r.identity), std::nullopt, to_host(r));
}

void registry::drop_host(host_map::iterator it, time_point now)
{
    auto before = to_host(it->second);
    before.processes = 0; // whatever the last sweep saw, none is left in a freed namespace
    before.fd_pids.clear();
    before.socket_pids.clear();
    for (const auto& m : it->second.mounts)
        mount_owner_.erase(m.mount_id);
    hosts_.erase(it);
    // Its nsid went with it: a later RTM_DELNSID for it finds nothing to report again.
    auto ns = namespaces_.find(before.identity);
    if (ns != namespaces_.end())
    {
        if (ns->second.nsid)
        {
            auto owner = nsids_.find(*ns->second.nsid);
            if (owner != nsids_.end() && owner->second == before.identity)
                nsids_.erase(owner);
            ns->second.nsid.reset();
        }
        if (ns->second.live_names.empty())
            namespaces_.erase(ns);
    }
    const auto nsid = before.nsid;
    emit(event_type::destroyed, now, std::nullopt, nsid, std::nullopt, std::move(before));
}

} // namespace netnsd::core
