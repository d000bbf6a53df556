#include "core/owner.hpp"

#include <array>
#include <utility>

namespace netnsd::core
{
namespace
{

// The segments of a path, without empty ones.
std::vector<std::string_view> segments(std::string_view path)
{
    std::vector<std::string_view> out;
    while (!path.empty())
    {
        const auto slash = path.find('/');
        const auto part = path.substr(0, slash);
        if (!part.empty())
            out.push_back(part);
        if (slash == std::string_view::npos)
            break;
        path.remove_prefix(slash + 1);
    }
    return out;
}

// "<prefix><id>.scope" -> id.
std::optional<std::string_view> scope_id(std::string_view segment, std::string_view prefix)
{
    constexpr std::string_view suffix = ".scope";
    if (segment.size() <= prefix.size() + suffix.size() || !segment.starts_with(prefix) ||
        !segment.ends_with(suffix))
        return std::nullopt;
    return segment.substr(prefix.size(), segment.size() - prefix.size() - suffix.size());
}

ns_owner make(owner_kind kind, std::string_view id, std::string_view source)
{
    return {kind, std::string(id), std::string(source)};
}

// The pod UID of a kubepods cgroup segment: "pod<uid>" (cgroupfs driver) or
// "kubepods-<qos>-pod<uid_with_underscores>.slice" (systemd driver).
std::optional<std::string> pod_uid(std::string_view segment)
{
    auto at = segment.find("pod");
    if (segment.starts_with("kubepods"))
        at = segment.rfind("-pod");
    if (at == std::string_view::npos)
        return std::nullopt;
    auto uid = segment.substr(at + (segment[at] == '-' ? 4 : 3));
    if (uid.ends_with(".slice"))
        uid.remove_suffix(6);
    if (uid.size() < 8)
        return std::nullopt;
    std::string out(uid);
    for (auto& c : out)
        if (c == '_')
            c = '-';
    return out;
}

} // namespace

std::string_view to_string(owner_kind kind) noexcept
{
    switch (kind)
    {
    case owner_kind::unknown:
        return "unknown";
    case owner_kind::process:
        return "process";
    case owner_kind::netns_dir:
        return "netns-dir";
    case owner_kind::systemd:
        return "systemd";
    case owner_kind::kubernetes:
        return "kubernetes";
    case owner_kind::podman:
        return "podman";
    case owner_kind::cri_o:
        return "cri-o";
    case owner_kind::containerd:
        return "containerd";
    case owner_kind::docker:
        return "docker";
    }
    return "unknown";
}

std::optional<ns_owner> owner_of_cgroup(std::string_view cgroup)
{
    const auto parts = segments(cgroup);
    bool kubepods = false;
    std::optional<std::string> pod;
    for (const auto part : parts)
    {
        if (part.starts_with("kubepods"))
        {
            kubepods = true;
            if (auto uid = pod_uid(part))
                pod = std::move(uid);
        }
        else if (kubepods && part.starts_with("pod"))
            pod = pod_uid(part);
    }
    if (pod)
        return make(owner_kind::kubernetes, *pod, "cgroup");
    // The innermost container scope wins (a container in a container names the inner one).
    for (auto it = parts.rbegin(); it != parts.rend(); ++it)
    {
        static constexpr std::array<std::pair<std::string_view, owner_kind>, 4> scopes = {{
            {"docker-", owner_kind::docker},
            {"libpod-", owner_kind::podman},
            {"crio-", owner_kind::cri_o},
            {"cri-containerd-", owner_kind::containerd},
        }};
        for (const auto& [prefix, kind] : scopes)
            if (auto id = scope_id(*it, prefix); id && !id->starts_with("conmon"))
                return make(kind, *id, "cgroup");
    }
    // The cgroupfs driver: /docker/<id>.
    for (std::size_t i = 0; i + 1 < parts.size(); ++i)
        if (parts[i] == "docker" && parts[i + 1].size() >= 12)
            return make(owner_kind::docker, parts[i + 1], "cgroup");
    for (auto it = parts.rbegin(); it != parts.rend(); ++it)
        if (it->ends_with(".service") && it->size() > 8)
            return make(owner_kind::systemd, *it, "cgroup");
    return std::nullopt;
}

std::optional<ns_owner> owner_of_name(std::string_view name)
{
    if (name.starts_with("cni-") && name.size() > 4)
        return make(owner_kind::containerd, name, "mount");
    if (name.starts_with("netns-") && name.size() > 6)
        return make(owner_kind::podman, name, "mount");
    return std::nullopt;
}

std::optional<ns_owner> owner_of_mount(std::string_view path)
{
    const auto parts = segments(path);
    if (parts.size() == 4 && parts[0] == "run" && parts[1] == "docker" && parts[2] == "netns")
        return make(owner_kind::docker, parts[3], "mount");
    if (parts.size() == 5 && parts[0] == "run" && parts[1] == "user" && parts[3] == "netns")
        return make(owner_kind::podman, parts[4], "mount");
    if (parts.size() >= 2 && parts[parts.size() - 2] == "netns")
        return owner_of_name(parts.back());
    return std::nullopt;
}

ns_owner owner_of_pod(const ns_pod& pod)
{
    ns_owner o = make(owner_kind::kubernetes, pod.uid, "cni");
    o.name = pod.namespace_ + "/" + pod.name;
    return o;
}

bool pod_disagrees(std::string_view cgroup, const ns_pod& pod)
{
    if (cgroup.empty() || pod.uid.empty())
        return false;
    const auto from_cgroup = owner_of_cgroup(cgroup);
    return from_cgroup && from_cgroup->kind == owner_kind::kubernetes && from_cgroup->id != pod.uid;
}

ns_owner attribute_owner(std::string_view cgroup, const std::vector<ns_mount>& mounts,
                         const std::vector<std::string>& names, const ns_pod* pod)
{
    const auto from_cgroup = cgroup.empty() ? std::nullopt : owner_of_cgroup(cgroup);
    if (pod != nullptr)
    {
        const bool cgroup_pod = from_cgroup && from_cgroup->kind == owner_kind::kubernetes;
        if (!cgroup_pod || pod->uid.empty() || from_cgroup->id == pod->uid)
        {
            auto o = owner_of_pod(*pod);
            if (o.id.empty() && cgroup_pod)
                o.id = from_cgroup->id; // the cgroup says the UID the runtime did not pass
            return o;
        }
    }
    if (from_cgroup && from_cgroup->kind != owner_kind::systemd)
        return *from_cgroup;
    for (const auto& m : mounts)
        if (auto o = owner_of_mount(m.path))
            return *o;
    for (const auto& n : names)
        if (auto o = owner_of_name(n))
            return *o;
    if (from_cgroup)
        return *from_cgroup;
    if (!names.empty())
        return make(owner_kind::netns_dir, names.front(), "name");
    if (!cgroup.empty())
        return make(owner_kind::process, cgroup, "cgroup");
    return {};
}

} // namespace netnsd::core
