#include "api/auth.hpp"

#include <algorithm>
#include <strings.h>

namespace netnsd::api
{
namespace
{

std::string_view trim(std::string_view text)
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t' || text.front() == '\r'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r'))
        text.remove_suffix(1);
    return text;
}

// The token of "Bearer <token>", or nullopt for another scheme.
std::optional<std::string_view> bearer(std::string_view authorization)
{
    constexpr std::string_view scheme = "bearer ";
    if (authorization.size() <= scheme.size() ||
        ::strncasecmp(authorization.data(), scheme.data(), scheme.size()) != 0)
        return std::nullopt;
    return trim(authorization.substr(scheme.size()));
}

} // namespace

bool constant_time_equal(std::string_view a, std::string_view b) noexcept
{
    // Fold every byte of the longer one in, so the time does not reveal a common prefix.
    const std::size_t n = a.size() > b.size() ? a.size() : b.size();
    unsigned diff = a.size() == b.size() ? 0u : 1u;
    for (std::size_t i = 0; i < n; ++i)
    {
        const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0u;
        const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0u;
        diff |= x ^ y;
    }
    return diff == 0;
}

std::vector<scoped_token> parse_tokens(std::string_view text)
{
    std::vector<scoped_token> out;
    while (!text.empty())
    {
        const auto eol = text.find('\n');
        auto line = trim(text.substr(0, eol));
        text = eol == std::string_view::npos ? std::string_view{} : text.substr(eol + 1);
        if (line.empty() || line.front() == '#')
            continue;
        scoped_token t;
        if (line.starts_with("read:"))
        {
            t.scope = scope::read;
            line = trim(line.substr(5));
        }
        else if (line.starts_with("admin:"))
            line = trim(line.substr(6));
        if (line.empty())
            continue;
        t.token = std::string(line);
        out.push_back(std::move(t));
    }
    return out;
}

token_auth::token_auth(std::string token)
    : token_auth(token_set{scoped_token{std::move(token), scope::admin}})
{
}

token_auth::token_auth(token_set tokens)
    : fixed_(std::make_shared<const token_set>(std::move(tokens)))
{
}

token_auth::token_auth(source current) : current_(std::move(current)) {}

bool token_auth::peer_is_admin(const transport_info& transport) const noexcept
{
    if (!transport.unix_socket || !transport.credentials)
        return false;
    const auto& c = *transport.credentials;
    if (c.uid == 0)
        return true;
    if (!admin_group_)
        return false;
    return c.gid == *admin_group_ ||
           std::find(c.groups.begin(), c.groups.end(), *admin_group_) != c.groups.end();
}

granted token_auth::check(std::string_view authorization, const transport_info& transport,
                          scope needed) const
{
    // Only with --admin-group: then root and the group's members on the Unix socket need no
    // token (the socket file's group and mode already decide who can connect).
    if (admin_group_ && peer_is_admin(transport))
        return granted::peer;
    const auto presented = bearer(authorization);
    if (!presented)
        return granted::none;
    const auto tokens = current_ ? current_() : fixed_;
    if (!tokens)
        return granted::none;
    // Every token is compared, whatever matched: the time says how many tokens there are, not
    // which one (or how much of one) matched.
    bool admin = false;
    bool read = false;
    for (const auto& t : *tokens)
    {
        const bool same = !t.token.empty() && constant_time_equal(*presented, t.token);
        admin = admin || (same && t.scope == scope::admin);
        read = read || (same && t.scope == scope::read);
    }
    if (admin || (read && needed == scope::read))
        return granted::token;
    return read ? granted::too_narrow : granted::none;
}

bool token_auth::allows(std::string_view authorization) const
{
    return check(authorization, {}, scope::admin) == granted::token;
}

} // namespace netnsd::api
