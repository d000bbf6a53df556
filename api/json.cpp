#include "api/json.hpp"

#include <ctime>

#include "core/owner.hpp"
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

std::string host_href(std::uint64_t ns_id)
{
    return "/api/v1/namespaces/" + std::to_string(ns_id);
}

json held_by_json(unsigned held_by)
{
    json out = json::array();
    for (auto [bit, word] :
         {std::pair{core::holder::name, "name"}, std::pair{core::holder::mount, "mount"},
          std::pair{core::holder::process, "process"}, std::pair{core::holder::fd, "fd"},
          std::pair{core::holder::socket, "socket"}})
        if ((held_by & static_cast<unsigned>(bit)) != 0)
            out.push_back(word);
    return out;
}

// The deep scan's holders of one kind: how many processes, and the lowest of their pids (the
// host's own namespace may have a socket in nearly every process; the list stays short).
json deep_holders_json(const std::vector<std::int32_t>& pids)
{
    json shown = json::array();
    for (std::size_t i = 0; i < pids.size() && i < deep_holder_pids_shown; ++i)
        shown.push_back(pids[i]);
    return json::object({{"count", pids.size()}, {"pids", std::move(shown)}});
}

json to_json(const core::host_namespace& h)
{
    json j = json::object();
    j["ns_id"] = h.identity.ns_id;
    j["href"] = host_href(h.identity.ns_id);
    j["inode"] = h.identity.ino;
    j["nsid"] = h.nsid ? json(*h.nsid) : json(nullptr);
    j["is_self"] = h.is_self;
    json names = json::array();
    for (const auto& n : h.names)
        names.push_back(json::object({{"name", n}, {"href", entry_href(n)}}));
    j["names"] = std::move(names);
    json mounts = json::array();
    for (const auto& m : h.mounts)
        mounts.push_back(json::object({{"path", m.path},
                                       {"mount_id", m.mount_id},
                                       {"mnt_ns_id", m.mnt_ns_id},
                                       {"other_mnt_ns", m.other_mnt_ns}}));
    j["mounts"] = std::move(mounts);
    j["processes"] = json::object(
        {{"count", h.processes}, {"href", host_href(h.identity.ns_id) + "/processes"}});
    j["fds"] = deep_holders_json(h.fd_pids);
    j["sockets"] = deep_holders_json(h.socket_pids);
    j["owner"] =
        h.owner.kind == core::owner_kind::unknown
            ? json::object(
                  {{"kind", "unknown"}, {"id", nullptr}, {"source", nullptr}, {"name", nullptr}})
            : json::object({{"kind", core::to_string(h.owner.kind)},
                            {"id", h.owner.id.empty() ? json(nullptr) : json(h.owner.id)},
                            {"source", h.owner.source},
                            {"name", h.owner.name.empty() ? json(nullptr) : json(h.owner.name)}});
    j["user_ns"] =
        h.user_ns_id == 0
            ? json(nullptr)
            : json::object({{"ns_id", h.user_ns_id}, {"owner_uid", h.user_ns_owner_uid}});
    j["held_by"] = held_by_json(h.held_by());
    j["leak"] = h.is_leak();
    j["first_seen"] = core::rfc3339(h.first_seen);
    return j;
}

std::string dump(const json& j)
{
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace netnsd::api
