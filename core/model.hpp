// Value types of the namespace model: identities, entries (names), events.
// Plain data, copied freely; no thread affinity.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>

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

enum class event_type
{
    added,     // an entry became live
    deleted,   // a live entry went away (unlinked, unmounted, or the dir vanished)
    nsid_set,  // a namespace got an nsid
    destroyed, // the kernel freed a namespace that had an nsid (RTM_DELNSID)
};

struct event
{
    event_type type = event_type::added;
    revision_t revision = 0;
    time_point time{};
    std::optional<std::string> name;
    std::optional<nsid_t> nsid;
    std::optional<entry>
        subject; // the entry as it is after (or, for deleted, was before) the change
};

// One row of `ip netns list-id`: an nsid and the names of its namespace (none when unnamed).
struct nsid_row
{
    nsid_t nsid = 0;
    std::optional<std::string> name; // the first name in byte order
};

} // namespace netnsd::core
