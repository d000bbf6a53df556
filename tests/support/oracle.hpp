// What netnsd says and what `ip` says, in one comparable shape, for integration tests.
// Names come back as exact bytes (netnsd's side is decoded from each entry's href).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "support/http_client.hpp"

namespace netnsd::test
{

struct view
{
    std::string state; // "live" or "stale"
    std::optional<int> nsid;

    friend bool operator==(const view&, const view&) = default;
};
using netns_map = std::map<std::string, view>;

// GET /api/v1/netns as name -> view; nullopt if the daemon does not answer 200 with JSON.
std::optional<netns_map> api_netns(const endpoint& to);
// One entry of that list; nullopt when the list has no such name (or no list came).
std::optional<view> api_entry(const endpoint& to, const std::string& name);
// Whether the list shows the entry so.
inline bool shows(const endpoint& to, const std::string& name, const view& expected)
{
    return api_entry(to, name) == expected;
}
// The same, live entries only, as name -> nsid (the shape of `ip -j netns list`).
std::optional<std::map<std::string, std::optional<int>>> api_live(const endpoint& to);
// `ip -j netns list` as name -> nsid (stale entries included, as ip lists them).
std::map<std::string, std::optional<int>> ip_list();
// `ip -j netns list-id` as nsid -> name (or none).
std::map<int, std::optional<std::string>> ip_list_id();
// GET of a path, parsed as JSON (null JSON when it fails).
nlohmann::json get_json(const endpoint& to, const std::string& target, unsigned* status = nullptr);
// The row of GET /api/v1/namespaces whose namespace has this inode now (null JSON when none):
// the newest (by ns_id) of those that have it, as a freed one can linger a moment after the
// kernel gave its inode to another.
nlohmann::json by_inode(const endpoint& to, std::uint64_t ino);
// The row of GET /api/v1/namespaces with this ns_id (null JSON when none). An ns_id is never
// reused, so this is exact where an inode is not: once a namespace is freed, the kernel can give
// its inode to another (another sandbox's, which netnsd sees as well) at once.
nlohmann::json by_ns_id(const endpoint& to, std::uint64_t ns_id);
// The kernel's id of the namespace an nsfs file (/proc/PID/ns/net, a bind mount) is
// (NS_GET_ID); 0 when it cannot be read.
std::uint64_t ns_id_of(const std::string& nsfs_path);

// The value of an unlabelled metric of /metrics; -1 when it cannot be read.
double metric(const endpoint& at, const std::string& name);

std::string describe(const std::map<std::string, std::optional<int>>& m);

} // namespace netnsd::test
