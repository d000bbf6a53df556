// Owner attribution of a network namespace: which container, pod, unit or process it belongs
// to, from what netnsd sees of it: the cgroup v2 path of one of its processes (the lowest pid
// at the last sweep), the paths of its nsfs mounts, its names in the netns dir, and the CNI
// cache entry that names its path (core/cni_cache.hpp). Pure functions of those; any thread.
// Each kind says where it came from (`source`), which is also how far to trust it:
//   cni     a libcni cache entry whose netns is this namespace, with K8S_POD_NAMESPACE and
//           K8S_POD_NAME: what the runtime wrote when it wired the pod (high); the only source
//           of a pod's namespace/name. Its K8S_POD_UID must agree with a kubepods cgroup's UID
//           when both exist; when they do not, the cgroup wins;
//   cgroup  docker-<id>.scope, libpod-<id>.scope, crio-<id>.scope, cri-containerd-<id>.scope,
//           kubepods...pod<uid>...: what the runtime itself named the process's cgroup (high;
//           the pod's UID only, not its namespace/name, which no cgroup says);
//   mount   /run/docker/netns/<sandbox>, /run/user/<uid>/netns/<name> (rootless podman),
//           netns-dir names cni-<uuid> (CRI runtimes' CNI) and netns-<uuid> (podman):
//           a convention of where runtimes mount namespaces (medium: anyone may mount there);
//   cgroup  system.slice/<unit>.service: a systemd unit (high);
//   name    any other netns-dir name (high: `ip netns` named it);
//   process the cgroup of a process that is none of the above (low: just who is in it).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/model.hpp"

namespace netnsd::core
{

// What a cgroup v2 path says of its process, if anything.
std::optional<ns_owner> owner_of_cgroup(std::string_view cgroup);
// What an nsfs mount's path says, if anything. netns_dir_names: the live names it has.
std::optional<ns_owner> owner_of_mount(std::string_view path);
std::optional<ns_owner> owner_of_name(std::string_view name);

// What a CNI cache entry says: kind kubernetes, id the pod UID (empty when the runtime did not
// pass K8S_POD_UID), name "<namespace>/<name>", source cni.
ns_owner owner_of_pod(const ns_pod& pod);
// The pod UID a kubepods cgroup says and the CNI entry's K8S_POD_UID differ (both known): the
// entry is not this namespace's (a stale file whose path now names another), and is ignored.
bool pod_disagrees(std::string_view cgroup, const ns_pod& pod);

// The best of all: the pod a CNI entry names (unless a kubepods cgroup disagrees), a container
// or pod from the cgroup, then from a mount, then a systemd unit, then a name, then the
// process's cgroup; unknown when nothing says anything.
ns_owner attribute_owner(std::string_view cgroup, const std::vector<ns_mount>& mounts,
                         const std::vector<std::string>& names, const ns_pod* pod = nullptr);

std::string_view to_string(owner_kind kind) noexcept;

} // namespace netnsd::core
