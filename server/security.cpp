#include "server/security.hpp"

#include <charconv>
#include <grp.h>
#include <limits.h>
#include <stdexcept>
#include <unistd.h>
#include <vector>

namespace netnsd::server
{

api::origin_settings origin_settings_of(const config& cfg)
{
    api::origin_settings s;
    for (const auto& where : cfg.listen)
    {
        if (where.is_unix())
            continue;
        if (where.host == "0.0.0.0" || where.host == "::")
            s.any_address = true;
        s.hosts.push_back(where.host);
    }
    char name[HOST_NAME_MAX + 1] = {};
    if (::gethostname(name, sizeof name - 1) == 0 && name[0] != '\0')
        s.hosts.emplace_back(name);
    s.hosts.insert(s.hosts.end(), cfg.allowed_hosts.begin(), cfg.allowed_hosts.end());
    s.origins = cfg.allowed_origins;
    return s;
}

std::optional<std::uint32_t> admin_group_of(const config& cfg)
{
    if (cfg.admin_group.empty())
        return std::nullopt;
    const auto& text = cfg.admin_group;
    std::uint32_t gid = 0;
    const auto* end = text.data() + text.size();
    if (auto [ptr, ec] = std::from_chars(text.data(), end, gid); ec == std::errc{} && ptr == end)
        return gid;
    std::vector<char> buf(16384);
    group entry{};
    group* found = nullptr;
    if (::getgrnam_r(text.c_str(), &entry, buf.data(), buf.size(), &found) != 0 || found == nullptr)
        throw std::runtime_error("no group named " + text);
    return static_cast<std::uint32_t>(found->gr_gid);
}

} // namespace netnsd::server
