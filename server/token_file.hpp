// The admin token: read from --token-file, or created there (32 random bytes, hex, mode 0600,
// its directory 0700) when missing. Start-up only; throws std::runtime_error with a sentence
// that names the path (never the token) when it can do neither.
#pragma once

#include <string>

namespace netnsd::server
{

struct loaded_token
{
    std::string token;
    bool created = false;
};

loaded_token load_or_create_token(const std::string& path);

} // namespace netnsd::server
