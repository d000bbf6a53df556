#include "core/kernel/link_gather.hpp"

#include <algorithm>
#include <thread>

namespace netnsd::core::kernel
{
namespace
{

// Every `stride`-th target from `first`, on one socket of the calling thread's namespace.
void gather_share(std::span<const std::optional<nsid_t>> targets, std::size_t first,
                  std::size_t stride, std::vector<gathered_links>& out)
{
    link_dumper dumper;
    const auto opened = dumper.open();
    for (std::size_t i = first; i < targets.size(); i += stride)
    {
        if (opened)
        {
            out[i].ec = opened;
            continue;
        }
        out[i].ec = dumper.dump_links(targets[i], out[i].links);
    }
}

} // namespace

std::vector<gathered_links> gather_links(std::span<const std::optional<nsid_t>> targets,
                                         unsigned threads)
{
    std::vector<gathered_links> out(targets.size());
    // Small scrapes are not worth a thread.
    constexpr std::size_t min_per_thread = 64;
    const std::size_t n =
        std::clamp<std::size_t>(targets.size() / min_per_thread, 1, std::max(threads, 1U));
    std::vector<std::thread> helpers;
    helpers.reserve(n - 1);
    // Interleaved, so that each thread gets namespaces of every size. A helper thread starts
    // in the calling thread's network namespace (threads inherit it at clone()).
    for (std::size_t t = 1; t < n; ++t)
        helpers.emplace_back([&, t] { gather_share(targets, t, n, out); });
    gather_share(targets, 0, n, out);
    for (auto& h : helpers)
        h.join();
    return out;
}

} // namespace netnsd::core::kernel
