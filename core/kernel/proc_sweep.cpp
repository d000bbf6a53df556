#include "core/kernel/proc_sweep.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

#include "core/kernel/unique_fd.hpp"

namespace netnsd::core::kernel
{

std::optional<std::uint64_t> parse_netns_link(std::string_view link) noexcept
{
    constexpr std::string_view prefix = "net:[";
    if (link.size() <= prefix.size() + 1 || !link.starts_with(prefix) || link.back() != ']')
        return std::nullopt;
    const auto digits = link.substr(prefix.size(), link.size() - prefix.size() - 1);
    std::uint64_t ino = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ino);
    if (ec != std::errc{} || end != digits.data() + digits.size())
        return std::nullopt;
    return ino;
}

std::optional<std::uint32_t> parse_status_uid(std::string_view status) noexcept
{
    while (!status.empty())
    {
        const auto nl = status.find('\n');
        auto line = status.substr(0, nl);
        if (line.starts_with("Uid:"))
        {
            line.remove_prefix(4);
            while (!line.empty() && (line.front() == '\t' || line.front() == ' '))
                line.remove_prefix(1);
            std::uint32_t uid = 0;
            const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), uid);
            if (ec != std::errc{} || end == line.data())
                return std::nullopt;
            return uid;
        }
        if (nl == std::string_view::npos)
            break;
        status.remove_prefix(nl + 1);
    }
    return std::nullopt;
}

std::optional<std::string> parse_cgroup_v2(std::string_view cgroup)
{
    while (!cgroup.empty())
    {
        const auto nl = cgroup.find('\n');
        const auto line = cgroup.substr(0, nl);
        if (line.starts_with("0::"))
            return std::string(line.substr(3));
        if (nl == std::string_view::npos)
            break;
        cgroup.remove_prefix(nl + 1);
    }
    return std::nullopt;
}

namespace
{

// A small /proc file, whole (they are generated per read: one read() is consistent).
std::optional<std::string> read_small(const std::string& path)
{
    const unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        return std::nullopt;
    std::string out(4096, '\0');
    std::size_t used = 0;
    while (true)
    {
        const auto n = ::read(fd.get(), out.data() + used, out.size() - used);
        if (n < 0)
            return std::nullopt;
        if (n == 0)
            break;
        used += static_cast<std::size_t>(n);
        if (used == out.size())
        {
            if (out.size() >= 65536)
                break;
            out.resize(out.size() * 2);
        }
    }
    out.resize(used);
    return out;
}

} // namespace

std::optional<process_info> read_process(std::int32_t pid)
{
    const std::string dir = "/proc/" + std::to_string(pid);
    auto comm = read_small(dir + "/comm");
    if (!comm)
        return std::nullopt;
    process_info p;
    p.pid = pid;
    if (!comm->empty() && comm->back() == '\n')
        comm->pop_back();
    p.comm = std::move(*comm);
    if (const auto status = read_small(dir + "/status"))
        p.uid = parse_status_uid(*status);
    if (const auto cgroup = read_small(dir + "/cgroup"))
        p.cgroup = parse_cgroup_v2(*cgroup);
    return p;
}

std::optional<std::uint64_t> netns_inode_of(std::int32_t pid) noexcept
{
    std::array<char, 48> path{};
    auto* p = std::to_chars(path.data() + 6, path.data() + path.size() - 8, pid).ptr;
    std::memcpy(path.data(), "/proc/", 6);
    std::memcpy(p, "/ns/net", 8);
    std::array<char, 32> link{};
    const auto n = ::readlink(path.data(), link.data(), link.size());
    if (n <= 0)
        return std::nullopt;
    return parse_netns_link(std::string_view(link.data(), static_cast<std::size_t>(n)));
}

std::optional<process_namespace> open_netns_of(std::int32_t pid, std::uint64_t ino)
{
    const std::string dir = "/proc/" + std::to_string(pid);
    const unique_fd fd(::open((dir + "/ns/net").c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        return std::nullopt;
    const auto id = identify_netns(fd.get());
    if (!id || id->ino != ino)
        return std::nullopt;
    process_namespace out{swept_namespace{*id, handle_of_fd(fd.get()), user_ns_of(fd.get())},
                          std::nullopt};
    if (const auto cgroup = read_small(dir + "/cgroup"))
        out.cgroup = parse_cgroup_v2(*cgroup);
    return out;
}

namespace
{

// The threads of process `pid` whose network namespace is not the process's (`own`): each
// such namespace is held by the process too. /proc/PID/task's link count is 2 plus its
// threads, so one fstatat tells a process with one thread (most) from the others, whose task
// dir alone is read: a readlink per thread.
template <typename Hold>
void sweep_threads(int proc_fd, std::int32_t pid, std::uint64_t own, const Hold& hold)
{
    std::array<char, 32> task{};
    auto* p = std::to_chars(task.data(), task.data() + task.size() - 6, pid).ptr;
    std::memcpy(p, "/task", 6);
    struct stat st
    {
    };
    if (::fstatat(proc_fd, task.data(), &st, 0) != 0 || st.st_nlink <= 3)
        return;
    const int task_fd = ::openat(proc_fd, task.data(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (task_fd < 0)
        return;
    std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(task_fd), &::closedir);
    if (!dir)
    {
        ::close(task_fd);
        return;
    }
    std::array<char, 48> rel{};
    std::array<char, 32> link{};
    while (const dirent* ent = ::readdir(dir.get()))
    {
        const std::string_view name = ent->d_name;
        std::int32_t tid = 0;
        const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), tid);
        if (ec != std::errc{} || end != name.data() + name.size() || tid == pid)
            continue;
        auto* q = std::to_chars(rel.data(), rel.data() + rel.size() - 8, tid).ptr;
        std::memcpy(q, "/ns/net", 8);
        const auto n = ::readlinkat(task_fd, rel.data(), link.data(), link.size());
        if (n <= 0)
            continue;
        const auto ino =
            parse_netns_link(std::string_view(link.data(), static_cast<std::size_t>(n)));
        if (ino && *ino != own)
            hold(*ino, task_fd, rel.data());
    }
}

} // namespace

proc_sweep sweep_processes(const std::vector<sweep_known>& known, bool with_threads)
{
    const auto started = std::chrono::steady_clock::now();
    proc_sweep out;
    // Handles first: an inode read after this belongs to a namespace alive at this point, or
    // to a new one, never to one freed before it (whose inode may be reused).
    std::unordered_set<std::uint64_t> known_inodes;
    known_inodes.reserve(known.size());
    std::unordered_map<std::uint64_t, const sweep_known*> settled;
    for (const auto& k : known)
    {
        if (k.handle && liveness_of(*k.handle) == ns_liveness::gone)
            out.gone.push_back(k.ns_id);
        else
        {
            known_inodes.insert(k.ino);
            if (k.settled_pid > 0)
                settled.emplace(k.ino, &k);
        }
    }

    std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), &::closedir);
    if (!proc)
        return out;
    const int proc_fd = ::dirfd(proc.get());
    std::array<char, 64> path{};
    std::array<char, 32> link{};
    while (const dirent* ent = ::readdir(proc.get()))
    {
        const std::string_view name = ent->d_name;
        std::int32_t pid = 0;
        const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
        if (ec != std::errc{} || end != name.data() + name.size() || pid <= 0)
            continue;
        ++out.processes;
        auto* p = std::to_chars(path.data(), path.data() + path.size() - 8, pid).ptr;
        for (char c : std::string_view("/ns/net"))
            *p++ = c;
        *p = '\0';
        // ENOENT (exited meanwhile) and EACCES (no ptrace access) are normal: skip.
        const auto n = ::readlinkat(proc_fd, path.data(), link.data(), link.size());
        if (n <= 0)
            continue;
        const auto ino =
            parse_netns_link(std::string_view(link.data(), static_cast<std::size_t>(n)));
        if (!ino)
            continue;
        // `at`/`rel`: the namespace file the inode was read from, opened when it is new.
        const auto hold = [&](std::uint64_t held, int at, const char* rel)
        {
            auto& pids = out.pids_by_inode[held];
            if (pids.empty() && known_inodes.count(held) == 0 && out.found.count(held) == 0)
            {
                const unique_fd fd(::openat(at, rel, O_RDONLY | O_CLOEXEC));
                if (fd)
                {
                    if (const auto id = identify_netns(fd.get()); id && id->ino == held)
                        out.found.emplace(held, swept_namespace{*id, handle_of_fd(fd.get()),
                                                                user_ns_of(fd.get())});
                }
            }
            if (pids.empty() || pids.back() != pid)
                pids.push_back(pid);
        };
        hold(*ino, proc_fd, path.data());
        if (with_threads)
            sweep_threads(proc_fd, pid, *ino, hold);
    }
    // readdir of /proc lists pids ascending, but not guaranteed: sort.
    for (auto& [ino, pids] : out.pids_by_inode)
    {
        std::sort(pids.begin(), pids.end());
        // One small read per namespace: its owner is told from one of its processes. Not
        // again while the caller's settled one is still the lowest (a quarter of a sweep's
        // CPU at 5000 namespaces).
        if (const auto s = settled.find(ino);
            s != settled.end() && s->second->settled_pid == pids.front())
        {
            out.cgroup_by_inode.emplace(ino, s->second->settled_cgroup);
            continue;
        }
        ++out.cgroups_read;
        if (const auto cgroup = read_small("/proc/" + std::to_string(pids.front()) + "/cgroup"))
            if (auto cg = parse_cgroup_v2(*cgroup))
                out.cgroup_by_inode.emplace(ino, std::move(*cg));
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return out;
}

} // namespace netnsd::core::kernel
