// The admin endpoints: add (and attach), delete, set nsid, exec, pids, identify. Each validates
// its input on the loop, then hands the kernel work (core/kernel/netns_admin, exec) to a worker
// as a `deferred`; the continuation runs on the loop, makes the model see the change at once
// (so a client that POSTs then GETs finds the entry), and builds the response. Owned by the
// router; loop thread only (the work closures capture only values).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/monitor.hpp"
#include "core/registry.hpp"

#include "api/http.hpp"

namespace netnsd::api
{

struct admin_settings
{
    bool enable_exec = false;
    std::size_t exec_output_limit = 1 << 20;
    std::size_t max_exec = 16;
    std::string etc_netns_dir = "/etc/netns";
};

class admin
{
public:
    using outcome = std::variant<response, deferred>;

    // exec timeouts: default and maximum, in milliseconds.
    static constexpr long default_exec_timeout_ms = 10000;
    static constexpr long max_exec_timeout_ms = 300000;

    admin(core::registry& model, core::monitor& watch, admin_settings settings);

    outcome create(const request& req);                          // POST /api/v1/netns
    outcome remove(std::string_view name);                       // DELETE /api/v1/netns/{name}
    outcome remove_all();                                        // DELETE /api/v1/netns?all=true
    outcome set_nsid(std::string_view name, const request& req); // PUT .../{name}/nsid
    outcome pids(std::string_view name);                         // GET .../{name}/pids
    outcome identify(std::string_view pid);                  // GET /api/v1/processes/{pid}/netns
    outcome exec(std::string_view name, const request& req); // POST .../{name}/exec

    std::size_t running_execs() const noexcept { return running_execs_; }
    const admin_settings& settings() const noexcept { return settings_; }

private:
    std::string path_of(std::string_view name) const;
    // 404 for a name the model does not have.
    response missing(const std::string& name) const;
    // Before a request is refused on the model's word: the model trails the kernel by the
    // notifications not read yet (an `ip netns add` a moment ago, a mount the loop has not
    // seen), so the name is probed once more and the model brought up to date.
    std::optional<core::entry> look_again(const std::string& name);
    // The entry, if it is live (looked at again when the model says otherwise); else the 404
    // or 409 to answer.
    std::variant<core::entry, response> live_entry(const std::string& name);

    core::registry& model_;
    core::monitor& watch_;
    admin_settings settings_;
    std::size_t running_execs_ = 0;
};

} // namespace netnsd::api
