// --proc-events on a real kernel: the process connector finds a namespace a process execs into
// long before a sweep could (the sweeps are a day apart here, so only the connector can), and
// reports it destroyed when its last process exits; a fork storm ends equal to the oracle with
// few events; an overrun runs a sweep at once; where the kernel refuses the connector, netnsd
// says so and sweeps. The connector works in the initial network namespace only, and the
// sandbox has its own: netnsd makes its socket in the network namespace of the first ancestor
// of this test outside the sandbox (--proc-events-netns), as it would in /proc/1/ns/net's.
#include <chrono>
#include <dirent.h>
#include <fstream>
#include <memory>
#include <signal.h>
#include <sstream>
#include <string>
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

std::uint64_t netns_inode_of(pid_t pid)
{
    struct stat st
    {
    };
    const auto path = "/proc/" + std::to_string(pid) + "/ns/net";
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

pid_t parent_of(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // "PID (comm) S PPID ...": comm may hold spaces and parentheses; the last ')' ends it.
    const auto close = text.rfind(')');
    if (close == std::string::npos)
        return 0;
    std::istringstream rest(text.substr(close + 1));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    return ppid;
}

// The network namespace of the nearest ancestor outside the sandbox: the host's.
std::string host_netns()
{
    const auto own = netns_inode_of(::getpid());
    for (pid_t p = ::getppid(); p > 1; p = parent_of(p))
        if (const auto ino = netns_inode_of(p); ino != 0 && ino != own)
            return "/proc/" + std::to_string(p) + "/ns/net";
    return "/proc/1/ns/net";
}

// Sweeps never come after the first (a day apart), nor deep scans or audits.
std::vector<std::string> connector_only(std::vector<std::string> more = {})
{
    std::vector<std::string> args{"--proc-events", "--proc-events-netns=" + host_netns(),
                                  "--sweep-interval=86400", "--deep-scan-interval=0",
                                  "--audit-interval=0"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
}

double sweeps(const endpoint& at)
{
    return metric(at, "netnsd_sweep_duration_seconds_count");
}

// Reads events until `type` about the namespace with inode `ino`; nullopt on a quiet 20 s.
std::optional<json> wait_event(ws_client& ws, const std::string& type, std::uint64_t ino)
{
    while (auto e = ws.read(20000ms))
        if ((*e)["type"] == type && (*e).contains("host") && (*e)["host"]["inode"] == ino)
            return e;
    return std::nullopt;
}

// A child running `argv`, killed at the end.
struct child
{
    pid_t pid = -1;
    explicit child(std::vector<std::string> argv)
    {
        pid = ::fork();
        if (pid == 0)
        {
            std::vector<char*> args;
            for (auto& a : argv)
                args.push_back(a.data());
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
    }
    ~child() { stop(); }
    void stop()
    {
        if (pid > 0)
        {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            pid = -1;
        }
    }
    // The inode of its network namespace once it is not `not_this` (unshare has run).
    std::uint64_t inode_other_than(std::uint64_t not_this) const
    {
        std::uint64_t ino = 0;
        eventually(
            [&]
            {
                ino = netns_inode_of(pid);
                return ino != 0 && ino != not_this;
            },
            10000ms);
        return ino == not_this ? 0 : ino;
    }
};

struct started
{
    netnsd_process d;
    explicit started(std::vector<std::string> args, std::vector<std::string> env = {})
        : d(std::move(args), {}, netnsd_binary(), std::move(env))
    {
        INFO(d.log());
        REQUIRE(d.ready());
    }
};

constexpr const char* storm_done = "/run/netnsd-proc-storm-done";

// `unshare -n sh`: `n` short processes (/bin/true) one after the other in a new namespace,
// then a file says so and sleep is left.
std::vector<std::string> storm(int n)
{
    return {"unshare", "-n", "sh", "-c",
            "i=0; while [ $i -lt " + std::to_string(n) +
                " ]; do /bin/true; i=$((i+1)); done; echo done > " + storm_done +
                "; exec sleep 60"};
}

} // namespace

TEST_CASE("with --proc-events, unshare -n sleep is found through the process connector with no "
          "sweep after the first, and destroyed when it exits")
{
    started s(connector_only());
    const auto at = s.d.where();
    REQUIRE(metric(at, "netnsd_proc_events_enabled") == 1);
    ws_client ws(at, "/api/v1/events?types=found,holders,destroyed");
    REQUIRE(ws.read()); // hello
    child sleeper({"unshare", "-n", "sleep", "60"});
    const auto ino = sleeper.inode_other_than(netns_inode_of(::getpid()));
    REQUIRE(ino != 0);
    const auto found = wait_event(ws, "found", ino);
    REQUIRE(found);
    // Nothing but the connector could have found it: the only sweep ran before it existed.
    CHECK(sweeps(at) == 1);
    CHECK(metric(at, "netnsd_proc_events_total") >= 2);
    // Each batch's lag is the kernel's CLOCK_MONOTONIC stamp against netnsd's: on one clock,
    // it is seconds at most (another clock would make it 0 or years).
    const auto batches = metric(at, "netnsd_proc_event_lag_seconds_count");
    CHECK(batches >= 1);
    CHECK(metric(at, "netnsd_proc_event_lag_seconds_sum") > 0);
    CHECK(metric(at, "netnsd_proc_event_lag_seconds_sum") < 10 * batches);
    CHECK((*found)["host"]["held_by"] == json::array({"process"}));
    const auto row = by_inode(at, ino);
    REQUIRE(row.is_object());
    CHECK(row["processes"]["count"] == 1);
    const auto page = get_json(at, row["processes"]["href"].get<std::string>());
    REQUIRE(page["processes"].size() == 1);
    CHECK(page["processes"][0]["pid"] == sleeper.pid);
    // The oracle: the kernel's view of the same process.
    CHECK(netns_inode_of(sleeper.pid) == ino);

    sleeper.stop();
    const auto destroyed = wait_event(ws, "destroyed", ino);
    REQUIRE(destroyed);
    CHECK(sweeps(at) == 1);
    unsigned status = 0;
    get_json(at, "/api/v1/namespaces/" + std::to_string(row["ns_id"].get<std::uint64_t>()),
             &status);
    CHECK(status == 404);
}

TEST_CASE("with --proc-events, a storm of 2000 short processes ends with the count /proc shows, "
          "and its events stay few")
{
    started s(connector_only());
    const auto at = s.d.where();
    ws_client ws(at, "/api/v1/events?types=found,holders,destroyed");
    REQUIRE(ws.read()); // hello
    ::unlink(storm_done);
    const auto began = std::chrono::steady_clock::now();
    child storming(storm(2000));
    const auto ino = storming.inode_other_than(netns_inode_of(::getpid()));
    REQUIRE(ino != 0);
    REQUIRE(eventually([] { return ::access(storm_done, F_OK) == 0; }, 120000ms));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    // The storm is over: sleep alone is left, as /proc says.
    json row;
    CHECK(eventually(
        [&]
        {
            row = by_inode(at, ino);
            return row.is_object() && row["processes"]["count"] == 1;
        },
        10000ms));
    REQUIRE(row.is_object());
    const auto page = get_json(at, row["processes"]["href"].get<std::string>());
    REQUIRE(page["processes"].size() == 1);
    CHECK(page["processes"][0]["pid"] == storming.pid);
    CHECK(sweeps(at) == 1);
    CHECK(metric(at, "netnsd_proc_events_total") >= 4000); // a fork and an exit each, at least
    std::size_t events = 0;
    while (auto e = ws.read(500ms))
        if ((*e).contains("host") && (*e)["host"]["inode"] == ino)
            ++events;
    // found, then holders only when a coalesced count changes bucket: at most one per delay
    // (100 ms) the storm lasted, and two more for its edges; 4000 events came from the kernel.
    INFO("events " << events << " in " << seconds << " s");
    CHECK(events >= 1);
    CHECK(static_cast<double>(events) <= seconds / 0.1 + 3);
    ::unlink(storm_done);
}

TEST_CASE("a process-event overrun runs a sweep at once, which repairs the inventory")
{
    // A receive buffer too small for a storm's events (fault injection): they are lost.
    started s(connector_only(), {"NETNSD_TEST_PROC_EVENTS_BUFFER=2048"});
    const auto at = s.d.where();
    REQUIRE(metric(at, "netnsd_proc_events_enabled") == 1);
    ::unlink(storm_done);
    // netnsd stopped while the storm runs, so that its events overflow the buffer however fast
    // netnsd would have read them (on a busy machine the storm can be slower than the reader).
    REQUIRE(::kill(s.d.pid(), SIGSTOP) == 0);
    child storming(storm(2000));
    const auto ino = storming.inode_other_than(netns_inode_of(::getpid()));
    const bool stormed = eventually([] { return ::access(storm_done, F_OK) == 0; }, 120000ms);
    REQUIRE(::kill(s.d.pid(), SIGCONT) == 0);
    REQUIRE(ino != 0);
    REQUIRE(stormed);
    CHECK(eventually([&] { return metric(at, "netnsd_proc_event_overruns_total") >= 1; }));
    // Only the overruns' sweeps run (the interval is a day).
    CHECK(eventually([&] { return sweeps(at) >= 2; }));
    // However many events were lost, the namespace ends as /proc shows it: sleep alone.
    CHECK(eventually(
        [&]
        {
            const auto row = by_inode(at, ino);
            return row.is_object() && row["processes"]["count"] == 1;
        },
        20000ms));
    ::unlink(storm_done);
}

TEST_CASE("storms elsewhere while netnsd subscribes with a tiny buffer do not cost it the "
          "process connector")
{
    // Until its filter is in, a listener gets every process's events on the host, and the
    // kernel's answer to the subscription comes among them: with the overrun test's buffer and
    // storms running (as other tests' do in parallel), the answer was dropped and netnsd went
    // without process events. Two storms, and netnsd paused for 200 ms between subscribing and
    // reading the answer (fault injection), as a busy machine can pause it.
    child first({"sh", "-c", "while :; do /bin/true; done"});
    child second({"sh", "-c", "while :; do /bin/true; done"});
    for (int i = 0; i < 3; ++i)
    {
        started s(connector_only(), {"NETNSD_TEST_PROC_EVENTS_BUFFER=2048",
                                     "NETNSD_TEST_PROC_EVENTS_SUBSCRIBE_PAUSE_MS=200"});
        INFO("start " << i << ": " << s.d.log());
        CHECK(metric(s.d.where(), "netnsd_proc_events_enabled") == 1);
    }
}

TEST_CASE("where the kernel refuses the process connector, netnsd says so and finds namespaces by "
          "sweeping")
{
    // The sandbox's own network namespace: the connector has no socket there (ECONNREFUSED).
    started s({"--proc-events",
               "--proc-events-netns=/proc/" + std::to_string(::getpid()) + "/ns/net",
               "--sweep-interval=1"});
    const auto at = s.d.where();
    CHECK(metric(at, "netnsd_proc_events_enabled") == 0);
    CHECK(s.d.log().find("no process events") != std::string::npos);
    child sleeper({"unshare", "-n", "sleep", "60"});
    const auto ino = sleeper.inode_other_than(netns_inode_of(::getpid()));
    REQUIRE(ino != 0);
    CHECK(eventually([&] { return by_inode(at, ino).is_object(); }, 15000ms));
    CHECK(metric(at, "netnsd_proc_events_total") == 0);
}

TEST_CASE("a thread that unshared its network namespace on its own makes its process a holder of "
          "it, found by the sweep")
{
    started s({"--sweep-interval=1"});
    const auto at = s.d.where();
    // A second thread unshares (CLONE_NEWNET) and sleeps; the process's own namespace stays.
    child python({"python3", "-c",
                  "import ctypes, threading, time\n"
                  "libc = ctypes.CDLL(None, use_errno=True)\n"
                  "def run():\n"
                  "    assert libc.unshare(0x40000000) == 0\n"
                  "    time.sleep(600)\n"
                  "threading.Thread(target=run, daemon=True).start()\n"
                  "time.sleep(600)\n"});
    const auto own = netns_inode_of(::getpid());
    std::uint64_t ino = 0;
    // The oracle: /proc/PID/task/TID/ns/net of the thread, which differs from the process's.
    const auto task_dir = "/proc/" + std::to_string(python.pid) + "/task";
    REQUIRE(eventually(
        [&]
        {
            std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(task_dir.c_str()), &::closedir);
            if (!dir)
                return false;
            while (const dirent* e = ::readdir(dir.get()))
            {
                struct stat st
                {
                };
                const auto net = task_dir + "/" + e->d_name + "/ns/net";
                if (e->d_name[0] != '.' && ::stat(net.c_str(), &st) == 0 && st.st_ino != own)
                    ino = st.st_ino;
            }
            return ino != 0;
        },
        10000ms));
    CHECK(netns_inode_of(python.pid) == own);
    json row;
    REQUIRE(eventually(
        [&]
        {
            row = by_inode(at, ino);
            return row.is_object() && row["processes"]["count"] == 1;
        },
        15000ms));
    CHECK(row["held_by"] == json::array({"process"}));
    const auto page = get_json(at, row["processes"]["href"].get<std::string>());
    REQUIRE(page["processes"].size() == 1);
    CHECK(page["processes"][0]["pid"] == python.pid);
    python.stop();
    CHECK(eventually([&, ns_id = row["ns_id"].get<std::uint64_t>()]
                     { return by_ns_id(at, ns_id).is_null(); },
                     15000ms));
}
