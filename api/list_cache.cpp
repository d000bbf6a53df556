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
        // One entry at a time: no tree of thousands of objects, whose freed nodes glibc keeps
        // (the list body itself is the only large allocation).
        std::string out;
        out.reserve(entries_.size() + 256);
        out.push_back('[');
        for (const auto& item : model_.slots())
        {
            if (out.size() > 1)
                out.push_back(',');
            out.append(dump(to_json(model_.to_entry(item), netns_dir_)));
        }
        out.push_back(']');
        entries_ = std::move(out);
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
