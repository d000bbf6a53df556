// monitor: the three kernel feeds (inotify on the netns dir, the RTNLGRP_NSID socket, the
// mount table) wired to the reconciler. It owns their fds; the server's asio shell waits on
// them and calls the on_* member when one is ready. Subscribes before it scans, so nothing
// between the two is lost. Owned by main; loop thread only.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

#include "core/kernel/dir_watch.hpp"
#include "core/kernel/netns_dir.hpp"
#include "core/kernel/nsid_netlink.hpp"
#include "core/kernel/unique_fd.hpp"
#include "core/reconciler.hpp"
#include "core/registry.hpp"

namespace netnsd::core
{

class monitor
{
public:
    // Why the model was rebuilt from a full scan.
    enum class resync_reason
    {
        start,
        dir_changed, // the dir appeared, vanished, was replaced or mounted over
        inotify_overflow,
        netlink_overrun,
    };

    monitor(registry& model, std::string netns_dir);

    // Opens every feed. Fails only when the kernel refuses inotify or netlink outright.
    std::error_code open();
    // Arms the watches and builds the model (the first scan).
    void start();

    int inotify_fd() const noexcept { return watch_.fd(); }
    int netlink_fd() const noexcept { return nsid_events_.fd(); }
    int mountinfo_fd() const noexcept { return mountinfo_.get(); }

    // Probes per turn of the loop while new nsids are matched with their namespaces.
    static constexpr std::size_t nsid_probes_per_turn = 64;

    void on_dir_readable();
    // True when new nsids are still to be matched: call resolve_nsids() on a later turn.
    bool on_nsid_readable();
    // Resumes the matching for nsid_probes_per_turn probes; true when there is more.
    bool resolve_nsids() { return reconciler_.resolve_nsids(nsid_probes_per_turn); }
    // Returns true when live entries should be re-verified (verify_live()) soon; the caller
    // coalesces that over a burst of mount changes (each `ip netns add` is one).
    bool on_mounts_changed();
    void verify_live() { reconciler_.verify_live(); }

    // After netnsd itself changed `name` (admin endpoints): look at it now rather than when
    // the kernel's notifications arrive, so that the response already reflects the change.
    void refresh(std::string_view name) { reconciler_.entry_appeared(name); }

    const std::string& netns_dir() const noexcept { return watch_.path(); }
    bool watching() const noexcept { return watch_.watching_dir(); }
    // Why the dir is not watched (missing, not a directory, unreadable); empty when it is.
    const std::string& problem() const noexcept { return problem_; }
    std::size_t resyncs() const noexcept { return resyncs_; }
    std::size_t resyncs(resync_reason why) const noexcept
    {
        return resyncs_by_reason_[static_cast<std::size_t>(why)];
    }
    const reconciler& reconciliation() const noexcept { return reconciler_; }

private:
    void rearm_and_rescan(resync_reason why);
    void rescan(resync_reason why);

    registry& model_;
    kernel::dir_watch watch_;
    kernel::nsid_monitor nsid_events_;
    kernel::nsid_client nsid_client_;
    kernel::netns_dir source_;
    kernel::unique_fd mountinfo_;
    reconciler reconciler_;
    std::string problem_;
    std::size_t resyncs_ = 0;
    std::array<std::size_t, 4> resyncs_by_reason_{}; // by resync_reason
};

} // namespace netnsd::core
