// mount_stacks: the mounts sitting on each entry of the netns dir, bottom to top, as the mount
// events report them. An entry is what its top mount is: a network namespace (live) or anything
// else (stale); an entry with no mount is stale. Kept by the monitor, so that a mount's detach,
// which names only the mount's id, says which entry changed and what it shows now, in kernel
// order, without a look at every entry. Model thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/model.hpp"

namespace netnsd::core
{

class mount_stacks
{
public:
    struct layer
    {
        std::uint64_t mount_id = 0;
        probe_result shows; // what the entry shows while this mount is on top
    };

    // A mount on `name`. A mount already known is left as it is (the first walk and the events
    // queued meanwhile both report it).
    void push(const std::string& name, std::uint64_t mount_id, const probe_result& shows);
    // A mount went: the entry it was on, or nullopt when it was none of ours.
    std::optional<std::string> pop(std::uint64_t mount_id);
    // The top mount of `name`, or nullptr when nothing is mounted on it.
    const layer* top(std::string_view name) const;
    // What `name` shows now, updated after a look at it (the identity of a lower mount is only
    // known once it is on top).
    void update_top(std::string_view name, const probe_result& shows);
    void clear();

    std::size_t mounts() const noexcept { return name_of_.size(); }
    bool has(std::uint64_t mount_id) const { return name_of_.count(mount_id) != 0; }

private:
    std::map<std::string, std::vector<layer>, std::less<>> by_name_;
    std::unordered_map<std::uint64_t, std::string> name_of_;
};

} // namespace netnsd::core
