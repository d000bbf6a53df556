#include "api/list_cache.hpp"

#include "api/json.hpp"

namespace netnsd::api
{

list_cache::list_cache(const core::registry& model, std::string netns_dir)
    : model_(model), netns_dir_(std::move(netns_dir))
{
}

const std::string& list_cache::entries_json()
{
    if (generation_ != model_.generation())
    {
        json list = json::array();
        for (const auto& item : model_.slots())
            list.push_back(to_json(model_.to_entry(item), netns_dir_));
        entries_ = dump(list);
        generation_ = model_.generation();
    }
    return entries_;
}

std::string list_cache::list_body()
{
    const auto& entries = entries_json();
    std::string body;
    body.reserve(entries.size() + 48);
    body.append("{\"namespaces\":").append(entries).append(",\"revision\":");
    body.append(std::to_string(model_.revision())).append("}");
    return body;
}

} // namespace netnsd::api
