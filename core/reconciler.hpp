// reconciler: turns what the watchers report into registry changes. It never trusts an event
// alone: every name is probed before it is believed, and any sign of loss leads to a rescan
// whose differences are applied as ordinary changes.
//
// Two ways to learn that a name became or stopped being a namespace (its bind mount, which
// makes no inotify event). With mount events (fanotify, monitor's first choice), each mount and
// unmount on an entry is reported in kernel order with what it mounted: mount_attached and
// mount_detached apply exactly that, and inotify only adds names (stale until their mount
// event), removes them, and follows symlink aliases, so that adds and deletes reach clients in
// the order the kernel made them, even when netnsd looks late. Without them (mountinfo), a
// change to the mount table somewhere is all that is known: stale names are probed again, live
// ones checked with a stat. Owned by the monitor; model thread only.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/model_status.hpp"
#include "core/netns_source.hpp"
#include "core/registry.hpp"

namespace netnsd::core
{

class reconciler
{
public:
    reconciler(registry& model, netns_source& source) : model_(model), source_(source) {}

    // Lists the dir, probes every name, and applies the difference; re-checks nsids that no
    // live name explains. Returns the listing error when the dir cannot be read (then every
    // entry is gone from the model).
    std::error_code rescan();

    // Mount events decide when a mounted entry is live (see above); set by the monitor.
    void set_mount_events(bool on) noexcept { mount_events_ = on; }
    bool mount_events() const noexcept { return mount_events_; }

    void entry_appeared(std::string_view name);
    void entry_vanished(std::string_view name);
    // A mount event on an entry: it now shows `top` (nullptr: nothing is mounted on it any
    // more, so it is stale). Symlink aliases are looked at again, as their target may be this.
    void mount_attached(std::string_view name, const probe_result& top);
    void mount_detached(std::string_view name, const probe_result* top);
    // Looks at the name now and believes what it finds (admin endpoints, after a change of
    // netnsd's own).
    void refresh(std::string_view name) { apply(name); }
    // The dir itself is gone: every entry in it went with it.
    void dir_lost();
    // The mount table changed: a placeholder may have got its bind mount, a live name may
    // have been unmounted. Re-probes stale entries; re-checks live ones with one stat each.
    void mounts_changed()
    {
        reprobe_stale();
        verify_live();
    }
    // The cheap half, due at once: stale entries are few, and one of them becoming live is
    // the `add` clients wait for.
    void reprobe_stale();
    // The costly half (one stat per live entry), which the caller may coalesce over a burst of
    // mount changes: finds live names that were unmounted or replaced.
    void verify_live();

    // RTM_NEWNSID carries only the number. Finds which live namespace got each of `nsids` by
    // probing the ones that have none yet, resuming after the last hit (loops that number
    // namespaces in name order then cost one probe each); nsids no live name explains are
    // recorded as unnamed. All at once: queue_nsids, then resolve_nsids without a budget.
    // With mount events a probe only numbers the namespace the model holds: one that finds
    // the name unmounted or remounted is ahead of the mount events queued, which say it in
    // their place.
    void nsids_added(std::span<const nsid_t> nsids);
    // The same in steps, so that the loop can serve clients in between: with thousands of
    // unnumbered namespaces and nsids assigned in no particular order, finding one costs
    // thousands of probes. queue_nsids records what to find; resolve_nsids probes at most
    // `budget` candidates and says whether nsids are still to be found. An nsid queued in the
    // middle of a pass starts the pass over: a candidate probed before that nsid existed must
    // be probed again.
    void queue_nsids(std::span<const nsid_t> nsids);
    bool resolve_nsids(std::size_t budget);
    bool resolving_nsids() const noexcept { return !pending_.empty(); }
    // RTM_DELNSID. Nsids still queued are resolved first, so that the kernel's order (the
    // nsid, then its namespace's end) reaches clients.
    void nsid_deleted(nsid_t nsid);

    std::size_t probes() const noexcept { return probes_; }

    // The audit: what a full scan of the kernel found, made elsewhere (it takes a while at
    // thousands of entries), compared here with the model. A difference is first looked at
    // again: the scan is older than the model, so it may just have missed a later change. What
    // still differs is a divergence: the model is repaired (ordinary events) and it is counted.
    struct kernel_scan
    {
        std::vector<std::pair<std::string, probe_result>> entries; // every name, any order
        std::vector<nsid_t> nsid_dump;                             // a hint (truncated dump)
        std::error_code list_error;
    };
    struct divergence
    {
        divergence_kind what = divergence_kind::entry_changed;
        std::string name; // entries; empty for nsids
        std::optional<nsid_t> nsid;
        std::string detail; // what the model said, and what the kernel says
    };
    // `known`: nsids the model has (registry::known_nsids). A live namespace's nsid never
    // changes (the kernel neither renumbers nor unnumbers a peer while it lives) and an ns_id
    // is never reused, so the scan takes those from here instead of asking: each GETNSID walks
    // the kernel's nsid table, which made an audit at 10000 numbered entries take ~1 s.
    static kernel_scan scan(netns_source& source, const std::map<ns_identity, nsid_t>& known = {});
    // An unnamed nsid the kernel no longer answers for is a divergence only when the model
    // still has it at an audit this long after one first saw it so: a namespace freed by its
    // last holder is "gone" at once (GETNSID finds nothing), but the kernel's cleanup work
    // unhashes its nsid and sends RTM_DELNSID only later, in batches (up to a second or so).
    static constexpr std::chrono::seconds nsid_grace{2};
    void set_nsid_grace(std::chrono::milliseconds grace) noexcept { nsid_grace_ = grace; }
    // `settle` reads and applies whatever the feeds have queued: a difference that a pending
    // notification explains is no divergence. `quiet` says that nothing is queued now: a
    // difference is believed only when, after a settle and a look, nothing was queued
    // meanwhile; while the kernel keeps changing (a burst), a name is looked at again, up to
    // settle_attempts times, then left to the next audit. Without it, one settle is believed.
    static constexpr int settle_attempts = 8;
    std::vector<divergence> audit(const kernel_scan& scan, const std::function<void()>& settle,
                                  const std::function<bool()>& quiet = {});

private:
    void apply(std::string_view name);
    void apply_found(std::string_view name, const probe_result& found);
    // In mount-event mode: what inotify may say of a name, given one look at it (see the
    // header).
    void follow_name(std::string_view name, const probe_result& found);
    void reprobe_aliases();
    probe_result probe(std::string_view name);
    // Whether the model's view of a name is what `found` says.
    bool model_agrees(std::string_view name, const probe_result& found) const;
    // The model's view of a name, in words, for a divergence's detail.
    std::string describe_model(std::string_view name) const;
    void audit_entries(const kernel_scan& scan, const std::function<void()>& settle,
                       const std::function<bool()>& quiet, std::vector<divergence>& found);
    void audit_nsids(const kernel_scan& scan, const std::function<void()>& settle,
                     const std::function<bool()>& quiet, std::vector<divergence>& found);

    // The names to probe for the queued nsids: stale ones first (`ip netns set` can number a
    // namespace whose bind mount we have not seen yet; with mount events, only symlinks: a
    // mount event says when a name becomes live, in the kernel's order), then live ones
    // without an nsid, from the cursor on, wrapping.
    std::vector<std::string> nsid_candidates() const;

    registry& model_;
    netns_source& source_;
    std::string cursor_; // the last name an nsid was found on
    std::size_t probes_ = 0;
    std::set<nsid_t> pending_;            // queued nsids not found yet
    std::vector<std::string> candidates_; // the pass in progress
    std::size_t next_candidate_ = 0;
    bool pass_started_ = false;
    bool mount_events_ = false;
    std::set<std::string, std::less<>> aliases_; // names that were symlinks when last looked at
    std::chrono::milliseconds nsid_grace_ = nsid_grace;
    std::map<nsid_t, time_point> nsid_gone_since_; // unnamed nsids an audit found freed
};

} // namespace netnsd::core
