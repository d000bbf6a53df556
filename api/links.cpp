#include "api/links.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdlib>
#include <linux/if.h>
#include <optional>
#include <set>
#include <sys/socket.h>
#include <tuple>
#include <utility>

#include "core/errc.hpp"
#include "core/link_watch.hpp"
#include "core/log.hpp"

#include "api/json.hpp"
#include "api/link_json.hpp"
#include "api/problem.hpp"

namespace netnsd::api
{
namespace
{

using core::kernel::link_record;
using core::kernel::netns_dump;

json counters_json(const std::optional<core::kernel::link_counters>& c)
{
    if (!c)
        return nullptr;
    return json::object({{"rx_bytes", c->rx_bytes},
                         {"rx_packets", c->rx_packets},
                         {"rx_errors", c->rx_errors},
                         {"rx_dropped", c->rx_dropped},
                         {"tx_bytes", c->tx_bytes},
                         {"tx_packets", c->tx_packets},
                         {"tx_errors", c->tx_errors},
                         {"tx_dropped", c->tx_dropped}});
}

// The namespaces netnsd's namespace has an nsid for, by that nsid: the model's, netnsd's own
// by the nsid the dump found it has for itself, and those a worker learnt from the kernel.
class peer_index
{
public:
    peer_index(const link_views::model_index& ix, std::optional<core::nsid_t> self_nsid,
               const std::vector<std::pair<std::uint64_t, core::nsid_t>>& learnt)
        : ix_(ix)
    {
        if (self_nsid && ix.self)
            extra_[*self_nsid] = *ix.self;
        for (const auto& [ns_id, nsid] : learnt)
            if (const auto it = ix.by_ns_id.find(ns_id); it != ix.by_ns_id.end())
                extra_[nsid] = it->second;
    }
    const link_views::peer_ns* find(core::nsid_t nsid) const
    {
        if (const auto it = extra_.find(nsid); it != extra_.end())
            return &it->second;
        const auto it = ix_.by_nsid.find(nsid);
        return it == ix_.by_nsid.end() ? nullptr : &it->second;
    }

private:
    const link_views::model_index& ix_;
    std::map<core::nsid_t, link_views::peer_ns> extra_;
};

std::optional<core::link_peer> peer_of(const link_record& l, std::uint64_t own_ns_id,
                                       const std::optional<std::string>& own_name,
                                       const netns_dump& d, const peer_index* peers)
{
    if (!l.link)
        return std::nullopt;
    core::link_peer end;
    end.ifindex = *l.link;
    if (l.link_netnsid)
    {
        // A setns dump numbers the peers' namespaces as the target does: unknown here.
        if (!d.numbered_here)
            return end;
        if (const auto* h = peers != nullptr ? peers->find(*l.link_netnsid) : nullptr)
        {
            end.ns_id = h->ns_id;
            end.netns = h->name;
        }
        for (const auto& p : d.peer_links)
            if (p.nsid == *l.link_netnsid && p.ifindex == end.ifindex)
                end.ifname = p.name;
        return end;
    }
    if (l.kind != "veth")
        return std::nullopt; // a vlan or macvlan on a link of its own namespace: not a pair
    end.ns_id = own_ns_id;
    end.netns = own_name;
    for (const auto& other : d.contents.links)
        if (other.ifindex == end.ifindex)
            end.ifname = other.name;
    return end;
}

std::string link_name(const netns_dump& d, int ifindex)
{
    for (const auto& l : d.contents.links)
        if (l.ifindex == ifindex)
            return l.name;
    return {};
}

template <typename T>
bool parse_whole(std::string_view text, T& out)
{
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return !text.empty() && ec == std::errc{} && ptr == end;
}

} // namespace

link_views::link_views(const core::registry& model, std::string netns_dir)
    : model_(model), netns_dir_(std::move(netns_dir))
{
}

void link_views::forget_old(std::chrono::steady_clock::time_point now)
{
    std::erase_if(cache_, [&](const auto& item) { return now - item.second.at > max_age; });
}

core::kernel::netns_locator link_views::locator_of(const core::host_namespace& h) const
{
    return core::locate(model_, h, netns_dir_);
}

std::optional<link_views::target> link_views::target_of(std::uint64_t ns_id)
{
    const auto host = model_.host(ns_id);
    if (!host)
        return std::nullopt;
    target t;
    t.where = locator_of(*host);
    t.names = host->names;
    const auto now = std::chrono::steady_clock::now();
    if (const auto it = cache_.find(ns_id); it != cache_.end() && now - it->second.at <= max_age)
        t.cached = it->second.dump;
    return t;
}

link_views::outcome link_views::netns_links(const std::string& name)
{
    const auto e = model_.find(name);
    if (!e)
        return problem(problem_type::not_found, "no network namespace of that name",
                       entry_href(name));
    if (e->state != core::entry_state::live || !e->identity)
        return problem(problem_type::not_a_namespace,
                       "the entry is stale: no network namespace is mounted on it",
                       entry_href(name));
    std::optional<target> t;
    if (e->identity->ns_id != 0)
        t = target_of(e->identity->ns_id);
    if (!t)
    {
        // Not in the inventory (yet, or a kernel without NS_GET_ID): the entry's path alone.
        t.emplace();
        t->where.ns_id = e->identity->ns_id;
        t->names = {name};
    }
    // The name asked for is opened first.
    t->where.paths.insert(t->where.paths.begin(), netns_dir_ + "/" + name);
    return with_dumps({std::move(*t)}, [this](const std::vector<target>& ts,
                                              const std::vector<result>& rs, const model_index& ix)
                      { return links_body(ts.front(), rs.front(), ix); });
}

link_views::outcome link_views::host_links(std::string_view raw_ns_id)
{
    std::uint64_t ns_id = 0;
    if (!parse_whole(raw_ns_id, ns_id) || ns_id == 0)
        return problem(problem_type::bad_request, "the namespace's ns_id is a whole number >= 1");
    auto t = target_of(ns_id);
    if (!t)
        return problem(problem_type::not_found,
                       "netnsd knows no network namespace with that ns_id (now)",
                       host_href(ns_id) + "/links");
    return with_dumps({std::move(*t)}, [this](const std::vector<target>& ts,
                                              const std::vector<result>& rs, const model_index& ix)
                      { return links_body(ts.front(), rs.front(), ix); });
}

link_views::outcome link_views::topology()
{
    std::vector<target> targets;
    for (const auto& h : model_.host_namespaces())
        if (auto t = target_of(h.identity.ns_id))
            targets.push_back(std::move(*t));
    return with_dumps(std::move(targets),
                      [this](const std::vector<target>& ts, const std::vector<result>& rs,
                             const model_index& ix) { return topology_body(ts, rs, ix); });
}

std::shared_ptr<const link_views::model_index> link_views::index()
{
    if (index_ && index_->host_generation == model_.host_generation() &&
        index_->revision == model_.revision())
        return index_;
    auto ix = std::make_shared<model_index>();
    ix->host_generation = model_.host_generation();
    ix->revision = model_.revision();
    for (const auto& h : model_.host_namespaces())
    {
        peer_ns p{h.identity.ns_id,
                  h.names.empty() ? std::nullopt : std::optional<std::string>(h.names.front())};
        if (h.nsid)
            ix->by_nsid[*h.nsid] = p;
        else if (!h.is_self)
            ix->without_nsid.push_back(locator_of(h));
        if (h.is_self)
            ix->self = p;
        ix->by_ns_id[h.identity.ns_id] = std::move(p);
    }
    index_ = std::move(ix);
    return index_;
}

link_views::outcome link_views::with_dumps(std::vector<target> targets, answer_fn answer)
{
    auto ix = index();
    std::vector<result> ready(targets.size());
    bool all_cached = true;
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        ready[i].dump = targets[i].cached;
        all_cached = all_cached && targets[i].cached;
    }
    if (all_cached)
        return answer(targets, ready, *ix);
    deferred job;
    job.work = [this, targets = std::move(targets), ready = std::move(ready), ix,
                answer = std::move(answer)]() mutable -> std::function<response()>
    {
        // On the worker: only the kernel, and what the job carries (the index is read-only).
        std::set<core::nsid_t> learnt_nsids;
        for (std::size_t i = 0; i < targets.size(); ++i)
        {
            if (ready[i].dump)
                continue;
            auto d = std::make_shared<netns_dump>();
            ready[i].ec = core::kernel::dump_netns(targets[i].where, *d);
            if (ready[i].ec == core::errc::thread_netns_lost)
            {
                // This worker is stuck in another namespace: anything it did next would
                // happen there. Stop; the supervisor restarts netnsd.
                core::log::error("exiting: a worker thread is stuck in another namespace",
                                 {{"while", "dumping links"}});
                std::_Exit(EXIT_FAILURE);
            }
            if (ready[i].ec)
                continue;
            // A peer's nsid the model did not have: the dump just gave it (the model hears
            // of it soon, but the answer is made now), or it came meanwhile.
            bool new_peer = false;
            for (const auto& l : d->contents.links)
                new_peer = new_peer ||
                           (d->numbered_here && l.link_netnsid && l.link_netnsid != d->self_nsid &&
                            ix->by_nsid.count(*l.link_netnsid) == 0 &&
                            learnt_nsids.count(*l.link_netnsid) == 0);
            if (new_peer)
            {
                ready[i].learnt = core::kernel::nsids_of(ix->without_nsid);
                for (const auto& [ns_id, nsid] : ready[i].learnt)
                    learnt_nsids.insert(nsid);
            }
            ready[i].dump = std::move(d);
        }
        return [this, targets = std::move(targets), ready = std::move(ready), ix,
                answer = std::move(answer)]
        {
            // Back on the loop: keep the new dumps for the next requests, then answer.
            const auto now = std::chrono::steady_clock::now();
            forget_old(now);
            for (std::size_t i = 0; i < targets.size(); ++i)
                if (ready[i].dump && !targets[i].cached && targets[i].where.ns_id != 0)
                    cache_[targets[i].where.ns_id] = {now, ready[i].dump};
            return answer(targets, ready, *ix);
        };
    };
    return job;
}

response link_views::links_body(const target& t, const result& r, const model_index& ix) const
{
    if (r.ec == core::errc::not_found)
        return problem(problem_type::not_found, "the namespace went while it was being read",
                       t.where.ns_id != 0 ? host_href(t.where.ns_id) : std::string());
    if (r.ec || !r.dump)
        return problem_for(r.ec, "reading the namespace's links failed: " + r.ec.message());
    const auto& d = *r.dump;
    const std::optional<std::string> own_name =
        t.names.empty() ? std::nullopt : std::optional<std::string>(t.names.front());
    std::optional<peer_index> peers;
    json links = json::array();
    for (const auto& l : d.contents.links)
    {
        if (l.link_netnsid && !peers)
            peers.emplace(ix, d.self_nsid, r.learnt);
        std::vector<core::kernel::address_record> addresses;
        for (const auto& a : d.contents.addresses)
            if (a.ifindex == l.ifindex)
                addresses.push_back(a);
        json row = link_json(
            l, l.master ? std::optional<std::string>(link_name(d, *l.master)) : std::nullopt,
            peer_of(l, t.where.ns_id, own_name, d, peers ? &*peers : nullptr), addresses);
        row["counters"] = counters_json(l.counters);
        links.push_back(std::move(row));
    }
    json body = json::object();
    body["ns_id"] = t.where.ns_id != 0 ? json(t.where.ns_id) : json(nullptr);
    body["names"] = t.names;
    body["nsid"] = d.nsid ? json(*d.nsid) : json(nullptr);
    // How it was read: by nsid from netnsd's namespace, or by entering it for a moment.
    body["read_by"] = d.nsid || t.where.is_self ? "nsid" : "setns";
    body["links"] = std::move(links);
    return json_response(200, dump(body));
}

response link_views::topology_body(const std::vector<target>& targets,
                                   const std::vector<result>& results, const model_index& ix) const
{
    std::optional<core::nsid_t> self_nsid;
    for (const auto& r : results)
        if (r.dump && r.dump->self_nsid)
            self_nsid = r.dump->self_nsid;
    std::vector<std::pair<std::uint64_t, core::nsid_t>> learnt;
    for (const auto& r : results)
        learnt.insert(learnt.end(), r.learnt.begin(), r.learnt.end());
    const peer_index peers(ix, self_nsid, learnt);
    json nodes = json::array();
    json edges = json::array();
    // Each veth pair once: both ends report it, and the one with the smaller end says it.
    using end_key = std::tuple<std::uint64_t, int>;
    std::set<std::pair<end_key, end_key>> pairs;
    auto end_json = [](std::uint64_t ns_id, const std::optional<std::string>& netns, int ifindex,
                       const std::optional<std::string>& ifname)
    {
        return json::object({{"ns_id", ns_id},
                             {"netns", netns ? json(*netns) : json(nullptr)},
                             {"ifindex", ifindex},
                             {"ifname", ifname ? json(*ifname) : json(nullptr)}});
    };
    for (std::size_t i = 0; i < targets.size(); ++i)
    {
        const auto& t = targets[i];
        const auto& r = results[i];
        const std::optional<std::string> own_name =
            t.names.empty() ? std::nullopt : std::optional<std::string>(t.names.front());
        json node = json::object({{"type", "namespace"},
                                  {"id", "ns:" + std::to_string(t.where.ns_id)},
                                  {"ns_id", t.where.ns_id},
                                  {"names", t.names},
                                  {"is_self", t.where.is_self},
                                  {"read", !r.ec && r.dump}});
        nodes.push_back(std::move(node));
        if (r.ec || !r.dump)
            continue;
        const auto& d = *r.dump;
        for (const auto& l : d.contents.links)
        {
            if (l.kind == "bridge")
                nodes.push_back(json::object({{"type", "bridge"},
                                              {"id", "bridge:" + std::to_string(t.where.ns_id) +
                                                         ":" + std::to_string(l.ifindex)},
                                              {"ns_id", t.where.ns_id},
                                              {"ifindex", l.ifindex},
                                              {"ifname", l.name}}));
            const auto master = std::find_if(d.contents.links.begin(), d.contents.links.end(),
                                             [&](const link_record& m)
                                             { return l.master && m.ifindex == *l.master; });
            if (master != d.contents.links.end() && master->kind == "bridge")
                edges.push_back(
                    json::object({{"type", "bridge_port"},
                                  {"port", end_json(t.where.ns_id, own_name, l.ifindex, l.name)},
                                  {"bridge", "bridge:" + std::to_string(t.where.ns_id) + ":" +
                                                 std::to_string(*l.master)},
                                  {"kind", l.kind.empty() ? json(nullptr) : json(l.kind)}}));
            if (l.kind != "veth")
                continue;
            const auto p = peer_of(l, t.where.ns_id, own_name, d, &peers);
            if (!p || !p->ns_id)
                continue; // the far end's namespace is not known from here
            end_key mine{t.where.ns_id, l.ifindex};
            end_key theirs{*p->ns_id, p->ifindex};
            const auto key = mine < theirs ? std::pair(mine, theirs) : std::pair(theirs, mine);
            if (!pairs.insert(key).second)
                continue;
            auto here = end_json(t.where.ns_id, own_name, l.ifindex, l.name);
            auto there = end_json(*p->ns_id, p->netns, p->ifindex, p->ifname);
            // The smaller end first, whichever end's namespace was read first.
            if (theirs < mine)
                std::swap(here, there);
            edges.push_back(json::object(
                {{"type", "veth"}, {"ends", json::array({std::move(here), std::move(there)})}}));
        }
    }
    json body = json::object();
    body["revision"] = model_.revision();
    body["nodes"] = std::move(nodes);
    body["edges"] = std::move(edges);
    return json_response(200, dump(body));
}

} // namespace netnsd::api
