// The registry: the model of the netns dir and of the nsids, with one revision counter and a
// journal. Every change that a client can observe through events is an event with its own
// revision; stale entries are listed but make no events (an `add` means usable, so a
// placeholder file is not news).
//
// It is a deterministic state machine: its state, revisions and events are a function of the
// calls made to its mutators, in order. netnsd keeps two: the model thread's, which the kernel
// feeds drive and which records every call that changed it (record_changes), and the I/O
// thread's replica, which the API reads and which replays those calls (apply), so that both
// hold the same state and number the same events the same way, without a lock between them.
//
// It also keeps the host's inventory: every network namespace netnsd knows of, named or not,
// keyed by ns_id, with the mounts and processes that hold it. Its events (found, holders,
// destroyed) take their revisions from the same counter as the entries' events, so a client
// sees one sequence. What the inventory is told comes from the model thread's host_watch; it
// is recorded and replayed like everything else.
// Not thread-safe: each registry is used by one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/journal.hpp"
#include "core/link_change.hpp"
#include "core/model.hpp"

namespace netnsd::core
{

class registry
{
public:
    struct slot
    {
        entry_state state = entry_state::stale;
        ns_identity identity{}; // meaningful when live
        time_point first_seen{};
    };
    using slot_map = std::map<std::string, slot, std::less<>>;
    using listener = std::function<void(const event&)>;

    // One mutator call that changed the registry, as apply() replays it.
    struct change
    {
        enum class kind : std::uint8_t
        {
            probed,         // apply_probe(name, probe, time)
            erased,         // erase(name, time)
            nsid_set,       // set_nsid(identity, nsid, time)
            nsid_unnamed,   // add_unnamed_nsid(nsid, time)
            nsid_destroyed, // destroy_nsid(nsid, time)
            ns_found,       // found_namespace(identity, flag: is_self, time, {pids, name:
                            //   cgroup, mount_id: user_ns_id, nsid: its owner uid})
            ns_mounted,     // namespace_mounted(identity, mount_id, name: path, time,
                            //                   mnt_ns_id, flag: other_mnt_ns)
            ns_unmounted,   // namespace_unmounted(mount_id, time)
            ns_processes,   // set_processes(identity.ns_id, pids, time)
            ns_gone,        // namespace_gone(identity.ns_id, time)
            ns_cgroup,      // set_cgroup(identity.ns_id, name: cgroup, time)
            ns_user_ns,     // set_user_ns(identity.ns_id, mount_id: its ns_id, nsid: uid, time)
            ns_deep,        // set_deep_holders(identity.ns_id, pids, socket_pids, time)
            link,           // link_changed(link, time)
            ns_pod,         // set_pod(identity.ns_id, pod, time)
        };
        kind what = kind::probed;
        std::string name;
        probe_result probe{};
        ns_identity identity{};
        nsid_t nsid = 0;
        time_point time{};
        std::uint64_t mount_id = 0;
        std::uint64_t mnt_ns_id = 0;
        bool flag = false;
        std::vector<std::int32_t> pids;
        std::vector<std::int32_t> socket_pids;
        std::shared_ptr<const link_change> link;
        std::optional<ns_pod> pod;
    };
    // Called with a namespace's ns_id (0 when the inventory does not know it) and nsid just
    // before its `destroyed` event, on the registry that has it set (the primary): --watch-links
    // emits the `removed` of its links there, so that they come first. What it does is recorded
    // before the destroying call, so a replica that has no such hook replays the same order.
    using destroying_hook = std::function<void(std::uint64_t ns_id, std::optional<nsid_t> nsid)>;

    // Revisions start after `base`. The daemon uses its start time in microseconds, so a
    // revision from an earlier run is always older than this run's journal (the client gets a
    // reset instead of the wrong events).
    explicit registry(std::size_t journal_capacity, revision_t base = 0);

    // The names of the netns dir make the inventory's events too (found, holders): a name that
    // becomes live makes its namespace known, and names coming and going change its holders.
    // Off by default; netnsd turns it on in both registries before anything else.
    void track_names_in_inventory(bool on) noexcept { names_in_inventory_ = on; }

    void set_destroying_hook(destroying_hook h) { destroying_ = std::move(h); }

    // Called once per event, after the registry reflects it.
    void set_listener(listener l) { listener_ = std::move(l); }
    // Every mutator call that changes the registry from now on is appended to *into (nullptr
    // stops it). Calls that change nothing are left out: replaying them would change nothing.
    void record_changes(std::vector<change>* into) noexcept { recorder_ = into; }
    // Replays a recorded call.
    void apply(const change& c);

    revision_t revision() const noexcept { return revision_; }
    // The revision before the first event: the `base` it was made with.
    revision_t start_revision() const noexcept { return start_revision_; }
    // Changes with every change to what a list shows, stale entries included.
    std::uint64_t generation() const noexcept { return generation_; }
    const slot_map& slots() const noexcept { return slots_; }
    const journal& history() const noexcept { return journal_; }
    std::size_t live_count() const noexcept { return live_count_; }

    std::optional<nsid_t> nsid_of(const ns_identity& id) const;
    // Every named namespace's nsid that the model has, by identity; only identities with an
    // ns_id (NS_GET_ID, never reused), whose nsid cannot change while they live.
    std::map<ns_identity, nsid_t> known_nsids() const;
    // The live names of a namespace, in byte order (empty when it has none).
    std::vector<std::string> names_of(const ns_identity& id) const;
    std::optional<entry> find(std::string_view name) const;
    entry to_entry(const slot_map::value_type& item) const;
    std::vector<nsid_row> nsids() const;
    bool has_nsid(nsid_t nsid) const { return nsids_.count(nsid) != 0; }
    std::size_t nsid_count() const noexcept { return nsids_.size(); }

    // What a probe of `name` found now. Applies add, delete or nsid changes as needed.
    void apply_probe(std::string_view name, const probe_result& probe, time_point now);
    // The name is gone from the dir.
    void erase(std::string_view name, time_point now);
    // The namespace `id` has nsid `nsid` (learnt by GETNSID).
    void set_nsid(const ns_identity& id, nsid_t nsid, time_point now);
    // An nsid exists whose namespace has no name we know.
    void add_unnamed_nsid(nsid_t nsid, time_point now);
    // RTM_DELNSID: the kernel freed the namespace that had `nsid`.
    void destroy_nsid(nsid_t nsid, time_point now);

    // The inventory. Namespaces without an ns_id (kernels before 6.8) are not kept.
    // What is known of a namespace as it is found, so that its `found` event says it all (not
    // a `holders` event right after, with its owner): its processes (sorted; the sweep that
    // found it saw them), the cgroup of the lowest one, the user namespace that owns it.
    struct first_look
    {
        std::vector<std::int32_t> pids;
        std::string cgroup;
        std::uint64_t user_ns_id = 0; // 0: not known
        std::uint32_t user_ns_owner_uid = 0;
    };
    // A namespace exists (a mount, a process or netnsd itself showed it).
    void found_namespace(const ns_identity& id, bool is_self, time_point now, first_look look);
    void found_namespace(const ns_identity& id, bool is_self, time_point now)
    {
        found_namespace(id, is_self, now, first_look{});
    }
    // An nsfs mount of the namespace at `path` (found with it, when it was not known), in the
    // mount namespace `mnt_ns_id`, which is another than netnsd's when `other_mnt_ns`.
    void namespace_mounted(const ns_identity& id, std::uint64_t mount_id, std::string_view path,
                           time_point now, std::uint64_t mnt_ns_id = 0, bool other_mnt_ns = false);
    // A mount went (any mount: those of no known namespace are ignored).
    void namespace_unmounted(std::uint64_t mount_id, time_point now);
    // The processes whose network namespace it is now (sorted).
    void set_processes(std::uint64_t ns_id, const std::vector<std::int32_t>& pids, time_point now);
    // The cgroup v2 path of one of its processes (the lowest pid; empty: none), which its owner
    // is told from (core/owner.hpp) with its mounts and names.
    void set_cgroup(std::uint64_t ns_id, std::string_view cgroup, time_point now);
    // The pod a CNI cache entry says it is wired for (nullopt: none, or no longer), which its
    // owner is told from first (core/owner.hpp). A holders event when the owner changes.
    void set_pod(std::uint64_t ns_id, const std::optional<ns_pod>& pod, time_point now);
    // The user namespace that owns it (fixed for its life).
    void set_user_ns(std::uint64_t ns_id, std::uint64_t user_ns_id, std::uint32_t owner_uid,
                     time_point now);
    // The deep scan's answer: the processes with an fd on it, and with a socket in it (sorted).
    // A holders event when that changes what holds it (held_by), not for every pid.
    void set_deep_holders(std::uint64_t ns_id, const std::vector<std::int32_t>& fd_pids,
                          const std::vector<std::int32_t>& socket_pids, time_point now);
    // Its nsfs handle says it was freed (ESTALE).
    void namespace_gone(std::uint64_t ns_id, time_point now);

    // --watch-links: a link or an address of a namespace changed. Makes one `link` or `address`
    // event; the registry keeps nothing of it but the journal's copy.
    void link_changed(std::shared_ptr<const link_change> what, time_point now);

    std::size_t host_count() const noexcept { return hosts_.size(); }
    // Changes with every change to the inventory (for caches of its bodies).
    std::uint64_t host_generation() const noexcept { return host_generation_; }
    // Every namespace, ascending ns_id; one by ns_id; its processes (sorted pids).
    std::vector<host_namespace> host_namespaces() const;
    // f(const host_namespace&) for every namespace, ascending ns_id, one row made at a time
    // (not all of them at once, as host_namespaces() does: megabytes at 5000).
    template <typename F>
    void for_each_host_namespace(F&& f) const
    {
        for (const auto& [ns_id, r] : hosts_)
            f(to_host(r));
    }
    std::optional<host_namespace> host(std::uint64_t ns_id) const;
    // The ns_ids of the namespaces nothing netnsd sees holds (host_namespace::held_by() == 0),
    // ascending, without copying the rows.
    std::vector<std::uint64_t> unheld_namespaces() const;
    bool has_host(std::uint64_t ns_id) const { return hosts_.count(ns_id) != 0; }
    // The cgroup its owner is told from (set_cgroup); empty when none or not known.
    std::string_view cgroup_of(std::uint64_t ns_id) const
    {
        const auto it = hosts_.find(ns_id);
        return it == hosts_.end() ? std::string_view() : std::string_view(it->second.cgroup);
    }
    const std::vector<std::int32_t>* processes_of(std::uint64_t ns_id) const;
    // The namespace process `pid` was in at the last sweep (a binary search per namespace:
    // no index by pid is kept, which would cost memory for every process of the host).
    std::optional<std::uint64_t> host_of_pid(std::int32_t pid) const;
    // The inode of every known namespace, by ns_id (for the sweep: the inodes it need not open).
    std::map<std::uint64_t, ns_identity> host_identities() const;
    // f(identity, sorted pids) for every known namespace, ascending ns_id, without a copy (the
    // process events look at them all for every batch).
    template <typename F>
    void for_each_host(F&& f) const
    {
        for (const auto& [ns_id, r] : hosts_)
            f(r.identity, r.pids);
    }
    // f(ns_id, cgroup) for every known namespace (the cgroup of its lowest pid; empty: none).
    template <typename F>
    void for_each_host_cgroup(F&& f) const
    {
        for (const auto& [ns_id, r] : hosts_)
            f(ns_id, std::string_view(r.cgroup));
    }

private:
    struct ns_record
    {
        std::optional<nsid_t> nsid;
        std::set<std::string, std::less<>> live_names;
    };

    // The mutators proper; the public ones record the outermost call only (apply_probe may set
    // an nsid on the way, which replaying apply_probe does again).
    void do_apply_probe(std::string_view name, const probe_result& probe, time_point now);
    void do_set_nsid(const ns_identity& id, nsid_t nsid, time_point now);
    void record(change c);

    void attach(const std::string& name, const ns_identity& id, std::optional<nsid_t> nsid);
    void detach(const std::string& name, const ns_identity& id);
    void claim_nsid(nsid_t nsid, const ns_identity& id);
    void emit(event_type type, time_point now, std::optional<std::string> name,
              std::optional<nsid_t> nsid, std::optional<entry> subject,
              std::optional<host_namespace> host = std::nullopt);

    struct deep_holders
    {
        std::vector<std::int32_t> fd_pids;
        std::vector<std::int32_t> socket_pids;
    };
    struct host_record
    {
        ns_identity identity{};
        bool is_self = false;
        time_point first_seen{};
        std::vector<ns_mount> mounts; // ascending mount id (most namespaces have none)
        std::vector<std::int32_t> pids;
        // What the last deep scan found; rare, so not inline in every record (null: none).
        std::unique_ptr<const deep_holders> deep;
        std::string cgroup;
        // Rare (a pod's sandbox), and 128 bytes: not inline in every record.
        std::unique_ptr<const ns_pod> pod;
        std::uint64_t user_ns_id = 0;
        std::uint32_t user_ns_owner_uid = 0;
    };
    using host_map = std::map<std::uint64_t, host_record>;
    host_namespace to_host(const host_record& r) const;
    // A name of `id` came (create: the namespace becomes known if it was not) or went.
    void names_changed(const ns_identity& id, bool create, time_point now);
    void emit_holders(const host_record& r, time_point now);
    // Drops the record and emits destroyed with its nsid (also dropped).
    void drop_host(host_map::iterator it, time_point now);

    slot_map slots_;
    std::map<ns_identity, ns_record> namespaces_;
    std::map<nsid_t, std::optional<ns_identity>> nsids_; // nullopt: no named namespace has it
    host_map hosts_;                                     // by ns_id
    std::map<std::uint64_t, std::uint64_t> mount_owner_; // mount id -> ns_id
    std::uint64_t host_generation_ = 0;
    bool names_in_inventory_ = false;
    std::size_t live_count_ = 0;
    revision_t revision_ = 0;
    revision_t start_revision_ = 0;
    std::uint64_t generation_ = 0;
    journal journal_;
    listener listener_;
    destroying_hook destroying_;
    std::vector<change>* recorder_ = nullptr;
};

} // namespace netnsd::core
