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
#include <time.h>
#include <unistd.h>
#include <unordered_map>

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
// dir alone is read: a readlink per thread. hold(inode, dirfd, path relative to it, tid).
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
            hold(*ino, task_fd, rel.data(), tid);
    }
}

// "PID/ns/net", or "PID/task/TID/ns/net" for a thread (tid != 0), relative to /proc.
const char* netns_path(std::array<char, 64>& buf, std::int32_t pid, std::int32_t tid = 0)
{
    char* p = std::to_chars(buf.data(), buf.data() + 16, pid).ptr;
    if (tid != 0)
    {
        std::memcpy(p, "/task/", 6);
        p = std::to_chars(p + 6, p + 22, tid).ptr;
    }
    std::memcpy(p, "/ns/net", 8);
    return buf.data();
}

template <typename T>
bool by_pid(const T& a, const T& b) noexcept
{
    return a.pid < b.pid;
}

} // namespace

std::optional<std::uint64_t> process_cpu_ns(std::int32_t pid) noexcept
{
    // The id of a process's CPU-time clock, as the kernel encodes it (MAKE_PROCESS_CPUCLOCK in
    // linux/posix-timers.h, not in uapi): ~pid << 3 | CPUCLOCK_SCHED. glibc's
    // clock_getcpuclockid makes the same id and asks the kernel once more to check it.
    constexpr std::uint32_t cpuclock_sched = 2;
    const auto id =
        static_cast<clockid_t>((~static_cast<std::uint32_t>(pid) << 3) | cpuclock_sched);
    timespec ts{};
    if (pid <= 0 || ::clock_gettime(id, &ts) != 0)
        return std::nullopt; // EINVAL: no such process
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000U +
           static_cast<std::uint64_t>(ts.tv_nsec);
}

proc_sweep sweep_processes(const std::vector<sweep_known>& known, bool with_threads)
{
    process_sweeper once;
    return once.sweep(known, with_threads);
}

proc_sweep process_sweeper::sweep(const std::vector<sweep_known>& known, bool with_threads)
{
    const auto started = std::chrono::steady_clock::now();
    proc_sweep out;

    // The known namespaces by inode (two share one while the caller still has a freed one
    // whose inode a new namespace got), and whether each was asked to be alive this sweep.
    enum class state : std::uint8_t
    {
        unasked,
        alive,
        gone,
    };
    std::vector<state> states(known.size(), state::unasked);
    std::vector<std::pair<std::uint64_t, std::size_t>> by_ino;
    by_ino.reserve(known.size());
    for (std::size_t i = 0; i < known.size(); ++i)
        by_ino.emplace_back(known[i].ino, i);
    std::sort(by_ino.begin(), by_ino.end());
    const auto ask = [&](std::size_t i)
    {
        if (states[i] == state::unasked)
            states[i] = known[i].handle && liveness_of(*known[i].handle) == ns_liveness::gone
                            ? state::gone
                            : state::alive;
        return states[i];
    };
    // Whether `ino`, just read, is a known namespace's that lives. Asked after the read: if it
    // lives now, the inode read was its own (inodes are reused only once freed). `unchanged`:
    // read from a process that has not run since it was read before, so it is still in that
    // namespace, which lives: no need to ask, unless two known namespaces have the inode.
    const auto known_alive = [&](std::uint64_t ino, bool unchanged)
    {
        const auto [first, last] =
            std::equal_range(by_ino.begin(), by_ino.end(), std::pair{ino, std::size_t{0}},
                             [](const auto& a, const auto& b) { return a.first < b.first; });
        if (first == last)
            return false;
        if (unchanged && last - first == 1)
        {
            states[first->second] = state::alive;
            return true;
        }
        bool alive = false;
        for (auto it = first; it != last; ++it)
            alive = ask(it->second) == state::alive || alive;
        return alive;
    };

    std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), &::closedir);
    if (!proc)
        return out;
    const int proc_fd = ::dirfd(proc.get());
    std::array<char, 64> path{};
    std::array<char, 32> link{};

    // `pid` is in (or has a thread in) the namespace of inode `held`. `at`/`rel`: the namespace
    // file it was read from, opened when it is new (null: a remembered one, by its /proc path).
    const auto hold = [&](std::int32_t pid, std::uint64_t held, bool unchanged, int at,
                          const char* rel, std::int32_t tid)
    {
        auto& pids = out.pids_by_inode[held];
        if (pids.empty() && !known_alive(held, unchanged) && out.found.count(held) == 0)
        {
            if (rel == nullptr)
            {
                at = proc_fd;
                rel = netns_path(path, pid, tid);
            }
            const unique_fd fd(::openat(at, rel, O_RDONLY | O_CLOEXEC));
            if (fd)
            {
                if (const auto id = identify_netns(fd.get()); id && id->ino == held)
                    out.found.emplace(
                        held, swept_namespace{*id, handle_of_fd(fd.get()), user_ns_of(fd.get())});
            }
        }
        if (pids.empty() || pids.back() != pid)
            pids.push_back(pid);
    };

    std::vector<process> seen;
    seen.reserve(processes_.size() + 256);
    std::vector<thread> seen_threads;
    std::size_t cursor = 0; // into processes_: readdir lists pids ascending (not promised)
    const auto remembered = [&](std::int32_t pid) -> const process*
    {
        if (cursor > 0 && processes_[cursor - 1].pid >= pid)
            cursor =
                static_cast<std::size_t>(std::lower_bound(processes_.begin(), processes_.end(),
                                                          process{pid, 0, 0}, by_pid<process>) -
                                         processes_.begin());
        while (cursor < processes_.size() && processes_[cursor].pid < pid)
            ++cursor;
        return cursor < processes_.size() && processes_[cursor].pid == pid ? &processes_[cursor]
                                                                           : nullptr;
    };

    while (const dirent* ent = ::readdir(proc.get()))
    {
        const std::string_view name = ent->d_name;
        std::int32_t pid = 0;
        const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
        if (ec != std::errc{} || end != name.data() + name.size() || pid <= 0)
            continue;
        ++out.processes;
        // Its CPU time before its link: if it has not moved at the next sweep, nothing of
        // the process ran in between, and what is read now still holds then. (A new process
        // with the same pid would have to have the same CPU time to the nanosecond.)
        const auto cpu = process_cpu_ns(pid);
        if (!cpu)
            continue; // exited meanwhile
        if (const auto* before = remembered(pid); before && *cpu != 0 && before->cpu_ns == *cpu)
        {
            hold(pid, before->ino, true, -1, nullptr, 0);
            seen.push_back(*before);
            const auto [first, last] = std::equal_range(threads_.begin(), threads_.end(),
                                                        thread{pid, 0, 0}, by_pid<thread>);
            for (auto t = first; t != last; ++t)
            {
                hold(pid, t->ino, true, -1, nullptr, t->tid);
                seen_threads.push_back(*t);
            }
            continue;
        }
        ++out.processes_read;
        netns_path(path, pid);
        // ENOENT (exited meanwhile) and EACCES (no ptrace access) are normal: skip.
        const auto n = ::readlinkat(proc_fd, path.data(), link.data(), link.size());
        if (n <= 0)
            continue;
        const auto ino =
            parse_netns_link(std::string_view(link.data(), static_cast<std::size_t>(n)));
        if (!ino)
            continue;
        hold(pid, *ino, false, proc_fd, path.data(), 0);
        seen.push_back({pid, *cpu, *ino});
        if (with_threads)
            sweep_threads(proc_fd, pid, *ino,
                          [&](std::uint64_t held, int at, const char* rel, std::int32_t tid)
                          {
                              hold(pid, held, false, at, rel, tid);
                              seen_threads.push_back({pid, tid, held});
                          });
    }
    if (!std::is_sorted(seen.begin(), seen.end(), by_pid<process>))
        std::sort(seen.begin(), seen.end(), by_pid<process>);
    if (!std::is_sorted(seen_threads.begin(), seen_threads.end(), by_pid<thread>))
        std::stable_sort(seen_threads.begin(), seen_threads.end(), by_pid<thread>);
    processes_ = std::move(seen);
    threads_ = std::move(seen_threads);

    // The known namespaces no process was seen in (held by mounts, names, fds, or by nothing
    // any more): asked now.
    std::unordered_map<std::uint64_t, const sweep_known*> settled;
    for (std::size_t i = 0; i < known.size(); ++i)
    {
        if (ask(i) == state::gone)
            out.gone.push_back(known[i].ns_id);
        else if (known[i].settled_pid > 0)
            settled.emplace(known[i].ino, &known[i]);
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
