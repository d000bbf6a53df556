// security: what main derives from the config for the checks of api/origin_policy and
// api/auth: netnsd's own names (the listen addresses, the machine's hostname, --allowed-host),
// and the group of --admin-group. Start-up only; main's thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "api/origin_policy.hpp"

#include "server/config.hpp"

namespace netnsd::server
{

// The Host and Origin settings: every TCP listen address, the hostname (gethostname, taken
// once at start), --allowed-host and --allowed-origin. A listener on 0.0.0.0 or :: lets any IP
// address be the Host.
api::origin_settings origin_settings_of(const config& cfg);

// The gid of --admin-group (a name, or a number); nullopt when none is set. Throws
// std::runtime_error naming the group when it does not exist.
std::optional<std::uint32_t> admin_group_of(const config& cfg);

} // namespace netnsd::server
