// link_gather: the links (with their IFLA_STATS64 counters) of many namespaces at once, for a
// scrape of the per-interface metrics. A namespace is read one of two ways, both one
// RTM_GETLINK dump:
//   by nsid   from a socket in the caller's namespace, with IFLA_TARGET_NETNSID: never entered;
//   inside    on a socket made inside it (the thread enters it, goes on to the next namespace
//             it reads or back to its own, and the socket is closed after the dump: nothing is
//             kept there).
// Which way is the caller's choice (nsid_walk_length says what a dump by nsid costs). A netlink
// socket runs one dump at a time (a second one in flight is EBUSY), so the dumps are spread
// over a few threads, each with its own socket. Blocks: call it on a worker.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <span>
#include <system_error>
#include <vector>

#include "core/kernel/link_dump.hpp"
#include "core/kernel/unique_fd.hpp"

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

// The caller's own namespace, read scrape after scrape. Its RTM_GETLINK dump costs the kernel,
// for every veth whose peer is in another namespace, a walk of the caller's nsid table to the
// peer's nsid (peernet2id: idr_for_each in nsid order), O(veths x nsids): ~250 ms of kernel
// time at 5000 containers wired to the host, with the table's lock held. RTM_GETSTATS names no
// peer. So the links (names, state, kinds) are kept from one dump to the next while a listener
// of the namespace's link group (RTNLGRP_LINK of the caller's namespace only, a socket the
// kernel serves on a link change there and nowhere else) hears nothing, and a read then takes
// only the counters from RTM_GETSTATS. Any link notification, an overflowed listener, or a
// different set of ifindexes means a fresh dump: what a read returns is what a dump at the
// start of the read would have said, counters included. Thread-safe (one read at a time).
class own_links
{
public:
    // The links with their counters into `out`, from `here` (a dumper on a socket of the
    // caller's namespace, the thread being there too: the listener is made on the first read);
    // `from_cache` says whether the names and states were kept (true) or dumped.
    std::error_code read(link_dumper& here, std::vector<link_record>& out, bool& from_cache);

    // At most this many datagrams are drained from the listener per read; more means a fresh
    // dump anyway.
    static constexpr int max_drain = 1024;

private:
    // Drains the listener: true when it said anything, overflowed, or cannot be read.
    bool heard_changes();
    std::error_code dump(link_dumper& here);

    std::mutex mutex_;
    unique_fd listener_;
    bool listener_tried_ = false;
    bool valid_ = false;
    std::vector<link_record> links_; // ascending ifindex
};

// One namespace's answer: its links, or why there are none (the nsid went with its namespace:
// ENOENT or EINVAL; no path or process of the locator is it any more: errc::not_found; no
// permission: EPERM; errc::thread_netns_lost: a thread could not come back from the namespace
// it entered, and nothing more was read: the caller must stop using its thread).
struct gathered_links
{
    std::error_code ec;
    std::vector<link_record> links;
    bool from_cache = false; // the own namespace's names and states came from `own_links`
};

// The links of each target, in the targets' order. `threads` (at least 1) is how many threads
// and sockets share the work; the calling thread is one of them. Each takes the next target
// when it is done: put the costliest first (netnsd's own namespace, see nsid_walk_length).
// `own`, when given, reads the target of way::own (see own_links).
std::vector<gathered_links> gather_links(std::span<const gather_target> targets, unsigned threads,
                                         own_links* own = nullptr);

// How many entries of a namespace's nsid table the kernel walks to find that namespace's own
// nsid, as it does for every link whose peer is in that namespace (a container's veth to the
// host) in each dump by nsid made from it: peernet2id_alloc() looks the peer up with
// idr_for_each over the table in nsid order, and allocates the lowest free nsid when the peer
// has none. `table`: the nsids the namespace has for others (any order); `self`: its nsid for
// itself, if any. A host whose own nsid came after thousands of containers' pays that walk once
// per container per scrape: O(N^2).
std::size_t nsid_walk_length(std::span<const nsid_t> table, std::optional<nsid_t> self);

} // namespace netnsd::core::kernel
