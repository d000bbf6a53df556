// The CNI cache: libcni's files parsed (api/cni_json) and read live from a real directory with
// inotify (core/cni_cache), matched to a real namespace (this process's own, through
// /proc/self/ns/net) by the inode a stat of the entry's netns path gives.
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <poll.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "core/cni_cache.hpp"
#include "core/kernel/nsfs.hpp"
#include "core/kernel/unique_fd.hpp"
#include "core/registry.hpp"

#include "api/cni_json.hpp"

#include "support/builders.hpp"
#include "support/temp_dir.hpp"

using netnsd::api::parse_cni_cache_entry;
using namespace netnsd;
using netnsd::test::temp_dir;
using namespace std::string_literals;

namespace
{

constexpr std::string_view uid = "1f2e3d4c-5b6a-7980-a1b2-c3d4e5f6a7b8";
const std::string sandbox(64, 'c');

// A cache file as libcni writes it (cachedInfo), with the arguments containerd's CRI passes.
std::string entry(std::string_view netns, bool k8s_args = true, std::string_view name = "web-0")
{
    std::string out = R"({"kind":"cniCacheV1","containerId":")" + sandbox +
                      R"(","config":"eyJjbmlWZXJzaW9uIjoiMS4wLjAifQ==","ifName":"eth0",)"
                      R"("networkName":"k8s-pod-network",)";
    if (!netns.empty())
        out += R"("netns":")" + std::string(netns) + R"(",)";
    out += R"("cniArgs":[["IgnoreUnknown","1"])";
    if (k8s_args)
        out += R"(,["K8S_POD_NAMESPACE","default"],["K8S_POD_NAME",")" + std::string(name) +
               R"("],["K8S_POD_INFRA_CONTAINER_ID",")" + sandbox + R"("],["K8S_POD_UID",")" +
               std::string(uid) + R"("])";
    out += R"(],"capabilityArgs":{"io.kubernetes.cri.pod-annotations":{"a":"b"},)"
           R"("portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]},)"
           R"("result":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"x"}],)"
           R"("ips":[{"address":"10.244.0.7/24","gateway":"10.244.0.1","interface":0}]}})";
    return out;
}

void write_file(const std::filesystem::path& p, const std::string& bytes)
{
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << bytes;
}

// Waits (up to a generous deadline) for the inotify fd, then lets the cache read it.
bool wait_and_read(core::cni_cache& cache)
{
    pollfd p{cache.fd(), POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1)
        return false;
    cache.on_readable(core::clock::now());
    return true;
}

core::ns_identity own_netns()
{
    const core::kernel::unique_fd fd(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    const auto id = core::kernel::identify_netns(fd.get());
    REQUIRE(id);
    return *id;
}

} // namespace

TEST_CASE("a libcni cache file: the netns path, the sandbox and the pod's K8S_POD_* arguments")
{
    const auto r = parse_cni_cache_entry(entry("/var/run/netns/cni-0d3c6a3e"));
    REQUIRE(r);
    CHECK(r->netns == "/var/run/netns/cni-0d3c6a3e");
    CHECK(r->container_id == sandbox);
    REQUIRE(r->pod);
    CHECK(r->pod->namespace_ == "default");
    CHECK(r->pod->name == "web-0");
    CHECK(r->pod->uid == uid);
    CHECK(r->pod->container_id == sandbox);

    // Older libcni wrote no netns: the pod is known, the namespace is not.
    const auto old = parse_cni_cache_entry(entry(""));
    REQUIRE(old);
    CHECK(old->netns.empty());
    CHECK(old->pod);

    // Not a pod: podman or cnitool pass no K8S_POD_* arguments; no cniArgs at all, or null.
    const auto bare = parse_cni_cache_entry(entry("/run/netns/x", false));
    REQUIRE(bare);
    CHECK_FALSE(bare->pod);
    CHECK(parse_cni_cache_entry(R"({"kind":"cniCacheV1","containerId":"a","netns":"/x"})"));
    CHECK(parse_cni_cache_entry(R"({"kind":"cniCacheV1","containerId":"a","cniArgs":null})"));
    // No K8S_POD_UID (older kubelets): a pod without a UID.
    const auto no_uid =
        parse_cni_cache_entry(R"({"kind":"cniCacheV1","containerId":"a","netns":"/x","cniArgs":)"
                              R"([["K8S_POD_NAMESPACE","kube-system"],["K8S_POD_NAME","dns"]]})");
    REQUIRE(no_uid);
    REQUIRE(no_uid->pod);
    CHECK(no_uid->pod->uid.empty());
    CHECK(no_uid->pod->name == "dns");
    // Only one of namespace and name: not a pod.
    const auto half = parse_cni_cache_entry(
        R"({"kind":"cniCacheV1","containerId":"a","cniArgs":[["K8S_POD_NAME","dns"]]})");
    REQUIRE(half);
    CHECK_FALSE(half->pod);
}

TEST_CASE("what is not a libcni cache file is refused, however hostile")
{
    const auto good = entry("/run/netns/x");
    CHECK_FALSE(parse_cni_cache_entry(""));
    CHECK_FALSE(parse_cni_cache_entry(good.substr(0, good.size() / 2))); // written half-way
    CHECK_FALSE(parse_cni_cache_entry(good + "x"));
    CHECK_FALSE(parse_cni_cache_entry("[]"));
    CHECK_FALSE(parse_cni_cache_entry(R"("cniCacheV1")"));
    CHECK_FALSE(parse_cni_cache_entry(R"({"kind":"cniCacheV2","containerId":"a"})"));
    CHECK_FALSE(parse_cni_cache_entry(R"({"containerId":"a"})")); // no kind: a legacy result
    CHECK_FALSE(parse_cni_cache_entry(R"({"kind":"cniCacheV1","netns":7})"));
    CHECK_FALSE(parse_cni_cache_entry(R"({"kind":"cniCacheV1","netns":["/x"]})"));
    CHECK_FALSE(parse_cni_cache_entry(R"({"kind":"cniCacheV1","cniArgs":{"K8S_POD_NAME":"a"}})"));
    CHECK_FALSE(parse_cni_cache_entry(R"({"kind":"cniCacheV1","cniArgs":[["a","b","c"]]})"));
    CHECK_FALSE(parse_cni_cache_entry(R"({"kind":"cniCacheV1","cniArgs":[["a",1]]})"));
    CHECK_FALSE(parse_cni_cache_entry(R"({"kind":"cniCacheV1","cniArgs":["a"]})"));
    // Strings that are not UTF-8 are not JSON (in a field netnsd reads, or one it skips).
    auto bad_utf8 = entry("/run/netns/x", true, "web\xff");
    CHECK_FALSE(parse_cni_cache_entry(bad_utf8));
    CHECK_FALSE(
        parse_cni_cache_entry(R"({"kind":"cniCacheV1","result":{"x":")"s + "\xc3\x28" + R"("}})"));
    // Longer than Kubernetes allows.
    CHECK_FALSE(parse_cni_cache_entry(entry("/run/netns/x", true, std::string(300, 'a'))));
    // Deep nesting: no stack is spent on it.
    CHECK_FALSE(
        parse_cni_cache_entry(R"({"kind":"cniCacheV1","result":)" + std::string(1024 * 1024, '[')));
    CHECK_FALSE(parse_cni_cache_entry(std::string(1024 * 1024, '[')));
    // The same depth, closed, inside a field netnsd skips: read through, the file accepted.
    CHECK(parse_cni_cache_entry(R"({"kind":"cniCacheV1","result":)" + std::string(100000, '[') +
                                std::string(100000, ']') + "}"));
}

TEST_CASE("the cache directory read live: a pod appears, changes and goes with its file")
{
    const temp_dir dir;
    core::registry model(100);
    test::event_log log(model);
    const auto self = own_netns();
    model.found_namespace(self, true, core::clock::now());
    core::cni_cache cache(model, dir.path.string(), &parse_cni_cache_entry);
    REQUIRE_FALSE(cache.open(core::clock::now()));
    CHECK(cache.watching());
    log.events.clear();

    // A pod wired: the file names /proc/self/ns/net, whose inode is this namespace's.
    write_file(dir.path / ("k8s-pod-network-" + sandbox + "-eth0"), entry("/proc/self/ns/net"));
    REQUIRE(wait_and_read(cache));
    auto owner = model.host(self.ns_id)->owner;
    CHECK(owner.kind == core::owner_kind::kubernetes);
    CHECK(owner.id == uid);
    CHECK(owner.name == "default/web-0");
    CHECK(owner.source == "cni");
    REQUIRE(log.events.size() == 1u);
    CHECK(log.events[0].type == core::event_type::holders);
    CHECK(log.events[0].host->owner == owner);
    CHECK(cache.stats().files == 1u);
    CHECK(cache.stats().pods == 1u);

    // A second attachment of the same pod (another network): no change, no event.
    write_file(dir.path / ("other-" + sandbox + "-net1"), entry("/proc/self/ns/net"));
    REQUIRE(wait_and_read(cache));
    CHECK(cache.stats().files == 2u);
    CHECK(log.events.size() == 1u);

    // Hostile neighbours: too large, garbage, a file for a namespace the model does not have.
    // None of them changes the owner.
    {
        std::ofstream big(dir.path / "big", std::ios::binary);
        big << std::string(core::cni_cache::max_file_size + 1, ' ');
    }
    write_file(dir.path / "garbage", "{\"kind\":");
    write_file(dir.path / "elsewhere", entry("/nonexistent/netns/cni-x", true, "ghost"));
    const auto skipped = cache.stats().skipped;
    const auto malformed = cache.stats().malformed;
    cache.on_readable(core::clock::now()); // whatever has come so far
    while (cache.stats().files < 3u || cache.stats().skipped < skipped + 1 ||
           cache.stats().malformed < malformed + 1)
        REQUIRE(wait_and_read(cache));
    CHECK(model.host(self.ns_id)->owner == owner);
    CHECK(cache.stats().pods == 1u);

    // Both files of the pod removed: the owner falls back (nothing else says anything here).
    std::filesystem::remove(dir.path / ("k8s-pod-network-" + sandbox + "-eth0"));
    std::filesystem::remove(dir.path / ("other-" + sandbox + "-net1"));
    while (cache.stats().pods != 0u)
        REQUIRE(wait_and_read(cache));
    CHECK(model.host(self.ns_id)->owner.source != "cni");
    CHECK(log.events.back().type == core::event_type::holders);
    CHECK(log.events.back().host->owner.source != "cni");
}

TEST_CASE("a cache directory that does not exist yet is watched once it does")
{
    const temp_dir parent;
    const auto dir = parent.path / "results";
    core::registry model(100);
    const auto self = own_netns();
    model.found_namespace(self, true, core::clock::now());
    // Written before netnsd looked: read by the first look.
    core::cni_cache cache(model, dir.string(), &parse_cni_cache_entry);
    REQUIRE_FALSE(cache.open(core::clock::now()));
    CHECK_FALSE(cache.watching());
    cache.retry(core::clock::now());
    CHECK_FALSE(cache.watching());
    std::filesystem::create_directory(dir);
    write_file(dir / "net-a-eth0", entry("/proc/self/ns/net"));
    cache.retry(core::clock::now());
    CHECK(cache.watching());
    CHECK(model.host(self.ns_id)->owner.name == "default/web-0");
    // The directory removed: its pods go with it, and it is looked for again.
    std::filesystem::remove_all(dir);
    while (cache.watching())
        REQUIRE(wait_and_read(cache));
    CHECK(model.host(self.ns_id)->owner.source != "cni");
    CHECK(cache.stats().files == 0u);
}

TEST_CASE("a namespace found after its cache file is matched by the next sync")
{
    const temp_dir dir;
    write_file(dir.path / "net-a-eth0", entry("/proc/self/ns/net"));
    // A FIFO and a symlink to one: skipped, never waited on (no writer will ever come).
    REQUIRE(::mkfifo((dir.path / "fifo").c_str(), 0600) == 0);
    std::filesystem::create_symlink(dir.path / "fifo", dir.path / "link");
    core::registry model(100);
    core::cni_cache cache(model, dir.path.string(), &parse_cni_cache_entry);
    REQUIRE_FALSE(cache.open(core::clock::now()));
    CHECK(cache.stats().files == 1u);
    CHECK(cache.stats().skipped == 2u);
    CHECK(cache.stats().pods == 0u); // the model has no namespace yet
    const auto self = own_netns();
    model.found_namespace(self, true, core::clock::now());
    cache.sync(core::clock::now());
    CHECK(cache.stats().pods == 1u);
    CHECK(model.host(self.ns_id)->owner.name == "default/web-0");
}

TEST_CASE("a cache file without a netns path (older libcni) is matched by its pod's UID to the "
          "namespace a kubepods cgroup says is that pod's")
{
    const temp_dir dir;
    write_file(dir.path / "net-a-eth0", entry(""));
    core::registry model(100);
    const auto self = own_netns();
    model.found_namespace(self, true, core::clock::now());
    core::cni_cache cache(model, dir.path.string(), &parse_cni_cache_entry);
    REQUIRE_FALSE(cache.open(core::clock::now()));
    CHECK(cache.stats().files == 1u);
    CHECK(cache.stats().pods == 0u); // no cgroup says the UID yet
    // Another pod's cgroup: still nothing.
    model.set_cgroup(self.ns_id,
                     "/kubepods.slice/kubepods-besteffort.slice/"
                     "kubepods-besteffort-pod99999999_5b6a_7980_a1b2_c3d4e5f6a7b8.slice/"
                     "cri-containerd-" +
                         sandbox + ".scope",
                     core::clock::now());
    cache.sync(core::clock::now());
    CHECK(cache.stats().pods == 0u);
    model.set_cgroup(self.ns_id,
                     "/kubepods.slice/kubepods-besteffort.slice/"
                     "kubepods-besteffort-pod1f2e3d4c_5b6a_7980_a1b2_c3d4e5f6a7b8.slice/"
                     "cri-containerd-" +
                         sandbox + ".scope",
                     core::clock::now());
    cache.sync(core::clock::now());
    CHECK(cache.stats().pods == 1u);
    const auto owner = model.host(self.ns_id)->owner;
    CHECK(owner.kind == core::owner_kind::kubernetes);
    CHECK(owner.id == uid);
    CHECK(owner.name == "default/web-0");
    CHECK(owner.source == "cni");
}

TEST_CASE("a cache file whose pod UID a kubepods cgroup of the namespace contradicts: the "
          "cgroup's pod is kept")
{
    const temp_dir dir;
    write_file(dir.path / "net-a-eth0", entry("/proc/self/ns/net"));
    core::registry model(100);
    const auto self = own_netns();
    model.found_namespace(self, true, core::clock::now());
    core::cni_cache cache(model, dir.path.string(), &parse_cni_cache_entry);
    REQUIRE_FALSE(cache.open(core::clock::now()));
    CHECK(model.host(self.ns_id)->owner.source == "cni");
    // The cgroup comes after the file, and says another pod.
    model.set_cgroup(self.ns_id,
                     "/kubepods/besteffort/pod99999999-5b6a-7980-a1b2-c3d4e5f6a7b8/" + sandbox,
                     core::clock::now());
    cache.sync(core::clock::now());
    const auto owner = model.host(self.ns_id)->owner;
    CHECK(owner.source == "cgroup");
    CHECK(owner.id == "99999999-5b6a-7980-a1b2-c3d4e5f6a7b8");
    CHECK(owner.name.empty());
}
