// The JSON of a link and of an address, as GET .../links shows them and the `link` and
// `address` events carry them: one mapping for both, so that a dashboard can apply an event to
// what it read. Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/kernel/link_dump.hpp"
#include "core/link_change.hpp"

#include "api/json.hpp"

namespace netnsd::api
{

// {family, address, prefixlen, scope, label}
json address_json(const core::kernel::address_record& a);
// {ns_id, netns, ifindex, ifname}, or null
json peer_json(const std::optional<core::link_peer>& p);
// {ifindex, name, kind, state, flags, mtu, mac, master, peer, addresses}: everything but the
// counters. master's name is null when it is not known.
json link_json(const core::kernel::link_record& l, const std::optional<std::string>& master_name,
               const std::optional<core::link_peer>& peer,
               const std::vector<core::kernel::address_record>& addresses);
// The body of a `link` or `address` event, without its type, revision and time.
void link_change_json(const core::link_change& c, json& out);

} // namespace netnsd::api
