// fake_netns_source: an in-memory netns_source for unit tests of the reconciler. The test sets
// what the "kernel" shows (each name and what a probe of it finds, the nsids that exist, what
// the nsid dump returns) and reads how many probes were made. Test thread only.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "core/model.hpp"
#include "core/netns_source.hpp"

namespace netnsd::test
{

class fake_netns_source final : public core::netns_source
{
public:
    // name -> what a probe of it finds. A name that is not here probes as gone (exists false),
    // like a file that vanished (the real probe's open() fails with ENOENT).
    std::map<std::string, core::probe_result, std::less<>> entries;
    std::set<core::nsid_t> existing_nsids;
    std::vector<core::nsid_t> dump;
    std::error_code list_error; // when set, list() fails with it
    std::size_t probe_count = 0;
    std::size_t still_is_count = 0;
    std::vector<std::string> probed; // every probed name, in order
    // Called after each look with the name looked at: the "kernel" moving on between two
    // looks (a name unmounted and unlinked just after netnsd saw it).
    std::function<void(std::string_view)> after_look;

    // `ip netns add` finished: the name is a bind mount of namespace `id`.
    void mount(const std::string& name, const core::ns_identity& id,
               std::optional<core::nsid_t> nsid = std::nullopt)
    {
        entries[name] = core::probe_result{core::entry_state::live, id, nsid};
        if (nsid)
            existing_nsids.insert(*nsid);
    }

    // The file exists but nothing is mounted on it (before the bind mount, or after umount).
    void placeholder(const std::string& name) { entries[name] = core::probe_result{}; }

    void remove(const std::string& name) { entries.erase(name); }

    // `ip netns set`: the namespace behind `name` gets `nsid`, and so do its other names.
    void assign_nsid(const std::string& name, core::nsid_t nsid)
    {
        const auto id = entries.at(name).identity;
        for (auto& [other, probe] : entries)
            if (probe.state == core::entry_state::live && probe.identity == id)
                probe.nsid = nsid;
        existing_nsids.insert(nsid);
    }

    std::error_code list(std::vector<std::string>& names) override
    {
        names.clear();
        if (list_error)
            return list_error;
        // readdir order is no order: hand the names out backwards so that nothing relies on it.
        for (auto it = entries.rbegin(); it != entries.rend(); ++it)
            names.push_back(it->first);
        return {};
    }

    core::probe_result probe(std::string_view name) override
    {
        ++nsid_asks;
        return look_at(name);
    }

    // The same look without the nsid, which the "kernel" is not asked for.
    core::probe_result probe_without_nsid(std::string_view name) override
    {
        auto found = look_at(name);
        found.nsid.reset();
        return found;
    }

    std::size_t nsid_asks = 0; // probe() calls: each one asks the "kernel" an nsid

    core::probe_result look_at(std::string_view name)
    {
        ++probe_count;
        probed.emplace_back(name);
        const auto it = entries.find(name);
        // A name that is not here is gone, as open() failing with ENOENT says.
        core::probe_result found;
        if (it == entries.end())
            found.exists = false;
        else
            found = it->second;
        if (after_look)
            after_look(name);
        return found;
    }

    bool still_is(std::string_view name, const core::ns_identity& id) override
    {
        ++still_is_count;
        const auto it = entries.find(name);
        return it != entries.end() && it->second.state == core::entry_state::live &&
               it->second.identity == id;
    }

    bool nsid_exists(core::nsid_t nsid) override { return existing_nsids.count(nsid) != 0; }

    std::vector<core::nsid_t> dump_nsids() override { return dump; }
};

} // namespace netnsd::test
