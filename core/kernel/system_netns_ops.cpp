#include "core/kernel/system_netns_ops.hpp"

#include <fcntl.h>

#include "core/kernel/netns_admin.hpp"

namespace netnsd::core::kernel
{

system_netns_ops::system_netns_ops(std::string netns_dir)
    : dir_(std::move(netns_dir)), home_(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC))
{
}

std::error_code system_netns_ops::create(const std::string& name, std::string& detail)
{
    return create_netns(dir_, name, detail, home_.get());
}

std::error_code system_netns_ops::attach(const std::string& name, pid_t pid, std::string& detail)
{
    return attach_netns(dir_, name, pid, detail);
}

std::error_code system_netns_ops::remove(const std::string& name, removal& out, std::string& detail)
{
    out = {};
    delete_outcome deleted;
    if (auto ec = delete_netns(dir_, name, deleted, detail))
        return ec;
    out.identity = deleted.identity;
    out.alive = deleted.alive;
    // The processes still inside come from the model (its last /proc sweep), not from a scan
    // of every process per delete.
    return {};
}

std::optional<nsid_t> system_netns_ops::set_nsid(const std::string& name,
                                                 std::optional<nsid_t> want, std::error_code& ec,
                                                 std::string& detail)
{
    return kernel::set_nsid(dir_, name, want, ec, detail);
}

std::optional<ns_identity> system_netns_ops::identity_of(const std::string& name,
                                                         std::error_code& ec, std::string& detail)
{
    return live_identity(dir_, name, ec, detail);
}

std::vector<pid_t> system_netns_ops::pids_in(const ns_identity& id)
{
    return kernel::pids_in(id);
}

exec_result system_netns_ops::exec(exec_request req)
{
    req.netns_path = dir_ + "/" + req.name;
    return run_in_netns(req);
}

} // namespace netnsd::core::kernel
