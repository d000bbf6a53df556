#include "api/list_cache.hpp"

#include "api/json.hpp"

namespace netnsd::api
{
namespace
{

constexpr std::string_view prefix = "{\"namespaces\":";

} // namespace

list_cache::list_cache(const core::registry& model, std::string netns_dir)
    : model_(model), netns_dir_(std::move(netns_dir))
{
}

void list_cache::refresh()
{
    const bool entries_changed = generation_ != model_.generation();
    if (body_ && !entries_changed && revision_ == model_.revision())
        return;
    const auto revision = std::to_string(model_.revision());
    std::string out;
    out.reserve(prefix.size() + entries_size_ + revision.size() + 256);
    out.append(prefix);
    if (entries_changed || !body_)
    {
        // One entry at a time: no tree of thousands of objects, whose freed nodes glibc keeps.
        out.push_back('[');
        bool first = true;
        for (const auto& item : model_.slots())
        {
            if (!first)
                out.push_back(',');
            first = false;
            out.append(dump(to_json(model_.to_entry(item), netns_dir_)));
        }
        out.push_back(']');
        entries_size_ = out.size() - prefix.size();
    }
    else
    {
        // Only the revision moved (an event about an unnamed namespace): the same entries.
        out.append(*body_, prefix.size(), entries_size_);
    }
    out.append(",\"revision\":").append(revision).push_back('}');
    body_ = std::make_shared<const std::string>(std::move(out));
    generation_ = model_.generation();
    revision_ = model_.revision();
}

std::string_view list_cache::entries_json()
{
    refresh();
    return std::string_view(*body_).substr(prefix.size(), entries_size_);
}

std::shared_ptr<const std::string> list_cache::list_body()
{
    refresh();
    return body_;
}

std::shared_ptr<const std::string> list_cache::entry_body(std::string_view name)
{
    if (entry_bodies_generation_ != model_.generation())
    {
        entry_bodies_.clear();
        entry_bodies_generation_ = model_.generation();
    }
    if (const auto kept = entry_bodies_.find(name); kept != entry_bodies_.end())
        return kept->second;
    const auto slot = model_.slots().find(name);
    if (slot == model_.slots().end())
        return nullptr;
    auto body =
        std::make_shared<const std::string>(dump(to_json(model_.to_entry(*slot), netns_dir_)));
    entry_bodies_.emplace(std::string(name), body);
    return body;
}

} // namespace netnsd::api
