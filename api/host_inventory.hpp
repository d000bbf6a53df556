// The host inventory's read routes: GET /api/v1/namespaces (filters held_by=, leak=), one
// namespace by ns_id, and its processes, a page at a time. They read the I/O thread's replica
// of the registry; the processes' comm, uid and cgroup are read from /proc for the page asked
// (at most max_page_size small files of three per process), the pids from the model. Pure
// functions of the model (and /proc); I/O thread.
#pragma once

#include <cstddef>
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

response list_hosts(const core::registry& model, std::string_view query);
response get_host(const core::registry& model, std::string_view raw_ns_id);
response host_processes(const core::registry& model, std::string_view raw_ns_id,
                        std::string_view query);

} // namespace netnsd::api
