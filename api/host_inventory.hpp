// The host inventory's read routes: GET /api/v1/namespaces (filters held_by=, leak=), one
// namespace by ns_id, its processes, a page at a time, and the namespace of one process. They read
// the I/O thread's replica of the registry; the processes' comm, uid and cgroup are read from /proc
// for the page asked (at most max_page_size small files of three per process), the pids from the
// model. Pure functions of the model (and /proc); I/O thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/registry.hpp"

#include "api/http.hpp"

namespace netnsd::api
{

struct host_page_limits
{
    static constexpr std::size_t default_page_size = 100;
    static constexpr std::size_t max_page_size = 1000;
};

// The unfiltered list's body, made once per change of the inventory (host_generation) and
// shared by every answer until the next: a dashboard polling it costs a copy of a pointer.
class host_list_cache
{
public:
    explicit host_list_cache(const core::registry& model) : model_(model) {}
    std::shared_ptr<const std::string> body();

private:
    const core::registry& model_;
    std::uint64_t generation_ = ~std::uint64_t{0};
    std::shared_ptr<const std::string> body_;
};

// cache: the unfiltered list's bodies (nullptr: made for this answer alone).
response list_hosts(const core::registry& model, std::string_view query,
                    host_list_cache* cache = nullptr);
response get_host(const core::registry& model, std::string_view raw_ns_id);
response host_processes(const core::registry& model, std::string_view raw_ns_id,
                        std::string_view query);
// GET /api/v1/processes/{pid}/netns: the namespace the process was in at the last sweep, as
// get_host shows it; 404 no-such-process when no namespace had it then.
response process_host(const core::registry& model, std::string_view raw_pid);

} // namespace netnsd::api
