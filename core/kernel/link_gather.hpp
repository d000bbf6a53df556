// link_gather: the links (with their IFLA_STATS64 counters) of many namespaces at once, for a
// scrape of the per-interface metrics. Each namespace is one RTM_GETLINK dump by its nsid in
// the caller's namespace (IFLA_TARGET_NETNSID), never entered. A netlink socket runs one dump
// at a time (a second one in flight is EBUSY), so the dumps are spread over a few threads, each
// with its own socket, and each thread's run one after another. Blocks: call it on a worker.
#pragma once

#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "core/kernel/link_dump.hpp"

namespace netnsd::core::kernel
{

// One namespace's answer: its links, or why there are none (the nsid went with its namespace:
// ENOENT or EINVAL; no permission: EPERM).
struct gathered_links
{
    std::error_code ec;
    std::vector<link_record> links;
};

// The links of each target, in the targets' order: an nsid of the calling thread's namespace,
// or nullopt for that namespace itself. `threads` (at least 1) is how many threads and sockets
// share the work; the calling thread is one of them.
std::vector<gathered_links> gather_links(std::span<const std::optional<nsid_t>> targets,
                                         unsigned threads);

} // namespace netnsd::core::kernel
