// What is inside the namespaces, on request: GET /api/v1/netns/{name}/links,
// /api/v1/namespaces/{ns_id}/links (links with their addresses, peers and counters) and
// /api/v1/topology (namespaces and bridges; veth pairs and bridge ports). Nothing is kept fresh
// in the background: a request dumps the namespaces it needs over rtnetlink on a worker
// (core/kernel/link_dump: by nsid, or by a short setns for a namespace without one), and each
// namespace's dump is kept at most max_age for the next request. The handlers run on the loop
// thread and read the I/O thread's replica of the model; the dumps run on a worker and touch
// nothing shared; the answer is made back on the loop. Owned by the router.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "core/kernel/link_dump.hpp"
#include "core/registry.hpp"

#include "api/http.hpp"

namespace netnsd::api
{

class link_views
{
public:
    // A namespace's dump answers requests for this long; counters are at most this old.
    static constexpr std::chrono::milliseconds max_age{1000};

    link_views(const core::registry& model, std::string netns_dir);

    using outcome = std::variant<response, deferred>;
    outcome netns_links(const std::string& name);
    outcome host_links(std::string_view raw_ns_id);
    outcome topology();

    // A namespace as a peer end names it.
    struct peer_ns
    {
        std::uint64_t ns_id = 0;
        std::optional<std::string> name; // its first name
    };
    // What the model knows of the namespaces' nsids, made once per change of the model and
    // shared, read-only, by the answers and the workers until the next: which namespace has
    // which nsid, netnsd's own, and where to open those it has none for (to ask the kernel
    // when a peer's nsid is new to the model).
    struct model_index
    {
        std::uint64_t host_generation = 0;
        core::revision_t revision = 0;
        std::map<core::nsid_t, peer_ns> by_nsid;
        std::map<std::uint64_t, peer_ns> by_ns_id;
        std::optional<peer_ns> self;
        std::vector<core::kernel::netns_locator> without_nsid;
    };

private:
    struct dumped
    {
        std::chrono::steady_clock::time_point at;
        std::shared_ptr<const core::kernel::netns_dump> dump;
    };
    // A namespace to dump (or whose fresh dump is at hand), as the model knows it now.
    struct target
    {
        core::kernel::netns_locator where;
        std::vector<std::string> names;
        std::shared_ptr<const core::kernel::netns_dump> cached;
    };
    struct result
    {
        std::shared_ptr<const core::kernel::netns_dump> dump;
        std::error_code ec;
        // nsids the worker learnt from the kernel for namespaces the model had none for (a dump
        // by nsid gives its peers' namespaces one): ns_id, nsid.
        std::vector<std::pair<std::uint64_t, core::nsid_t>> learnt;
    };

    std::shared_ptr<const model_index> index();
    std::optional<target> target_of(std::uint64_t ns_id);
    core::kernel::netns_locator locator_of(const core::host_namespace& h) const;
    // Dumps the targets without a fresh cached dump on a worker, then `answer` on the loop with
    // every target's result, in order.
    using answer_fn = std::function<response(const std::vector<target>&, const std::vector<result>&,
                                             const model_index&)>;
    outcome with_dumps(std::vector<target> targets, answer_fn answer);
    response links_body(const target& t, const result& r, const model_index& ix) const;
    response topology_body(const std::vector<target>& targets, const std::vector<result>& results,
                           const model_index& ix) const;
    void forget_old(std::chrono::steady_clock::time_point now);

    const core::registry& model_;
    std::string netns_dir_;
    std::map<std::uint64_t, dumped> cache_; // by ns_id
    std::shared_ptr<const model_index> index_;
};

} // namespace netnsd::api
