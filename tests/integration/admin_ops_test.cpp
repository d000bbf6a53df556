// core/kernel/netns_admin and exec on a real kernel, with `ip` as the oracle. Each test case
// runs in its own process inside the sandbox (private mount and network namespaces, tmpfs on
// /run, /run/netns and /etc/netns), so mounts made here never reach the host.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <latch>
#include <sched.h>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "core/errc.hpp"
#include "core/kernel/exec.hpp"
#include "core/kernel/mount_watch.hpp"
#include "core/kernel/netns_admin.hpp"
#include "core/kernel/nsfs.hpp"
#include "core/kernel/unique_fd.hpp"
#include "core/monitor.hpp"
#include "core/registry.hpp"

#include "support/oracle.hpp"
#include "support/process.hpp"

extern char** environ;

namespace
{

using namespace netnsd::test;
using namespace std::chrono_literals;
namespace core = netnsd::core;
namespace kernel = netnsd::core::kernel;
using netnsd::core::errc;
using netnsd::core::ns_identity;

const std::string run_dir = "/run/netns";

std::optional<ns_identity> identity_at(const std::string& path)
{
    const kernel::unique_fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd)
        return std::nullopt;
    return kernel::identify_netns(fd.get());
}

// The network namespace of the calling thread: every admin call must leave it as it was.
ns_identity thread_netns()
{
    const auto id = identity_at("/proc/thread-self/ns/net");
    REQUIRE(id);
    return *id;
}

std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void write_file(const std::string& path, const std::string& content)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
    REQUIRE(out.good());
}

bool exists(const std::string& path)
{
    struct stat st
    {
    };
    return ::lstat(path.c_str(), &st) == 0;
}

// The mounts on `path` in this process's mount namespace, as (fstype) in mount order.
std::vector<std::string> mounts_at(const std::string& path)
{
    std::vector<std::string> out;
    std::istringstream lines(read_file("/proc/self/mountinfo"));
    std::string line;
    while (std::getline(lines, line))
    {
        std::istringstream fields(line);
        std::string field, mount_point;
        for (int i = 0; i < 5 && fields >> field; ++i)
            mount_point = field;
        const auto dash = line.find(" - ");
        if (mount_point != path || dash == std::string::npos)
            continue;
        std::istringstream rest(line.substr(dash + 3));
        std::string fstype;
        rest >> fstype;
        out.push_back(fstype);
    }
    return out;
}

std::vector<std::string> ip_link_names(const std::string& json_text)
{
    std::vector<std::string> names;
    const auto j = nlohmann::json::parse(json_text, nullptr, false);
    if (j.is_array())
        for (const auto& link : j)
            names.push_back(link["ifname"].get<std::string>());
    return names;
}

bool has(const std::vector<pid_t>& pids, pid_t pid)
{
    return std::find(pids.begin(), pids.end(), pid) != pids.end();
}

// A long-running child (`sleep`), killed and reaped when the test ends.
class background
{
public:
    explicit background(const std::vector<std::string>& argv)
    {
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (::posix_spawnp(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0)
            pid_ = -1;
        posix_spawn_file_actions_destroy(&actions);
        REQUIRE(pid_ > 0);
    }
    background(const background&) = delete;
    background& operator=(const background&) = delete;
    ~background()
    {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
    pid_t pid() const { return pid_; }

private:
    pid_t pid_ = -1;
};

kernel::exec_result exec_in(const std::string& name, std::vector<std::string> argv,
                            std::string stdin_data = {})
{
    kernel::exec_request req;
    req.netns_path = run_dir + "/" + name;
    req.name = name;
    req.argv = std::move(argv);
    req.stdin_data = std::move(stdin_data);
    const auto before = thread_netns();
    auto r = kernel::run_in_netns(req);
    CHECK(thread_netns() == before);
    return r;
}

std::string describe(const kernel::exec_result& r)
{
    std::string s = "ec=" + r.ec.message() + " detail=" + r.detail;
    s += " exit=" + (r.exit_code ? std::to_string(*r.exit_code) : std::string("-"));
    s += " signal=" + (r.signal ? std::to_string(*r.signal) : std::string("-"));
    s += " out=" + r.out.substr(0, 200) + " err=" + r.err.substr(0, 200);
    for (const auto& w : r.warnings)
        s += "\nwarning: " + w;
    return s;
}

// A private /etc for this test process (the sandbox's mount namespace is private): an empty
// tmpfs with an etc/netns directory, so the test decides what /etc holds.
void private_etc()
{
    REQUIRE(::mount("netnsd-test-etc-root", "/etc", "tmpfs", 0, "mode=0755") == 0);
    REQUIRE(::mkdir("/etc/netns", 0755) == 0);
}

} // namespace

// --- add, attach, delete ----------------------------------------------------------------------

// With the reader thread, drain() must still have every mount event the kernel queued before
// the call (monitor::pump reads inotify first and counts on it): each mount and unmount here is
// followed at once by a drain(), which must end with that very change, looked up.
TEST_CASE("mount events read on their own thread: drain() has every mount made before it, in "
          "order")
{
    kernel::mount_watch watch;
    // Linux 6.15+ (the lossless tests need it too).
    REQUIRE_FALSE(watch.open());
    REQUIRE_FALSE(watch.start_reader(0));
    const std::string path = "/run/netns/reader-order";
    REQUIRE(kernel::unique_fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0)));
    for (int i = 0; i < 200; ++i)
    {
        REQUIRE(::mount("/proc/self/ns/net", path.c_str(), "none", MS_BIND, nullptr) == 0);
        auto changes = watch.drain();
        REQUIRE_FALSE(changes.empty());
        const auto attached = changes.back();
        REQUIRE(attached.what == kernel::mount_record::kind::attached);
        REQUIRE(attached.facts);
        CHECK(attached.facts->mount_point == path);
        REQUIRE(::umount2(path.c_str(), MNT_DETACH) == 0);
        changes = watch.drain();
        REQUIRE_FALSE(changes.empty());
        CHECK(changes.back().what == kernel::mount_record::kind::detached);
        CHECK(changes.back().mount_id == attached.mount_id);
    }
    ::unlink(path.c_str());
}

TEST_CASE("create_netns makes a namespace ip lists and can run commands in")
{
    const auto before = thread_netns();
    std::string detail;
    const auto ec = kernel::create_netns(run_dir, "made", detail);
    INFO(detail);
    REQUIRE_FALSE(ec);
    CHECK(thread_netns() == before);

    CHECK(ip_list() == std::map<std::string, std::optional<int>>{{"made", std::nullopt}});
    const auto links = run({"ip", "netns", "exec", "made", "ip", "-j", "link"});
    CHECK(links.exit_code == 0);
    CHECK(ip_link_names(links.out) == std::vector<std::string>{"lo"});
    CHECK(mounts_at("/run/netns/made") == std::vector<std::string>{"nsfs"});
    const auto id = identity_at("/run/netns/made");
    REQUIRE(id);
    CHECK(*id != before);
}

TEST_CASE("create_netns on a taken name is already_exists and leaves the entry alone")
{
    run_ok({"ip", "netns", "add", "taken"});
    const auto id = identity_at("/run/netns/taken");
    std::string detail;
    CHECK(kernel::create_netns(run_dir, "taken", detail) == errc::already_exists);
    CHECK(detail.find("already exists") != std::string::npos);
    CHECK(identity_at("/run/netns/taken") == id);
    CHECK(mounts_at("/run/netns/taken").size() == 1);
}

TEST_CASE("create_netns rejects names ip rejects")
{
    std::string detail;
    for (const auto& name : std::vector<std::string>{"", ".", "..", "a/b", std::string(256, 'x')})
        CHECK(kernel::create_netns(run_dir, name, detail) == errc::invalid_name);
    CHECK(ip_list().empty());
}

// Whether the top mount on `dir` is shared, as mountinfo (the oracle) says.
bool shared_in_mountinfo(const std::string& dir)
{
    std::istringstream lines(read_file("/proc/self/mountinfo"));
    std::string line;
    bool shared = false;
    while (std::getline(lines, line))
        if (line.find(" " + dir + " ") != std::string::npos)
            shared = line.find(" shared:") != std::string::npos;
    return shared;
}

TEST_CASE("prepare_run_dir turns a plain directory into one shared self-bind mount")
{
    const std::string dir = "/run/plain-netns";
    std::string detail;
    REQUIRE_FALSE(kernel::prepare_run_dir(dir, detail));
    REQUIRE_FALSE(kernel::prepare_run_dir(dir, detail)); // the second time changes nothing
    CHECK(mounts_at(dir) == std::vector<std::string>{"tmpfs"});
    CHECK(shared_in_mountinfo(dir));
    REQUIRE_FALSE(kernel::create_netns(dir, "inside", detail));
    CHECK(mounts_at(dir + "/inside") == std::vector<std::string>{"nsfs"});
}

TEST_CASE("prepare_run_dir shares the dir again after someone made it private, as ip would")
{
    // A shared mount point is left alone (no recursive walk per create); a private one is not.
    const std::string dir = "/run/private-netns";
    std::string detail;
    REQUIRE_FALSE(kernel::prepare_run_dir(dir, detail));
    REQUIRE(shared_in_mountinfo(dir));
    run_ok({"mount", "--make-private", dir});
    REQUIRE_FALSE(shared_in_mountinfo(dir));
    REQUIRE_FALSE(kernel::create_netns(dir, "again", detail));
    CHECK(shared_in_mountinfo(dir));
    CHECK(mounts_at(dir) == std::vector<std::string>{"tmpfs"});
    CHECK(mounts_at(dir + "/again") == std::vector<std::string>{"nsfs"});
    kernel::delete_outcome gone;
    CHECK_FALSE(kernel::delete_netns(dir, "again", gone, detail));
}

TEST_CASE("twenty threads creating one name: one wins, the others get already_exists")
{
    constexpr int threads = 20;
    std::vector<std::error_code> results(threads);
    std::vector<bool> netns_kept(threads);
    std::latch start(threads);
    std::vector<std::thread> workers;
    for (int i = 0; i < threads; ++i)
        workers.emplace_back(
            [&, i]
            {
                const auto before = identity_at("/proc/thread-self/ns/net");
                std::string detail;
                start.arrive_and_wait();
                results[static_cast<std::size_t>(i)] =
                    kernel::create_netns(run_dir, "race", detail);
                netns_kept[static_cast<std::size_t>(i)] =
                    identity_at("/proc/thread-self/ns/net") == before;
            });
    for (auto& w : workers)
        w.join();

    CHECK(std::count(results.begin(), results.end(), std::error_code()) == 1);
    CHECK(std::count(results.begin(), results.end(), errc::already_exists) == threads - 1);
    CHECK(std::count(netns_kept.begin(), netns_kept.end(), true) == threads);
    CHECK(ip_list() == std::map<std::string, std::optional<int>>{{"race", std::nullopt}});
    CHECK(mounts_at("/run/netns/race") == std::vector<std::string>{"nsfs"});
    CHECK(identity_at("/run/netns/race"));
}

TEST_CASE("delete_netns removes a namespace ip created and says which it was")
{
    run_ok({"ip", "netns", "add", "doomed"});
    const auto id = identity_at("/run/netns/doomed");
    kernel::delete_outcome out;
    std::string detail;
    REQUIRE_FALSE(kernel::delete_netns(run_dir, "doomed", out, detail));
    CHECK(out.identity == id);
    CHECK(ip_list().empty());
    CHECK_FALSE(exists("/run/netns/doomed"));
    CHECK(mounts_at("/run/netns/doomed").empty());
}

TEST_CASE("delete_netns of a missing name is not_found, of a stale file succeeds")
{
    kernel::delete_outcome out;
    std::string detail;
    CHECK(kernel::delete_netns(run_dir, "never", out, detail) == errc::not_found);
    write_file("/run/netns/stale", "");
    CHECK_FALSE(kernel::delete_netns(run_dir, "stale", out, detail));
    CHECK(out.identity == std::nullopt);
    CHECK_FALSE(exists("/run/netns/stale"));
}

TEST_CASE("delete_netns of a directory is a clear error and removes nothing")
{
    REQUIRE(::mkdir("/run/netns/adir", 0755) == 0);
    kernel::delete_outcome out;
    std::string detail;
    CHECK(kernel::delete_netns(run_dir, "adir", out, detail) == errc::not_a_namespace);
    CHECK(detail.find("is a directory") != std::string::npos);
    CHECK(exists("/run/netns/adir"));
}

TEST_CASE("delete_netns of an alias symlink removes the alias and leaves its target mounted")
{
    run_ok({"ip", "netns", "add", "target"});
    const auto id = identity_at("/run/netns/target");
    REQUIRE(::symlink("/run/netns/target", "/run/netns/alias") == 0);
    kernel::delete_outcome out;
    std::string detail;
    REQUIRE_FALSE(kernel::delete_netns(run_dir, "alias", out, detail));
    CHECK(out.identity == id);
    CHECK_FALSE(exists("/run/netns/alias"));
    // ip netns del would have unmounted the target through the link, leaving it stale.
    CHECK(identity_at("/run/netns/target") == id);
    CHECK(mounts_at("/run/netns/target") == std::vector<std::string>{"nsfs"});
}

TEST_CASE("deleting a namespace a process is in returns its identity, and pids_in finds it")
{
    run_ok({"ip", "netns", "add", "busyns"});
    const auto id = identity_at("/run/netns/busyns");
    REQUIRE(id);
    background sleeper({"ip", "netns", "exec", "busyns", "sleep", "60"});
    REQUIRE(eventually([&] { return has(kernel::pids_in(*id), sleeper.pid()); }));

    kernel::delete_outcome out;
    std::string detail;
    REQUIRE_FALSE(kernel::delete_netns(run_dir, "busyns", out, detail));
    REQUIRE(out.identity == id);
    CHECK(ip_list().empty());
    // The name is gone; the namespace lives on with the process in it.
    CHECK(kernel::pids_in(*out.identity) == std::vector<pid_t>{sleeper.pid()});
    std::error_code ec;
    CHECK(kernel::identity_of_pid(sleeper.pid(), ec) == id);
}

TEST_CASE("delete_netns of stacked mounts is busy and removes only the top one")
{
    run_ok({"ip", "netns", "add", "lower"});
    run_ok({"ip", "netns", "add", "upper"});
    const auto lower = identity_at("/run/netns/lower");
    const auto upper = identity_at("/run/netns/upper");
    REQUIRE(::mount("/run/netns/upper", "/run/netns/lower", nullptr, MS_BIND, nullptr) == 0);
    REQUIRE(identity_at("/run/netns/lower") == upper);

    kernel::delete_outcome out;
    std::string detail;
    CHECK(kernel::delete_netns(run_dir, "lower", out, detail) == errc::busy);
    INFO(detail);
    CHECK(detail.find("2 mounts were stacked") != std::string::npos);
    CHECK(out.identity == upper);
    CHECK(identity_at("/run/netns/lower") == lower);
    CHECK(ip_list().count("lower") == 1);

    CHECK_FALSE(kernel::delete_netns(run_dir, "lower", out, detail));
    CHECK(out.identity == lower);
    CHECK(ip_list() == std::map<std::string, std::optional<int>>{{"upper", std::nullopt}});
}

TEST_CASE("attach names the namespace of a running process")
{
    const auto ours = thread_netns();
    background sleeper({"unshare", "-n", "sleep", "60"});
    std::error_code ec;
    REQUIRE(eventually(
        [&]
        {
            const auto id = kernel::identity_of_pid(sleeper.pid(), ec);
            return id && *id != ours;
        }));
    std::string detail;
    REQUIRE_FALSE(kernel::attach_netns(run_dir, "attached", sleeper.pid(), detail));
    CHECK(thread_netns() == ours);

    const auto entry = identity_at("/run/netns/attached");
    REQUIRE(entry);
    CHECK(kernel::identity_of_pid(sleeper.pid(), ec) == entry);
    CHECK_FALSE(ec);
    CHECK(has(kernel::pids_in(*entry), sleeper.pid()));
    CHECK(ip_list().count("attached") == 1);
    CHECK(run_ok({"ip", "netns", "identify", std::to_string(sleeper.pid())}) == "attached\n");
    CHECK(run_ok({"ip", "netns", "pids", "attached"}) == std::to_string(sleeper.pid()) + "\n");
}

TEST_CASE("attach to a missing pid is no_such_process and leaves no file behind")
{
    const auto pid_max = std::stoi(read_file("/proc/sys/kernel/pid_max")); // never a pid
    std::string detail;
    CHECK(kernel::attach_netns(run_dir, "ghost", pid_max, detail) == errc::no_such_process);
    CHECK_FALSE(detail.empty());
    CHECK_FALSE(exists("/run/netns/ghost"));
    std::error_code ec;
    CHECK(kernel::identity_of_pid(pid_max, ec) == std::nullopt);
    CHECK(ec == errc::no_such_process);
}

TEST_CASE("identity_of_pid of this process is its own namespace")
{
    std::error_code ec;
    CHECK(kernel::identity_of_pid(::getpid(), ec) == thread_netns());
    CHECK_FALSE(ec);
    CHECK(has(kernel::pids_in(thread_netns()), ::getpid()));
}

// --- nsids -------------------------------------------------------------------------------------

TEST_CASE("set_nsid with an explicit id is what ip netns list-id shows")
{
    run_ok({"ip", "netns", "add", "numbered"});
    std::error_code ec;
    std::string detail;
    const auto got = kernel::set_nsid(run_dir, "numbered", 7, ec, detail);
    INFO(detail);
    CHECK_FALSE(ec);
    CHECK(got == 7);
    CHECK(ip_list_id() == std::map<int, std::optional<std::string>>{{7, "numbered"}});
    CHECK(ip_list().at("numbered") == 7);
}

TEST_CASE("set_nsid auto returns the id the kernel picked")
{
    run_ok({"ip", "netns", "add", "first"});
    run_ok({"ip", "netns", "add", "second"});
    run_ok({"ip", "netns", "set", "first", "0"});
    std::error_code ec;
    std::string detail;
    const auto got = kernel::set_nsid(run_dir, "second", std::nullopt, ec, detail);
    INFO(detail);
    REQUIRE_FALSE(ec);
    REQUIRE(got);
    CHECK(*got == 1); // the lowest free id
    CHECK(ip_list_id() == std::map<int, std::optional<std::string>>{{0, "first"}, {1, "second"}});
}

TEST_CASE("set_nsid on a namespace that has an nsid is nsid_assigned")
{
    run_ok({"ip", "netns", "add", "has"});
    run_ok({"ip", "netns", "set", "has", "4"});
    std::error_code ec;
    std::string detail;
    CHECK(kernel::set_nsid(run_dir, "has", 5, ec, detail) == std::nullopt);
    CHECK(ec == errc::nsid_assigned);
    CHECK(detail.find("nsid 4") != std::string::npos);
    CHECK(detail.find("kernel: ") != std::string::npos); // the extended ack was read
    CHECK(kernel::set_nsid(run_dir, "has", std::nullopt, ec, detail) == std::nullopt);
    CHECK(ec == errc::nsid_assigned);
    CHECK(ip_list_id() == std::map<int, std::optional<std::string>>{{4, "has"}});
}

TEST_CASE("set_nsid with an id another namespace has is nsid_in_use")
{
    run_ok({"ip", "netns", "add", "owner"});
    run_ok({"ip", "netns", "add", "wants"});
    run_ok({"ip", "netns", "set", "owner", "9"});
    std::error_code ec;
    std::string detail;
    CHECK(kernel::set_nsid(run_dir, "wants", 9, ec, detail) == std::nullopt);
    CHECK(ec == errc::nsid_in_use);
    CHECK(detail.find("kernel: ") != std::string::npos);
    CHECK(ip_list_id() == std::map<int, std::optional<std::string>>{{9, "owner"}});
}

TEST_CASE("set_nsid on a stale entry is not_a_namespace, on a missing one not_found")
{
    write_file("/run/netns/stale", "");
    std::error_code ec;
    std::string detail;
    CHECK(kernel::set_nsid(run_dir, "stale", 3, ec, detail) == std::nullopt);
    CHECK(ec == errc::not_a_namespace);
    CHECK(kernel::set_nsid(run_dir, "missing", 3, ec, detail) == std::nullopt);
    CHECK(ec == errc::not_found);
    CHECK(ip_list_id().empty());
}

// --- exec --------------------------------------------------------------------------------------

TEST_CASE("exec runs in the namespace: ip -j link and /sys show only lo")
{
    run_ok({"ip", "netns", "add", "runner"});
    const auto links = exec_in("runner", {"ip", "-j", "link"});
    INFO(describe(links));
    CHECK(links.exit_code == 0);
    CHECK(ip_link_names(links.out) == std::vector<std::string>{"lo"});
    const auto sys = exec_in("runner", {"ls", "/sys/class/net"});
    CHECK(sys.out == "lo\n");
}

TEST_CASE("exec sees /etc/netns/NAME/resolv.conf as /etc/resolv.conf and mounts nothing here")
{
    private_etc();
    write_file("/etc/resolv.conf", "nameserver 192.0.2.1\n");
    run_ok({"ip", "netns", "add", "dns"});
    REQUIRE(::mkdir("/etc/netns/dns", 0755) == 0);
    write_file("/etc/netns/dns/resolv.conf", "nameserver 198.51.100.53\n");
    const auto mountinfo = read_file("/proc/self/mountinfo");

    const auto r = exec_in("dns", {"cat", "/etc/resolv.conf"});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(r.out == "nameserver 198.51.100.53\n");
    CHECK(r.warnings.empty());
    CHECK(read_file("/etc/resolv.conf") == "nameserver 192.0.2.1\n");
    CHECK(read_file("/proc/self/mountinfo") == mountinfo);
}

TEST_CASE("exec binds over the target of an /etc/resolv.conf symlink")
{
    private_etc();
    REQUIRE(::mkdir("/run/resolve", 0755) == 0);
    write_file("/run/resolve/stub-resolv.conf", "nameserver 127.0.0.53\n");
    REQUIRE(::symlink("../run/resolve/stub-resolv.conf", "/etc/resolv.conf") == 0);
    run_ok({"ip", "netns", "add", "resolved"});
    REQUIRE(::mkdir("/etc/netns/resolved", 0755) == 0);
    write_file("/etc/netns/resolved/resolv.conf", "nameserver 203.0.113.9\n");
    const auto mountinfo = read_file("/proc/self/mountinfo");

    const auto r = exec_in("resolved", {"cat", "/etc/resolv.conf"});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(r.out == "nameserver 203.0.113.9\n");
    CHECK(r.warnings.empty());
    CHECK(read_file("/run/resolve/stub-resolv.conf") == "nameserver 127.0.0.53\n");
    CHECK(read_file("/proc/self/mountinfo") == mountinfo);
}

TEST_CASE("exec skips /etc/netns entries whose target is missing or a dangling symlink")
{
    private_etc();
    REQUIRE(::symlink("/nowhere/hosts", "/etc/hosts") == 0);
    write_file("/etc/present.conf", "host\n");
    run_ok({"ip", "netns", "add", "partial"});
    REQUIRE(::mkdir("/etc/netns/partial", 0755) == 0);
    write_file("/etc/netns/partial/hosts", "192.0.2.7 x\n");
    write_file("/etc/netns/partial/absent.conf", "absent\n");
    write_file("/etc/netns/partial/present.conf", "netns\n");

    const auto r = exec_in("partial", {"sh", "-c",
                                       "cat /etc/present.conf; test -e /etc/absent.conf || echo "
                                       "no-absent; test -e /nowhere/hosts || echo no-hosts"});
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK(r.out == "netns\nno-absent\nno-hosts\n");
    CHECK(r.warnings.size() == 2);
    CHECK_FALSE(exists("/nowhere"));
}

TEST_CASE("exec gives a 255-byte name no /etc handling, like ip")
{
    const std::string name(255, 'n');
    std::string detail;
    REQUIRE_FALSE(kernel::create_netns(run_dir, name, detail));
    private_etc();
    write_file("/etc/resolv.conf", "nameserver 192.0.2.1\n");
    REQUIRE(::mkdir(("/etc/netns/" + name).c_str(), 0755) == 0);
    write_file("/etc/netns/" + name + "/resolv.conf", "nameserver 198.51.100.1\n");
    const auto r = exec_in(name, {"cat", "/etc/resolv.conf"});
    INFO(describe(r));
    CHECK(r.out == "nameserver 192.0.2.1\n");
}

TEST_CASE("exec stops a command at its timeout and kills its whole process group")
{
    run_ok({"ip", "netns", "add", "slow"});
    const auto id = identity_at("/run/netns/slow");
    REQUIRE(id);
    kernel::exec_request req;
    req.netns_path = "/run/netns/slow";
    req.name = "slow";
    req.argv = {"sh", "-c", "sleep 100 & sleep 100"};
    req.timeout = 500ms;
    const auto r = kernel::run_in_netns(req);
    INFO(describe(r));
    CHECK(r.timed_out);
    CHECK(r.signal == SIGKILL);
    CHECK(r.exit_code == std::nullopt);
    CHECK(r.duration_ms >= 500);
    CHECK(r.duration_ms < 900);
    // Both sleeps were in the group; orphans are reaped by init.
    CHECK(eventually([&] { return kernel::pids_in(*id).empty(); }, 2000ms));
}

TEST_CASE("exec caps output, keeps draining and flags the truncation")
{
    run_ok({"ip", "netns", "add", "loud"});
    const auto r = exec_in("loud", {"head", "-c", "3000000", "/dev/zero"});
    INFO(describe(r).substr(0, 300));
    CHECK(r.exit_code == 0);
    CHECK(r.out.size() == std::size_t{1} << 20);
    CHECK(r.out_truncated);
    CHECK_FALSE(r.err_truncated);
    CHECK(r.err.empty());
}

TEST_CASE("exec delivers stdin while it reads the output")
{
    run_ok({"ip", "netns", "add", "echo"});
    CHECK(exec_in("echo", {"cat"}, "hello\nworld\n").out == "hello\nworld\n");
    // More than a pipe holds in both directions at once.
    std::string big(900 * 1024, 'x');
    for (std::size_t i = 0; i < big.size(); i += 1000)
        big[i] = static_cast<char>('a' + (i / 1000) % 26);
    const auto r = exec_in("echo", {"cat"}, big);
    CHECK(r.exit_code == 0);
    CHECK(r.out == big);
}

TEST_CASE("exec of a command that ignores its stdin is not disturbed by the broken pipe")
{
    run_ok({"ip", "netns", "add", "deaf"});
    const auto r = exec_in("deaf", {"true"}, std::string(4 << 20, 'x'));
    INFO(describe(r));
    CHECK(r.exit_code == 0);
    CHECK_FALSE(r.ec);
}

TEST_CASE("exec reports exit codes and signals")
{
    run_ok({"ip", "netns", "add", "codes"});
    const auto three = exec_in("codes", {"sh", "-c", "echo out; echo err >&2; exit 3"});
    CHECK(three.exit_code == 3);
    CHECK(three.signal == std::nullopt);
    CHECK(three.out == "out\n");
    CHECK(three.err == "err\n");
    const auto killed = exec_in("codes", {"sh", "-c", "kill -9 $$"});
    CHECK(killed.signal == 9);
    CHECK(killed.exit_code == std::nullopt);
    CHECK_FALSE(killed.timed_out);
}

TEST_CASE("exec starts the command with a minimal environment, default signals and no fds")
{
    run_ok({"ip", "netns", "add", "clean"});
    // What the daemon does, and an fd that would leak without close_range.
    const auto previous = std::signal(SIGPIPE, SIG_IGN);
    const int leaky = ::open("/dev/null", O_RDONLY);
    REQUIRE(leaky >= 0);

    kernel::exec_request req;
    req.netns_path = "/run/netns/clean";
    req.name = "clean";
    req.argv = {"env"};
    req.env = {{"FOO", "bar baz"}, {"LANG", "C"}};
    const auto env = kernel::run_in_netns(req);
    CHECK(env.out == std::string("PATH=") + kernel::exec_default_path + "\nFOO=bar baz\nLANG=C\n");

    CHECK(exec_in("clean", {"ls", "/proc/self/fd"}).out == "0\n1\n2\n3\n");
    const auto status = exec_in("clean", {"grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"});
    CHECK(status.out == "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
    ::close(leaky);
    std::signal(SIGPIPE, previous);
}

TEST_CASE("exec refuses a missing namespace, a stale entry and a missing command")
{
    write_file("/run/netns/stale", "");
    run_ok({"ip", "netns", "add", "real"});
    const auto missing = exec_in("nope", {"true"});
    CHECK(missing.ec == errc::not_found);
    const auto stale = exec_in("stale", {"true"});
    CHECK(stale.ec == errc::not_a_namespace);
    const auto unknown = exec_in("real", {"no-such-command-netnsd"});
    CHECK(unknown.ec == errc::command_not_found);
    CHECK(unknown.detail.find("no-such-command-netnsd") != std::string::npos);
    for (const auto* r : {&missing, &stale, &unknown})
        CHECK((r->exit_code == std::nullopt && r->signal == std::nullopt));
}

TEST_CASE("exec from several threads at once keeps every command's streams apart")
{
    run_ok({"ip", "netns", "add", "shared"});
    constexpr int threads = 8;
    std::atomic<int> good{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
        workers.emplace_back(
            [&, t]
            {
                for (int i = 0; i < 5; ++i)
                {
                    const auto input = "thread " + std::to_string(t) + " run " + std::to_string(i);
                    kernel::exec_request req;
                    req.netns_path = "/run/netns/shared";
                    req.name = "shared";
                    req.argv = {"cat"};
                    req.stdin_data = input;
                    const auto r = kernel::run_in_netns(req);
                    if (r.exit_code == 0 && r.out == input)
                        ++good;
                }
            });
    for (auto& w : workers)
        w.join();
    CHECK(good == threads * 5);
}

TEST_CASE("refresh after netnsd's own change: with mount events the events say it, no look")
{
    core::registry model{1000};
    core::monitor watch{model, run_dir};
    REQUIRE_FALSE(watch.open());
    watch.start();
    const bool exact = watch.mount_feed() == core::monitor::mount_source::fanotify;
    const auto applied = [&]
    {
        while (watch.pump())
        {
        }
    };
    const auto state_of = [&](const std::string& name) -> std::optional<core::entry_state>
    {
        const auto slot = model.slots().find(name);
        if (slot == model.slots().end())
            return std::nullopt;
        return slot->second.state;
    };

    std::string detail;
    REQUIRE_FALSE(kernel::create_netns(run_dir, "quiet", detail));
    applied();
    auto before = watch.probes();
    watch.refresh("quiet");
    CHECK(state_of("quiet") == core::entry_state::live);
    // Without mount events (mountinfo: an older kernel) the name is looked at.
    CHECK(watch.probes() == (exact ? before : before + 1));

    kernel::delete_outcome gone;
    REQUIRE_FALSE(kernel::delete_netns(run_dir, "quiet", gone, detail));
    applied();
    before = watch.probes();
    watch.refresh("quiet");
    CHECK_FALSE(state_of("quiet").has_value());
    CHECK(watch.probes() == (exact ? before : before + 1));

    // A stale entry is always looked at: what an attach statmount could not describe leaves.
    {
        const kernel::unique_fd plain(
            ::open((run_dir + "/plain").c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
        REQUIRE(plain);
    }
    applied();
    REQUIRE(state_of("plain") == core::entry_state::stale);
    before = watch.probes();
    watch.refresh("plain");
    CHECK(watch.probes() == before + 1);
    CHECK(state_of("plain") == core::entry_state::stale);
    ::unlink((run_dir + "/plain").c_str());
}
