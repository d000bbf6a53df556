#include "support/oracle.hpp"

#include <fcntl.h>
#include <sstream>
#include <sys/ioctl.h>
#include <unistd.h>

#include "api/uri.hpp"

#include "support/process.hpp"

namespace netnsd::test
{

using json = nlohmann::json;

json get_json(const endpoint& to, const std::string& target, unsigned* status)
{
    const auto reply = http_get(to, target);
    if (status != nullptr)
        *status = reply ? reply->status : 0;
    if (!reply)
        return json();
    auto j = json::parse(reply->body, nullptr, false);
    return j.is_discarded() ? json() : j;
}

std::optional<netns_map> api_netns(const endpoint& to)
{
    unsigned status = 0;
    const auto body = get_json(to, "/api/v1/netns", &status);
    if (status != 200 || !body.is_object() || !body.contains("namespaces"))
        return std::nullopt;
    netns_map out;
    constexpr std::string_view prefix = "/api/v1/netns/";
    for (const auto& e : body["namespaces"])
    {
        const auto href = e["href"].get<std::string>();
        const auto name = api::percent_decode(std::string_view(href).substr(prefix.size()));
        if (!name)
            return std::nullopt;
        view v{e["state"].get<std::string>(), std::nullopt};
        if (e["nsid"].is_number_integer())
            v.nsid = e["nsid"].get<int>();
        out.emplace(*name, v);
    }
    return out;
}

std::optional<view> api_entry(const endpoint& to, const std::string& name)
{
    const auto all = api_netns(to);
    if (!all)
        return std::nullopt;
    const auto it = all->find(name);
    if (it == all->end())
        return std::nullopt;
    return it->second;
}

std::optional<std::map<std::string, std::optional<int>>> api_live(const endpoint& to)
{
    const auto all = api_netns(to);
    if (!all)
        return std::nullopt;
    std::map<std::string, std::optional<int>> out;
    for (const auto& [name, v] : *all)
        if (v.state == "live")
            out.emplace(name, v.nsid);
    return out;
}

std::map<std::string, std::optional<int>> ip_list()
{
    std::map<std::string, std::optional<int>> out;
    const auto r = run({"ip", "-j", "netns", "list"});
    const auto j = json::parse(r.out.empty() ? "[]" : r.out, nullptr, false);
    if (!j.is_array())
        return out;
    for (const auto& e : j)
    {
        std::optional<int> id;
        if (e.contains("id"))
            id = e["id"].get<int>();
        out.emplace(e["name"].get<std::string>(), id);
    }
    return out;
}

std::map<int, std::optional<std::string>> ip_list_id()
{
    std::map<int, std::optional<std::string>> out;
    const auto r = run({"ip", "-j", "netns", "list-id"});
    const auto j = json::parse(r.out.empty() ? "[]" : r.out, nullptr, false);
    if (!j.is_array())
        return out;
    for (const auto& e : j)
    {
        std::optional<std::string> name;
        if (e.contains("name"))
            name = e["name"].get<std::string>();
        out.emplace(e["nsid"].get<int>(), name);
    }
    return out;
}

std::string describe(const std::map<std::string, std::optional<int>>& m)
{
    std::string s = "{";
    for (const auto& [name, id] : m)
        s += name + (id ? "(" + std::to_string(*id) + ")" : "") + " ";
    return s + "}";
}

nlohmann::json by_inode(const endpoint& at, std::uint64_t ino)
{
    // The kernel reuses a freed namespace's inode at once, and the inventory may still show the
    // freed one for a moment (its last mount was in a mount namespace that went away, which the
    // next walk finds): the newest namespace with the inode, by ns_id (never reused), is the
    // live one.
    nlohmann::json found = nullptr;
    const auto all = get_json(at, "/api/v1/namespaces");
    if (all.is_object())
        for (const auto& n : all["namespaces"])
            if (n["inode"] == ino && (found.is_null() || n["ns_id"] > found["ns_id"]))
                found = n;
    return found;
}

double metric(const endpoint& at, const std::string& name)
{
    const auto r = http_get(at, "/metrics");
    if (!r)
        return -1;
    std::istringstream in(r->body);
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(name + " "))
            return std::stod(line.substr(name.size() + 1));
    return -1;
}

json by_ns_id(const endpoint& at, std::uint64_t ns_id)
{
    const auto all = get_json(at, "/api/v1/namespaces");
    if (all.is_object())
        for (const auto& n : all["namespaces"])
            if (n["ns_id"] == ns_id)
                return n;
    return nullptr;
}

std::uint64_t ns_id_of(const std::string& nsfs_path)
{
    // NS_GET_ID (Linux 6.12), which Debian 12's headers predate.
    constexpr unsigned long ns_get_id = _IOR(0xb7, 0xd, std::uint64_t);
    const int fd = ::open(nsfs_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    std::uint64_t id = 0;
    if (::ioctl(fd, ns_get_id, &id) != 0)
        id = 0;
    ::close(fd);
    return id;
}

} // namespace netnsd::test
