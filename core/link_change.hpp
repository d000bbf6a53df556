// link_change: what one `link` or `address` event says (--watch-links): which namespace, what
// happened, and the link or address as it is after the change (removed: as it was). The peer of
// a veth is resolved to a namespace when the change is made (on the model thread, which knows
// the nsids), so the event needs nothing else to be shown. Plain data, immutable once made and
// shared by both registries and every client; no thread affinity.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/kernel/link_dump.hpp"
#include "core/model.hpp"

namespace netnsd::core
{

enum class link_action
{
    added,
    changed,
    removed,
};

// The far end of a veth (or of any link with IFLA_LINK_NETNSID): its namespace and its link.
struct link_peer
{
    std::optional<std::uint64_t> ns_id;
    std::optional<std::string> netns; // its namespace's first name
    int ifindex = 0;
    std::optional<std::string> ifname;

    friend bool operator==(const link_peer&, const link_peer&) = default;
};

// A link as an event shows it: its record (without counters), what its master and peer are
// called, and its addresses.
struct link_view
{
    kernel::link_record link;
    std::optional<std::string> master_name;
    std::optional<link_peer> peer;
    std::vector<kernel::address_record> addresses;
};

struct link_change
{
    link_action action = link_action::added;
    std::uint64_t ns_id = 0;
    std::optional<std::string> name; // the namespace's first name
    bool is_address = false;
    link_view link;                 // when !is_address
    kernel::address_record address; // when is_address
};

} // namespace netnsd::core
