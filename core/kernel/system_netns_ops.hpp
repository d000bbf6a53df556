// system_netns_ops: the real netns_ops, over the netns dir netnsd serves (netns_admin and exec
// underneath). Stateless apart from its paths; any worker thread, several at once.
#pragma once

#include <string>

#include "core/kernel/unique_fd.hpp"
#include "core/netns_ops.hpp"

namespace netnsd::core::kernel
{

class system_netns_ops final : public netns_ops
{
public:
    // Keeps an fd of the network namespace of the thread that makes it (netnsd's own, which
    // every worker is in): a create comes back to it after its unshare, without opening it
    // each time.
    explicit system_netns_ops(std::string netns_dir);

    std::error_code create(const std::string& name, std::string& detail) override;
    std::error_code attach(const std::string& name, pid_t pid, std::string& detail) override;
    std::error_code remove(const std::string& name, removal& out, std::string& detail) override;
    std::optional<nsid_t> set_nsid(const std::string& name, std::optional<nsid_t> want,
                                   std::error_code& ec, std::string& detail) override;
    std::optional<ns_identity> identity_of(const std::string& name, std::error_code& ec,
                                           std::string& detail) override;
    std::vector<pid_t> pids_in(const ns_identity& id) override;
    exec_result exec(exec_request req) override;

private:
    std::string dir_;
    unique_fd home_;
};

} // namespace netnsd::core::kernel
