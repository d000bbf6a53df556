// netns_source: what the reconciler asks of the kernel. kernel::netns_dir is the real one;
// tests/support/fake_netns_source.hpp is an in-memory one that unit tests drive.
// Called on the loop thread; every call returns within microseconds.
#pragma once

#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/model.hpp"

namespace netnsd::core
{

class netns_source
{
public:
    virtual ~netns_source() = default;

    // The names in the netns dir, without "." and "..".
    virtual std::error_code list(std::vector<std::string>& names) = 0;
    // Opens the name, classifies it, learns its identity and nsid, closes it. Never keeps an fd:
    // an open fd would keep a deleted namespace alive.
    virtual probe_result probe(std::string_view name) = 0;
    // As probe, but the nsid need not be asked (it may be left empty): for a scan that knows it.
    virtual probe_result probe_without_nsid(std::string_view name) { return probe(name); }
    // Cheap check (one stat, no netlink) that a live name still is the namespace `id`.
    virtual bool still_is(std::string_view name, const ns_identity& id) = 0;
    // Whether the kernel still has `nsid` allocated.
    virtual bool nsid_exists(nsid_t nsid) = 0;
    // The nsid dump: possibly truncated (Linux 6.18 stops at 134 entries), so only a hint.
    virtual std::vector<nsid_t> dump_nsids() = 0;
};

} // namespace netnsd::core
