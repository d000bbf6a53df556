// NETNSD_<FLAG> environment variables on the real daemon: they configure it, and the command
// line's flags win over them.
#include <fstream>
#include <string>

#include <doctest/doctest.h>

#include "support/process.hpp"

namespace
{

using namespace netnsd::test;

} // namespace

TEST_CASE("config env: NETNSD_* variables configure the daemon, and flags win")
{
    const std::string token_path = "/run/netnsd-env-test/token";
    // netnsd_process passes --listen with the test's port: it must win over NETNSD_LISTEN.
    netnsd_process d(
        {}, {}, netnsd_binary(),
        {"NETNSD_LISTEN=127.0.0.1:1", "NETNSD_TOKEN_FILE=" + token_path, "NETNSD_AUTH_READS=yes"});
    INFO(d.log());
    REQUIRE(d.ready());
    std::ifstream in(token_path);
    std::string token;
    in >> token;
    CHECK(token.size() == 64);
    // --auth-reads came from the environment: a read without the token is refused.
    const auto anonymous = http_get(d.where(), "/api/v1/netns");
    REQUIRE(anonymous);
    CHECK(anonymous->status == 401);
    const auto with_token =
        http(d.where(), "GET", "/api/v1/netns", {}, {{"Authorization", "Bearer " + token}});
    REQUIRE(with_token);
    CHECK(with_token->status == 200);
}
