#include "core/kernel/link_gather.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <sys/socket.h>
#include <thread>

#include "core/errc.hpp"
#include "core/kernel/errno.hpp"
#include "core/kernel/unique_fd.hpp"

namespace netnsd::core::kernel
{
namespace
{

// What one gathering thread keeps from namespace to namespace: its own namespace to come back
// to, and one dumper (with its receive buffer) whose socket is made inside each namespace it
// enters and closed after that namespace's dump. The thread goes from one namespace it reads
// straight to the next (one setns each, not two), and comes back before anything that needs
// its own namespace and when its share is done.
struct entering
{
    unique_fd home;
    bool away = false;
    link_dumper inside;

    // One namespace entered for a socket of its own; its fd is closed before the dump.
    std::error_code dump(const netns_locator& where, std::vector<link_record>& out)
    {
        if (!home)
        {
            home = open_thread_netns();
            if (!home)
                return last_error();
        }
        {
            const auto fd = open_located(where);
            if (!fd)
                return errc::not_found;
            // On failure the thread is where it was: home, or the namespace read before.
            if (::setns(fd.get(), CLONE_NEWNET) != 0)
                return last_error();
            away = true;
        }
        if (auto ec = inside.open())
            return ec;
        const auto ec = inside.dump_links(std::nullopt, out);
        inside.close(); // a socket held would keep the namespace alive
        return ec;
    }

    // Back in the thread's own namespace; false when it cannot be (the thread must not be used).
    bool come_home()
    {
        if (!away)
            return true;
        if (::setns(home.get(), CLONE_NEWNET) != 0)
            return false;
        away = false;
        return true;
    }
};

// Targets in the order of `next`, until there are none left, on one socket of the calling
// thread's namespace (made when the first target by nsid or of its own namespace comes).
void gather_share(std::span<const gather_target> targets, std::atomic<std::size_t>& next,
                  std::vector<gathered_links>& out, own_links* own)
{
    link_dumper here;
    std::optional<std::error_code> opened;
    entering entered;
    std::optional<std::size_t> last;
    // This thread is in another namespace: whatever it read next would be that namespace's.
    // Nothing more is read (the caller stops).
    auto lost_from = [&](std::size_t i)
    {
        for (; i < targets.size(); i = next++)
            out[i].ec = errc::thread_netns_lost;
    };
    for (std::size_t i = next++; i < targets.size(); i = next++)
    {
        last = i;
        const auto& t = targets[i];
        if (t.how == gather_target::way::inside)
        {
            out[i].ec = entered.dump(t.where, out[i].links);
            continue;
        }
        if (!entered.come_home())
            return lost_from(i);
        if (!opened)
            opened = here.open();
        if (*opened)
        {
            out[i].ec = *opened;
            continue;
        }
        if (t.how == gather_target::way::own && own != nullptr)
        {
            out[i].ec = own->read(here, out[i].links, out[i].from_cache);
            continue;
        }
        const auto target =
            t.how == gather_target::way::by_nsid ? std::optional<nsid_t>(t.nsid) : std::nullopt;
        out[i].ec = here.dump_links(target, out[i].links);
    }
    if (!entered.come_home() && last)
        out[*last].ec = errc::thread_netns_lost; // read, but the thread is stuck: the caller stops
}

} // namespace

std::vector<gathered_links> gather_links(std::span<const gather_target> targets, unsigned threads,
                                         own_links* own)
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
        helpers.emplace_back([&] { gather_share(targets, next, out, own); });
    gather_share(targets, next, out, own);
    for (auto& h : helpers)
        h.join();
    return out;
}

// --- own_links -----------------------------------------------------------------------------

bool own_links::heard_changes()
{
    std::array<std::byte, 8192> buf;
    bool heard = false;
    for (int i = 0; i < max_drain; ++i)
    {
        const auto n = ::recv(listener_.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n >= 0)
        {
            heard = true;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return heard;
        return true; // ENOBUFS: notifications were dropped; anything else: not to be trusted
    }
    return true;
}

std::error_code own_links::dump(link_dumper& here)
{
    valid_ = false;
    if (auto ec = here.dump_links(std::nullopt, links_))
        return ec;
    std::sort(links_.begin(), links_.end(),
              [](const link_record& a, const link_record& b) { return a.ifindex < b.ifindex; });
    // Without a listener nothing says when they change: every read dumps.
    valid_ = static_cast<bool>(listener_);
    return {};
}

std::error_code own_links::read(link_dumper& here, std::vector<link_record>& out, bool& from_cache)
{
    const std::lock_guard lock(mutex_);
    from_cache = false;
    if (!listener_tried_)
    {
        // Before the first dump, so that no change after it goes unheard.
        listener_tried_ = true;
        unique_fd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE));
        sockaddr_nl local{};
        local.nl_family = AF_NETLINK;
        local.nl_groups = RTMGRP_LINK;
        if (fd && ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&local), sizeof(local)) == 0)
            listener_ = std::move(fd);
    }
    const bool changed = !listener_ || heard_changes();
    if (!changed && valid_)
    {
        std::vector<link_stats_record> stats;
        if (here.dump_stats(stats))
            stats.clear(); // a dump will say it, or why not
        std::sort(stats.begin(), stats.end(),
                  [](const link_stats_record& a, const link_stats_record& b)
                  { return a.ifindex < b.ifindex; });
        // A link made or removed since the drain has its notification queued: dump now.
        const bool same = std::equal(stats.begin(), stats.end(), links_.begin(), links_.end(),
                                     [](const link_stats_record& a, const link_record& b)
                                     { return a.ifindex == b.ifindex; });
        if (same && !stats.empty())
        {
            for (std::size_t i = 0; i < stats.size(); ++i)
                links_[i].counters = stats[i].counters;
            out = links_;
            from_cache = true;
            return {};
        }
    }
    if (auto ec = dump(here))
        return ec;
    out = links_;
    return {};
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
