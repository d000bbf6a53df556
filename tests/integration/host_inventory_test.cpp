// The host inventory on a real kernel, in the sandbox: namespaces held only by processes or
// only by bind mounts outside the netns dir are found, told as found/holders events, and
// reported destroyed once freed; the inventory agrees with `lsns -t net -J`.
#include <algorithm>
#include <array>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <signal.h>
#include <sstream>
#include <sys/mount.h>
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

// Reads events until one of `type` for `ns_id` comes; nullopt on a quiet 20 s.
std::optional<json> wait_event(ws_client& ws, const std::string& type, std::uint64_t ns_id)
{
    while (auto e = ws.read(20000ms))
        if ((*e)["type"] == type && (*e).contains("ns_id") && (*e)["ns_id"] == ns_id)
            return e;
    return std::nullopt;
}

// A python3 child running `script` with `args`, killed at the end.
struct python_child
{
    pid_t pid = -1;
    python_child(const std::string& script, const std::vector<std::string>& args)
    {
        pid = ::fork();
        if (pid == 0)
        {
            std::vector<char*> argv{const_cast<char*>("python3"), const_cast<char*>("-c"),
                                    const_cast<char*>(script.c_str())};
            for (const auto& a : args)
                argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            ::execvp("python3", argv.data());
            ::_exit(127);
        }
    }
    ~python_child() { stop(); }
    void stop()
    {
        if (pid > 0)
        {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            pid = -1;
        }
    }
    // Whether one of its fds links to `link` ("net:[4026532...]"), as /proc shows it.
    bool has_fd_link(const std::string& link) const
    {
        const auto dir = "/proc/" + std::to_string(pid) + "/fd";
        for (int fd = 0; fd < 64; ++fd)
        {
            std::array<char, 64> buf{};
            const auto n =
                ::readlink((dir + "/" + std::to_string(fd)).c_str(), buf.data(), buf.size());
            if (n > 0 && std::string(buf.data(), static_cast<std::size_t>(n)) == link)
                return true;
        }
        return false;
    }
};

const std::string token_path = "/run/netnsd-test/token";

std::string read_token()
{
    std::ifstream in(token_path);
    std::string token;
    in >> token;
    return token;
}

// POST /api/v1/namespaces/scan with the admin token: the deep scan's report (null on failure).
json deep_scan(const endpoint& at)
{
    const auto r = http(at, "POST", "/api/v1/namespaces/scan", {},
                        {{"Authorization", "Bearer " + read_token()}});
    if (!r || r->status != 200)
        return nullptr;
    return json::parse(r->body, nullptr, false);
}

// A small file another process writes, once it is there whole (written, then renamed).
std::optional<std::string> read_file(const std::string& path)
{
    std::ifstream in(path);
    if (!in)
        return std::nullopt;
    std::string text;
    in >> text;
    return text;
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

// A python3 child that waits, idle, until `fifo` is written, then moves into a new network
// namespace with unshare(2) itself (no fork, no exec: no process event tells of it), in its main
// thread or in a second thread, and idles again.
const std::string move_later_script = R"(
import ctypes, os, sys, threading, time
libc = ctypes.CDLL(None, use_errno=True)
def move():
    open(sys.argv[1]).read()
    if libc.unshare(0x40000000) != 0:
        os._exit(3)
    time.sleep(600)
if sys.argv[2] == "thread":
    t = threading.Thread(target=move, daemon=True)
    t.start()
    t.join()
else:
    move()
)";

void found_again_when_it_moves(bool in_thread)
{
    started s({"--sweep-interval=1"});
    const auto at = s.d.where();
    std::array<char, 32> dir_template{};
    std::memcpy(dir_template.data(), "/tmp/netnsd-move-XXXXXX", 24);
    REQUIRE(::mkdtemp(dir_template.data()) != nullptr);
    const std::string dir = dir_template.data();
    const auto fifo = dir + "/go";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    python_child child(move_later_script, {fifo, in_thread ? "thread" : "process"});
    const auto own = own_inode();

    // Found in netnsd's own namespace, then swept at least twice more while idle: the sweeps
    // take it from their memory of the last (its CPU time has not moved), not from /proc.
    const auto where = "/api/v1/processes/" + std::to_string(child.pid) + "/netns";
    REQUIRE(eventually(
        [&]
        {
            const auto who = get_json(at, where);
            return who.is_object() && who.value("is_self", false);
        },
        15000ms));
    const auto sweeps = metric(at, "netnsd_sweep_duration_seconds_count");
    REQUIRE(eventually(
        [&] { return metric(at, "netnsd_sweep_duration_seconds_count") >= sweeps + 2; }, 15000ms));
    CHECK(metric(at, "netnsd_sweep_processes_read") < metric(at, "netnsd_sweep_processes"));
    CHECK(get_json(at, where).value("is_self", false));

    // Now it runs, and moves.
    {
        std::ofstream go(fifo);
        go << "go\n";
    }
    std::string nsfs;
    REQUIRE(eventually(
        [&]
        {
            nsfs = "/proc/" + std::to_string(child.pid) + "/ns/net";
            if (in_thread)
            {
                const auto task = "/proc/" + std::to_string(child.pid) + "/task";
                std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(task.c_str()), &::closedir);
                if (!d)
                    return false;
                nsfs.clear();
                while (const dirent* e = ::readdir(d.get()))
                    if (e->d_name[0] != '.' && std::to_string(child.pid) != e->d_name)
                        nsfs = task + "/" + e->d_name + "/ns/net";
                if (nsfs.empty())
                    return false;
            }
            struct stat st
            {
            };
            return ::stat(nsfs.c_str(), &st) == 0 && st.st_ino != own;
        }));
    const auto ns_id = ns_id_of(nsfs);
    REQUIRE(ns_id != 0);
    json row;
    REQUIRE(eventually(
        [&]
        {
            row = by_ns_id(at, ns_id);
            return row.is_object() && row["processes"]["count"] == 1;
        },
        15000ms));
    const auto page = get_json(at, row["processes"]["href"].get<std::string>());
    REQUIRE(page["processes"].size() == 1);
    CHECK(page["processes"][0]["pid"] == child.pid);
    if (!in_thread)
        CHECK(get_json(at, where)["ns_id"] == ns_id);
    child.stop();
    ::unlink(fifo.c_str());
    ::rmdir(dir.c_str());
}

TEST_CASE("a process the sweeps found idle is found again when it moves itself into a new "
          "namespace (unshare(2), no fork, no exec), in its main thread or another thread")
{
    SUBCASE("its main thread")
    {
        found_again_when_it_moves(false);
    }
    SUBCASE("another thread")
    {
        found_again_when_it_moves(true);
    }
}

TEST_CASE("GET /api/v1/processes/PID/netns answers the namespace of an unshare -n sleep from the "
          "model, and 404 for a pid no sweep saw")
{
    started s({"--sweep-interval=1"});
    const auto at = s.d.where();
    unshared_sleeper sleeper;
    std::uint64_t ino = 0;
    REQUIRE(eventually(
        [&]
        {
            ino = sleeper.inode(own_inode()).value_or(0);
            return ino != 0;
        }));
    const auto path = "/api/v1/processes/" + std::to_string(sleeper.pid) + "/netns";
    json who;
    REQUIRE(eventually(
        [&]
        {
            who = get_json(at, path);
            return who.is_object() && who.contains("inode") && who["inode"] == ino;
        },
        15000ms));
    // The same object as the namespace's own route.
    CHECK(who == get_json(at, who["href"].get<std::string>()));
    CHECK(who["held_by"] == json::array({"process"}));
    CHECK(who["is_self"] == false);
    CHECK(who["processes"]["count"] == 1);

    // A pid no process has: 404, as problem+json.
    const auto pid_max = []
    {
        std::ifstream in("/proc/sys/kernel/pid_max");
        long n = 0;
        in >> n;
        return n;
    }();
    REQUIRE(pid_max > 0);
    unsigned status = 0;
    const auto missing =
        get_json(at, "/api/v1/processes/" + std::to_string(pid_max) + "/netns", &status);
    CHECK(status == 404);
    CHECK(missing["type"] == "urn:netnsd:problem:no-such-process");

    // Once it exits and a sweep has run, its pid is unknown again.
    const auto gone = sleeper.pid;
    sleeper.stop();
    CHECK(eventually(
        [&]
        {
            get_json(at, "/api/v1/processes/" + std::to_string(gone) + "/netns", &status);
            return status == 404;
        },
        15000ms));
}

namespace
{

// A docker-style bind mount at `path` (under the sandbox's own /run/docker/netns), made by a
// process that exits at once: the inventory shows it at `shown` (the path as JSON carries it),
// found on the stream, and destroyed once it is unmounted.
void mount_outlives_process(const std::string& path, const std::string& shown)
{
    started s({"--sweep-interval=1"});
    const auto at = s.d.where();
    ws_client ws(at, "/api/v1/events?types=found,holders,destroyed");
    REQUIRE(ws.read()); // hello
    // The sandbox's /run is its own tmpfs: this is not the host's docker.
    ::mkdir("/run/docker", 0755);
    ::mkdir("/run/docker/netns", 0755);
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
    CHECK(row["mounts"][0]["path"] == shown);
    CHECK(row["held_by"] == json::array({"mount"}));
    CHECK(row["processes"]["count"] == 0);
    CHECK(row["names"].empty());
    const auto ns_id = row["ns_id"].get<std::uint64_t>();
    const auto found = wait_event(ws, "found", ns_id);
    REQUIRE(found);
    CHECK((*found)["host"]["mounts"][0]["path"] == shown);

    run_ok({"umount", path});
    const auto destroyed = wait_event(ws, "destroyed", ns_id);
    REQUIRE(destroyed);
    CHECK((*destroyed)["host"]["inode"] == st.st_ino);
    ::unlink(path.c_str());
}

} // namespace

TEST_CASE("a docker-style bind mount under /run/docker/netns outlives its process, and its "
          "unmount frees the namespace")
{
    mount_outlives_process("/run/docker/netns/c0ffee 1", "/run/docker/netns/c0ffee 1");
}

// A mount point is bytes: a newline travels escaped in JSON, and a byte that is not UTF-8 as
// U+FFFD (as names do), never a broken document.
TEST_CASE("a mount point with a newline and a byte that is not UTF-8 is shown, escaped, and "
          "followed to its unmount")
{
    mount_outlives_process("/run/docker/netns/odd\nname \xff end",
                           "/run/docker/netns/odd\nname \xef\xbf\xbd end");
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

TEST_CASE("a namespace held only by another process's open fd is a leak candidate until the deep "
          "scan finds the fd, then held_by fd")
{
    started s({"--sweep-interval=1", "--deep-scan-interval=0", "--token-file=" + token_path});
    const auto at = s.d.where();
    unshared_sleeper sleeper;
    std::uint64_t ino = 0;
    REQUIRE(eventually(
        [&]
        {
            ino = sleeper.inode(own_inode()).value_or(0);
            return ino != 0;
        }));
    python_child holder("import os, sys, time\n"
                        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                        "time.sleep(120)\n",
                        {"/proc/" + std::to_string(sleeper.pid) + "/ns/net"});
    const auto link = "net:[" + std::to_string(ino) + "]";
    REQUIRE(eventually([&] { return holder.has_fd_link(link); }, 15000ms));
    // Known first, by its process (a namespace only an fd holds is found by the deep scan
    // alone: the next test shows that with a socket).
    REQUIRE(eventually(
        [&]
        {
            const auto known = by_inode(at, ino);
            return known.is_object() && known["processes"]["count"] == 1;
        },
        15000ms));
    sleeper.stop();
    // The sweep sees no process in it any more; its handle says it lives: held by nothing
    // netnsd has looked for yet.
    json row;
    std::string why;
    INFO(why);
    REQUIRE(eventually(
        [&]
        {
            row = by_inode(at, ino);
            why = row.dump();
            return row.is_object() && row["processes"]["count"] == 0;
        },
        15000ms));
    CHECK(row["held_by"] == json::array());
    CHECK(row["leak"] == true);

    const auto report = deep_scan(at);
    REQUIRE(report.is_object());
    CHECK(report["fds"].get<std::uint64_t>() > 0);
    CHECK(report["held_by_fd"].get<std::uint64_t>() >= 1);
    REQUIRE(eventually(
        [&]
        {
            row = by_inode(at, ino);
            return row.is_object() && row["held_by"] == json::array({"fd"});
        },
        15000ms));
    CHECK(row["leak"] == false);
    CHECK(row["fds"] == json({{"count", 1}, {"pids", json::array({holder.pid})}}));
    CHECK(row["sockets"]["count"] == 0);
    // The filter: ours is there, and all it lists an fd holds (other processes of the machine
    // may hold others the same way).
    const auto by_fd = get_json(at, "/api/v1/namespaces?held_by=fd");
    bool ours = false;
    for (const auto& n : by_fd["namespaces"])
    {
        ours = ours || n["inode"] == ino;
        CHECK(n["fds"]["count"].get<std::uint64_t>() > 0);
    }
    CHECK(ours);

    // The fd goes: the namespace is freed and reported so.
    holder.stop();
    CHECK(eventually([&, ns_id = row["ns_id"].get<std::uint64_t>()]
                     { return by_ns_id(at, ns_id).is_null(); },
                     15000ms));
}

TEST_CASE("a scrape reads a namespace only an fd holds by its nsid, and counts one without an "
          "nsid as unreachable")
{
    started s({"--sweep-interval=1", "--deep-scan-interval=0", "--token-file=" + token_path,
               "--metrics-interfaces"});
    const auto at = s.d.where();
    run_ok({"ip", "netns", "add", "fd-only-1"});
    run_ok({"ip", "netns", "add", "fd-only-2"});
    // The veth's peer crossing into fd-only-2 gives it an nsid in netnsd's namespace.
    run_ok({"ip", "link", "add", "fdo-h", "type", "veth", "peer", "name", "fdo-in", "netns",
            "fd-only-2"});
    std::vector<std::uint64_t> inodes;
    for (const char* path : {"/run/netns/fd-only-1", "/run/netns/fd-only-2"})
    {
        struct stat st
        {
        };
        REQUIRE(::stat(path, &st) == 0);
        inodes.push_back(st.st_ino);
    }
    python_child holder("import os, sys, time\n"
                        "fds = [os.open(p, os.O_RDONLY) for p in sys.argv[1:]]\n"
                        "time.sleep(120)\n",
                        {"/run/netns/fd-only-1", "/run/netns/fd-only-2"});
    // Opened through the bind mounts, the fds read as the mounts' paths, "/" once detached.
    for (const char* path : {"/run/netns/fd-only-1", "/run/netns/fd-only-2"})
        REQUIRE(eventually([&] { return holder.has_fd_link(path); }, 15000ms));
    run_ok({"ip", "netns", "del", "fd-only-1"});
    run_ok({"ip", "netns", "del", "fd-only-2"});
    const auto scan = deep_scan(at);
    INFO("deep scan: ", scan.dump());
    REQUIRE(scan.is_object());
    std::vector<std::uint64_t> ns_ids;
    for (const auto ino : inodes)
    {
        json row;
        const bool held_by_fd = eventually(
            [&]
            {
                row = by_inode(at, ino);
                return row.is_object() && row["held_by"] == json::array({"fd"});
            },
            15000ms);
        INFO("inode ", ino, ": ", row.dump());
        REQUIRE(held_by_fd);
        ns_ids.push_back(row["ns_id"].get<std::uint64_t>());
    }
    // No name, no mount, no process: the one with an nsid is read by it, the other is not read.
    const auto r = http_get(at, "/metrics");
    REQUIRE(r);
    const auto& text = r->body;
    const auto from = text.find("netnsd_network_namespaces_");
    INFO("the scrape says: ", text.substr(from == std::string::npos ? 0 : from, 600));
    const auto label = [](std::uint64_t ns_id)
    {
        return "netns=\"ns_id:" + std::to_string(ns_id);
    };
    CHECK(text.find(label(ns_ids[0]) + "\"") == std::string::npos);
    CHECK(text.find("netnsd_network_up{" + label(ns_ids[1]) + "\",device=\"fdo-in\"} 0\n") !=
          std::string::npos);
    const std::string skipped = "netnsd_network_namespaces_skipped{reason=\"unreachable\"} ";
    const auto at_skipped = text.find(skipped);
    REQUIRE(at_skipped != std::string::npos);
    // Other processes of the machine may hold namespaces the same way.
    CHECK(std::stoul(text.substr(at_skipped + skipped.size())) >= 1);
    run_ok({"ip", "link", "del", "fdo-h"});
}

TEST_CASE("a namespace held only by a socket made inside it (setns in, socket, setns out) is found "
          "by the deep scan, held_by socket")
{
    started s({"--sweep-interval=1", "--deep-scan-interval=0", "--token-file=" + token_path});
    const auto at = s.d.where();
    const std::string ino_file = "/run/netnsd-test-socket-ino";
    ::unlink(ino_file.c_str());
    python_child holder("import ctypes, os, socket, sys, time\n"
                        "libc = ctypes.CDLL(None, use_errno=True)\n"
                        "home = os.open('/proc/self/ns/net', os.O_RDONLY)\n"
                        "if libc.unshare(0x40000000) != 0: sys.exit('unshare failed')\n"
                        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                        "ino = os.stat('/proc/self/ns/net').st_ino\n"
                        "if libc.setns(home, 0x40000000) != 0: sys.exit('setns failed')\n"
                        "os.close(home)\n"
                        "open(sys.argv[1] + '.tmp', 'w').write(str(ino))\n"
                        "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
                        "time.sleep(120)\n",
                        {ino_file});
    std::optional<std::string> text;
    REQUIRE(eventually([&] { return (text = read_file(ino_file)).has_value(); }, 15000ms));
    const auto ino = std::stoull(*text);
    REQUIRE(ino != own_inode());
    // Back in the sandbox's namespace: only the socket holds the new one (the oracle: its
    // process is where it started).
    struct stat st
    {
    };
    REQUIRE(::stat(("/proc/" + std::to_string(holder.pid) + "/ns/net").c_str(), &st) == 0);
    REQUIRE(st.st_ino == own_inode());

    const auto report = deep_scan(at);
    REQUIRE(report.is_object());
    CHECK(report["sockets"].get<std::uint64_t>() >= 1);
    json row;
    REQUIRE(eventually(
        [&]
        {
            row = by_inode(at, ino);
            return row.is_object() && row["held_by"] == json::array({"socket"});
        },
        15000ms));
    CHECK(row["leak"] == false);
    CHECK(row["processes"]["count"] == 0);
    CHECK(row["sockets"] == json({{"count", 1}, {"pids", json::array({holder.pid})}}));
    CHECK(row["fds"]["count"] == 0);

    holder.stop();
    CHECK(eventually([&, ns_id = row["ns_id"].get<std::uint64_t>()]
                     { return by_ns_id(at, ns_id).is_null(); },
                     15000ms));
    ::unlink(ino_file.c_str());
}

TEST_CASE("a namespace with an nsid that only an fd in flight (SCM_RIGHTS, never received) holds "
          "is a leak candidate, even after a deep scan")
{
    started s({"--sweep-interval=1", "--deep-scan-interval=0", "--token-file=" + token_path});
    const auto at = s.d.where();
    unshared_sleeper sleeper;
    std::uint64_t ino = 0;
    REQUIRE(eventually(
        [&]
        {
            ino = sleeper.inode(own_inode()).value_or(0);
            return ino != 0;
        }));
    // An nsid for it, the way `ip` gives one (a name for a moment).
    // (netnsd learns which namespace has it while the name is there.)
    run_ok({"ip", "netns", "attach", "hidden", std::to_string(sleeper.pid)});
    run_ok({"ip", "netns", "set", "hidden", "42"});
    REQUIRE(eventually([&] { return shows(at, "hidden", view{"live", 42}); }));
    run_ok({"ip", "netns", "del", "hidden"});
    // The real holder, which no /proc/PID/fd shows: an fd on it sent over a socketpair and
    // never received, then closed by its sender.
    const std::string ready = "/run/netnsd-test-inflight";
    ::unlink(ready.c_str());
    python_child holder("import array, os, socket, sys, time\n"
                        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                        "a, b = socket.socketpair()\n"
                        "a.sendmsg([b'x'], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,\n"
                        "                     array.array('i', [fd]))])\n"
                        "os.close(fd)\n"
                        "open(sys.argv[2], 'w').write('sent')\n"
                        "time.sleep(120)\n",
                        {"/proc/" + std::to_string(sleeper.pid) + "/ns/net", ready});
    REQUIRE(eventually([&] { return read_file(ready).has_value(); }, 15000ms));
    CHECK_FALSE(holder.has_fd_link("net:[" + std::to_string(ino) + "]"));
    sleeper.stop();
    json row;
    REQUIRE(eventually(
        [&]
        {
            row = by_inode(at, ino);
            return row.is_object() && row["processes"]["count"] == 0;
        },
        15000ms));
    const auto self_ns = [&]
    {
        const auto all = get_json(at, "/api/v1/namespaces");
        if (all.is_object())
            for (const auto& n : all["namespaces"])
                if (n["is_self"] == true)
                    return n;
        return json();
    };
    const auto report = deep_scan(at);
    REQUIRE(report.is_object());
    std::string why;
    INFO(why);
    // The scan is applied once the holder's socketpair shows in the sandbox's namespace.
    REQUIRE(eventually(
        [&]
        {
            const auto self = self_ns();
            why = report.dump() + "\n" + self.dump();
            if (!self.is_object())
                return false;
            for (const auto& p : self["sockets"]["pids"])
                if (p == holder.pid)
                    return true;
            return self["sockets"]["count"].get<std::uint64_t>() > self["sockets"]["pids"].size();
        },
        15000ms));
    row = by_inode(at, ino);
    REQUIRE(row.is_object());
    CHECK(row["held_by"] == json::array());
    CHECK(row["leak"] == true);
    CHECK(row["nsid"] == 42);
    bool listed = false;
    const auto leaks = get_json(at, "/api/v1/namespaces?leak=true");
    for (const auto& n : leaks["namespaces"])
        listed = listed || n["inode"] == ino;
    CHECK(listed);
    // The oracle: the kernel still has it (its nsid is still given out).
    CHECK(ip_list_id().count(42) == 1);

    // The message goes with the socketpair: the namespace is freed, and reported so.
    holder.stop();
    CHECK(eventually([&, ns_id = row["ns_id"].get<std::uint64_t>()]
                     { return by_ns_id(at, ns_id).is_null(); },
                     15000ms));
}

namespace
{

// A cgroup v2 subtree of the test's own, named like a container runtime's, under a cgroup2
// mount in the sandbox's /run. The hierarchy is the host's (cgroups have no private copy), so it
// lives under a parent named for this process and is removed, processes first, at the end.
struct fake_cgroups
{
    std::string mount = "/run/netnsd-test-cgroup";
    std::string parent;
    std::vector<std::string> made; // innermost last
    bool ok = false;
    fake_cgroups()
    {
        ::mkdir(mount.c_str(), 0755);
        ok = ::mount("none", mount.c_str(), "cgroup2", 0, nullptr) == 0;
        parent = mount + "/netnsd-test-" + std::to_string(::getpid());
    }
    ~fake_cgroups()
    {
        for (auto it = made.rbegin(); it != made.rend(); ++it)
            ::rmdir(it->c_str());
        ::umount(mount.c_str());
        ::rmdir(mount.c_str());
    }
    // Makes parent/relative (each level) and moves pid into it.
    bool place(pid_t pid, const std::string& relative)
    {
        std::string path = parent;
        if (::mkdir(path.c_str(), 0755) == 0)
            made.push_back(path);
        for (std::size_t from = 0; from < relative.size();)
        {
            const auto slash = relative.find('/', from);
            path += "/" + relative.substr(from, slash - from);
            if (::mkdir(path.c_str(), 0755) == 0)
                made.push_back(path);
            from = slash == std::string::npos ? relative.size() : slash + 1;
        }
        std::ofstream procs(path + "/cgroup.procs");
        procs << pid << std::flush;
        return static_cast<bool>(procs);
    }
};

} // namespace

// Owners from the cgroup of a namespace's processes, as the runtimes name their cgroups (the
// systemd driver's scopes and slices): docker's scope, a kubelet pod slice around a containerd
// scope, and a systemd service. Each process is an `unshare -n sleep` moved into its cgroup.
TEST_CASE("cgroup-based owners: docker, kubernetes and systemd cgroups named as their runtimes "
          "name them")
{
    fake_cgroups cg;
    REQUIRE_MESSAGE(cg.ok, "cannot mount cgroup2 in the sandbox: " << std::strerror(errno));
    started s({"--sweep-interval=1"});
    const auto at = s.d.where();
    const std::string docker_id(64, 'b');
    const std::string pod_uid = "1d2c3b4a-5e6f-4a1b-9c8d-7e6f5a4b3c2d";
    std::string pod_slice = pod_uid;
    std::replace(pod_slice.begin(), pod_slice.end(), '-', '_');
    struct want
    {
        std::string cgroup;
        std::string kind;
        std::string id;
    };
    const std::vector<want> wants = {
        {"system.slice/docker-" + docker_id + ".scope", "docker", docker_id},
        {"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + pod_slice +
             ".slice/cri-containerd-" + std::string(64, 'c') + ".scope",
         "kubernetes", pod_uid},
        {"system.slice/netnsd-test-unit.service", "systemd", "netnsd-test-unit.service"},
    };
    std::vector<std::unique_ptr<unshared_sleeper>> sleepers;
    std::vector<std::uint64_t> inodes;
    for (const auto& w : wants)
    {
        auto& sleeper = sleepers.emplace_back(std::make_unique<unshared_sleeper>());
        std::uint64_t ino = 0;
        REQUIRE(eventually(
            [&]
            {
                const auto got = sleeper->inode(netns_inode_of(::getpid()));
                ino = got.value_or(0);
                return got.has_value();
            }));
        inodes.push_back(ino);
        REQUIRE(cg.place(sleeper->pid, w.cgroup));
    }
    for (std::size_t i = 0; i < wants.size(); ++i)
    {
        json row;
        INFO(wants[i].cgroup);
        CHECK(eventually(
            [&]
            {
                row = by_inode(at, inodes[i]);
                return row.is_object() && row["owner"]["source"] == "cgroup" &&
                       row["owner"]["kind"] == wants[i].kind && row["owner"]["id"] == wants[i].id;
            },
            10000ms));
        INFO(row.dump());
        const auto filtered = get_json(at, "/api/v1/namespaces?owner=" + wants[i].kind);
        bool listed = false;
        for (const auto& n : filtered["namespaces"])
            listed = listed || n["inode"] == inodes[i];
        CHECK(listed);
    }
    for (auto& sleeper : sleepers)
        sleeper->stop(); // out of the cgroups before they are removed
}

// 2000 short processes forked and exec'd one after another inside one namespace: the process
// count changes thousands of times, the stream carries at most one `holders` per sweep for it
// (the count is told in buckets, read once a sweep), and once the storm is over the inventory
// agrees with lsns.
TEST_CASE("a fork/exec storm of 2000 short processes: holders events stay bounded by the sweeps, "
          "and the inventory ends equal to lsns")
{
    started s({"--sweep-interval=1"});
    const auto at = s.d.where();
    ws_client ws(at, "/api/v1/events?types=found,holders,destroyed");
    REQUIRE(ws.read()); // hello
    const auto own = netns_inode_of(::getpid());
    const auto sweeps_before = sweeps(at);
    const pid_t storm = ::fork();
    if (storm == 0)
    {
        ::execlp("unshare", "unshare", "-n", "sh", "-c",
                 "i=0; while [ $i -lt 2000 ]; do /bin/true; i=$((i+1)); done; echo done > "
                 "/run/netnsd-storm-done; exec sleep 60",
                 nullptr);
        ::_exit(127);
    }
    std::uint64_t ino = 0;
    REQUIRE(eventually(
        [&]
        {
            ino = netns_inode_of(storm);
            return ino != 0 && ino != own;
        }));
    REQUIRE(eventually([] { return ::access("/run/netnsd-storm-done", F_OK) == 0; }, 60000ms));
    // The storm is over: one process (sleep) is left. Both views agree once a sweep has run.
    json row;
    CHECK(eventually(
        [&]
        {
            row = by_inode(at, ino);
            const auto lsns = lsns_counts();
            return row.is_object() && lsns && lsns->contains(ino) && lsns->at(ino) == 1 &&
                   row["processes"]["count"] == 1;
        },
        10000ms));
    const auto sweeps_after = sweeps(at);
    const auto ns_id = row["ns_id"].get<std::uint64_t>();
    std::size_t events = 0;
    while (auto e = ws.read(300ms))
        if ((*e).contains("ns_id") && (*e)["ns_id"] == ns_id)
            ++events;
    INFO("sweeps " << sweeps_before << " -> " << sweeps_after << ", events " << events);
    // found once, then at most a holders per sweep (and the last sweep's one, read late).
    CHECK(events >= 1);
    CHECK(static_cast<double>(events) <= sweeps_after - sweeps_before + 2);
    ::kill(storm, SIGKILL);
    ::waitpid(storm, nullptr, 0);
    ::unlink("/run/netnsd-storm-done");
}
