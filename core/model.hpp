// Value types of the namespace model: identities, entries (names), events.
// Plain data, copied freely; no thread affinity.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace netnsd::core
{

using clock = std::chrono::system_clock;
using time_point = clock::time_point;
using revision_t = std::uint64_t;
using nsid_t = std::int32_t;

// Who a network namespace is, according to the kernel. Inode numbers are reused quickly once a
// namespace is freed; NS_GET_ID (0 when the kernel lacks it) never is. One kernel gives all
// namespaces an ns_id or none, so comparing the whole triple is consistent either way.
struct ns_identity
{
    std::uint64_t ns_id = 0;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;

    friend auto operator<=>(const ns_identity&, const ns_identity&) = default;
};

enum class entry_state
{
    live,  // an nsfs bind mount of a network namespace
    stale, // anything else: a placeholder before its bind mount, a crash leftover, a directory
};

// What a look at one name in the netns dir found. nsid is only meaningful for live entries.
struct probe_result
{
    entry_state state = entry_state::stale;
    ns_identity identity{};
    std::optional<nsid_t> nsid;
    bool exists = true; // false: no such name in the dir (any more)
    // The name is a symlink: it is live through its target, and no mount event of its own
    // announces when that changes.
    bool alias = false;

    friend bool operator==(const probe_result&, const probe_result&) = default;
};

// One name in the netns dir, as the API shows it. nsid belongs to the namespace and is
// filled in from it when an entry is read.
struct entry
{
    std::string name;
    entry_state state = entry_state::stale;
    std::optional<ns_identity> identity; // live entries only
    std::optional<nsid_t> nsid;
    time_point first_seen{};

    friend bool operator==(const entry&, const entry&) = default;
};

// One nsfs bind mount of a network namespace, in netnsd's mount table or in another mount
// namespace of the host (a container's, an `unshare -m` shell's, a unit's PrivateMounts).
struct ns_mount
{
    std::uint64_t mount_id = 0;  // unique on the host, whichever mount namespace it is in
    std::string path;            // raw bytes, as statmount says, as its mount namespace sees it
    std::uint64_t mnt_ns_id = 0; // the mount namespace it is in (0: not known)
    bool other_mnt_ns = false;   // not netnsd's own: `path` does not lead to it from netnsd

    friend bool operator==(const ns_mount&, const ns_mount&) = default;
};

// What holds a namespace, as bits of host_namespace::held_by().
enum class holder : unsigned
{
    name = 1,    // a live entry of the netns dir
    mount = 2,   // an nsfs bind mount anywhere (a name's mount is one too)
    process = 4, // a process whose /proc/PID/ns/net it is
    fd = 8,      // an open fd of a process on the namespace itself (the deep scan's)
    socket = 16, // a socket that lives in it, open in a process (the deep scan's)
};

// Who a namespace belongs to (core/owner.hpp says how it is told).
enum class owner_kind
{
    unknown,
    process,
    netns_dir,
    systemd,
    kubernetes,
    podman,
    cri_o,
    containerd,
    docker,
};

struct ns_owner
{
    owner_kind kind = owner_kind::unknown;
    std::string id;     // container id, pod UID, unit, name or cgroup path; empty for unknown
    std::string source; // "cni", "cgroup", "mount", "name"; empty for unknown
    // A human name where the source says one: a pod's "<namespace>/<name>" (from the CNI
    // cache); empty otherwise.
    std::string name{}; // a default initializer: ns_owner{kind, id, source} stays valid

    friend bool operator==(const ns_owner&, const ns_owner&) = default;
};

// The Kubernetes pod a CNI cache entry says a namespace is wired for (core/cni_cache.hpp): the
// K8S_POD_* arguments the runtime passed to the CNI plugins, and the sandbox's container id.
struct ns_pod
{
    std::string uid;          // K8S_POD_UID; empty when the runtime did not pass it
    std::string namespace_;   // K8S_POD_NAMESPACE
    std::string name;         // K8S_POD_NAME
    std::string container_id; // the sandbox (pause) container's id: the cache entry's containerId

    friend bool operator==(const ns_pod&, const ns_pod&) = default;
};

// One network namespace of the host, named or not: the inventory's row.
struct host_namespace
{
    ns_identity identity{};
    std::optional<nsid_t> nsid;
    bool is_self = false;           // netnsd's own network namespace
    std::vector<std::string> names; // live entries of the netns dir, in byte order
    std::vector<ns_mount> mounts;   // ascending mount id
    std::size_t processes = 0;
    // The processes with an fd on it, and those with a socket in it, at the last deep scan
    // (ascending; empty until one ran).
    std::vector<std::int32_t> fd_pids;
    std::vector<std::int32_t> socket_pids;
    time_point first_seen{};
    ns_owner owner;
    // The user namespace that owns it (NS_GET_USERNS): its ns_id and owner uid; ns_id 0 when
    // not known.
    std::uint64_t user_ns_id = 0;
    std::uint32_t user_ns_owner_uid = 0;

    unsigned held_by() const noexcept
    {
        return (names.empty() ? 0u : static_cast<unsigned>(holder::name)) |
               (mounts.empty() ? 0u : static_cast<unsigned>(holder::mount)) |
               (processes == 0 ? 0u : static_cast<unsigned>(holder::process)) |
               (fd_pids.empty() ? 0u : static_cast<unsigned>(holder::fd)) |
               (socket_pids.empty() ? 0u : static_cast<unsigned>(holder::socket));
    }
    // Exists, and nothing netnsd can see holds it.
    bool is_leak() const noexcept { return held_by() == 0; }

    friend bool operator==(const host_namespace&, const host_namespace&) = default;
};

// Process counts in the events are coalesced to these buckets: a holders event is due when
// the bucket changes, not with every fork. 0, 1, 2-9, 10-99, 100-999, 1000 and more.
constexpr unsigned process_bucket(std::size_t n) noexcept
{
    unsigned b = 0;
    if (n >= 1)
        b = 1;
    for (std::size_t limit = 2; n >= limit && b < 5; limit = limit == 2 ? 10 : limit * 10)
        ++b;
    return b;
}

enum class event_type
{
    added,     // an entry became live
    deleted,   // a live entry went away (unlinked, unmounted, or the dir vanished)
    nsid_set,  // a namespace got an nsid
    destroyed, // the kernel freed a namespace netnsd knew (its handle, or RTM_DELNSID)
    found,     // a namespace of the host became known to the inventory
    holders,   // what holds a known namespace changed (names, mounts, process-count bucket,
               // owner, held_by)
    link,      // --watch-links: a link of a namespace was added, changed or removed
    address,   // --watch-links: an address of a namespace was added or removed
};

// What a link or address event says (core/link_change.hpp); shared, immutable.
struct link_change;

struct event
{
    event_type type = event_type::added;
    revision_t revision = 0;
    time_point time{};
    std::optional<std::string> name;
    std::optional<nsid_t> nsid;
    // The entry as it is after (or, for deleted, was before) the change. Behind a pointer: the
    // journal keeps 100000 events, most of them the inventory's, which have none.
    std::shared_ptr<const entry> subject;
    // found, holders, destroyed: the namespace as it is after (destroyed: was before) it.
    std::optional<host_namespace> host;
    // link, address: what changed.
    std::shared_ptr<const link_change> link;
};

// One row of `ip netns list-id`: an nsid and the names of its namespace (none when unnamed).
struct nsid_row
{
    nsid_t nsid = 0;
    std::optional<std::string> name; // the first name in byte order
};

} // namespace netnsd::core
