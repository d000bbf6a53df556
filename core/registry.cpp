#include "core/registry.hpp"

#include <utility>

namespace netnsd::core
{

registry::registry(std::size_t journal_capacity, revision_t base)
    : revision_(base), journal_(journal_capacity, base)
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
    }
}

void registry::apply_probe(std::string_view name, const probe_result& probe, time_point now)
{
    const auto before = generation_;
    do_apply_probe(name, probe, now);
    if (generation_ != before)
        record({change::kind::probed, std::string(name), probe, {}, 0, now});
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
        detach(it->first, s.identity);
        s.state = entry_state::stale;
        s.identity = {};
        emit(event_type::deleted, now, it->first, before.nsid, std::move(before));
    }
    if (is_live)
    {
        s.state = entry_state::live;
        s.identity = probe.identity;
        attach(it->first, probe.identity, probe.nsid);
        emit(event_type::added, now, it->first, nsid_of(probe.identity), to_entry(*it));
    }
}

void registry::erase(std::string_view name, time_point now)
{
    auto it = slots_.find(name);
    if (it == slots_.end())
        return;
    record({change::kind::erased, std::string(name), {}, {}, 0, now});
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
        emit(event_type::deleted, now, std::move(node.key()), nsid, std::move(before));
    }
}

void registry::set_nsid(const ns_identity& id, nsid_t nsid, time_point now)
{
    const auto before = generation_;
    do_set_nsid(id, nsid, now);
    if (generation_ != before)
        record({change::kind::nsid_set, {}, {}, id, nsid, now});
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
    record({change::kind::nsid_unnamed, {}, {}, {}, nsid, now});
    nsids_.emplace(nsid, std::nullopt);
    emit(event_type::nsid_set, now, std::nullopt, nsid, std::nullopt);
}

void registry::destroy_nsid(nsid_t nsid, time_point now)
{
    auto it = nsids_.find(nsid);
    if (it == nsids_.end())
        return;
    record({change::kind::nsid_destroyed, {}, {}, {}, nsid, now});
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
                    std::optional<nsid_t> nsid, std::optional<entry> subject)
{
    ++generation_;
    // Journal first: a listener that reads the journal must find the event there.
    journal_.append(event{type, ++revision_, now, std::move(name), nsid, std::move(subject)});
    if (listener_)
        listener_(journal_.newest());
}

} // namespace netnsd::core
