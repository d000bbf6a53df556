#include "core/link_watch.hpp"

#include <algorithm>
#include <memory>
#include <utility>

#include "core/errc.hpp"
#include "core/log.hpp"

namespace netnsd::core
{
namespace
{

// What an event shows of a link: everything but its counters (which change all the time and
// make no event) and the echo of the dump's target.
kernel::link_record shown(kernel::link_record l)
{
    l.counters.reset();
    l.target_nsid.reset();
    return l;
}

kernel::address_record shown(kernel::address_record a)
{
    a.target_nsid.reset();
    return a;
}

bool same_state(const kernel::link_record& a, const kernel::link_record& b)
{
    return a.name == b.name && a.kind == b.kind && a.operstate == b.operstate &&
           a.flags == b.flags && a.mtu == b.mtu && a.mac == b.mac && a.master == b.master &&
           a.link == b.link && a.link_netnsid == b.link_netnsid;
}

} // namespace

link_watch::link_watch(registry& model, std::string netns_dir, bool assign_nsids,
                       int receive_buffer)
    : model_(model), netns_dir_(std::move(netns_dir)), assign_nsids_(assign_nsids),
      receive_buffer_(receive_buffer)
{
}

std::error_code link_watch::open()
{
    if (auto ec = receive_buffer_ > 0 ? listener_.open(receive_buffer_) : listener_.open())
        return ec;
    return dumper_.open();
}

void link_watch::start()
{
    model_.set_destroying_hook([this](std::uint64_t ns_id, std::optional<nsid_t> nsid)
                               { forget(ns_id, nsid); });
    const auto began = steady::now();
    const auto known = model_.host_identities();
    for (const auto& [ns_id, id] : known)
        if (const auto h = model_.host(ns_id); h && h->is_self)
            track(ns_id, false);
    for (const auto& [ns_id, id] : known)
        track(ns_id, false);
    started_ = true;
    noted_.clear();
    resolve_ = false;
    log::info(
        "following link and address changes",
        {{"namespaces", std::to_string(namespaces_heard())},
         {"of", std::to_string(known.size())},
         {"seconds", std::to_string(std::chrono::duration<double>(steady::now() - began).count())},
         {"assign_nsids", assign_nsids_ ? "true" : "false"}});
}

std::size_t link_watch::namespaces_heard() const noexcept
{
    return static_cast<std::size_t>(std::count_if(tables_.begin(), tables_.end(),
                                                  [](const auto& t) { return t.second.seeded; }));
}

kernel::netns_locator locate(const registry& model, const host_namespace& h,
                             std::string_view netns_dir)
{
    kernel::netns_locator where;
    where.ns_id = h.identity.ns_id;
    where.is_self = h.is_self;
    for (const auto& name : h.names)
        where.paths.push_back(std::string(netns_dir) + "/" + name);
    for (const auto& m : h.mounts)
        if (!m.other_mnt_ns)
            where.paths.push_back(m.path);
    if (const auto* pids = model.processes_of(h.identity.ns_id))
        where.pids.assign(pids->begin(), pids->end());
    return where;
}

kernel::netns_locator link_watch::locator_of(std::uint64_t ns_id) const
{
    if (const auto h = model_.host(ns_id))
        return locate(model_, *h, netns_dir_);
    kernel::netns_locator where;
    where.ns_id = ns_id;
    return where;
}

void link_watch::note(const event& e)
{
    switch (e.type)
    {
    case event_type::found:
        if (e.host)
            noted_.insert(e.host->identity.ns_id);
        unknown_.clear();
        break;
    case event_type::holders:
        // The last name it had, for the `removed` of its links when it is freed.
        if (e.host && !e.host->names.empty())
            if (const auto it = tables_.find(e.host->identity.ns_id); it != tables_.end())
                it->second.last_name = e.host->names.front();
        break;
    case event_type::nsid_set:
        if (e.subject && e.subject->identity && e.subject->identity->ns_id != 0)
            noted_.insert(e.subject->identity->ns_id);
        else
            resolve_ = true; // an nsid whose namespace has no name: ask which it is
        unknown_.clear();
        break;
    default:
        break;
    }
}

bool link_watch::sync()
{
    if (!started_ || (noted_.empty() && !resolve_))
        return false;
    // At most namespaces_per_turn, lowest ns_id (oldest) first: each may cost a dump, and the
    // model thread's other feeds wait meanwhile.
    std::vector<std::uint64_t> noted;
    while (!noted_.empty() && noted.size() < namespaces_per_turn)
        noted.push_back(noted_.extract(noted_.begin()).value());
    for (const auto ns_id : noted)
    {
        auto it = tables_.find(ns_id);
        if (it == tables_.end())
        {
            track(ns_id, true);
            continue;
        }
        auto& t = it->second;
        if (t.nsid || t.is_self)
            continue;
        if (const auto h = model_.host(ns_id); h && h->nsid)
        {
            t.nsid = h->nsid;
            by_nsid_[*h->nsid] = ns_id;
            seed(t, ns_id, true);
        }
    }
    if (resolve_ && noted_.empty())
    {
        resolve_ = false;
        resolve_unmapped(true);
    }
    return !noted_.empty() || resolve_;
}

void link_watch::track(std::uint64_t ns_id, bool emit)
{
    if (tables_.count(ns_id) != 0)
        return;
    const auto h = model_.host(ns_id);
    if (!h)
        return;
    auto& t = tables_[ns_id];
    t.identity = h->identity;
    t.is_self = h->is_self;
    if (t.is_self)
    {
        self_ = ns_id;
        // Its own nsid for itself, if it has one: its notifications carry it then.
        const auto mine = kernel::nsids_of({locator_of(ns_id)});
        if (!mine.empty())
            self_nsid_ = mine.front().second;
        seed(t, ns_id, emit);
        return;
    }
    auto nsid = h->nsid;
    const auto where = locator_of(ns_id);
    if (!nsid)
        if (const auto asked = kernel::nsids_of({where}); !asked.empty())
            nsid = asked.front().second;
    if (!nsid && assign_nsids_)
    {
        std::error_code ec;
        nsid = kernel::assign_nsid(where, ec);
        if (ec && ec != errc::not_found)
            log::warn("could not give a namespace an nsid",
                      {{"ns_id", std::to_string(ns_id)}, {"error", ec.message()}});
    }
    if (!nsid)
        return; // not heard until it gets one (note() sees it)
    t.nsid = nsid;
    by_nsid_[*nsid] = ns_id;
    seed(t, ns_id, emit);
}

void link_watch::resolve_unmapped(bool emit)
{
    if (resolving_)
        return;
    resolving_ = true;
    if (self_ && !self_nsid_)
        if (const auto mine = kernel::nsids_of({locator_of(*self_)}); !mine.empty())
            self_nsid_ = mine.front().second;
    std::vector<kernel::netns_locator> without;
    for (const auto& [ns_id, t] : tables_)
        if (!t.nsid && !t.is_self)
            without.push_back(locator_of(ns_id));
    for (const auto& [ns_id, nsid] : kernel::nsids_of(without))
    {
        auto it = tables_.find(ns_id);
        if (it == tables_.end() || it->second.nsid)
            continue;
        it->second.nsid = nsid;
        by_nsid_[nsid] = ns_id;
        seed(it->second, ns_id, emit);
    }
    resolving_ = false;
}

void link_watch::seed(ns_table& t, std::uint64_t ns_id, bool emit)
{
    kernel::netns_contents c;
    if (const auto ec = dumper_.dump(t.is_self ? std::nullopt : t.nsid, c))
    {
        log::warn("could not dump a namespace's links",
                  {{"ns_id", std::to_string(ns_id)}, {"error", ec.message()}});
        return;
    }
    // A dump by nsid gives netnsd's namespace an nsid for itself: its own notifications carry
    // it from then on.
    if (!self_nsid_ && self_ && !t.is_self)
        if (const auto mine = kernel::nsids_of({locator_of(*self_)}); !mine.empty())
            self_nsid_ = mine.front().second;
    if (auto name = first_name(t))
        t.last_name = std::move(name);
    const auto now = steady::now();
    std::set<int> links;
    for (auto& l : c.links)
    {
        links.insert(l.ifindex);
        link_seen(t, ns_id, shown(std::move(l)), emit, now);
    }
    std::set<address_key> addresses;
    for (const auto& a : c.addresses)
        addresses.insert({a.ifindex, a.family, a.address, a.prefix_len});
    std::vector<address_key> gone;
    for (const auto& [key, a] : t.addresses)
        if (addresses.count(key) == 0)
            gone.push_back(key);
    for (const auto& key : gone)
        address_gone(t, ns_id, key, emit);
    for (const auto& a : c.addresses)
        address_seen(t, ns_id, a, emit);
    std::vector<int> gone_links;
    for (const auto& [ifindex, l] : t.links)
        if (links.count(ifindex) == 0)
            gone_links.push_back(ifindex);
    for (const auto ifindex : gone_links)
        link_gone(t, ns_id, ifindex, emit);
    t.seeded = true;
}

link_watch::ns_table* link_watch::table_of(std::optional<nsid_t> source, std::uint64_t& ns_id)
{
    auto self_table = [&]() -> ns_table*
    {
        if (!self_)
            return nullptr;
        ns_id = *self_;
        return &tables_.at(*self_);
    };
    if (!source || (self_nsid_ && *source == *self_nsid_))
        return self_table();
    auto find = [&]() -> ns_table*
    {
        const auto it = by_nsid_.find(*source);
        if (it == by_nsid_.end())
            return nullptr;
        const auto t = tables_.find(it->second);
        if (t == tables_.end())
            return nullptr;
        ns_id = it->second;
        return &t->second;
    };
    if (auto* t = find())
        return t;
    if (unknown_.count(*source) != 0)
        return nullptr;
    // An nsid not heard of: netnsd's own just got one, or a namespace the model knows did
    // (a veth peer crossed into it), or one it does not know yet (asked again after the next
    // found or nsid event).
    resolve_unmapped(true);
    if (self_nsid_ && *source == *self_nsid_)
        return self_table();
    if (auto* t = find())
        return t;
    unknown_.insert(*source);
    return nullptr;
}

void link_watch::apply(const kernel::link_notification& n, steady::time_point now)
{
    std::uint64_t ns_id = 0;
    ns_table* t = table_of(n.nsid, ns_id);
    if (t == nullptr || !t->seeded)
        return;
    for (const auto& l : n.what.links)
    {
        auto rec = shown(l);
        if ((rec.link_netnsid && !t->is_self) || (rec.kind == "veth" && rec.link.value_or(0) == 0))
        {
            // A notification numbers the peer's namespace as the link's own namespace does;
            // the table keeps netnsd's numbering, which a read by nsid gives. And the first
            // end of a veth pair is announced before its peer exists (IFLA_LINK 0): read it
            // again, its peer is there now.
            kernel::link_record here;
            if (dumper_.get_link(t->is_self ? std::nullopt : t->nsid, rec.ifindex, here))
                continue; // gone meanwhile: its RTM_DELLINK follows
            rec = shown(std::move(here));
        }
        link_seen(*t, ns_id, std::move(rec), true, now);
    }
    for (const auto& a : n.what.addresses)
        address_seen(*t, ns_id, a, true);
    for (const auto& a : n.what.deleted_addresses)
        address_gone(*t, ns_id, {a.ifindex, a.family, a.address, a.prefix_len}, true);
    for (const auto& l : n.what.deleted_links)
        link_gone(*t, ns_id, l.ifindex, true);
}

bool link_watch::on_readable()
{
    sync();
    auto batch = listener_.drain(notifications_per_turn);
    const auto now = steady::now();
    for (const auto& n : batch.notifications)
        apply(n, now);
    if (batch.overrun)
    {
        // Notifications were lost: what they said is in the kernel's tables, so dump every
        // namespace and send the differences.
        ++overruns_;
        log::warn("the link listener overran: every namespace is dumped again",
                  {{"namespaces", std::to_string(tables_.size())}});
        unknown_.clear();
        for (auto& [ns_id, t] : tables_)
            if (t.nsid || t.is_self)
                seed(t, ns_id, true);
    }
    return batch.more;
}

void link_watch::link_seen(ns_table& t, std::uint64_t ns_id, kernel::link_record rec, bool emit,
                           steady::time_point now)
{
    auto it = t.links.find(rec.ifindex);
    if (it == t.links.end())
    {
        const int ifindex = rec.ifindex;
        auto& s = t.links[ifindex];
        s.current = rec;
        s.sent = std::move(rec);
        if (emit)
            emit_link(t, ns_id, link_action::added, s.current);
        return;
    }
    auto& s = it->second;
    if (same_state(s.current, rec))
        return;
    s.current = std::move(rec);
    if (!emit)
    {
        s.sent = s.current;
        return;
    }
    if (s.pending)
        return; // flush() sends the last state at the end of the window
    if (now - s.last_changed_sent >= change_window)
    {
        s.sent = s.current;
        s.last_changed_sent = now;
        emit_link(t, ns_id, link_action::changed, s.current);
        return;
    }
    s.pending = true;
    ++pending_;
}

void link_watch::link_gone(ns_table& t, std::uint64_t ns_id, int ifindex, bool emit)
{
    auto it = t.links.find(ifindex);
    if (it == t.links.end())
        return;
    // Its addresses go with it (the kernel sends their RTM_DELADDR first when it can).
    std::vector<address_key> addresses;
    for (auto a = t.addresses.lower_bound({ifindex, 0, std::string(), 0});
         a != t.addresses.end() && std::get<0>(a->first) == ifindex; ++a)
        addresses.push_back(a->first);
    for (const auto& key : addresses)
        address_gone(t, ns_id, key, emit);
    if (it->second.pending)
        --pending_;
    auto last = std::move(it->second.current);
    if (emit)
        emit_link(t, ns_id, link_action::removed, last);
    t.links.erase(ifindex);
}

void link_watch::address_seen(ns_table& t, std::uint64_t ns_id, const kernel::address_record& a,
                              bool emit)
{
    const address_key key{a.ifindex, a.family, a.address, a.prefix_len};
    auto [it, added] = t.addresses.try_emplace(key, shown(a));
    if (!added)
    {
        it->second = shown(a); // its flags or lifetimes: no event
        return;
    }
    if (emit)
        emit_address(t, ns_id, link_action::added, it->second);
}

void link_watch::address_gone(ns_table& t, std::uint64_t ns_id, const address_key& key, bool emit)
{
    auto it = t.addresses.find(key);
    if (it == t.addresses.end())
        return;
    auto a = std::move(it->second);
    t.addresses.erase(it);
    if (emit)
        emit_address(t, ns_id, link_action::removed, a);
}

void link_watch::forget(std::uint64_t ns_id, std::optional<nsid_t> nsid)
{
    auto it = tables_.end();
    if (ns_id != 0)
        it = tables_.find(ns_id);
    if (it == tables_.end() && nsid)
        if (const auto owner = by_nsid_.find(*nsid); owner != by_nsid_.end())
            it = tables_.find(owner->second);
    if (nsid)
        unknown_.erase(*nsid);
    if (it == tables_.end() || it->second.is_self)
        return;
    // The namespace is freed: its links went with it, and the kernel says so to nobody (its
    // nsid is gone before its links are). Their `removed` come before its `destroyed`.
    auto& t = it->second;
    forgetting_ = true;
    std::vector<int> links;
    for (const auto& [ifindex, l] : t.links)
        links.push_back(ifindex);
    for (const auto ifindex : links)
        link_gone(t, it->first, ifindex, t.seeded);
    forgetting_ = false;
    if (t.nsid)
        by_nsid_.erase(*t.nsid);
    tables_.erase(it);
}

std::optional<link_watch::steady::time_point> link_watch::next_flush() const noexcept
{
    if (pending_ == 0)
        return std::nullopt;
    std::optional<steady::time_point> first;
    for (const auto& [ns_id, t] : tables_)
        for (const auto& [ifindex, l] : t.links)
            if (l.pending && (!first || l.last_changed_sent + change_window < *first))
                first = l.last_changed_sent + change_window;
    return first;
}

void link_watch::flush(steady::time_point now)
{
    if (pending_ == 0)
        return;
    for (auto& [ns_id, t] : tables_)
        for (auto& [ifindex, l] : t.links)
        {
            if (!l.pending || now - l.last_changed_sent < change_window)
                continue;
            l.pending = false;
            --pending_;
            if (same_state(l.sent, l.current))
                continue; // it came back to what the last event said: nothing to say
            l.sent = l.current;
            l.last_changed_sent = now;
            emit_link(t, ns_id, link_action::changed, l.current);
        }
}

std::optional<std::string> link_watch::first_name(const ns_table& t) const
{
    auto names = model_.names_of(t.identity);
    if (names.empty())
        return std::nullopt;
    return std::move(names.front());
}

std::optional<std::string> link_watch::event_name(ns_table& t)
{
    // A namespace's links are removed when it is freed, after its names went (`ip netns del`
    // unmounts first): those events still say which it was, by the last name it had.
    auto name = first_name(t);
    if (name)
        t.last_name = name;
    else if (forgetting_)
        return t.last_name;
    return name;
}

link_view link_watch::view_of(const ns_table& t, std::uint64_t ns_id, const kernel::link_record& l)
{
    link_view v;
    v.link = l;
    if (l.master)
        if (const auto m = t.links.find(*l.master); m != t.links.end())
            v.master_name = m->second.current.name;
    if (l.link)
    {
        link_peer p;
        p.ifindex = *l.link;
        const ns_table* peer_table = nullptr;
        if (l.link_netnsid)
        {
            auto owner = by_nsid_.find(*l.link_netnsid);
            if (owner == by_nsid_.end() && !(self_nsid_ && *self_nsid_ == *l.link_netnsid))
            {
                resolve_unmapped(true); // the peer's namespace just got its nsid
                owner = by_nsid_.find(*l.link_netnsid);
            }
            if (self_nsid_ && *self_nsid_ == *l.link_netnsid && self_)
                p.ns_id = *self_;
            else if (owner != by_nsid_.end())
                p.ns_id = owner->second;
        }
        else if (l.kind == "veth")
            p.ns_id = ns_id;
        if (l.link_netnsid || l.kind == "veth")
        {
            if (p.ns_id)
                if (const auto pt = tables_.find(*p.ns_id); pt != tables_.end())
                    peer_table = &pt->second;
            if (peer_table != nullptr)
            {
                p.netns = first_name(*peer_table);
                if (const auto pl = peer_table->links.find(p.ifindex);
                    pl != peer_table->links.end())
                    p.ifname = pl->second.current.name;
                else if (p.ifindex != 0 && (peer_table->nsid || peer_table->is_self))
                {
                    // Its notification is still to come (the two ends of a pair are
                    // announced one after the other): ask the kernel for its name.
                    kernel::link_record other;
                    if (!dumper_.get_link(peer_table->is_self ? std::nullopt : peer_table->nsid,
                                          p.ifindex, other))
                        p.ifname = other.name;
                }
            }
            v.peer = std::move(p);
        }
    }
    for (auto a = t.addresses.lower_bound({l.ifindex, 0, std::string(), 0});
         a != t.addresses.end() && std::get<0>(a->first) == l.ifindex; ++a)
        v.addresses.push_back(a->second);
    return v;
}

void link_watch::emit_link(ns_table& t, std::uint64_t ns_id, link_action action,
                           const kernel::link_record& l)
{
    auto c = std::make_shared<link_change>();
    c->action = action;
    c->ns_id = ns_id;
    c->name = event_name(t);
    c->link = view_of(t, ns_id, l);
    model_.link_changed(std::move(c), clock::now());
}

void link_watch::emit_address(ns_table& t, std::uint64_t ns_id, link_action action,
                              const kernel::address_record& a)
{
    auto c = std::make_shared<link_change>();
    c->action = action;
    c->ns_id = ns_id;
    c->name = event_name(t);
    c->is_address = true;
    c->address = a;
    model_.link_changed(std::move(c), clock::now());
}

} // namespace netnsd::core
