// The admin tokens: --token-file, created (one admin token: 32 random bytes, hex, mode 0600,
// its directory 0700) when missing. It may hold several tokens, one a line, each optionally
// scoped "read:" or "admin:" (api/auth.hpp). token_file re-reads it when it changes: every
// check stats the path (following symlinks, so a Kubernetes Secret's "..data" swap counts) and
// reads it again when its inode, size, or change or modification time moved. That costs one
// stat (~1 µs) per request that needs a token, and makes a removed token fail on the very next
// request, which no asynchronous watch can promise. Start-up throws std::runtime_error with a
// sentence that names the path (never a token); later failures keep no token valid and log.
// Loop thread only.
#pragma once

#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "api/auth.hpp"

namespace netnsd::server
{

struct loaded_token
{
    std::string token;
    bool created = false;
};

loaded_token load_or_create_token(const std::string& path);

class token_file
{
public:
    // --token-file's default.
    static constexpr std::string_view default_path = "/etc/netnsd/token";

    // Reads the file, or creates it with one admin token. Throws std::runtime_error when it can
    // do neither, or when the file holds no token.
    explicit token_file(std::string path);

    bool created() const noexcept { return created_; }
    std::size_t size() const noexcept { return tokens_ ? tokens_->size() : 0; }

    // The tokens as the file holds them now (re-read if it changed since the last call).
    std::shared_ptr<const api::token_auth::token_set> current();

private:
    struct version
    {
        dev_t dev = 0;
        ino_t ino = 0;
        off_t size = -1;
        timespec mtime{};
        timespec ctime{};
        bool operator==(const version& o) const noexcept;
    };

    std::string path_;
    bool created_ = false;
    version seen_;
    std::shared_ptr<const api::token_auth::token_set> tokens_;
};

} // namespace netnsd::server
