// Namespaces made and removed directly by the test process, the way `ip netns add/del` do it
// but without a process per namespace: as fast as the kernel allows.
// Assumes /run/netns is already a mount point (the sandbox makes it a tmpfs). Test thread only.
#pragma once

#include <string>

namespace netnsd::test
{

// Creates /run/netns/NAME: the empty file, then a new network namespace bind-mounted on it.
bool create_netns(const std::string& name);
// umount2(MNT_DETACH) + unlink, like `ip netns del`.
bool delete_netns(const std::string& name);

} // namespace netnsd::test
