// link_gather: the links (with their IFLA_STATS64 counters) of many namespaces at once, for a
// scrape of the per-interface metrics. A namespace is read one of two ways, both one
// RTM_GETLINK dump:
//   by nsid   from a socket in the caller's namespace, with IFLA_TARGET_NETNSID: never entered;
//   inside    on a socket made inside it (the thread enters it for the socket() call only and
//             the socket is closed after the dump: nothing is kept there).
// Which way is the caller's choice (nsid_walk_length says what a dump by nsid costs). A netlink
// socket runs one dump at a time (a second one in flight is EBUSY), so the dumps are spread
// over a few threads, each with its own socket. Blocks: call it on a worker.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "core/kernel/link_dump.hpp"

namespace netnsd::core::kernel
{

// How to read one namespace.
struct gather_target
{
    enum class way
    {
        own,     // the caller's namespace itself (no target)
        by_nsid, // `nsid`, an nsid of the caller's namespace
        inside,  // `where`, opened and entered for the socket
    };
    way how = way::own;
    nsid_t nsid = 0;
    netns_locator where;
};

// One namespace's answer: its links, or why there are none (the nsid went with its namespace:
// ENOENT or EINVAL; no path or process of the locator is it any more: errc::not_found; no
// permission: EPERM; errc::thread_netns_lost: a thread could not come back from the namespace
// it entered, and nothing more was read: the caller must stop using its thread).
struct gathered_links
{
    std::error_code ec;
    std::vector<link_record> links;
};

// The links of each target, in the targets' order. `threads` (at least 1) is how many threads
// and sockets share the work; the calling thread is one of them. Each takes the next target
// when it is done: put the costliest first (netnsd's own namespace, see nsid_walk_length).
std::vector<gathered_links> gather_links(std::span<const gather_target> targets, unsigned threads);

// How many entries of a namespace's nsid table the kernel walks to find that namespace's own
// nsid, as it does for every link whose peer is in that namespace (a container's veth to the
// host) in each dump by nsid made from it: peernet2id_alloc() looks the peer up with
// idr_for_each over the table in nsid order, and allocates the lowest free nsid when the peer
// has none. `table`: the nsids the namespace has for others (any order); `self`: its nsid for
// itself, if any. A host whose own nsid came after thousands of containers' pays that walk once
// per container per scrape: O(N^2).
std::size_t nsid_walk_length(std::span<const nsid_t> table, std::optional<nsid_t> self);

} // namespace netnsd::core::kernel
