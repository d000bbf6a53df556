// --listen given more than once, with a Unix socket among the addresses: the real daemon serves
// the same model on each, audits an admin request over the Unix socket with the peer's
// credentials, refuses to take over a socket another netnsd serves, and removes its socket file
// when it exits.
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "support/oracle.hpp"
#include "support/process.hpp"

namespace
{

using namespace netnsd::test;

const std::string socket_dir = "/run/netnsd";
const std::string socket_path = socket_dir + "/netnsd.sock";
const std::string token_path = "/run/netnsd-listen-test/token";

endpoint unix_endpoint()
{
    endpoint e;
    e.unix_path = socket_path;
    return e;
}

std::string read_token()
{
    std::string token;
    std::ifstream(token_path) >> token;
    return token;
}

} // namespace

TEST_CASE("netnsd serves TCP and a Unix socket at once, audits the Unix peer, removes the file")
{
    ::mkdir(socket_dir.c_str(), 0755);
    netnsd_process d({"--listen=unix:" + socket_path, "--token-file=" + token_path});
    INFO(d.log());
    REQUIRE(d.ready());
    const auto local = unix_endpoint();

    struct stat st = {};
    REQUIRE(::stat(socket_path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 07777) == 0660);
    CHECK(d.log().find("listen=\"127.0.0.1:" + std::to_string(d.where().port) +
                       " unix:" + socket_path + "\"") != std::string::npos);

    const auto health = http_get(local, "/healthz");
    REQUIRE(health);
    CHECK(health->status == 200u);

    // Created over the Unix socket; ip sees it; both listeners list it.
    const auto created =
        http(local, "POST", "/api/v1/netns", R"({"name":"via-unix"})",
             {{"Authorization", "Bearer " + read_token()}, {"Content-Type", "application/json"}});
    REQUIRE(created);
    CHECK(created->status == 201u);
    CHECK(ip_list().count("via-unix") == 1u);
    const auto over_tcp = api_live(d.where());
    const auto over_unix = api_live(local);
    REQUIRE(over_tcp);
    REQUIRE(over_unix);
    CHECK(over_tcp->count("via-unix") == 1u);
    CHECK(*over_tcp == *over_unix);

    // The audit line names the client by its credentials, not an address.
    const auto peer = "peer=\"unix:pid=" + std::to_string(::getpid()) +
                      ",uid=" + std::to_string(::getuid()) + ",gid=" + std::to_string(::getgid()) +
                      "\"";
    CHECK(d.log().find(peer) != std::string::npos);

    CHECK(d.stop() == 0);
    CHECK(::access(socket_path.c_str(), F_OK) != 0);
}

TEST_CASE("a second netnsd does not take over a Unix socket the first one serves")
{
    ::mkdir(socket_dir.c_str(), 0755);
    netnsd_process first({"--listen=unix:" + socket_path, "--token-file=" + token_path});
    REQUIRE(first.ready());
    endpoint other;
    other.port = static_cast<std::uint16_t>(first.where().port + 1);
    netnsd_process second({"--listen=unix:" + socket_path, "--token-file=" + token_path}, other);
    INFO(second.log());
    CHECK_FALSE(second.ready(std::chrono::milliseconds(3000)));
    CHECK(second.stop() != 0);
    CHECK(second.log().find("cannot listen") != std::string::npos);
    CHECK(second.log().find("another process serves on it") != std::string::npos);
    // The first still serves on it.
    const auto health = http_get(unix_endpoint(), "/healthz");
    REQUIRE(health);
    CHECK(health->status == 200u);
}
