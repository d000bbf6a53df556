// list_cache: the JSON of every entry, rebuilt only when the registry's generation moves, and
// shared by GET /api/v1/netns and the stream's snapshot frames. Owned by main; loop thread.
#pragma once

#include <cstdint>
#include <string>

#include "core/registry.hpp"

namespace netnsd::api
{

class list_cache
{
public:
    list_cache(const core::registry& model, std::string netns_dir);

    // "[entry,...]" sorted by name.
    const std::string& entries_json();
    // {"namespaces":[...],"revision":R}
    std::string list_body();
    const std::string& netns_dir() const noexcept { return netns_dir_; }

private:
    const core::registry& model_;
    std::string netns_dir_;
    std::uint64_t generation_ = ~std::uint64_t{0};
    std::string entries_;
};

} // namespace netnsd::api
