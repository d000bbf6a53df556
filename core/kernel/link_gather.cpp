#include "core/kernel/link_gather.hpp"

#include <algorithm>
#include <atomic>
#include <thread>

#include "core/errc.hpp"

namespace netnsd::core::kernel
{
namespace
{

// One namespace entered for a socket of its own; the fd is closed before the dump.
std::error_code dump_inside(const netns_locator& where, std::vector<link_record>& out)
{
    link_dumper inside;
    {
        const auto fd = open_located(where);
        if (!fd)
            return errc::not_found;
        if (auto ec = inside.open_in(fd.get()))
            return ec;
    }
    return inside.dump_links(std::nullopt, out);
}

// Targets in the order of `next`, until there are none left, on one socket of the calling
// thread's namespace (made when the first target by nsid or of its own namespace comes).
void gather_share(std::span<const gather_target> targets, std::atomic<std::size_t>& next,
                  std::vector<gathered_links>& out)
{
    link_dumper here;
    std::optional<std::error_code> opened;
    for (std::size_t i = next++; i < targets.size(); i = next++)
    {
        const auto& t = targets[i];
        if (t.how == gather_target::way::inside)
        {
            out[i].ec = dump_inside(t.where, out[i].links);
            if (out[i].ec == errc::thread_netns_lost)
            {
                // This thread is in another namespace: whatever it read next would be that
                // namespace's. Nothing more is read (the caller stops).
                for (i = next++; i < targets.size(); i = next++)
                    out[i].ec = errc::thread_netns_lost;
                return;
            }
            continue;
        }
        if (!opened)
            opened = here.open();
        if (*opened)
        {
            out[i].ec = *opened;
            continue;
        }
        const auto target =
            t.how == gather_target::way::by_nsid ? std::optional<nsid_t>(t.nsid) : std::nullopt;
        out[i].ec = here.dump_links(target, out[i].links);
    }
}

} // namespace

std::vector<gathered_links> gather_links(std::span<const gather_target> targets, unsigned threads)
{
    std::vector<gathered_links> out(targets.size());
    // Small scrapes are not worth a thread.
    constexpr std::size_t min_per_thread = 64;
    const std::size_t n =
        std::clamp<std::size_t>(targets.size() / min_per_thread, 1, std::max(threads, 1U));
    // Each thread takes the next target when it is done with one: the caller's own namespace,
    // which can cost as much as all the others (see nsid_walk_length), does not hold up a
    // share of them. A helper thread starts in the calling thread's network namespace (threads
    // inherit it at clone()).
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> helpers;
    helpers.reserve(n - 1);
    for (std::size_t t = 1; t < n; ++t)
        helpers.emplace_back([&] { gather_share(targets, next, out); });
    gather_share(targets, next, out);
    for (auto& h : helpers)
        h.join();
    return out;
}

std::size_t nsid_walk_length(std::span<const nsid_t> table, std::optional<nsid_t> self)
{
    if (self)
        return static_cast<std::size_t>(
            std::count_if(table.begin(), table.end(), [&](nsid_t id) { return id < *self; }));
    // None yet: the first dump by nsid gives it the lowest free one; every nsid below that is
    // taken.
    std::vector<nsid_t> sorted(table.begin(), table.end());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    std::size_t lowest_free = 0;
    for (const auto id : sorted)
    {
        if (id < 0)
            continue;
        if (static_cast<std::size_t>(id) != lowest_free)
            break;
        ++lowest_free;
    }
    return lowest_free;
}

} // namespace netnsd::core::kernel
