#include "api/json.hpp"

#include <ctime>

#include "api/uri.hpp"

namespace netnsd::api
{

std::string format_time(core::time_point t)
{
    const auto since_epoch = t.time_since_epoch();
    const auto secs = std::chrono::floor<std::chrono::seconds>(since_epoch);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - secs);
    const std::time_t tt = secs.count();
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char buf[40];
    const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::string out(buf, n);
    char frac[8];
    std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>(millis.count()));
    out += frac;
    return out;
}

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
    j["first_seen"] = format_time(e.first_seen);
    return j;
}

std::string dump(const json& j)
{
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace netnsd::api
