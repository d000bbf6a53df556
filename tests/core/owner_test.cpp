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

TEST_CASE("owner from a CNI cache entry: the pod's namespace/name, ranked with the cgroup")
{
    const std::string uid = "1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8";
    const std::string kubepods =
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
        std::string("1f2e3d4c_5b6a_7980_a1b2_c3d4e5f6a7b8") + ".slice/cri-containerd-" +
        std::string(64, 'c') + ".scope";
    REQUIRE(owner_of_cgroup(kubepods)->id == uid);
    ns_pod pod;
    pod.uid = uid;
    pod.namespace_ = "default";
    pod.name = "web-0";
    pod.container_id = std::string(64, 'c');
    const std::vector<std::string> cni_name = {"cni-0d3c6a3e-2a7b-4a43-9a8e-9b2d1c0f7e11"};
    const auto cni = [&](std::string_view cgroup, const ns_pod& p, std::vector<std::string> names)
    {
        return attribute_owner(cgroup, {}, names, &p);
    };

    ns_owner expected{owner_kind::kubernetes, uid, "cni"};
    expected.name = "default/web-0";
    // Above the cni-<uuid> mount convention, which says no pod at all.
    CHECK(cni("", pod, cni_name) == expected);
    CHECK(attribute_owner("", {}, cni_name).kind == owner_kind::containerd);
    // Above a process's cgroup, and a container scope without kubepods.
    CHECK(cni("/user.slice/user-1000.slice/session-2.scope", pod, {}) == expected);
    CHECK(cni("/system.slice/docker-" + std::string(64, 'a') + ".scope", pod, {}) == expected);
    // A kubepods cgroup that agrees: the entry, which also names the pod.
    CHECK(cni(kubepods, pod, cni_name) == expected);
    CHECK_FALSE(pod_disagrees(kubepods, pod));
    // One that disagrees: the cgroup, which the runtime set on the process itself.
    auto other = pod;
    other.uid = "99999999-5b6a-7980-a1b2-c3d4e5f6a7b8";
    CHECK(pod_disagrees(kubepods, other));
    CHECK(cni(kubepods, other, cni_name) == ns_owner{owner_kind::kubernetes, uid, "cgroup"});
    // No K8S_POD_UID from the runtime: the cgroup's UID, or none.
    auto no_uid = pod;
    no_uid.uid.clear();
    CHECK_FALSE(pod_disagrees(kubepods, no_uid));
    CHECK(cni(kubepods, no_uid, {}) == expected);
    auto bare = expected;
    bare.id.clear();
    CHECK(cni("", no_uid, cni_name) == bare);
    // Without an entry, nothing changes.
    CHECK(attribute_owner(kubepods, {}, cni_name) ==
          ns_owner{owner_kind::kubernetes, uid, "cgroup"});
}
