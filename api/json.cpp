#include "api/json.hpp"

#include <ctime>

#include "core/rfc3339.hpp"

#include "api/uri.hpp"

namespace netnsd::api
{

std::string entry_href(std::string_view name)
{
    return "/api/v1/netns/" + percent_encode(name);
}

json to_json(const core::entry& e, std::string_view netns_dir)
{
    json j = json::object();
    j["name"] = e.name;
    j["href"] = entry_href(e.name);
    std::string path(netns_dir);
    path.append(1, '/').append(e.name);
    j["path"] = std::move(path);
    j["state"] = e.state == core::entry_state::live ? "live" : "stale";
    j["nsid"] = e.nsid ? json(*e.nsid) : json(nullptr);
    j["inode"] = e.identity ? json(e.identity->ino) : json(nullptr);
    j["ns_id"] = e.identity && e.identity->ns_id != 0 ? json(e.identity->ns_id) : json(nullptr);
    j["first_seen"] = core::rfc3339(e.first_seen);
    return j;
}

std::string dump(const json& j)
{
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace netnsd::api
