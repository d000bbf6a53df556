// Owner attribution from cgroup v2 paths, mount paths and names, as runtimes lay them out.
#include <doctest/doctest.h>

#include "core/owner.hpp"

using namespace netnsd::core;

namespace
{

ns_owner from(std::string_view cgroup, std::vector<std::string> mounts = {},
              std::vector<std::string> names = {})
{
    std::vector<ns_mount> m;
    for (auto& p : mounts)
        m.push_back({1, p});
    return attribute_owner(cgroup, m, names);
}

} // namespace

TEST_CASE("owner from a cgroup: docker, podman, cri-o, containerd, kubernetes pods and "
          "systemd units")
{
    const std::string id(64, 'a');
    CHECK(from("/system.slice/docker-" + id + ".scope") ==
          ns_owner{owner_kind::docker, id, "cgroup"});
    CHECK(from("/docker/" + id) == ns_owner{owner_kind::docker, id, "cgroup"});
    CHECK(from("/machine.slice/libpod-" + id + ".scope/container") ==
          ns_owner{owner_kind::podman, id, "cgroup"});
    CHECK(from("/machine.slice/libpod-conmon-" + id + ".scope").kind == owner_kind::process);
    CHECK(from("/system.slice/crio-" + id + ".scope") == ns_owner{owner_kind::cri_o, id, "cgroup"});
    CHECK(from("/system.slice/cri-containerd-" + id + ".scope") ==
          ns_owner{owner_kind::containerd, id, "cgroup"});
    // The pod wins over its container; both cgroup drivers.
    CHECK(from("/kubepods.slice/kubepods-burstable.slice/"
               "kubepods-burstable-pod1f2e3d4c_5b6a_7980_a1b2_c3d4e5f6a7b8.slice/"
               "cri-containerd-" +
               id + ".scope") ==
          ns_owner{owner_kind::kubernetes, "1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8", "cgroup"});
    CHECK(from("/kubepods/besteffort/pod1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8/" + id) ==
          ns_owner{owner_kind::kubernetes, "1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8", "cgroup"});
    CHECK(from("/system.slice/systemd-resolved.service") ==
          ns_owner{owner_kind::systemd, "systemd-resolved.service", "cgroup"});
    CHECK(from("/user.slice/user-1000.slice/session-2.scope") ==
          ns_owner{owner_kind::process, "/user.slice/user-1000.slice/session-2.scope", "cgroup"});
    CHECK(from("") == ns_owner{});
}

TEST_CASE("owner from mounts and names, where a container's cgroup wins and a unit's does not")
{
    CHECK(from("", {"/run/docker/netns/4f2a9c"}) ==
          ns_owner{owner_kind::docker, "4f2a9c", "mount"});
    CHECK(from("", {"/run/user/1000/netns/netns-1234"}) ==
          ns_owner{owner_kind::podman, "netns-1234", "mount"});
    CHECK(from("", {"/run/netns/cni-9a8b"}, {"cni-9a8b"}) ==
          ns_owner{owner_kind::containerd, "cni-9a8b", "mount"});
    CHECK(from("", {"/run/netns/netns-77"}) == ns_owner{owner_kind::podman, "netns-77", "mount"});
    CHECK(from("", {"/run/netns/blue"}, {"blue"}) ==
          ns_owner{owner_kind::netns_dir, "blue", "name"});
    CHECK(from("", {"/tmp/odd\npath"}) == ns_owner{});
    // A unit that mounts a docker-looking path is told by the path; a container by its cgroup.
    CHECK(from("/system.slice/x.service", {"/run/docker/netns/ab"}).kind == owner_kind::docker);
    CHECK(from("/system.slice/x.service", {}, {"blue"}).kind == owner_kind::systemd);
    CHECK(from("/system.slice/docker-abcdef.scope", {"/run/netns/blue"}, {"blue"}) ==
          ns_owner{owner_kind::docker, "abcdef", "cgroup"});
}

TEST_CASE("the wire names of the owner kinds")
{
    CHECK(to_string(owner_kind::netns_dir) == "netns-dir");
    CHECK(to_string(owner_kind::cri_o) == "cri-o");
    CHECK(to_string(owner_kind::unknown) == "unknown");
}
