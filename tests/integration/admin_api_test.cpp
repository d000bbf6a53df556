// The admin API on a real kernel, with `ip` as the oracle: add, attach, delete, set nsid,
// exec, pids, identify; authentication; and every kind of bad input.
#include <chrono>
#include <fstream>
#include <signal.h>
#include <sstream>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <doctest/doctest.h>

#include "support/oracle.hpp"
#include "support/process.hpp"

namespace
{

using namespace netnsd::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

const std::string token_path = "/run/netnsd-test/token";

struct admin_daemon
{
    netnsd_process d;
    std::string token;

    explicit admin_daemon(std::vector<std::string> extra = {})
        : d(
              [&]
              {
                  extra.push_back("--token-file=" + token_path);
                  return extra;
              }())
    {
        INFO(d.log());
        REQUIRE(d.ready());
        std::ifstream in(token_path);
        in >> token;
        REQUIRE(token.size() == 64);
    }

    std::optional<http_reply> call(const std::string& method, const std::string& target,
                                   const std::string& body = {}, bool with_token = true) const
    {
        std::vector<std::pair<std::string, std::string>> headers;
        if (with_token)
            headers.emplace_back("Authorization", "Bearer " + token);
        if (!body.empty())
            headers.emplace_back("Content-Type", "application/json");
        return http(d.where(), method, target, body, headers);
    }

    json call_json(const std::string& method, const std::string& target,
                   const std::string& body = {}, unsigned* status = nullptr) const
    {
        const auto r = call(method, target, body);
        if (status != nullptr)
            *status = r ? r->status : 0;
        if (!r)
            return json();
        auto j = json::parse(r->body, nullptr, false);
        return j.is_discarded() ? json() : j;
    }
};

bool ip_lists(const std::string& name)
{
    return ip_list().count(name) != 0;
}

pid_t spawn(const std::vector<std::string>& argv)
{
    const pid_t pid = ::fork();
    if (pid == 0)
    {
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

void reap(pid_t pid)
{
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

} // namespace

TEST_CASE("a namespace created over HTTP is listed by ip and usable by ip netns exec")
{
    admin_daemon a;
    const auto r = a.call("POST", "/api/v1/netns", R"({"name":"made"})");
    REQUIRE(r);
    CHECK(r->status == 201);
    CHECK(r->header("Location") == "/api/v1/netns/made");
    const auto entry = json::parse(r->body);
    CHECK(entry["name"] == "made");
    CHECK(entry["state"] == "live");
    // The response came once the model had it: a GET right after finds it.
    CHECK(get_json(a.d.where(), "/api/v1/netns/made")["state"] == "live");
    CHECK(ip_lists("made"));
    const auto links = run({"ip", "netns", "exec", "made", "ip", "-j", "link"});
    CHECK(links.exit_code == 0);
    CHECK(json::parse(links.out).size() == 1); // only lo
    CHECK(a.d.log().find("audit: peer=127.0.0.1") != std::string::npos);
    CHECK(a.d.log().find(a.token) == std::string::npos); // never the token
}

TEST_CASE("a namespace created by ip is deleted over HTTP")
{
    admin_daemon a;
    run_ok({"ip", "netns", "add", "byip"});
    REQUIRE(
        eventually([&] { return get_json(a.d.where(), "/api/v1/netns/byip")["state"] == "live"; }));
    unsigned status = 0;
    const auto body = a.call_json("DELETE", "/api/v1/netns/byip", {}, &status);
    CHECK(status == 200);
    CHECK(body["name"] == "byip");
    CHECK(body["namespace_alive"] == false);
    CHECK(body["pids"] == json::array());
    CHECK_FALSE(ip_lists("byip"));
    unsigned again = 0;
    a.call_json("DELETE", "/api/v1/netns/byip", {}, &again);
    CHECK(again == 404);
}

TEST_CASE("deleting a namespace a process is still inside says it lives on, and who holds it, "
          "from the model")
{
    admin_daemon a({"--sweep-interval=1"});
    run_ok({"ip", "netns", "add", "held"});
    const pid_t holder = spawn({"ip", "netns", "exec", "held", "sleep", "60"});
    REQUIRE(eventually(
        [&]
        {
            return run({"ip", "netns", "pids", "held"}).out.find(std::to_string(holder)) !=
                   std::string::npos;
        }));
    const auto pids = a.call_json("GET", "/api/v1/netns/held/pids");
    CHECK(pids["pids"] == json::array({holder}));
    // The answer's pids are the model's (its /proc sweep), not a scan per delete: wait until
    // the model has the holder inside.
    const auto ns_id = a.call_json("GET", "/api/v1/netns/held")["ns_id"];
    REQUIRE(ns_id.is_number_unsigned());
    REQUIRE(eventually(
        [&]
        {
            return a.call_json("GET", "/api/v1/processes/" + std::to_string(holder) +
                                          "/netns")["ns_id"] == ns_id;
        },
        15000ms));
    const auto body = a.call_json("DELETE", "/api/v1/netns/held");
    CHECK(body["namespace_alive"] == true);
    CHECK(body["pids"] == json::array({holder}));
    reap(holder);
}

TEST_CASE("nsids set over HTTP agree with ip netns list-id, and conflicts are told apart")
{
    admin_daemon a;
    REQUIRE(a.call("POST", "/api/v1/netns", R"({"name":"one","nsid":12})")->status == 201);
    REQUIRE(a.call("POST", "/api/v1/netns", R"({"name":"two"})")->status == 201);
    REQUIRE(a.call("POST", "/api/v1/netns", R"({"name":"three"})")->status == 201);
    CHECK(ip_list_id().at(12) == "one");

    unsigned status = 0;
    const auto two = a.call_json("PUT", "/api/v1/netns/two/nsid", R"({"nsid":"auto"})", &status);
    CHECK(status == 200);
    REQUIRE(two["nsid"].is_number_integer());
    CHECK(ip_list_id().at(two["nsid"].get<int>()) == "two");

    const auto again = a.call_json("PUT", "/api/v1/netns/two/nsid", R"({"nsid":30})", &status);
    CHECK(status == 409);
    CHECK(again["type"] == "urn:netnsd:problem:nsid-assigned");
    const auto taken = a.call_json("PUT", "/api/v1/netns/three/nsid", R"({"nsid":12})", &status);
    CHECK(status == 409);
    CHECK(taken["type"] == "urn:netnsd:problem:nsid-in-use");
}

TEST_CASE("attach names the namespace of a process, and identify and pids find it")
{
    admin_daemon a({"--sweep-interval=1"});
    const pid_t sleeper = spawn({"unshare", "-n", "sleep", "60"});
    std::string self_net;
    REQUIRE(eventually(
        [&]
        {
            struct stat mine
            {
            }, theirs{};
            return ::stat("/proc/self/ns/net", &mine) == 0 &&
                   ::stat(("/proc/" + std::to_string(sleeper) + "/ns/net").c_str(), &theirs) == 0 &&
                   mine.st_ino != theirs.st_ino;
        }));
    const auto r = a.call("POST", "/api/v1/netns",
                          R"({"name":"attached","pid":)" + std::to_string(sleeper) + "}");
    REQUIRE(r);
    CHECK(r->status == 201);
    // identify answers from the model: the names at once, the process from its /proc sweep.
    json who;
    REQUIRE(eventually(
        [&]
        {
            who = a.call_json("GET", "/api/v1/processes/" + std::to_string(sleeper) + "/netns");
            return who.is_object() && who.contains("names") && who["names"].size() == 1;
        },
        15000ms));
    CHECK(who["names"] == json::parse(R"([{"name":"attached","href":"/api/v1/netns/attached"}])"));
    CHECK(who["inode"] == json::parse(r->body)["inode"]);
    CHECK(who["ns_id"] == json::parse(r->body)["ns_id"]);
    CHECK(a.call_json("GET", "/api/v1/netns/attached/pids")["pids"] == json::array({sleeper}));
    unsigned status = 0;
    a.call_json("GET", "/api/v1/processes/999999999/netns", {}, &status);
    CHECK(status == 404);
    reap(sleeper);
}

TEST_CASE("exec runs in the namespace with its /etc/netns files, and reports what happened")
{
    admin_daemon a({"--enable-exec", "--exec-output-limit=1000"});
    REQUIRE(a.call("POST", "/api/v1/netns", R"({"name":"box"})")->status == 201);
    ::mkdir("/etc/netns/box", 0755);
    std::ofstream("/etc/netns/box/resolv.conf") << "nameserver 192.0.2.53\n";

    auto exec = [&](const json& body, unsigned* status = nullptr)
    {
        return a.call_json("POST", "/api/v1/netns/box/exec", body.dump(), status);
    };
    unsigned status = 0;
    const auto resolv = exec({{"argv", {"cat", "/etc/resolv.conf"}}}, &status);
    CHECK(status == 200);
    CHECK(resolv["exit_code"] == 0);
    CHECK(resolv["stdout"] == "nameserver 192.0.2.53\n");

    const auto links = exec({{"argv", {"ip", "-j", "link"}}});
    CHECK(json::parse(links["stdout"].get<std::string>()).size() == 1);

    const auto begin = std::chrono::steady_clock::now();
    const auto slow = exec({{"argv", {"sleep", "100"}}, {"timeout_ms", 500}});
    CHECK(slow["timed_out"] == true);
    CHECK(std::chrono::steady_clock::now() - begin < 1500ms);

    const auto big = exec({{"argv", {"head", "-c", "5000", "/dev/zero"}}});
    CHECK(big["stdout_truncated"] == true);
    CHECK(big["stdout"].get<std::string>().size() == 1000);

    const auto code = exec({{"argv", {"sh", "-c", "echo err >&2; exit 3"}}, {"stdin", ""}});
    CHECK(code["exit_code"] == 3);
    CHECK(code["stderr"] == "err\n");
    const auto echo = exec({{"argv", {"cat"}}, {"stdin", "hello"}, {"output", "base64"}});
    CHECK(echo["stdout"] == "aGVsbG8=");
}

TEST_CASE("exec is refused with 403 unless enabled")
{
    admin_daemon a;
    REQUIRE(a.call("POST", "/api/v1/netns", R"({"name":"box"})")->status == 201);
    unsigned status = 0;
    const auto p = a.call_json("POST", "/api/v1/netns/box/exec", R"({"argv":["true"]})", &status);
    CHECK(status == 403);
    CHECK(p["type"] == "urn:netnsd:problem:exec-disabled");
}

TEST_CASE("admin requests without the right token get 401 and change nothing")
{
    admin_daemon a;
    for (const auto& auth : std::vector<std::string>{"", "Bearer nope", "Basic abc", "Bearer"})
    {
        CAPTURE(auth);
        std::vector<std::pair<std::string, std::string>> headers;
        if (!auth.empty())
            headers.emplace_back("Authorization", auth);
        const auto r = http(a.d.where(), "POST", "/api/v1/netns", R"({"name":"sneaky"})", headers);
        REQUIRE(r);
        CHECK(r->status == 401);
        CHECK(r->header("WWW-Authenticate").find("Bearer") == 0);
    }
    CHECK_FALSE(ip_lists("sneaky"));
    // Reads stay open.
    CHECK(http_get(a.d.where(), "/api/v1/netns")->status == 200);
}

TEST_CASE("with --auth-reads, reads need the token too, but /healthz does not")
{
    admin_daemon a({"--auth-reads"});
    CHECK(http_get(a.d.where(), "/api/v1/netns")->status == 401);
    CHECK(a.call("GET", "/api/v1/netns")->status == 200);
    CHECK(http_get(a.d.where(), "/healthz")->status == 200);
}

TEST_CASE("bad admin input gets a clear problem and changes nothing")
{
    admin_daemon a({"--enable-exec"});
    REQUIRE(a.call("POST", "/api/v1/netns", R"({"name":"ok"})")->status == 201);
    struct bad
    {
        std::string method, target, body;
        unsigned status;
        std::string type;
    };
    const std::vector<bad> cases = {
        {"POST", "/api/v1/netns", "not json", 400, "invalid-body"},
        {"POST", "/api/v1/netns", "[1,2]", 400, "invalid-body"},
        {"POST", "/api/v1/netns", R"({"name":5})", 400, "invalid-body"},
        {"POST", "/api/v1/netns", R"({"name":"x","colour":"red"})", 400, "invalid-body"},
        {"POST", "/api/v1/netns", R"({"name":""})", 400, "invalid-name"},
        {"POST", "/api/v1/netns", R"({"name":".."})", 400, "invalid-name"},
        {"POST", "/api/v1/netns", R"({"name":"a/b"})", 400, "invalid-name"},
        {"POST", "/api/v1/netns", R"({"name":"a\u0000b"})", 400, "invalid-name"},
        {"POST", "/api/v1/netns", R"({"name":")" + std::string(256, 'n') + R"("})", 400,
         "invalid-name"},
        {"POST", "/api/v1/netns", R"({"name":"ok"})", 409, "already-exists"},
        {"POST", "/api/v1/netns", R"({"name":"x","nsid":-1})", 400, "invalid-body"},
        {"POST", "/api/v1/netns", R"({"name":"x","nsid":2147483648})", 400, "invalid-body"},
        {"POST", "/api/v1/netns", R"({"name":"x","pid":0})", 400, "invalid-body"},
        {"POST", "/api/v1/netns", R"({"name":"x","pid":-5})", 400, "invalid-body"},
        {"POST", "/api/v1/netns", R"({"name":"x","pid":999999999})", 404, "no-such-process"},
        {"POST", "/api/v1/netns", std::string(70 * 1024, ' '), 413, "payload-too-large"},
        {"PUT", "/api/v1/netns/ok/nsid", R"({"nsid":"many"})", 400, "invalid-body"},
        {"PUT", "/api/v1/netns/missing/nsid", R"({"nsid":1})", 404, "not-found"},
        {"DELETE", "/api/v1/netns/%2E%2E", "", 400, "invalid-name"},
        {"DELETE", "/api/v1/netns", "", 400, "bad-request"},
        {"POST", "/api/v1/netns/ok/exec", R"({"argv":[]})", 400, "invalid-body"},
        {"POST", "/api/v1/netns/ok/exec", R"({"argv":["ls",1]})", 400, "invalid-body"},
        {"POST", "/api/v1/netns/ok/exec", R"({"argv":["ls"],"timeout_ms":0})", 400, "invalid-body"},
        {"POST", "/api/v1/netns/ok/exec", R"({"argv":["ls"],"timeout_ms":300001})", 400,
         "invalid-body"},
    };
    for (const auto& c : cases)
    {
        CAPTURE(c.method);
        CAPTURE(c.target);
        CAPTURE(c.body.substr(0, 60));
        unsigned status = 0;
        const auto p = a.call_json(c.method, c.target, c.body, &status);
        CHECK(status == c.status);
        CHECK(p["type"] == "urn:netnsd:problem:" + c.type);
    }
    // Nothing changed: only "ok" exists, and no file was left behind.
    CHECK(ip_list() == std::map<std::string, std::optional<int>>{{"ok", std::nullopt}});
}

TEST_CASE("20 concurrent creates of one name: exactly one 201, the rest 409, nothing left over")
{
    admin_daemon a;
    std::vector<unsigned> statuses(20);
    std::vector<std::thread> clients;
    for (std::size_t i = 0; i < statuses.size(); ++i)
        clients.emplace_back(
            [&, i]
            {
                const auto r = a.call("POST", "/api/v1/netns", R"({"name":"race"})");
                statuses[i] = r ? r->status : 0;
            });
    for (auto& t : clients)
        t.join();
    CHECK(std::count(statuses.begin(), statuses.end(), 201u) == 1);
    CHECK(std::count(statuses.begin(), statuses.end(), 409u) == 19);
    CHECK(ip_list().size() == 1);
    std::ifstream mounts("/proc/self/mountinfo");
    std::stringstream ss;
    ss << mounts.rdbuf();
    std::size_t count = 0;
    for (auto at = ss.str().find("/run/netns/race"); at != std::string::npos;
         at = ss.str().find("/run/netns/race", at + 1))
        ++count;
    CHECK(count == 1);
}

TEST_CASE("delete all removes every entry and reports what it could not")
{
    admin_daemon a;
    for (const char* n : {"a1", "a2", "a3"})
        run_ok({"ip", "netns", "add", n});
    REQUIRE(eventually([&] { return get_json(a.d.where(), "/healthz")["namespaces"] == 3; }));
    unsigned status = 0;
    const auto body = a.call_json("DELETE", "/api/v1/netns?all=true", {}, &status);
    CHECK(status == 200);
    CHECK(body["deleted"] == json::array({"a1", "a2", "a3"}));
    CHECK(body["failed"] == json::array());
    CHECK(ip_list().empty());
}

TEST_CASE("a name with stacked mounts is refused with 409 busy")
{
    admin_daemon a;
    run_ok({"ip", "netns", "add", "lower"});
    run_ok({"ip", "netns", "add", "upper"});
    run_ok({"mount", "--bind", "/run/netns/upper", "/run/netns/lower"});
    REQUIRE(eventually(
        [&] { return get_json(a.d.where(), "/api/v1/netns/lower")["state"] == "live"; }));
    unsigned status = 0;
    const auto p = a.call_json("DELETE", "/api/v1/netns/lower", {}, &status);
    CHECK(status == 409);
    CHECK(p["type"] == "urn:netnsd:problem:busy");
}

TEST_CASE("execs beyond --max-exec get 429 while the others run")
{
    admin_daemon a({"--enable-exec", "--max-exec=1"});
    REQUIRE(a.call("POST", "/api/v1/netns", R"({"name":"busy"})")->status == 201);
    std::thread slow(
        [&] {
            a.call("POST", "/api/v1/netns/busy/exec",
                   R"({"argv":["sleep","5"],"timeout_ms":3000})");
        });
    // The first exec is running once its sleep is inside the namespace.
    REQUIRE(eventually(
        [&]
        {
            return run({"ip", "netns", "pids", "busy"}).out.find_first_of("0123456789") !=
                   std::string::npos;
        }));
    unsigned status = 0;
    const auto p = a.call_json("POST", "/api/v1/netns/busy/exec", R"({"argv":["true"]})", &status);
    CHECK(status == 429);
    CHECK(p["type"] == "urn:netnsd:problem:too-many-execs");
    slow.join();
    CHECK(a.call_json("POST", "/api/v1/netns/busy/exec", R"({"argv":["true"]})",
                      &status)["exit_code"] == 0);
}
