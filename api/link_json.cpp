#include "api/link_json.hpp"

#include <array>
#include <linux/if.h>
#include <string_view>
#include <sys/socket.h>
#include <utility>

namespace netnsd::api
{
namespace
{

// The IFF_* bits by the names `ip link` gives them, in its order.
constexpr std::array<std::pair<unsigned, std::string_view>, 17> flag_names = {{
    {IFF_LOOPBACK, "LOOPBACK"},
    {IFF_BROADCAST, "BROADCAST"},
    {IFF_POINTOPOINT, "POINTOPOINT"},
    {IFF_MULTICAST, "MULTICAST"},
    {IFF_NOARP, "NOARP"},
    {IFF_ALLMULTI, "ALLMULTI"},
    {IFF_PROMISC, "PROMISC"},
    {IFF_NOTRAILERS, "NOTRAILERS"},
    {IFF_UP, "UP"},
    {IFF_RUNNING, "RUNNING"},
    {IFF_LOWER_UP, "LOWER_UP"},
    {IFF_DORMANT, "DORMANT"},
    {IFF_MASTER, "MASTER"},
    {IFF_SLAVE, "SLAVE"},
    {IFF_DEBUG, "DEBUG"},
    {IFF_DYNAMIC, "DYNAMIC"},
    {IFF_ECHO, "ECHO"},
}};

json flags_json(std::uint32_t flags)
{
    json out = json::array();
    for (const auto& [bit, name] : flag_names)
        if ((flags & bit) != 0)
            out.push_back(name);
    return out;
}

// RFC 2863 operational states (IF_OPER_*), as `ip link` names them, lower case.
std::string operstate_name(std::uint8_t state)
{
    static constexpr std::array<std::string_view, 7> names = {
        "unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"};
    return state < names.size() ? std::string(names[state]) : std::to_string(state);
}

std::string scope_name(std::uint8_t scope)
{
    switch (scope)
    {
    case 0:
        return "global";
    case 200:
        return "site";
    case 253:
        return "link";
    case 254:
        return "host";
    case 255:
        return "nowhere";
    default:
        return std::to_string(scope);
    }
}

std::string mac_text(const std::vector<std::uint8_t>& mac)
{
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < mac.size(); ++i)
    {
        if (i != 0)
            out += ':';
        out += hex[mac[i] >> 4];
        out += hex[mac[i] & 0xf];
    }
    return out;
}

} // namespace

json address_json(const core::kernel::address_record& a)
{
    return json::object({{"family", a.family == AF_INET ? "inet" : "inet6"},
                         {"address", a.address},
                         {"prefixlen", a.prefix_len},
                         {"scope", scope_name(a.scope)},
                         {"label", a.label.empty() ? json(nullptr) : json(a.label)}});
}

json peer_json(const std::optional<core::link_peer>& p)
{
    if (!p)
        return nullptr;
    return json::object({{"ns_id", p->ns_id ? json(*p->ns_id) : json(nullptr)},
                         {"netns", p->netns ? json(*p->netns) : json(nullptr)},
                         {"ifindex", p->ifindex},
                         {"ifname", p->ifname ? json(*p->ifname) : json(nullptr)}});
}

json link_json(const core::kernel::link_record& l, const std::optional<std::string>& master_name,
               const std::optional<core::link_peer>& peer,
               const std::vector<core::kernel::address_record>& addresses)
{
    json list = json::array();
    for (const auto& a : addresses)
        list.push_back(address_json(a));
    json row = json::object();
    row["ifindex"] = l.ifindex;
    row["name"] = l.name;
    row["kind"] = l.kind.empty() ? json(nullptr) : json(l.kind);
    row["state"] = operstate_name(l.operstate);
    row["flags"] = flags_json(l.flags);
    row["mtu"] = l.mtu;
    row["mac"] = l.mac.empty() ? json(nullptr) : json(mac_text(l.mac));
    row["master"] = l.master
                        ? json::object({{"ifindex", *l.master},
                                        {"name", master_name ? json(*master_name) : json(nullptr)}})
                        : json(nullptr);
    row["peer"] = peer_json(peer);
    row["addresses"] = std::move(list);
    return row;
}

void link_change_json(const core::link_change& c, json& out)
{
    switch (c.action)
    {
    case core::link_action::added:
        out["action"] = "added";
        break;
    case core::link_action::changed:
        out["action"] = "changed";
        break;
    case core::link_action::removed:
        out["action"] = "removed";
        break;
    }
    out["ns_id"] = c.ns_id;
    out["name"] = c.name ? json(*c.name) : json(nullptr);
    if (c.is_address)
    {
        auto a = address_json(c.address);
        a["ifindex"] = c.address.ifindex;
        out["address"] = std::move(a);
    }
    else
        out["link"] = link_json(c.link.link, c.link.master_name, c.link.peer, c.link.addresses);
}

} // namespace netnsd::api
