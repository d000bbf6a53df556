#include "core/kernel/proc_sweep.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
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

proc_sweep sweep_processes(const std::vector<sweep_known>& known)
{
    const auto started = std::chrono::steady_clock::now();
    proc_sweep out;
    // Handles first: an inode read after this belongs to a namespace alive at this point, or
    // to a new one, never to one freed before it (whose inode may be reused).
    std::unordered_set<std::uint64_t> known_inodes;
    known_inodes.reserve(known.size());
    for (const auto& k : known)
    {
        if (k.handle && liveness_of(*k.handle) == ns_liveness::gone)
            out.gone.push_back(k.ns_id);
        else
            known_inodes.insert(k.ino);
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
        auto& pids = out.pids_by_inode[*ino];
        if (pids.empty() && known_inodes.count(*ino) == 0 && out.found.count(*ino) == 0)
        {
            const unique_fd fd(::openat(proc_fd, path.data(), O_RDONLY | O_CLOEXEC));
            if (fd)
            {
                if (const auto id = identify_netns(fd.get()); id && id->ino == *ino)
                {
                    out.found.emplace(*ino, swept_namespace{*id, handle_of_fd(fd.get())});
                }
            }
        }
        pids.push_back(pid);
    }
    // readdir of /proc lists pids ascending, but not guaranteed: sort.
    for (auto& [ino, pids] : out.pids_by_inode)
        std::sort(pids.begin(), pids.end());
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return out;
}

} // namespace netnsd::core::kernel
