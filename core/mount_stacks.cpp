#include "core/mount_stacks.hpp"

#include <algorithm>

namespace netnsd::core
{

void mount_stacks::push(const std::string& name, std::uint64_t mount_id, const probe_result& shows)
{
    if (!name_of_.emplace(mount_id, name).second)
        return;
    by_name_[name].push_back({mount_id, shows});
}

std::optional<std::string> mount_stacks::pop(std::uint64_t mount_id)
{
    const auto found = name_of_.find(mount_id);
    if (found == name_of_.end())
        return std::nullopt;
    auto name = std::move(found->second);
    name_of_.erase(found);
    const auto stack = by_name_.find(name);
    if (stack != by_name_.end())
    {
        // Usually the top; a lower one goes when a whole tree is unmounted at once.
        std::erase_if(stack->second, [&](const layer& l) { return l.mount_id == mount_id; });
        if (stack->second.empty())
            by_name_.erase(stack);
    }
    return name;
}

const mount_stacks::layer* mount_stacks::top(std::string_view name) const
{
    const auto stack = by_name_.find(name);
    return stack == by_name_.end() ? nullptr : &stack->second.back();
}

void mount_stacks::update_top(std::string_view name, const probe_result& shows)
{
    const auto stack = by_name_.find(name);
    if (stack != by_name_.end())
        stack->second.back().shows = shows;
}

void mount_stacks::clear()
{
    by_name_.clear();
    name_of_.clear();
}

} // namespace netnsd::core
