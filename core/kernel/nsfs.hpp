// nsfs probes: is this fd a network namespace, and which one. Stateless; any thread.
#pragma once

#include <optional>

#include "core/model.hpp"

namespace netnsd::core::kernel
{

// The identity of the network namespace behind `fd`, or nullopt when the fd is anything else
// (the empty placeholder `ip netns add` creates before its bind mount, a directory, another
// namespace type). Checks fstatfs == NSFS_MAGIC and NS_GET_NSTYPE == CLONE_NEWNET; ns_id is
// NS_GET_ID where the kernel has it, else 0.
std::optional<ns_identity> identify_netns(int fd) noexcept;

} // namespace netnsd::core::kernel
