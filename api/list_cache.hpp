// list_cache: the body of GET /api/v1/netns, {"namespaces":[...],"revision":R}, rebuilt only
// when the model changes, and shared (not copied) with every response that sends it: at 5000
// entries it is ~0.9 MB, which a copy per request would allocate, fault in and free each time.
// The stream's snapshot frames read the entries array out of the same bytes. Owned by main;
// loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "core/registry.hpp"

namespace netnsd::api
{

class list_cache
{
public:
    list_cache(const core::registry& model, std::string netns_dir);

    // "[entry,...]" sorted by name: a view into the cached body, valid until the model changes
    // and this cache is asked again.
    std::string_view entries_json();
    // {"namespaces":[...],"revision":R}. Responses keep their body alive by this pointer; a
    // rebuild makes a new one and leaves theirs alone.
    std::shared_ptr<const std::string> list_body();
    // One entry as GET /api/v1/netns/NAME shows it, made once and kept until the entries
    // change (a busy client asks for the same ones again and again); nullptr when there is no
    // entry of that name.
    std::shared_ptr<const std::string> entry_body(std::string_view name);
    const std::string& netns_dir() const noexcept { return netns_dir_; }

private:
    void refresh();

    const core::registry& model_;
    std::string netns_dir_;
    std::uint64_t generation_ = ~std::uint64_t{0}; // of the entries in body_
    core::revision_t revision_ = 0;                // in body_
    std::shared_ptr<const std::string> body_;
    std::size_t entries_size_ = 0; // the array, which starts right after the prefix
    std::uint64_t entry_bodies_generation_ = ~std::uint64_t{0};
    std::map<std::string, std::shared_ptr<const std::string>, std::less<>> entry_bodies_;
};

} // namespace netnsd::api
