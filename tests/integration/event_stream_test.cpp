// The event stream on a real kernel: every change arrives, once, in order, over websocket, SSE
// and NDJSON; clients resume exactly; slow clients are dropped without hurting the others.
#include <atomic>
#include <fcntl.h>
#include <fstream>
#include <functional>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <doctest/doctest.h>

#include "support/netns_ops.hpp"
#include "support/oracle.hpp"
#include "support/process.hpp"
#include "support/sanitizers.hpp"
#include "support/stream_client.hpp"

namespace
{

using namespace netnsd::test;
using json = nlohmann::json;
using live_map = std::map<std::string, std::optional<int>>;

struct started
{
    netnsd_process d;
    explicit started(std::vector<std::string> args = {}) : d(std::move(args))
    {
        INFO(d.log());
        REQUIRE(d.ready());
    }
};

// How many live entries netnsd lists.
std::size_t live_entries(const netnsd_process& d)
{
    const auto live = api_live(d.where());
    return live ? live->size() : 0;
}

std::uint64_t current_revision(const netnsd_process& d)
{
    return get_json(d.where(), "/healthz")["revision"].get<std::uint64_t>();
}

// Rebuilds the live set from a snapshot and the events after it, checking that revisions run
// without a gap.
class replay
{
public:
    // Returns false (with `why`) on anything out of order.
    bool apply(const json& m)
    {
        const auto type = m["type"].get<std::string>();
        if (type == "hello")
        {
            revision_ = m["revision"].get<std::uint64_t>();
            return true;
        }
        if (type == "snapshot" || type == "reset")
        {
            revision_ = m["revision"].get<std::uint64_t>();
            if (type == "snapshot")
            {
                state_.clear();
                for (const auto& e : m["namespaces"])
                    if (e["state"] == "live")
                        state_[e["name"].get<std::string>()] = nsid_of(e);
            }
            return true;
        }
        const auto rev = m["revision"].get<std::uint64_t>();
        if (rev != revision_ + 1)
        {
            why_ = "revision " + std::to_string(rev) + " after " + std::to_string(revision_);
            return false;
        }
        revision_ = rev;
        const auto name = m["name"].is_string() ? m["name"].get<std::string>() : std::string();
        if (type == "add")
            state_[name] = nsid_of(m["namespace"]);
        else if (type == "delete")
            state_.erase(name);
        else if (type == "nsid" && !name.empty())
            state_[name] = m["nsid"].get<int>();
        return true;
    }
    std::uint64_t revision() const { return revision_; }
    const live_map& state() const { return state_; }
    const std::string& why() const { return why_; }

private:
    static std::optional<int> nsid_of(const json& entry)
    {
        if (entry["nsid"].is_number_integer())
            return entry["nsid"].get<int>();
        return std::nullopt;
    }
    std::uint64_t revision_ = 0;
    live_map state_;
    std::string why_;
};

long rss_kib(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    long value = 0;
    while (in >> key)
    {
        if (key == "VmRSS:")
        {
            in >> value;
            return value;
        }
        in.ignore(4096, '\n');
    }
    return -1;
}

} // namespace

// The default queue (8 MiB) holds the whole burst (~2650 events, ~950 KB), so a reader slowed
// by a loaded machine or ASan is never dropped here; dropping is the next test's subject.
TEST_CASE("a burst of 2000 changes reaches websocket, SSE and NDJSON clients exactly")
{
    started s;
    const auto at = s.d.where();
    // Every type, so that every revision arrives (the host inventory's events among them).
    const std::string target =
        "/api/v1/events?snapshot=true&types=add,delete,nsid,destroyed,found,holders";
    ws_client ws(at, target);
    stream_reader sse(at, target, true);
    stream_reader nd(at, target, false);
    REQUIRE(ws.ok());
    REQUIRE(sse.status() == 200);
    REQUIRE(nd.status() == 200);
    const long rss_before = rss_kib(s.d.pid());

    // Each reading client follows the stream on its own thread while the burst runs, until it
    // has seen the revision the burst ends at (known only afterwards, so a reader that is there
    // already looks again every 200 ms), or until 10 s pass without a message.
    std::atomic<std::uint64_t> until{~std::uint64_t{0}};
    replay from_ws, from_sse, from_nd;
    auto follow_in_thread = [&](replay& r, auto read)
    {
        return std::thread(
            [&r, read, &until]() mutable
            {
                for (int quiet = 0; r.revision() < until.load() && quiet < 50;)
                {
                    auto m = read(200ms);
                    quiet = m ? 0 : quiet + 1;
                    if (m && !r.apply(*m))
                        return;
                }
            });
    };
    auto ws_thread = follow_in_thread(from_ws, [&](auto wait) { return ws.read(wait); });
    auto sse_thread = follow_in_thread(from_sse,
                                       [&](auto wait) -> std::optional<json>
                                       {
                                           auto m = sse.read(wait);
                                           return m ? std::optional(m->data) : std::nullopt;
                                       });
    auto nd_thread = follow_in_thread(from_nd,
                                      [&](auto wait) -> std::optional<json>
                                      {
                                          auto m = nd.read(wait);
                                          return m ? std::optional(m->data) : std::nullopt;
                                      });

    // ip and the in-process creator at the same time.
    std::thread by_ip(
        []
        {
            std::string script;
            for (int i = 0; i < 150; ++i)
                script += "ip netns add ip" + std::to_string(i) + "\n";
            for (int i = 0; i < 150; i += 3)
                script += "ip netns set ip" + std::to_string(i) + " auto\n";
            for (int i = 1; i < 150; i += 3)
                script += "ip netns del ip" + std::to_string(i) + "\n";
            run({"sh", "-c", script});
        });
    int made = 0;
    for (int i = 0; i < 1600; ++i)
        made += create_netns("fast" + std::to_string(i)) ? 1 : 0;
    for (int i = 0; i < 1600; i += 2)
        delete_netns("fast" + std::to_string(i));
    by_ip.join();
    CHECK(made == 1600);

    const auto expected = ip_list();
    std::uint64_t last = 0;
    REQUIRE(eventually(
        [&]
        {
            const auto live = api_live(at);
            last = current_revision(s.d);
            return live == expected;
        }));
    until = last;
    ws_thread.join();
    sse_thread.join();
    nd_thread.join();

    INFO("ws: " << from_ws.why() << " sse: " << from_sse.why() << " nd: " << from_nd.why());
    // Every revision up to `last`, in order (apply refuses a gap). A reader may be past it: the
    // kernel frees the deleted namespaces when it does, and their destroyed events can come
    // after `last` was read and before the reader looked at `until`.
    CHECK(from_ws.why().empty());
    CHECK(from_sse.why().empty());
    CHECK(from_nd.why().empty());
    CHECK(from_ws.revision() >= last);
    CHECK(from_sse.revision() >= last);
    CHECK(from_nd.revision() >= last);
    CHECK(from_ws.state() == expected);
    CHECK(from_sse.state() == expected);
    CHECK(from_nd.state() == expected);
    CHECK(last > 2000);

    // Under ASan, resident memory says nothing about what netnsd keeps: its quarantine holds
    // up to 256 MB of freed blocks (the asan preset runs this test for everything else).
    const long rss_after = rss_kib(s.d.pid());
    if (!address_sanitized)
        CHECK(rss_after - rss_before < 32 * 1024);
}

TEST_CASE("a client that never reads is closed with 1013 when its queue overflows, and a reader "
          "on the same stream is not")
{
    // 64 KiB of queue plus the idle client's kernel buffers (its receive buffer is 4 KiB; the
    // send side on loopback holds ~120 KB) overflow within ~500 events of ~360 bytes. The
    // changes come in rounds of 100 (~36 KB), each once the reader has read the round before:
    // netnsd queues all events of one kernel batch before writing any, so unpaced changes from
    // a fast creator could put a reader more than 64 KiB behind for a moment.
    started s({"--stream-queue-bytes=65536"});
    const auto at = s.d.where();
    // The entries' events only: the host inventory's destroyed events come when the kernel has
    // freed a namespace, and would make the count of events per round vary.
    ws_client idle(at, "/api/v1/events?types=add,delete", 4096);
    ws_client reader(at, "/api/v1/events?types=add,delete");
    REQUIRE(idle.ok());
    REQUIRE(reader.ok());
    auto hello = reader.read();
    REQUIRE(hello);
    const auto first = (*hello)["revision"].get<std::uint64_t>();
    constexpr int changes = 2000;
    constexpr int round = 100;

    // Revisions increase; the inventory's events (not asked for) take revisions in between.
    std::atomic<std::uint64_t> seen{0};
    std::string why; // read after the join
    std::jthread follow(
        [&]
        {
            std::uint64_t last = first;
            while (seen < std::uint64_t{changes})
            {
                auto m = reader.read(10s);
                if (!m)
                {
                    why = "no message after " + std::to_string(seen) + " events";
                    return;
                }
                const auto revision = (*m)["revision"].get<std::uint64_t>();
                if (revision <= last)
                {
                    why = "revision " + std::to_string(revision) + " after " + std::to_string(last);
                    return;
                }
                last = revision;
                ++seen;
            }
        });
    for (int done = 0; done < changes;)
    {
        for (const int end = done + round; done < end; ++done)
        {
            const auto name = "drop" + std::to_string(done % (changes / 2));
            REQUIRE((done < changes / 2 ? create_netns(name) : delete_netns(name)));
        }
        if (!eventually([&] { return seen == static_cast<std::uint64_t>(done); }, 10s))
            break;
    }
    follow.join();
    INFO(why);
    CHECK(seen == std::uint64_t{changes});

    std::optional<json> m;
    int buffered = 0;
    while ((m = idle.read(2000ms)))
        ++buffered;
    INFO("the idle client still read " << buffered << " messages");
    CHECK(idle.close_code() == 1013);
    const auto metrics = http_get(at, "/metrics");
    REQUIRE(metrics);
    INFO(metrics->body.substr(metrics->body.find("netnsd_stream_clients_dropped_total{"), 200));
    CHECK(metrics->body.find("netnsd_stream_clients_dropped_total{reason=\"queue_full\"} 1\n") !=
          std::string::npos);
}

namespace
{

// Connects, learns the revision, leaves; then 50 changes happen. Returns the revision it left at.
std::uint64_t leave_and_miss_fifty(const netnsd_process& d)
{
    std::uint64_t left_at = 0;
    {
        ws_client first(d.where(), "/api/v1/events");
        auto hello = first.read();
        REQUIRE(hello);
        CHECK((*hello)["type"] == "hello");
        left_at = (*hello)["revision"].get<std::uint64_t>();
    }
    for (int i = 0; i < 25; ++i)
        REQUIRE(create_netns("missed" + std::to_string(i)));
    // Every add first: a name deleted while netnsd has not yet seen its bind mount (stale)
    // makes no event at all, and a slow netnsd (ASan, a loaded machine) may not have.
    REQUIRE(eventually([&] { return live_entries(d) == 25; }));
    for (int i = 0; i < 25; ++i)
        REQUIRE(delete_netns("missed" + std::to_string(i)));
    REQUIRE(eventually([&] { return live_entries(d) == 0; }));
    return left_at;
}

} // namespace

TEST_CASE("a websocket client that reconnects with since gets exactly the events it missed")
{
    started s;
    const auto left_at = leave_and_miss_fifty(s.d);
    // The entries' events: the inventory's (found, holders, destroyed) take revisions between.
    ws_client again(s.d.where(),
                    "/api/v1/events?types=add,delete&since=" + std::to_string(left_at));
    auto hello = again.read();
    REQUIRE(hello);
    CHECK((*hello)["revision"] >= left_at + 50);
    std::map<std::string, int> types;
    std::uint64_t last = left_at;
    for (int i = 1; i <= 50; ++i)
    {
        auto e = again.read();
        REQUIRE(e);
        CHECK((*e)["revision"] > last);
        last = (*e)["revision"].get<std::uint64_t>();
        ++types[(*e)["type"].get<std::string>()];
    }
    // Adds and deletes interleave as netnsd saw them; there are 25 of each.
    CHECK(types == std::map<std::string, int>{{"add", 25}, {"delete", 25}});
    CHECK(!again.read(300ms));
}

TEST_CASE("an SSE client that reconnects with Last-Event-ID gets exactly the events it missed")
{
    started s;
    const auto left_at = leave_and_miss_fifty(s.d);
    stream_reader again(s.d.where(), "/api/v1/events?types=add,delete", true,
                        std::to_string(left_at));
    auto hello = again.read();
    REQUIRE(hello);
    CHECK(hello->event == "hello");
    std::map<std::string, int> types;
    std::uint64_t last = left_at;
    for (int i = 1; i <= 50; ++i)
    {
        auto e = again.read();
        REQUIRE(e);
        CHECK(e->id > last);
        last = e->id.value_or(0);
        ++types[e->event];
    }
    CHECK(types == std::map<std::string, int>{{"add", 25}, {"delete", 25}});
    CHECK(!again.read(300ms));
}

namespace
{

// A netnsd with a journal of 10 that has seen 30 adds (and the host inventory's events for
// them: more than 10 in all); returns the revision it started at.
std::uint64_t thirty_adds(const netnsd_process& d)
{
    const auto start = current_revision(d);
    for (int i = 0; i < 30; ++i)
        REQUIRE(create_netns("old" + std::to_string(i)));
    REQUIRE(eventually([&] { return live_entries(d) == 30; }));
    return start;
}

} // namespace

TEST_CASE("a since older than the journal gets a reset and a snapshot, then live events")
{
    started s({"--journal-size=10"});
    const auto start = thirty_adds(s.d);
    stream_reader nd(s.d.where(), "/api/v1/events?since=" + std::to_string(start + 3), false);
    auto hello = nd.read();
    REQUIRE(hello);
    const auto now = hello->data["revision"].get<std::uint64_t>();
    CHECK(now >= start + 30);
    auto reset = nd.read();
    REQUIRE(reset);
    CHECK(reset->data["type"] == "reset");
    CHECK(reset->data["revision"] == now);
    auto snapshot = nd.read();
    REQUIRE(snapshot);
    CHECK(snapshot->data["type"] == "snapshot");
    CHECK(snapshot->data["revision"] == now);
    CHECK(snapshot->data["namespaces"].size() == 30);
    REQUIRE(create_netns("new"));
    auto next = nd.read();
    REQUIRE(next);
    CHECK(next->data["revision"] > now);
    CHECK(next->data["name"] == "new");
}

TEST_CASE("a since from before this run, or ahead of it, gets a reset")
{
    started s({"--journal-size=10"});
    const auto start = thirty_adds(s.d);
    const auto now = current_revision(s.d);
    for (const auto since : {std::uint64_t{0}, start - 1, now + 1000000})
    {
        CAPTURE(since);
        stream_reader nd(s.d.where(), "/api/v1/events?since=" + std::to_string(since), false);
        auto hello = nd.read();
        REQUIRE(hello);
        auto reset = nd.read();
        REQUIRE(reset);
        CHECK(reset->data["type"] == "reset");
        CHECK(reset->data["revision"] == hello->data["revision"]);
    }
}

TEST_CASE("a placeholder makes no add, its bind mount does")
{
    started s;
    // Its name only: the inventory's events (other sandboxes' namespaces, on a shared machine)
    // come and go meanwhile.
    ws_client ws(s.d.where(), "/api/v1/events?names=pending");
    REQUIRE(ws.read()); // hello
    const int fd = ::open("/run/netns/pending", O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    ::close(fd);
    CHECK(eventually(
        [&] { return get_json(s.d.where(), "/api/v1/netns/pending")["state"] == "stale"; }));
    CHECK(!ws.read(300ms)); // nothing for the placeholder
    run_ok({"unshare", "--net", "mount", "--bind", "/proc/self/ns/net", "/run/netns/pending"});
    auto add = ws.read();
    REQUIRE(add);
    CHECK((*add)["type"] == "add");
    CHECK((*add)["name"] == "pending");
    CHECK((*add)["namespace"]["state"] == "live");
}

TEST_CASE("destroyed arrives after delete, when the last process inside exits")
{
    started s;
    run_ok({"ip", "netns", "add", "held"});
    run_ok({"ip", "netns", "set", "held", "9"});
    // The nsid's own event must be behind the stream's start, or it is the first one read.
    REQUIRE(eventually([&] { return get_json(s.d.where(), "/api/v1/netns/held")["nsid"] == 9; }));
    ws_client ws(s.d.where(), "/api/v1/events?names=held");
    REQUIRE(ws.read()); // hello
    const pid_t holder = ::fork();
    if (holder == 0)
    {
        ::execlp("ip", "ip", "netns", "exec", "held", "sleep", "60", nullptr);
        ::_exit(127);
    }
    REQUIRE(eventually(
        [&]
        {
            return run({"ip", "netns", "pids", "held"}).out.find(std::to_string(holder)) !=
                   std::string::npos;
        }));
    run_ok({"ip", "netns", "del", "held"});
    auto del = ws.read();
    REQUIRE(del);
    CHECK((*del)["type"] == "delete");
    CHECK((*del)["nsid"] == 9);
    // Still alive: the process holds it.
    CHECK(get_json(s.d.where(), "/api/v1/nsids")["nsids"].size() == 1);
    ::kill(holder, SIGKILL);
    ::waitpid(holder, nullptr, 0);
    // destroyed has no name, so a names filter would hide it: use a second, unfiltered client.
    ws_client all(s.d.where(), "/api/v1/events?types=destroyed&since=" +
                                   std::to_string(current_revision(s.d) - 1));
    REQUIRE(all.read()); // hello
    // Other sandboxes' namespaces (on a shared machine) are destroyed meanwhile too: ours is
    // the one with nsid 9 (theirs have none in this sandbox's namespace).
    std::optional<json> destroyed;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!destroyed && std::chrono::steady_clock::now() < give_up)
    {
        auto m = all.read(3000ms);
        if (m && (*m)["type"] == "destroyed" && (*m)["nsid"] == 9)
            destroyed = m;
    }
    REQUIRE(destroyed);
    CHECK((*destroyed)["name"].is_null());
}

TEST_CASE("names and types filter the stream")
{
    started s;
    ws_client ws(s.d.where(), "/api/v1/events?names=web*&types=add");
    REQUIRE(ws.read()); // hello
    REQUIRE(create_netns("db1"));
    REQUIRE(create_netns("web1"));
    auto first = ws.read();
    // A name created and removed between two looks of netnsd is never live to it: wait.
    REQUIRE(delete_netns("web1"));
    REQUIRE(create_netns("web2"));
    auto second = ws.read();
    REQUIRE(first);
    REQUIRE(second);
    CHECK((*first)["name"] == "web1");
    CHECK((*second)["name"] == "web2");
    CHECK((*second)["type"] == "add");
    CHECK(!ws.read(300ms));
}

TEST_CASE("bad stream parameters are refused with 400 before any upgrade")
{
    started s;
    for (const std::string query :
         {"since=abc", "since=-1", "types=add,bogus", "names=", "snapshot=maybe", "colour=blue"})
    {
        CAPTURE(query);
        ws_client ws(s.d.where(), "/api/v1/events?" + query);
        CHECK(!ws.ok());
        CHECK(ws.handshake_status() == 400);
        unsigned status = 0;
        const auto problem = get_json(s.d.where(), "/api/v1/events?" + query, &status);
        CHECK(status == 400);
        CHECK(problem["type"] == "urn:netnsd:problem:bad-request");
    }
}

TEST_CASE("stream clients beyond --max-stream-clients get 503")
{
    started s({"--max-stream-clients=2"});
    stream_reader one(s.d.where(), "/api/v1/events", false);
    ws_client two(s.d.where(), "/api/v1/events");
    REQUIRE(one.status() == 200);
    REQUIRE(two.ok());
    ws_client three(s.d.where(), "/api/v1/events");
    CHECK(three.handshake_status() == 503);
    stream_reader four(s.d.where(), "/api/v1/events", true);
    CHECK(four.status() == 503);
}

TEST_CASE("a text frame from a client is ignored")
{
    started s;
    ws_client ws(s.d.where(), "/api/v1/events?names=still");
    REQUIRE(ws.read());
    REQUIRE(ws.send_text("hello?"));
    REQUIRE(create_netns("still"));
    auto add = ws.read();
    REQUIRE(add);
    CHECK((*add)["name"] == "still");
}

namespace
{

// Whether the stream ends (closed by netnsd) after the events already on their way: other
// sandboxes' namespaces, on a shared machine, can be destroyed at any moment.
bool ends(ws_client& ws)
{
    for (int i = 0; i < 1000; ++i)
        if (!ws.read())
            return true;
    return false;
}

} // namespace

TEST_CASE("a binary frame from a client closes with 1003")
{
    started s;
    ws_client ws(s.d.where(), "/api/v1/events");
    REQUIRE(ws.read());
    REQUIRE(ws.send_binary("\x01\x02"));
    CHECK(ends(ws));
    CHECK(ws.close_code() == 1003);
}

TEST_CASE("a client message over 64 KiB closes with 1009")
{
    started s;
    ws_client ws(s.d.where(), "/api/v1/events");
    REQUIRE(ws.read());
    ws.send_text(std::string(64 * 1024 + 1, 'x'));
    CHECK(ends(ws));
    CHECK(ws.close_code() == 1009);
}

TEST_CASE("SIGTERM closes websockets with 1001, ends streams, and exits 0")
{
    started s;
    ws_client ws(s.d.where(), "/api/v1/events");
    stream_reader nd(s.d.where(), "/api/v1/events", false);
    REQUIRE(ws.read());
    REQUIRE(nd.read());
    const auto begin = std::chrono::steady_clock::now();
    s.d.signal(SIGTERM);
    CHECK(ends(ws));
    CHECK(ws.close_code() == 1001);
    for (int i = 0; i < 1000 && nd.read(); ++i)
    {
    }
    CHECK(nd.ended());
    CHECK(s.d.stop() == 0);
    CHECK(std::chrono::steady_clock::now() - begin < std::chrono::seconds(5));
}
