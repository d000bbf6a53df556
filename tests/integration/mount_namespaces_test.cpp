// Network namespaces bound only in another mount namespace, on a real kernel, in the sandbox:
// the walk of every mount namespace finds them with their mount (path, mount id, mount
// namespace), they are not leak candidates, and they are destroyed when that mount namespace
// goes. The oracles: /proc/PID/mountinfo of a process in that mount namespace (nsenter), the
// mount namespace's id read by python's ioctl on its nsfs file, and `lsns`.
#include <fstream>
#include <signal.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "support/http_client.hpp"
#include "support/oracle.hpp"
#include "support/process.hpp"

namespace
{

using namespace netnsd::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

// The id of the mount namespace an nsfs file binds, as the kernel says (NS_MNT_GET_INFO),
// read by python: no netnsd code involved.
std::uint64_t mnt_ns_id_of(const std::string& path)
{
    const auto out = run_ok({"python3", "-c",
                             "import fcntl, os, struct, sys\n"
                             "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                             "buf = bytearray(struct.pack('IIQ', 16, 0, 0))\n"
                             "fcntl.ioctl(fd, (2 << 30) | (16 << 16) | (0xb7 << 8) | 10, buf)\n"
                             "print(struct.unpack('IIQ', bytes(buf))[2])\n",
                             path});
    return std::stoull(out);
}

// The id (NS_GET_ID) of the namespace bound at `path` in the mount namespace bound at `mntns`,
// as a process in it reads it (nsenter, python): the inventory is looked up by it, since the
// inode of a freed namespace is given to the next one at once (another sandbox's, maybe, which
// the walk of every mount namespace shows as well).
std::uint64_t ns_id_in(const std::string& mntns, const std::string& path)
{
    const auto out = run_ok({"nsenter", "--mount=" + mntns, "python3", "-c",
                             "import fcntl, os, struct, sys\n"
                             "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
                             "buf = bytearray(8)\n"
                             "fcntl.ioctl(fd, (2 << 30) | (8 << 16) | (0xb7 << 8) | 13, buf)\n"
                             "print(struct.unpack('Q', bytes(buf))[0])\n",
                             path});
    return std::stoull(out);
}

// The mountinfo line of `mount_point` as a process in the mount namespace bound at `mntns`
// sees it (nsenter): its root field says which namespace it binds ("net:[ino]").
std::string mountinfo_line(const std::string& mntns, const std::string& mount_point)
{
    std::istringstream lines(
        run_ok({"nsenter", "--mount=" + mntns, "cat", "/proc/self/mountinfo"}));
    std::string line;
    while (std::getline(lines, line))
    {
        std::istringstream fields(line);
        std::string id, parent, dev, root, point;
        fields >> id >> parent >> dev >> root >> point;
        if (point == mount_point)
            return line;
    }
    return {};
}

bool lsns_lists(const std::string& type, std::uint64_t ino)
{
    const auto all = json::parse(run_ok({"lsns", "-t", type, "-J"}), nullptr, false);
    if (all.is_object())
        for (const auto& n : all["namespaces"])
            if (n["ns"] == ino)
                return true;
    return false;
}

// A mount namespace held by an open fd of a python child (which is not in it): a process is
// made in it (`unshare --mount`), mounts a tmpfs of its own at `inner_dir` (the sandbox does
// not see it) and binds a new network namespace at `inner`, then stays, in that network
// namespace, until stop_sleeper(). (Binding the mount namespace onto a file of the sandbox's
// instead is refused now and then with EINVAL: the kernel refuses a bind of a mount namespace
// whose id is not above the binder's, and ids, handed out in per-CPU batches, do not always
// grow with time.)
struct mount_namespace_holder
{
    pid_t pid = -1;
    int out = -1;
    std::string fd_path; // /proc/PID/fd/N: the mount namespace
    pid_t sleeper = -1;

    mount_namespace_holder(const std::string& inner_dir, const std::string& inner)
    {
        int pipefd[2];
        REQUIRE(::pipe(pipefd) == 0);
        pid = ::fork();
        if (pid == 0)
        {
            ::dup2(pipefd[1], 1);
            ::close(pipefd[0]);
            ::execlp("python3", "python3", "-c",
                     "import os, signal, subprocess, sys\n"
                     "p = subprocess.Popen(['unshare', '--mount', '--propagation', 'private', "
                     "'sh', '-c', 'mkdir -p \"$1\" && mount -t tmpfs netnsd-test-inner \"$1\" "
                     "&& touch \"$2\" && unshare --net=\"$2\" true && echo ready && "
                     "exec nsenter --net=\"$2\" sleep 600', 'sh', sys.argv[1], sys.argv[2]], "
                     "stdout=subprocess.PIPE)\n"
                     "assert p.stdout.readline() == b'ready\\n'\n"
                     "fd = os.open('/proc/%d/ns/mnt' % p.pid, os.O_RDONLY)\n"
                     "print(fd, p.pid, flush=True)\n"
                     "p.wait()\n"
                     "signal.pause()\n",
                     inner_dir.c_str(), inner.c_str(), nullptr);
            ::_exit(127);
        }
        ::close(pipefd[1]);
        out = pipefd[0];
        std::string line;
        char c = 0;
        while (::read(out, &c, 1) == 1 && c != '\n')
            line += c;
        std::istringstream fields(line);
        int fd = -1;
        fields >> fd >> sleeper;
        REQUIRE(fd >= 0);
        REQUIRE(sleeper > 0);
        fd_path = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
    }
    // Its last process leaves the mount namespace (and the network namespace): the fd holds
    // the one, which holds the other by its mount.
    void stop_sleeper()
    {
        if (sleeper > 0)
            ::kill(sleeper, SIGKILL);
        sleeper = -1;
    }
    // The fd goes: the mount namespace, its mounts and what only they held go with it.
    void stop()
    {
        stop_sleeper();
        if (pid > 0)
        {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            ::close(out);
            pid = -1;
        }
    }
    ~mount_namespace_holder() { stop(); }
};

} // namespace

TEST_CASE("a network namespace bound only in another mount namespace, which no process is in, is "
          "found with its mount and that mount namespace, is no leak, and is destroyed with it")
{
    const std::string inner_dir = "/run/netnsd-test-pods";
    const std::string inner = inner_dir + "/pod-ns";
    netnsd_process d({"--sweep-interval=1"});
    INFO(d.log());
    REQUIRE(d.ready());
    const auto at = d.where();

    mount_namespace_holder holder(inner_dir, inner);
    holder.stop_sleeper();
    // Not in the sandbox's mount namespace: the inner tmpfs is the other namespace's alone.
    struct stat st
    {
    };
    CHECK(::stat(inner.c_str(), &st) != 0);
    // The oracle: what a process in that mount namespace sees there.
    const auto line = mountinfo_line(holder.fd_path, inner);
    INFO(line);
    REQUIRE(!line.empty());
    std::istringstream fields(line);
    std::string id, parent, dev, root;
    fields >> id >> parent >> dev >> root;
    REQUIRE(root.starts_with("net:["));
    const auto ino = std::stoull(root.substr(5));
    const auto ns_id = ns_id_in(holder.fd_path, inner);
    REQUIRE(ns_id != 0);
    const auto mnt_ns_id = mnt_ns_id_of(holder.fd_path);
    struct stat mntns
    {
    };
    REQUIRE(::stat(holder.fd_path.c_str(), &mntns) == 0);
    // No process is in either once the sleeper has gone: lsns, which looks at processes,
    // lists neither.
    CHECK(eventually([&] { return !lsns_lists("net", ino) && !lsns_lists("mnt", mntns.st_ino); },
                     10000ms));

    json row;
    REQUIRE(eventually(
        [&]
        {
            row = by_ns_id(at, ns_id);
            return row.is_object() && row["processes"]["count"] == 0;
        },
        15000ms));
    INFO(row.dump());
    CHECK(row["inode"] == ino);
    CHECK(row["held_by"] == json::array({"mount"}));
    CHECK(row["leak"] == false);
    CHECK(row["names"].empty());
    REQUIRE(row["mounts"].size() == 1);
    CHECK(row["mounts"][0]["path"] == inner);
    CHECK(row["mounts"][0]["mnt_ns_id"] == mnt_ns_id);
    CHECK(row["mounts"][0]["other_mnt_ns"] == true);
    CHECK(row["mounts"][0]["mount_id"].get<std::uint64_t>() != 0);
    // Not a leak candidate; held by a mount.
    const auto leaks = get_json(at, "/api/v1/namespaces?leak=true");
    for (const auto& n : leaks["namespaces"])
        CHECK(n["ns_id"] != ns_id);
    const auto by_mount = get_json(at, "/api/v1/namespaces?held_by=mount");
    bool listed = false;
    for (const auto& n : by_mount["namespaces"])
        listed = listed || n["ns_id"] == ns_id;
    CHECK(listed);

    // The mount namespace goes with its last holder, the fd; its mounts go with it, and so
    // does the network namespace. (The API, not the event stream, is read: on a shared machine
    // other sandboxes' namespaces, which the walk shows as well, can be many.)
    holder.stop();
    unsigned status = 0;
    CHECK(eventually(
        [&]
        {
            get_json(at, "/api/v1/namespaces/" + std::to_string(ns_id), &status);
            return status == 404;
        },
        20000ms));
}

TEST_CASE("a network namespace a process made in another mount namespace is found by the process, "
          "then keeps its mount there as its holder once the process exits")
{
    const std::string inner_dir = "/run/netnsd-test-pods";
    const std::string inner = inner_dir + "/pod-ns";
    netnsd_process d({"--sweep-interval=1"});
    INFO(d.log());
    REQUIRE(d.ready());
    const auto at = d.where();
    // The sleeper is in the network namespace bound there: netnsd knows it by the process,
    // and its mount there comes with it.
    mount_namespace_holder holder(inner_dir, inner);
    // "ready" comes before the sleeper has entered that network namespace: wait for it.
    struct stat own
    {
    };
    REQUIRE(::stat("/proc/self/ns/net", &own) == 0);
    struct stat st
    {
    };
    REQUIRE(eventually(
        [&]
        {
            const auto path = "/proc/" + std::to_string(holder.sleeper) + "/ns/net";
            return ::stat(path.c_str(), &st) == 0 && st.st_ino != own.st_ino;
        }));
    const auto ns_id = ns_id_of("/proc/" + std::to_string(holder.sleeper) + "/ns/net");
    REQUIRE(ns_id != 0);
    CHECK(lsns_lists("net", st.st_ino));
    json row;
    INFO("last seen: " << row.dump());
    REQUIRE(eventually(
        [&]
        {
            row = by_ns_id(at, ns_id);
            return row.is_object() && row["mounts"].size() == 1 && row["processes"]["count"] == 1;
        },
        15000ms));
    CHECK(row["inode"] == st.st_ino);
    CHECK(row["held_by"] == json::array({"mount", "process"}));
    CHECK(row["mounts"][0]["path"] == inner);
    CHECK(row["mounts"][0]["mnt_ns_id"] == mnt_ns_id_of(holder.fd_path));

    holder.stop_sleeper();
    CHECK(eventually(
        [&]
        {
            row = by_ns_id(at, ns_id);
            return row.is_object() && row["processes"]["count"] == 0;
        },
        15000ms));
    CHECK(row["held_by"] == json::array({"mount"}));
    CHECK(row["leak"] == false);
    holder.stop();
    CHECK(eventually([&] { return by_ns_id(at, ns_id).is_null(); }, 20000ms));
}

TEST_CASE("between walks, a mount namespace's new nsfs mount is found by its attach event, and "
          "what only it held is destroyed with it at its detach")
{
    const std::string inner_dir = "/run/netnsd-test-pods";
    const std::string inner = inner_dir + "/pod-ns";
    const std::string later = inner_dir + "/later-ns";
    // The mount namespace exists before netnsd starts: the first walk finds it and follows it.
    // The next sweep (and its walk) is a minute away: what follows comes from its events.
    mount_namespace_holder holder(inner_dir, inner);
    holder.stop_sleeper();
    const auto first = ns_id_in(holder.fd_path, inner);
    REQUIRE(first != 0);
    netnsd_process d({"--follow-mount-namespaces", "--sweep-interval=60", "--deep-scan-interval=0",
                      "--audit-interval=0"});
    INFO(d.log());
    REQUIRE(d.ready());
    const auto at = d.where();
    CHECK(d.log().find("following the other mount namespaces' mounts between walks") !=
          std::string::npos);
    REQUIRE(eventually([&] { return by_ns_id(at, first).is_object(); }, 10000ms));
    CHECK(metric(at, "netnsd_mount_namespaces_followed") >= 1);
    const auto walks = metric(at, "netnsd_mount_namespace_walks_total");
    CHECK(walks >= 1);

    // A new network namespace bound there, by a process that is gone at once: only the mount
    // holds it, and only the attach event tells netnsd (a walk follows it).
    run_ok({"nsenter", "--mount=" + holder.fd_path, "sh", "-c",
            "touch \"$1\" && unshare --net=\"$1\" true", "sh", later});
    const auto second = ns_id_in(holder.fd_path, later);
    REQUIRE(second != 0);
    json row;
    INFO("last seen: " << row.dump());
    REQUIRE(eventually(
        [&]
        {
            row = by_ns_id(at, second);
            return row.is_object();
        },
        15000ms));
    CHECK(row["held_by"] == json::array({"mount"}));
    REQUIRE(row["mounts"].size() == 1);
    CHECK(row["mounts"][0]["path"] == later);
    CHECK(row["mounts"][0]["other_mnt_ns"] == true);
    CHECK(metric(at, "netnsd_mount_namespace_walks_total") > walks);

    // Unmounted there: the detach event, and no holder is left. Lazily, as runtimes and
    // `ip netns del` unmount (MNT_DETACH): a walk that began before the found above still had
    // this inode as new and may be opening the mount to identify it, and a plain umount at that
    // instant fails with EBUSY (seen once in CI).
    run_ok({"nsenter", "--mount=" + holder.fd_path, "umount", "--lazy", later});
    CHECK(eventually([&] { return by_ns_id(at, second).is_null(); }, 15000ms));
    // The mount namespace goes (its last holder, the fd, is closed): the detaches of its mounts,
    // and the namespace bound there goes with them.
    REQUIRE(by_ns_id(at, first).is_object());
    holder.stop();
    CHECK(eventually([&] { return by_ns_id(at, first).is_null(); }, 15000ms));
    CHECK(metric(at, "netnsd_foreign_mount_events_total") >= 3);
}
