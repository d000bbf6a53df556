// Who may do what: bearer tokens with a scope (the admin endpoints, and reads with
// --auth-reads), and, on the Unix socket, the peer's credentials (root, or a member of
// --admin-group, as docker.sock admits the docker group). Token comparisons take the same time
// whatever the input, so no token can be guessed byte by byte. The token set is replaced
// whole when its file changes (server/token_file); the loop thread reads it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/http.hpp"

namespace netnsd::api
{

enum class scope
{
    read,  // the reads --auth-reads protects
    admin, // everything: writes, exec, and reads
};

struct scoped_token
{
    std::string token;
    api::scope scope = scope::admin;
};

// The tokens of a token file: one a line, "read:TOKEN", "admin:TOKEN" or a bare TOKEN (admin).
// Blank lines and lines starting with '#' are skipped; spaces around a token are not part of
// it.
std::vector<scoped_token> parse_tokens(std::string_view text);

// The outcome of a check: who was let in, and how (for the audit log).
enum class granted
{
    none,       // no credentials, or wrong ones
    too_narrow, // a right token whose scope is read, for a write
    token,      // a bearer token of the scope needed
    peer,       // the Unix socket's peer: root or a member of --admin-group
};

class token_auth
{
public:
    using token_set = std::vector<scoped_token>;
    // Hands out the current tokens (re-reading a file when it changed); called per check.
    using source = std::function<std::shared_ptr<const token_set>()>;

    // One admin token.
    explicit token_auth(std::string token);
    explicit token_auth(token_set tokens);
    // Tokens from `current`, asked anew at every check.
    explicit token_auth(source current);

    // Root and members of this group may use admin on the Unix socket without a token.
    void set_admin_group(std::optional<std::uint32_t> gid) noexcept { admin_group_ = gid; }

    // Whether `authorization` ("Bearer <token>", scheme case-insensitive, RFC 9110 §11.1) or the
    // transport's peer grants `needed`.
    granted check(std::string_view authorization, const transport_info& transport,
                  scope needed) const;
    // check() for an admin token alone.
    bool allows(std::string_view authorization) const;

    // Whether the Unix socket peer is root or in the admin group (its gid or one of its
    // supplementary groups, as the kernel reported them when it connected).
    bool peer_is_admin(const transport_info& transport) const noexcept;

private:
    std::shared_ptr<const token_set> fixed_;
    source current_;
    std::optional<std::uint32_t> admin_group_;
};

// Constant-time equality of two byte strings (the time depends only on their lengths).
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

} // namespace netnsd::api
