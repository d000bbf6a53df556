// netns_dir: the real netns_source over a directory path and an nsid client. Path-based on
// purpose: after the dir is mounted over or re-created, the next call sees the new one.
// Loop thread only.
#pragma once

#include <string>

#include "core/kernel/nsid_netlink.hpp"
#include "core/kernel/unique_fd.hpp"
#include "core/netns_source.hpp"

namespace netnsd::core::kernel
{

class netns_dir final : public netns_source
{
public:
    netns_dir(std::string path, nsid_client& nsids);

    std::error_code list(std::vector<std::string>& names) override;
    probe_result probe(std::string_view name) override;
    probe_result probe_without_nsid(std::string_view name) override;
    bool still_is(std::string_view name, const ns_identity& id) override;
    bool nsid_exists(nsid_t nsid) override;
    std::vector<nsid_t> dump_nsids() override;

private:
    std::string entry_path(std::string_view name) const;
    probe_result look_at(std::string_view name, bool ask_nsid);

    std::string path_;
    nsid_client& nsids_;
};

// The fd to poll for POLLPRI: the kernel signals it whenever this mount namespace's mount
// table changes (a bind mount makes no inotify event).
unique_fd open_mountinfo(std::error_code& ec);

} // namespace netnsd::core::kernel
