#include "core/reconciler.hpp"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

namespace netnsd::core
{
namespace
{

// Whether a look found the namespace the model holds live under a name.
bool same_namespace(const registry::slot& s, const probe_result& found)
{
    return s.state == entry_state::live && found.state == entry_state::live &&
           s.identity == found.identity;
}

} // namespace

probe_result reconciler::probe(std::string_view name)
{
    ++probes_;
    return source_.probe(name);
}

void reconciler::apply(std::string_view name)
{
    apply_found(name, probe(name));
}

void reconciler::apply_found(std::string_view name, const probe_result& found)
{
    if (found.alias && found.exists)
        aliases_.emplace(name);
    else if (const auto it = aliases_.find(name); it != aliases_.end())
        aliases_.erase(it);
    if (found.exists)
        model_.apply_probe(name, found, clock::now());
    else
        model_.erase(name, clock::now()); // created and removed before we looked
}

void reconciler::follow_name(std::string_view name, const probe_result& found)
{
    const auto slot = model_.slots().find(name);
    // Gone (an IN_DELETE: entry_appeared does not come here then): whatever it was goes. A
    // mounted entry cannot be unlinked before its unmount, whose event the monitor applied
    // before this one (it reads inotify first, then the mount events, and applies the mount
    // events first), so its delete went out in kernel order. A symlink is live through its
    // target: no mount event of its own says when.
    if (!found.exists || found.alias)
    {
        apply_found(name, found);
        return;
    }
    aliases_.erase(std::string(name));
    // A new name is stale until its mount event says otherwise, even when a look already finds
    // the namespace: the mount event is queued, and applying it in its place keeps the kernel's
    // order between names. An existing one is left to its mount events.
    if (slot == model_.slots().end())
        model_.apply_probe(name, probe_result{}, clock::now());
}

void reconciler::reprobe_aliases()
{
    const std::vector<std::string> names(aliases_.begin(), aliases_.end());
    for (const auto& name : names)
        apply(name);
}

void reconciler::mount_attached(std::string_view name, const probe_result& top)
{
    model_.apply_probe(name, top, clock::now());
    reprobe_aliases();
}

void reconciler::mount_detached(std::string_view name, const probe_result* top)
{
    // Gone already (the name was unlinked, which detaches copies of its mount elsewhere):
    // its removal said everything.
    if (model_.slots().find(name) != model_.slots().end())
        model_.apply_probe(name, top != nullptr ? *top : probe_result{}, clock::now());
    reprobe_aliases();
}

std::error_code reconciler::rescan()
{
    std::vector<std::string> names;
    const auto ec = source_.list(names);
    if (ec)
    {
        // Gone, or not a directory: everything in it went with it. Anything else (EMFILE,
        // ENOMEM, EACCES) says nothing about the entries: keep them; the next change retries.
        if (ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
            return ec;
        names.clear();
    }
    std::sort(names.begin(), names.end());

    // Names that vanished first, so that a namespace that moved to another name is never
    // shown under both.
    std::vector<std::string> gone;
    for (const auto& [name, s] : model_.slots())
        if (!std::binary_search(names.begin(), names.end(), name))
            gone.push_back(name);
    for (const auto& name : gone)
        model_.erase(name, clock::now());
    for (const auto& name : names)
        apply(name);

    // Queued nsids are settled by what follows: the probes above found the named ones, the
    // dump below lists the rest that still exist.
    pending_.clear();
    candidates_.clear();
    pass_started_ = false;

    // nsids whose namespace has no live name: only the kernel knows if they still exist.
    std::set<nsid_t> known;
    for (const auto& row : model_.nsids())
    {
        known.insert(row.nsid);
        if (!row.name && !source_.nsid_exists(row.nsid))
        {
            model_.destroy_nsid(row.nsid, clock::now());
            nsid_gone_since_.erase(row.nsid);
        }
    }
    for (nsid_t nsid : source_.dump_nsids())
        if (known.count(nsid) == 0 && !model_.has_nsid(nsid))
            model_.add_unnamed_nsid(nsid, clock::now());
    return ec;
}

void reconciler::entry_appeared(std::string_view name)
{
    if (!mount_events_)
    {
        apply(name);
        return;
    }
    // Created, then unmounted and unlinked before this IN_CREATE was applied (dir changes
    // wait behind the mount events, a budget a turn): its unmount may be queued behind, with
    // those of other names made before it, and its IN_DELETE is. A delete from this look would
    // go out ahead of them; the events themselves say it in its place.
    // One look, and what it found is followed: a second look could find the name gone, made
    // between the two, and send its delete ahead of the unmount queued before it.
    const auto found = probe(name);
    if (!found.exists)
        return;
    follow_name(name, found);
}

void reconciler::entry_vanished(std::string_view name)
{
    // The name may have been created again before this event was read: believe a probe.
    if (mount_events_)
        follow_name(name, probe(name));
    else
        apply(name);
}

void reconciler::dir_lost()
{
    aliases_.clear();
    std::vector<std::string> names;
    for (const auto& [name, s] : model_.slots())
        names.push_back(name);
    for (const auto& name : names)
        model_.erase(name, clock::now());
}

void reconciler::reprobe_stale()
{
    std::vector<std::string> recheck;
    for (const auto& [name, s] : model_.slots())
        if (s.state != entry_state::live)
            recheck.push_back(name);
    for (const auto& name : recheck)
        apply(name);
}

void reconciler::verify_live()
{
    std::vector<std::string> recheck;
    for (const auto& [name, s] : model_.slots())
        if (s.state == entry_state::live && !source_.still_is(name, s.identity))
            recheck.push_back(name);
    for (const auto& name : recheck)
        apply(name);
}

void reconciler::nsids_added(std::span<const nsid_t> nsids)
{
    queue_nsids(nsids);
    resolve_nsids(std::numeric_limits<std::size_t>::max());
}

void reconciler::queue_nsids(std::span<const nsid_t> nsids)
{
    for (nsid_t nsid : nsids)
        if (!model_.has_nsid(nsid) && pending_.insert(nsid).second)
            pass_started_ = false;
}

std::vector<std::string> reconciler::nsid_candidates() const
{
    const auto& slots = model_.slots();
    std::vector<std::string> out;
    // With mount events a stale name becomes live by its mount event, which carries the nsid
    // with it (or claims the unnamed record made meanwhile); a symlink has no mount of its own.
    for (const auto& [name, s] : slots)
        if (s.state != entry_state::live && (!mount_events_ || aliases_.count(name) != 0))
            out.push_back(name);
    auto collect = [&](auto first, auto last)
    {
        for (auto it = first; it != last; ++it)
            if (it->second.state == entry_state::live && !model_.nsid_of(it->second.identity))
                out.push_back(it->first);
    };
    const auto middle = slots.upper_bound(cursor_);
    collect(middle, slots.end());
    collect(slots.begin(), middle);
    return out;
}

bool reconciler::resolve_nsids(std::size_t budget)
{
    // Found meanwhile (an inotify add probed the namespace, a rescan): nothing left to do.
    std::erase_if(pending_, [&](nsid_t nsid) { return model_.has_nsid(nsid); });
    if (!pending_.empty() && !pass_started_)
    {
        candidates_ = nsid_candidates();
        next_candidate_ = 0;
        pass_started_ = true;
    }
    while (!pending_.empty() && next_candidate_ < candidates_.size() && budget > 0)
    {
        const auto& name = candidates_[next_candidate_++];
        const auto slot = model_.slots().find(name);
        if (slot == model_.slots().end() ||
            (slot->second.state == entry_state::live && model_.nsid_of(slot->second.identity)))
            continue; // gone, or an alias of a namespace resolved a moment ago
        --budget;
        const auto found = probe(name);
        // With mount events, a look that finds another namespace than the model, or none, is
        // ahead of the mount events still queued: applying it would send this name's add or
        // delete out before those of names the kernel changed first. Only the nsid is taken.
        if (mount_events_ && !found.alias && !same_namespace(slot->second, found))
            continue;
        model_.apply_probe(name, found, clock::now());
        if (found.nsid && pending_.erase(*found.nsid) != 0)
            cursor_ = name;
    }
    if (!pending_.empty() && next_candidate_ < candidates_.size())
        return true;
    // Every candidate probed: what no live name explains belongs to a namespace without one.
    for (nsid_t nsid : pending_)
        model_.add_unnamed_nsid(nsid, clock::now());
    pending_.clear();
    candidates_.clear();
    pass_started_ = false;
    return false;
}

void reconciler::nsid_deleted(nsid_t nsid)
{
    if (!pending_.empty())
        resolve_nsids(std::numeric_limits<std::size_t>::max());
    model_.destroy_nsid(nsid, clock::now());
    // The kernel hands the lowest free nsid out again: an audit's wait for this one's
    // RTM_DELNSID is over, and the next namespace to get it waits out its own.
    nsid_gone_since_.erase(nsid);
}

} // namespace netnsd::core

namespace netnsd::core
{

reconciler::kernel_scan reconciler::scan(netns_source& source,
                                         const std::map<ns_identity, nsid_t>& known)
{
    kernel_scan out;
    std::vector<std::string> names;
    out.list_error = source.list(names);
    out.entries.reserve(names.size());
    for (auto& name : names)
    {
        auto found = known.empty() ? source.probe(name) : source.probe_without_nsid(name);
        if (!known.empty() && found.exists && found.state == entry_state::live)
        {
            if (const auto it = known.find(found.identity); it != known.end())
                found.nsid = it->second;
            else
                found = source.probe(name); // a namespace the model has no nsid for: ask
        }
        if (found.exists)
            out.entries.emplace_back(std::move(name), found);
    }
    out.nsid_dump = source.dump_nsids();
    return out;
}

bool reconciler::model_agrees(std::string_view name, const probe_result& found) const
{
    const auto slot = model_.slots().find(name);
    if (!found.exists)
        return slot == model_.slots().end();
    if (slot == model_.slots().end() || slot->second.state != found.state)
        return false;
    if (found.state != entry_state::live)
        return true;
    return slot->second.identity == found.identity &&
           model_.nsid_of(slot->second.identity) == found.nsid;
}

namespace
{

std::string describe(const probe_result& p)
{
    if (!p.exists)
        return "no such name";
    if (p.state != entry_state::live)
        return "stale";
    return "live ns_id=" + std::to_string(p.identity.ns_id) +
           " inode=" + std::to_string(p.identity.ino) +
           " nsid=" + (p.nsid ? std::to_string(*p.nsid) : "none");
}

} // namespace

std::string reconciler::describe_model(std::string_view name) const
{
    const auto slot = model_.slots().find(name);
    if (slot == model_.slots().end())
        return describe(probe_result{entry_state::stale, {}, std::nullopt, false});
    return describe(
        {slot->second.state, slot->second.identity, model_.nsid_of(slot->second.identity), true});
}

std::vector<reconciler::divergence> reconciler::audit(const kernel_scan& scan,
                                                      const std::function<void()>& settle,
                                                      const std::function<bool()>& quiet)
{
    std::vector<divergence> found;
    // An unreadable dir says nothing about its entries; the rescan path deals with a lost dir.
    if (!scan.list_error)
        audit_entries(scan, settle, quiet, found);
    audit_nsids(scan, settle, quiet, found);
    return found;
}

void reconciler::audit_entries(const kernel_scan& scan, const std::function<void()>& settle,
                               const std::function<bool()>& quiet, std::vector<divergence>& found)
{
    using kind = divergence_kind;
    std::set<std::string, std::less<>> seen;
    std::vector<std::string> suspects;
    for (const auto& [name, probe_then] : scan.entries)
    {
        seen.insert(name);
        if (!model_agrees(name, probe_then))
            suspects.push_back(name);
    }
    for (const auto& [name, slot] : model_.slots())
        if (seen.count(name) == 0)
            suspects.push_back(name);
    for (const auto& name : suspects)
    {
        auto now = probe(name); // the scan is older than the model: look again
        if (model_agrees(name, now))
            continue;
        // A change the kernel has reported but netnsd has not read yet is no divergence: read
        // everything, and look again. One made after that read and before the look (in a
        // burst of them) is queued by the time the look returns: then it may be what the look
        // saw, and the model would apply it out of order if the audit did first. Only a
        // difference that nothing queued meanwhile can explain is one.
        bool agrees = false;
        bool sure = false;
        for (int attempt = 0; attempt < settle_attempts && !agrees && !sure; ++attempt)
        {
            settle();
            now = probe(name);
            agrees = model_agrees(name, now);
            sure = !quiet || quiet();
        }
        if (agrees || !sure)
            continue; // the kernel kept changing: the next audit looks again
        const bool in_model = model_.slots().find(name) != model_.slots().end();
        found.push_back(
            {!in_model     ? kind::entry_missing
             : !now.exists ? kind::entry_extra
                           : kind::entry_changed,
             name, now.nsid,
             "the model had " + describe_model(name) + "; the kernel has " + describe(now)});
        apply_found(name, now);
    }
}

void reconciler::audit_nsids(const kernel_scan& scan, const std::function<void()>& settle,
                             const std::function<bool()>& quiet, std::vector<divergence>& found)
{
    // nsids of namespaces without a name: only the kernel knows whether they still exist. The
    // kernel frees an nsid a moment before its RTM_DELNSID is queued, and allocates one a
    // moment before its RTM_NEWNSID: a difference is believed only once the notifications
    // queued meanwhile are read.
    std::vector<nsid_t> gone;
    std::vector<nsid_t> unknown;
    const auto nsid_suspects = [&]
    {
        gone.clear();
        unknown.clear();
        for (const auto& row : model_.nsids())
            if (!row.name && !source_.nsid_exists(row.nsid))
                gone.push_back(row.nsid);
        for (nsid_t nsid : scan.nsid_dump)
            if (!model_.has_nsid(nsid) && pending_.count(nsid) == 0 && source_.nsid_exists(nsid))
                unknown.push_back(nsid);
    };
    nsid_suspects();
    for (int attempt = 0; attempt < settle_attempts && (!gone.empty() || !unknown.empty());
         ++attempt)
    {
        settle();
        nsid_suspects();
        if (!quiet || quiet())
            break;
        if (attempt + 1 == settle_attempts)
        {
            // The kernel kept changing: the next audit looks again.
            gone.clear();
            unknown.clear();
        }
    }
    // Freed nsids wait out the kernel's cleanup (nsid_grace) from the audit that first saw them.
    const auto now = clock::now();
    std::map<nsid_t, time_point> still_gone;
    for (nsid_t nsid : gone)
    {
        const auto since = nsid_gone_since_.find(nsid);
        if (since == nsid_gone_since_.end() || now - since->second < nsid_grace_)
        {
            still_gone.emplace(nsid, since == nsid_gone_since_.end() ? now : since->second);
            continue;
        }
        found.push_back({divergence_kind::nsid,
                         {},
                         nsid,
                         "the model had it (no name); the kernel freed it and never said so"});
        model_.destroy_nsid(nsid, now);
    }
    nsid_gone_since_ = std::move(still_gone);
    for (nsid_t nsid : unknown)
    {
        found.push_back({divergence_kind::nsid, {}, nsid, "the kernel has it, the model had not"});
        model_.add_unnamed_nsid(nsid, now);
    }
}

} // namespace netnsd::core
