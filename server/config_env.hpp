// config_env: every flag can also come from the environment, as NETNSD_<FLAG> (upper case,
// '-' as '_': NETNSD_LISTEN, NETNSD_NETNS_DIR, NETNSD_TOKEN_FILE, NETNSD_ENABLE_EXEC=1, ...).
// The variables become options (server/config_flags) taken before the command line's, so that
// a flag on the command line wins; a flag given on the command line makes its variable
// ignored, which matters for the repeatable ones: NETNSD_LISTEN, NETNSD_ALLOWED_HOST and
// NETNSD_ALLOWED_ORIGIN hold several values separated by commas, all replaced by the command
// line's. The flags are config_flags' (all but --help and --version), so a new flag needs
// nothing here. Used by main before anything starts.
#pragma once

#include <string>
#include <vector>

#include "server/config.hpp"

namespace netnsd::server
{

// The NETNSD_<FLAG> variables of `envp` (an environ-style array, null-terminated) as
// "--flag=value" arguments, or "--flag" for a switch set to 1/true/yes/on (0/false/no/off or
// empty leave it off), in the order --help lists the flags. Other NETNSD_* variables are
// ignored. False, with `message` saying which variable, when a switch has another value.
bool environment_args(const char* const* envp, std::vector<std::string>& out, std::string& message);

// parse_args over the environment's arguments, then argv's: what main calls. A bad variable
// is a usage error that names it.
parse_outcome parse_args_with_environment(int argc, const char* const* argv,
                                          const char* const* envp, config& out,
                                          std::string& message);

} // namespace netnsd::server
