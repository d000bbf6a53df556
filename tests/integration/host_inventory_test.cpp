// The host inventory on a real kernel, in the sandbox: namespaces held only by processes or
// only by bind mounts outside the netns dir are found, told as found/holders events, and
// reported destroyed once freed; the inventory agrees with `lsns -t net -J`.
#include <fcntl.h>
#include <functional>
#include <map>
#include <signal.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "support/http_client.hpp"
#include "support/oracle.hpp"
#include "support/process.hpp"
#include "support/stream_client.hpp"

namespace
{

using namespace netnsd::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

struct started
{
    netnsd_process d;
    explicit started(std::vector<std::string> args = {}) : d(std::move(args))
    {
        INFO(d.log());
        REQUIRE(d.ready());
    }
};

// A child in a network namespace of its own (`unshare -n sleep 60`), killed at the end.
struct unshared_sleeper
{
    pid_t pid = -1;
    unshared_sleeper()
    {
        pid = ::fork();
        if (pid == 0)
        {
            ::execlp("unshare", "unshare", "-n", "sleep", "60", nullptr);
            ::_exit(127);
        }
    }
    ~unshared_sleeper() { stop(); }
    void stop()
    {
        if (pid > 0)
        {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            pid = -1;
        }
    }
    // The inode of its network namespace, once unshare has exec'd sleep in a new one.
    std::optional<std::uint64_t> inode(std::uint64_t host_inode) const
    {
        struct stat st
        {
        };
        const auto path = "/proc/" + std::to_string(pid) + "/ns/net";
        if (::stat(path.c_str(), &st) != 0 || st.st_ino == host_inode)
            return std::nullopt;
        return st.st_ino;
    }
};

std::uint64_t own_inode()
{
    struct stat st
    {
    };
    REQUIRE(::stat("/proc/self/ns/net", &st) == 0);
    return st.st_ino;
}

// The inventory's row with this inode, or null.
json by_inode(const endpoint& at, std::uint64_t ino)
{
    const auto all = get_json(at, "/api/v1/namespaces");
    if (all.is_object())
        for (const auto& n : all["namespaces"])
            if (n["inode"] == ino)
                return n;
    return nullptr;
}

// Reads events until one of `type` for `ns_id` comes; nullopt on a quiet 20 s.
std::optional<json> wait_event(ws_client& ws, const std::string& type, std::uint64_t ns_id)
{
    while (auto e = ws.read(20000ms))
        if ((*e)["type"] == type && (*e).contains("ns_id") && (*e)["ns_id"] == ns_id)
            return e;
    return std::nullopt;
}

} // namespace

TEST_CASE("unshare -n sleep is found with its pid, and destroyed when it exits")
{
    started s({"--sweep-interval=1"});
    const auto at = s.d.where();
    ws_client ws(at, "/api/v1/events?types=found,holders,destroyed");
    REQUIRE(ws.read()); // hello
    unshared_sleeper sleeper;
    std::uint64_t ino = 0;
    REQUIRE(eventually(
        [&]
        {
            ino = sleeper.inode(own_inode()).value_or(0);
            return ino != 0;
        }));
    json row;
    REQUIRE(eventually(
        [&]
        {
            row = by_inode(at, ino);
            return row.is_object() && row["processes"]["count"] == 1;
        },
        15000ms));
    CHECK(row["held_by"] == json::array({"process"}));
    CHECK(row["leak"] == false);
    CHECK(row["is_self"] == false);
    const auto ns_id = row["ns_id"].get<std::uint64_t>();
    const auto found = wait_event(ws, "found", ns_id);
    REQUIRE(found);
    CHECK((*found)["host"]["inode"] == ino);
    const auto page = get_json(at, row["processes"]["href"].get<std::string>());
    REQUIRE(page["processes"].size() == 1);
    CHECK(page["processes"][0]["pid"] == sleeper.pid);
    CHECK(page["processes"][0]["comm"] == "sleep");

    sleeper.stop();
    const auto destroyed = wait_event(ws, "destroyed", ns_id);
    REQUIRE(destroyed);
    CHECK((*destroyed)["host"]["inode"] == ino);
    unsigned status = 0;
    get_json(at, "/api/v1/namespaces/" + std::to_string(ns_id), &status);
    CHECK(status == 404);
}

TEST_CASE("a docker-style bind mount under /run/docker/netns outlives its process, and its "
          "unmount frees the namespace")
{
    started s({"--sweep-interval=1"});
    const auto at = s.d.where();
    ws_client ws(at, "/api/v1/events?types=found,holders,destroyed");
    REQUIRE(ws.read()); // hello
    // The sandbox's /run is its own tmpfs: this is not the host's docker.
    ::mkdir("/run/docker", 0755);
    ::mkdir("/run/docker/netns", 0755);
    const std::string path = "/run/docker/netns/c0ffee 1";
    run_ok({"touch", path});
    run_ok({"unshare", "--net", "mount", "--bind", "/proc/self/ns/net", path});
    struct stat st
    {
    };
    REQUIRE(::stat(path.c_str(), &st) == 0);
    json row;
    REQUIRE(eventually(
        [&]
        {
            row = by_inode(at, st.st_ino);
            return row.is_object();
        }));
    REQUIRE(row["mounts"].size() == 1);
    CHECK(row["mounts"][0]["path"] == path);
    CHECK(row["held_by"] == json::array({"mount"}));
    CHECK(row["processes"]["count"] == 0);
    CHECK(row["names"].empty());
    const auto ns_id = row["ns_id"].get<std::uint64_t>();
    const auto found = wait_event(ws, "found", ns_id);
    REQUIRE(found);
    CHECK((*found)["host"]["mounts"][0]["path"] == path);

    run_ok({"umount", path});
    const auto destroyed = wait_event(ws, "destroyed", ns_id);
    REQUIRE(destroyed);
    CHECK((*destroyed)["host"]["inode"] == st.st_ino);
    ::unlink(path.c_str());
}

namespace
{

// lsns -t net -J as {namespace inode: process count}; nullopt when a run failed (lsns reads /proc
// too, and a process of the host exiting under it can fail one run). -J nests namespaces as
// "children" of others: every level counts.
std::optional<std::map<std::uint64_t, std::uint64_t>> lsns_counts()
{
    const auto lsns = run({"lsns", "-t", "net", "-J"});
    const auto oracle = json::parse(lsns.out, nullptr, false);
    if (!oracle.is_object())
        return std::nullopt;
    std::map<std::uint64_t, std::uint64_t> counts;
    std::function<void(const json&)> add = [&](const json& list)
    {
        for (const auto& n : list)
        {
            if (n.value("nprocs", 0u) > 0 && n.contains("ns"))
                counts[n["ns"].get<std::uint64_t>()] = n["nprocs"].get<std::uint64_t>();
            if (n.contains("children"))
                add(n["children"]);
        }
    };
    add(oracle["namespaces"]);
    return counts;
}

double sweeps(const endpoint& at)
{
    const auto r = http_get(at, "/metrics");
    if (!r)
        return -1;
    std::istringstream in(r->body);
    const std::string series = "netnsd_sweep_duration_seconds_count ";
    for (std::string line; std::getline(in, line);)
        if (line.starts_with(series))
            return std::stod(line.substr(series.size()));
    return -1;
}

std::uint64_t netns_inode_of(pid_t pid)
{
    struct stat st
    {
    };
    const auto path = "/proc/" + std::to_string(pid) + "/ns/net";
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

} // namespace

TEST_CASE("the inventory's process-held namespaces are those lsns -t net lists, with their "
          "process counts")
{
    started s({"--sweep-interval=1"});
    const auto at = s.d.where();
    unshared_sleeper a;
    unshared_sleeper b;
    const auto own = netns_inode_of(::getpid());
    std::uint64_t ns_a = 0, ns_b = 0;
    // unshare has made its namespace once the sleeper's differs from ours.
    REQUIRE(eventually(
        [&]
        {
            ns_a = netns_inode_of(a.pid);
            ns_b = netns_inode_of(b.pid);
            return ns_a != 0 && ns_b != 0 && ns_a != own && ns_b != own && ns_a != ns_b;
        }));
    std::string why;
    INFO(why); // doctest reads it when a check fails: the last look of both
    // Other processes of the host come and go while this runs (other tests, compilers): one
    // look is lsns, then a sweep that began after it, then netnsd's answer, then lsns again.
    // Where both lsns runs agree on a count, netnsd's must be that count; every namespace
    // netnsd shows with processes must be in one of them. The sandbox's own namespace holds
    // lsns itself while lsns counts, so there only its presence is checked.
    CHECK(eventually(
        [&]
        {
            const auto before = lsns_counts();
            if (!before)
                return false;
            const auto first = sweeps(at);
            if (first < 0 || !eventually([&] { return sweeps(at) >= first + 2; }, 10000ms))
                return false;
            const auto mine = get_json(at, "/api/v1/namespaces");
            const auto after = lsns_counts();
            if (!after || !mine.is_object())
                return false;
            std::map<std::uint64_t, std::uint64_t> got;
            for (const auto& n : mine["namespaces"])
                if (n["processes"]["count"] > 0)
                    got[n["inode"].get<std::uint64_t>()] =
                        n["processes"]["count"].get<std::uint64_t>();
            why = "lsns before " + json(*before).dump() + "\nnetnsd " + mine.dump() +
                  "\nlsns after " + json(*after).dump();
            for (const auto& [ns, count] : *before)
            {
                const auto again = after->find(ns);
                if (again == after->end() || again->second != count || ns == own)
                    continue; // changed meanwhile: no fixed answer to compare with
                const auto mine_count = got.find(ns);
                if (mine_count == got.end() || mine_count->second != count)
                    return false;
            }
            for (const auto& [ns, count] : got)
                if (!before->contains(ns) && !after->contains(ns))
                    return false; // a namespace with processes that lsns never saw
            return got.contains(own) && got[ns_a] == 1 && got[ns_b] == 1 &&
                   before->contains(ns_a) && before->contains(ns_b);
        },
        60000ms));
}
