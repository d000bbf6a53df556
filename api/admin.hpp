// The admin endpoints: add (and attach), delete, set nsid, exec, pids, audit, deep scan. Each
// validates its input on the loop, then hands the kernel work (core::netns_ops) to a worker as
// a `deferred`. The kernel, not the model, decides whether a name exists or is live: the model
// trails the kernel by the notifications not read yet. A job that changes names lists them in
// `refresh`, so that the transport has the model look at them before the continuation runs on
// the loop and builds the response from the model (a client that POSTs then GETs finds the
// entry). Owned by the router; loop thread only (the work closures capture only values and the
// thread-safe ops).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

#include "core/model_control.hpp"
#include "core/netns_ops.hpp"
#include "core/registry.hpp"

#include "api/http.hpp"

namespace netnsd::api
{

struct admin_settings
{
    // Execs at once (--max-exec); the exec defaults are core::kernel::exec_request's.
    static constexpr std::size_t default_max_exec = 16;

    bool enable_exec = false;
    std::size_t exec_output_limit = core::kernel::exec_request::default_output_limit;
    std::size_t max_exec = default_max_exec;
    std::string etc_netns_dir{core::kernel::exec_request::default_etc_netns_dir};
};

class admin
{
public:
    using outcome = std::variant<response, deferred>;

    // exec timeouts: default and maximum, in milliseconds.
    static constexpr long default_exec_timeout_ms =
        core::kernel::exec_request::default_timeout.count();
    static constexpr long max_exec_timeout_ms = 300000;

    admin(const core::registry& model, core::netns_ops& ops, std::string netns_dir,
          admin_settings settings, core::model_control* control = nullptr);

    outcome create(const request& req);                          // POST /api/v1/netns
    outcome remove(std::string_view name);                       // DELETE /api/v1/netns/{name}
    outcome remove_all();                                        // DELETE /api/v1/netns?all=true
    outcome set_nsid(std::string_view name, const request& req); // PUT .../{name}/nsid
    outcome pids(std::string_view name);                         // GET .../{name}/pids
    outcome exec(std::string_view name, const request& req);     // POST .../{name}/exec
    outcome audit();                                             // POST /api/v1/audit
    outcome deep_scan();                                         // POST /api/v1/namespaces/scan

    std::size_t running_execs() const noexcept { return running_execs_; }
    const admin_settings& settings() const noexcept { return settings_; }

private:
    // The entry as the model has it now, as a response (`status` on success).
    response entry_response(const std::string& name, unsigned status) const;
    // The problem for a kernel failure on `name`.
    response failure(const std::error_code& ec, const std::string& detail,
                     const std::string& name) const;

    const core::registry& model_;
    core::netns_ops& ops_;
    std::string netns_dir_;
    admin_settings settings_;
    core::model_control* control_;
    std::size_t running_execs_ = 0;
};

} // namespace netnsd::api
