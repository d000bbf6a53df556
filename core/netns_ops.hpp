// netns_ops: what the admin API asks the kernel to do with namespaces, behind one narrow
// interface, so that api/ never calls core/kernel itself and its unit tests can drive every
// response through a fake (tests/support/fake_netns_ops.hpp) without root. The real one is
// kernel::system_netns_ops. Every call blocks (mounts, the kernel's net_mutex, a /proc scan,
// a child process): worker threads only. Implementations keep no state between calls, so
// several workers may call at once. Expected failures are std::error_code values (errno, or
// core::errc) with a sentence in `detail` for the problem response.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <system_error>
#include <vector>

#include "core/kernel/exec.hpp"
#include "core/model.hpp"

namespace netnsd::core
{

class netns_ops
{
public:
    // What a delete found out on the way.
    struct removal
    {
        // Whether the namespace outlived its name; nullopt when the kernel cannot tell (the
        // caller then judges from the processes and the other names its model knows).
        std::optional<bool> alive;
        std::optional<ns_identity> identity; // nullopt for a stale entry
    };

    virtual ~netns_ops() = default;

    // `ip netns add NAME`. errc::already_exists, errc::thread_netns_lost (the calling thread is
    // stuck in another namespace: the process must not go on).
    virtual std::error_code create(const std::string& name, std::string& detail) = 0;
    // `ip netns attach NAME PID`. errc::no_such_process, errc::already_exists.
    virtual std::error_code attach(const std::string& name, pid_t pid, std::string& detail) = 0;
    // `ip netns del NAME`. errc::not_found, errc::busy, errc::not_a_namespace (a directory).
    virtual std::error_code remove(const std::string& name, removal& out, std::string& detail) = 0;
    // `ip netns set NAME N|auto`: the nsid the namespace has now. errc::nsid_assigned,
    // errc::nsid_in_use, errc::not_a_namespace, errc::not_found.
    virtual std::optional<nsid_t> set_nsid(const std::string& name, std::optional<nsid_t> want,
                                           std::error_code& ec, std::string& detail) = 0;
    // The namespace NAME binds. errc::not_found, errc::not_a_namespace (stale).
    virtual std::optional<ns_identity> identity_of(const std::string& name, std::error_code& ec,
                                                   std::string& detail) = 0;
    // `ip netns pids`: the processes in a namespace, ascending.
    virtual std::vector<pid_t> pids_in(const ns_identity& id) = 0;
    // `ip netns exec NAME argv...` (req.netns_path is filled in from the name).
    virtual kernel::exec_result exec(kernel::exec_request req) = 0;
};

} // namespace netnsd::core
