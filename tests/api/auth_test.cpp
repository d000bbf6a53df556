// token_auth: scoped tokens from a token file's text, the constant-time comparison, the Unix
// socket's peers with --admin-group, and a token set that changes between checks.
#include <memory>
#include <string>

#include <doctest/doctest.h>

#include "api/auth.hpp"

namespace
{

using namespace netnsd::api;

transport_info unix_peer(std::uint32_t uid, std::uint32_t gid, std::vector<std::uint32_t> groups)
{
    transport_info t;
    t.unix_socket = true;
    t.credentials = peer_credentials{4242, uid, gid, std::move(groups)};
    return t;
}

} // namespace

TEST_CASE("a token file holds tokens one a line, read: or admin: scoped, bare ones admin")
{
    const auto tokens = parse_tokens("# rotated 2026-11-29\n"
                                     "aaaa\n"
                                     "\n"
                                     "read: bbbb \r\n"
                                     "admin:cccc\n"
                                     "  dddd  \n"
                                     "read:\n"
                                     "eeee");
    REQUIRE(tokens.size() == 5);
    CHECK(tokens[0].token == "aaaa");
    CHECK(tokens[0].scope == scope::admin);
    CHECK(tokens[1].token == "bbbb");
    CHECK(tokens[1].scope == scope::read);
    CHECK(tokens[2].token == "cccc");
    CHECK(tokens[2].scope == scope::admin);
    CHECK(tokens[3].token == "dddd");
    CHECK(tokens[4].token == "eeee");
    CHECK(parse_tokens("").empty());
    CHECK(parse_tokens("\n# only a comment\n").empty());
}

TEST_CASE("an admin token may read and write, a read token may read, and is too narrow to write")
{
    const token_auth auth(parse_tokens("admin:adm\nread:rd\n"));
    const transport_info tcp;
    CHECK(auth.check("Bearer adm", tcp, scope::admin) == granted::token);
    CHECK(auth.check("Bearer adm", tcp, scope::read) == granted::token);
    CHECK(auth.check("Bearer rd", tcp, scope::read) == granted::token);
    CHECK(auth.check("Bearer rd", tcp, scope::admin) == granted::too_narrow);
    CHECK(auth.check("bearer   adm  ", tcp, scope::admin) == granted::token);
    CHECK(auth.check("Bearer ad", tcp, scope::admin) == granted::none);
    CHECK(auth.check("Bearer admx", tcp, scope::read) == granted::none);
    CHECK(auth.check("Basic adm", tcp, scope::admin) == granted::none);
    CHECK(auth.check("", tcp, scope::read) == granted::none);
    CHECK(auth.allows("Bearer adm"));
    CHECK_FALSE(auth.allows("Bearer rd"));
}

TEST_CASE("a token set that changes between checks: a removed token fails on the next check")
{
    auto current = std::make_shared<const token_auth::token_set>(parse_tokens("old\n"));
    const token_auth auth([&current] { return current; });
    CHECK(auth.allows("Bearer old"));
    current = std::make_shared<const token_auth::token_set>(parse_tokens("old\nnew\n"));
    CHECK(auth.allows("Bearer old"));
    CHECK(auth.allows("Bearer new"));
    current = std::make_shared<const token_auth::token_set>(parse_tokens("new\n"));
    CHECK_FALSE(auth.allows("Bearer old"));
    CHECK(auth.allows("Bearer new"));
    current = nullptr;
    CHECK_FALSE(auth.allows("Bearer new"));
}

TEST_CASE("with --admin-group, root and the group's members on the Unix socket need no token")
{
    token_auth auth(std::string("tok"));
    constexpr std::uint32_t ops = 1234;
    // Without the flag, nobody is admitted by their credentials, not even root.
    CHECK(auth.check("", unix_peer(0, 0, {}), scope::admin) == granted::none);
    auth.set_admin_group(ops);
    CHECK(auth.check("", unix_peer(0, 0, {}), scope::admin) == granted::peer);
    CHECK(auth.check("", unix_peer(1000, ops, {}), scope::admin) == granted::peer);
    CHECK(auth.check("", unix_peer(1000, 1000, {27, ops}), scope::admin) == granted::peer);
    CHECK(auth.check("", unix_peer(1000, 1000, {27}), scope::admin) == granted::none);
    // Others still get in with the token.
    CHECK(auth.check("Bearer tok", unix_peer(1000, 1000, {27}), scope::admin) == granted::token);
    // Over TCP the credentials are not there, whatever the request says.
    transport_info tcp;
    CHECK(auth.check("", tcp, scope::admin) == granted::none);
    // A peer whose credentials could not be read is not root.
    transport_info unknown;
    unknown.unix_socket = true;
    CHECK(auth.check("", unknown, scope::admin) == granted::none);
}

TEST_CASE("constant_time_equal compares whole byte strings")
{
    CHECK(constant_time_equal("abc", "abc"));
    CHECK_FALSE(constant_time_equal("abc", "abd"));
    CHECK_FALSE(constant_time_equal("abc", "ab"));
    CHECK_FALSE(constant_time_equal("", "a"));
    CHECK(constant_time_equal("", ""));
    CHECK(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
    CHECK_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}
