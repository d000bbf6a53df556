// JSON mapping of the model: entries, nsids, times. Names are bytes; dump() always uses
// error_handler_t::replace, so a name that is not UTF-8 shows with U+FFFD in "name" and
// round-trips exactly through "href" (percent-encoded bytes). Pure functions; any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/model.hpp"
#include "core/registry.hpp"

namespace netnsd::api
{

using json = nlohmann::json;

// The URL path of one entry: "/api/v1/netns/" + percent-encoded name.
std::string entry_href(std::string_view name);

json to_json(const core::entry& e, std::string_view netns_dir);

// The URL path of one namespace of the host inventory: "/api/v1/namespaces/" + ns_id.
std::string host_href(std::uint64_t ns_id);
// The wire names of held_by's bits, in this order: name, mount, process, fd, socket.
json held_by_json(unsigned held_by);
// How many pids of the deep scan's fd and socket holders a namespace shows (the lowest).
inline constexpr std::size_t deep_holder_pids_shown = 20;
json to_json(const core::host_namespace& h);

// Never throws on bad UTF-8, never emits invalid JSON.
std::string dump(const json& j);

} // namespace netnsd::api
