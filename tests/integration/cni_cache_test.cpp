// Kubernetes pods from the CNI cache on the real daemon, in the sandbox: a namespace named as
// containerd's CRI names them (`ip netns add cni-<uuid>`), a libcni cache file written for it in
// the directory --cni-cache-dir (or NETNSD_CNI_CACHE_DIR) names, and netnsd's owner of it:
// kubernetes with the pod's UID and namespace/name from the file (source cni), told live in a
// holders event; back to the cni-<uuid> mount convention when the file goes. A file for a
// namespace netnsd does not know names nothing.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <vector>

#include <doctest/doctest.h>

#include "support/http_client.hpp"
#include "support/oracle.hpp"
#include "support/process.hpp"
#include "support/stream_client.hpp"
#include "support/temp_dir.hpp"

namespace
{

using namespace netnsd::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

const std::string pod_uid = "6b1f0f4e-2d3c-4b5a-8e9f-0a1b2c3d4e5f";
const std::string sandbox_id(64, 'e');

// The namespaces whose owner comes from the CNI cache. (Not ?owner=kubernetes: the sandbox has
// its own network and mount namespaces but not its own pids, so the sweep also sees the
// processes other tests place in kubepods cgroups.)
std::vector<json> cni_owned(const endpoint& at)
{
    std::vector<json> out;
    const auto listed = get_json(at, "/api/v1/namespaces?owner=kubernetes");
    for (const auto& n : listed["namespaces"])
        if (n["owner"]["source"] == "cni")
            out.push_back(n);
    return out;
}

// A cache file as libcni writes it for containerd's CRI.
std::string cache_entry(const std::string& netns, const std::string& pod_name)
{
    json j = {
        {"kind", "cniCacheV1"},
        {"containerId", sandbox_id},
        {"config", "eyJjbmlWZXJzaW9uIjoiMS4wLjAiLCJuYW1lIjoiazhzLXBvZC1uZXR3b3JrIn0="},
        {"ifName", "eth0"},
        {"networkName", "k8s-pod-network"},
        {"netns", netns},
        {"cniArgs", json::array({json::array({"IgnoreUnknown", "1"}),
                                 json::array({"K8S_POD_NAMESPACE", "shop"}),
                                 json::array({"K8S_POD_NAME", pod_name}),
                                 json::array({"K8S_POD_INFRA_CONTAINER_ID", sandbox_id}),
                                 json::array({"K8S_POD_UID", pod_uid})})},
        {"capabilityArgs", {{"io.kubernetes.cri.pod-annotations", json::object()}}},
        {"result",
         {{"cniVersion", "1.0.0"},
          {"ips", json::array({{{"address", "10.244.1.9/24"}, {"gateway", "10.244.1.1"}}})}}},
    };
    return j.dump();
}

// libcni writes in place (os.WriteFile): the file is read once it is closed.
void write_file(const std::filesystem::path& p, const std::string& bytes)
{
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << bytes;
}

// The next holders event for ns_id whose owner has this source; nullopt on a quiet 20 s.
std::optional<json> wait_owner(ws_client& ws, std::uint64_t ns_id, const std::string& source)
{
    while (auto e = ws.read(20000ms))
        if ((*e)["type"] == "holders" && (*e)["ns_id"] == ns_id &&
            (*e)["host"]["owner"]["source"] == source)
            return e;
    return std::nullopt;
}

} // namespace

TEST_CASE("a CNI cache file names a cni-<uuid> namespace's pod, live, and its removal undoes it")
{
    const temp_dir cache;
    const auto dir = cache.path / "results";
    // Set by the environment, as /etc/default/netnsd would; libcni makes the dir with the first
    // pod, so it does not exist when netnsd starts.
    netnsd_process d({"--sweep-interval=1"}, {}, netnsd_binary(),
                     {"NETNSD_CNI_CACHE_DIR=" + dir.string()});
    INFO(d.log());
    REQUIRE(d.ready());
    const auto at = d.where();
    ws_client ws(at, "/api/v1/events?types=found,holders");
    REQUIRE(ws.read()); // hello

    const std::string name = "cni-0b9e6a52-7d0c-4f2e-9a4b-3c5d6e7f8091";
    run_ok({"ip", "netns", "add", name});
    struct stat st
    {
    };
    REQUIRE(::stat(("/run/netns/" + name).c_str(), &st) == 0);
    json row;
    REQUIRE(eventually(
        [&]
        {
            row = by_inode(at, st.st_ino);
            return row.is_object();
        },
        10000ms));
    INFO(row.dump());
    const auto ns_id = row["ns_id"].get<std::uint64_t>();
    const json convention = {
        {"kind", "containerd"}, {"id", name}, {"source", "mount"}, {"name", nullptr}};
    CHECK(row["owner"] == convention);

    // A file for a namespace netnsd does not know, one whose path is no namespace at all, and
    // then the pod's: the path as the runtime wrote it (/var/run/netns, which is /run/netns
    // through the /var/run symlink), under a dir made after netnsd started (found by a sweep).
    std::filesystem::create_directory(dir);
    write_file(dir / ("k8s-pod-network-" + std::string(64, 'f') + "-eth0"),
               cache_entry("/var/run/netns/cni-00000000-0000-0000-0000-000000000000", "ghost"));
    write_file(dir / ("k8s-pod-network-" + std::string(64, 'd') + "-eth0"),
               cache_entry(cache.path.string(), "not-a-namespace"));
    const auto file = dir / ("k8s-pod-network-" + sandbox_id + "-eth0");
    write_file(file, cache_entry("/var/run/netns/" + name, "web-0"));
    const auto told = wait_owner(ws, ns_id, "cni");
    REQUIRE(told);
    const json pod = {
        {"kind", "kubernetes"}, {"id", pod_uid}, {"source", "cni"}, {"name", "shop/web-0"}};
    CHECK((*told)["host"]["owner"] == pod);
    CHECK(get_json(at, "/api/v1/namespaces/" + std::to_string(ns_id))["owner"] == pod);
    // The only namespace with a pod: the other two files named none.
    const auto pods = cni_owned(at);
    REQUIRE(pods.size() == 1);
    CHECK(pods[0]["ns_id"] == ns_id);

    // The pod torn down: libcni removes the file; the owner falls back to the mount's.
    std::filesystem::remove(file);
    const auto back = wait_owner(ws, ns_id, "mount");
    REQUIRE(back);
    CHECK((*back)["host"]["owner"] == convention);
    CHECK(get_json(at, "/api/v1/namespaces/" + std::to_string(ns_id))["owner"] == convention);
    CHECK(cni_owned(at).empty());
    run_ok({"ip", "netns", "del", name});
}

TEST_CASE("a CNI cache file written before netnsd starts names the pod from the first answer, "
          "--cni-cache-dir= reads none")
{
    const temp_dir cache;
    const std::string name = "cni-1c2d3e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5";
    run_ok({"ip", "netns", "add", name});
    write_file(cache.path / ("k8s-pod-network-" + sandbox_id + "-eth0"),
               cache_entry("/run/netns/" + name, "db-1"));
    struct stat st
    {
    };
    REQUIRE(::stat(("/run/netns/" + name).c_str(), &st) == 0);
    {
        netnsd_process d({"--cni-cache-dir", cache.path.string()});
        INFO(d.log());
        REQUIRE(d.ready());
        const auto row = by_inode(d.where(), st.st_ino);
        INFO(row.dump());
        CHECK(row["owner"]["kind"] == "kubernetes");
        CHECK(row["owner"]["name"] == "shop/db-1");
        CHECK(row["owner"]["id"] == pod_uid);
    }
    {
        netnsd_process d({"--cni-cache-dir="});
        INFO(d.log());
        REQUIRE(d.ready());
        const auto row = by_inode(d.where(), st.st_ino);
        INFO(row.dump());
        CHECK(row["owner"]["source"] == "mount");
    }
    run_ok({"ip", "netns", "del", name});
}
