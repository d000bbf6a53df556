// server/config_env: NETNSD_<FLAG> environment variables, placed before the command line's
// flags so that those win.
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "server/config.hpp"
#include "server/config_env.hpp"

using netnsd::server::config;
using netnsd::server::environment_args;
using netnsd::server::parse_args_with_environment;
using netnsd::server::parse_outcome;

namespace
{

struct parsed
{
    parse_outcome outcome;
    config cfg;
    std::string message;
};

parsed parse(std::vector<std::string> env, std::vector<std::string> args = {})
{
    std::vector<const char*> envp;
    for (const auto& e : env)
        envp.push_back(e.c_str());
    envp.push_back(nullptr);
    std::vector<const char*> argv{"netnsd"};
    for (const auto& a : args)
        argv.push_back(a.c_str());
    parsed p;
    p.outcome = parse_args_with_environment(static_cast<int>(argv.size()), argv.data(), envp.data(),
                                            p.cfg, p.message);
    return p;
}

std::vector<std::string> args_of(std::vector<std::string> env)
{
    std::vector<const char*> envp;
    for (const auto& e : env)
        envp.push_back(e.c_str());
    envp.push_back(nullptr);
    std::vector<std::string> out;
    std::string message;
    CHECK(environment_args(envp.data(), out, message));
    CHECK(message.empty());
    return out;
}

} // namespace

TEST_CASE("config env: no NETNSD_ variable gives the defaults, and unknown ones are ignored")
{
    CHECK(args_of({}).empty());
    CHECK(args_of({"PATH=/bin", "NETNSD_BIN=/x/netnsd", "NETNSD_HELP=1", "NETNSD_VERSION=1",
                   "NETNSD_=1", "NETNSD_LISTENER=1.2.3.4:5", "netnsd_listen=1.2.3.4:5"})
              .empty());
    const auto p = parse({"NETNSD_BIN=/x/netnsd"});
    CHECK(p.outcome == parse_outcome::run);
    CHECK(p.cfg.listen.at(0).port == config{}.listen.at(0).port);
}

TEST_CASE("config env: each flag has its variable, in upper case with '_' for '-'")
{
    const auto p = parse(
        {"NETNSD_LISTEN=[::1]:8080", "NETNSD_NETNS_DIR=/tmp/ns/", "NETNSD_TOKEN_FILE=/tmp/token",
         "NETNSD_JOURNAL_SIZE=7", "NETNSD_MAX_STREAM_CLIENTS=3", "NETNSD_STREAM_QUEUE_MESSAGES=4",
         "NETNSD_STREAM_QUEUE_BYTES=5", "NETNSD_EXEC_OUTPUT_LIMIT=6", "NETNSD_MAX_EXEC=2",
         "NETNSD_ETC_NETNS_DIR=/tmp/etc", "NETNSD_LOG_LEVEL=debug", "NETNSD_AUTH_READS=1",
         "NETNSD_ENABLE_EXEC=true"});
    INFO(p.message);
    REQUIRE(p.outcome == parse_outcome::run);
    CHECK(p.cfg.listen.at(0).host == "::1");
    CHECK(p.cfg.listen.at(0).port == 8080);
    CHECK(p.cfg.netns_dir == "/tmp/ns");
    CHECK(p.cfg.token_file == "/tmp/token");
    CHECK(p.cfg.journal_size == 7);
    CHECK(p.cfg.max_stream_clients == 3);
    CHECK(p.cfg.stream_queue_messages == 4);
    CHECK(p.cfg.stream_queue_bytes == 5);
    CHECK(p.cfg.exec_output_limit == 6);
    CHECK(p.cfg.max_exec == 2);
    CHECK(p.cfg.etc_netns_dir == "/tmp/etc");
    CHECK(p.cfg.log_level == netnsd::core::log::level::debug);
    CHECK(p.cfg.auth_reads);
    CHECK(p.cfg.enable_exec);
}

TEST_CASE("config env: the variables become arguments, a switch only when set")
{
    CHECK(args_of({"NETNSD_TOKEN_FILE=/t", "NETNSD_LISTEN=1.2.3.4:5"}) ==
          std::vector<std::string>{"--listen=1.2.3.4:5", "--token-file=/t"});
    // A value with spaces, '=' or a leading "--" stays one value.
    CHECK(args_of({"NETNSD_TOKEN_FILE=/a b=--c"}) ==
          std::vector<std::string>{"--token-file=/a b=--c"});
    for (const char* on : {"1", "true", "TRUE", "yes", "On"})
    {
        CAPTURE(on);
        CHECK(args_of({std::string("NETNSD_ENABLE_EXEC=") + on}) ==
              std::vector<std::string>{"--enable-exec"});
    }
    for (const char* off : {"", "0", "false", "No", "OFF"})
    {
        CAPTURE(off);
        CHECK(args_of({std::string("NETNSD_AUTH_READS=") + off}).empty());
        CHECK(!parse({std::string("NETNSD_AUTH_READS=") + off}).cfg.auth_reads);
    }
}

TEST_CASE("config env: a flag on the command line wins over its variable")
{
    const auto p = parse({"NETNSD_LISTEN=127.0.0.1:1111", "NETNSD_JOURNAL_SIZE=5"},
                         {"--listen", "127.0.0.1:2222"});
    REQUIRE(p.outcome == parse_outcome::run);
    REQUIRE(p.cfg.listen.size() == 1u); // not added to the variable's address
    CHECK(p.cfg.listen.at(0).port == 2222);
    CHECK(p.cfg.journal_size == 5);
    // --help and --version still work with variables set.
    CHECK(parse({"NETNSD_LISTEN=127.0.0.1:1"}, {"--help"}).outcome == parse_outcome::exit_ok);
}

TEST_CASE("config env: NETNSD_LISTEN holds several addresses separated by commas")
{
    const auto p = parse({"NETNSD_LISTEN=127.0.0.1:1111,unix:/run/netnsd/netnsd.sock,[::1]:3"});
    REQUIRE(p.outcome == parse_outcome::run);
    REQUIRE(p.cfg.listen.size() == 3u);
    CHECK(p.cfg.listen[0].to_string() == "127.0.0.1:1111");
    CHECK(p.cfg.listen[1].to_string() == "unix:/run/netnsd/netnsd.sock");
    CHECK(p.cfg.listen[2].to_string() == "[::1]:3");
    // An empty item is a bad address, named as the variable's.
    const auto bad = parse({"NETNSD_LISTEN=127.0.0.1:1,"});
    CHECK(bad.outcome == parse_outcome::exit_usage);
    CHECK(bad.message.starts_with("netnsd: NETNSD_LISTEN: invalid value '' for --listen"));
}

TEST_CASE("config env: a bad value is a usage error that names the variable")
{
    auto p = parse({"NETNSD_JOURNAL_SIZE=lots"});
    CHECK(p.outcome == parse_outcome::exit_usage);
    CHECK(p.message.starts_with("netnsd: NETNSD_JOURNAL_SIZE: invalid value 'lots'"));
    p = parse({"NETNSD_NETNS_DIR=relative"});
    CHECK(p.outcome == parse_outcome::exit_usage);
    CHECK(p.message.starts_with("netnsd: NETNSD_NETNS_DIR: "));
    p = parse({"NETNSD_ENABLE_EXEC=maybe"});
    CHECK(p.outcome == parse_outcome::exit_usage);
    CHECK(p.message == "netnsd: invalid value 'maybe' for NETNSD_ENABLE_EXEC: expected 1, true, "
                       "yes or on, or 0, false, no or off\n");
    // Even when the command line sets the same flag: the variable is wrong all the same.
    p = parse({"NETNSD_JOURNAL_SIZE=0"}, {"--journal-size=3"});
    CHECK(p.outcome == parse_outcome::exit_usage);
}

TEST_CASE("config env: --help documents the variables")
{
    const auto text = netnsd::server::usage();
    CHECK(text.find("NETNSD_<OPTION>") != std::string::npos);
    CHECK(text.find("NETNSD_LISTEN") != std::string::npos);
    CHECK(text.find("command line wins") != std::string::npos);
}

TEST_CASE(
    "config env: the security flags from variables, lists comma-separated, TLS files in pairs")
{
    const auto p = parse({"NETNSD_ALLOWED_HOST=netns.example.com,node-7",
                          "NETNSD_ALLOWED_ORIGIN=https://dash.example.com",
                          "NETNSD_TLS_CERT=/etc/netnsd/tls/tls.crt",
                          "NETNSD_TLS_KEY=/etc/netnsd/tls/tls.key", "NETNSD_ADMIN_GROUP=netnsd"});
    REQUIRE(p.outcome == parse_outcome::run);
    CHECK(p.cfg.allowed_hosts == std::vector<std::string>{"netns.example.com", "node-7"});
    CHECK(p.cfg.allowed_origins == std::vector<std::string>{"https://dash.example.com"});
    CHECK(p.cfg.tls());
    CHECK(p.cfg.tls_key == "/etc/netnsd/tls/tls.key");
    CHECK(p.cfg.admin_group == "netnsd");
    // The command line replaces a list variable, as --listen does.
    const auto replaced =
        parse({"NETNSD_ALLOWED_HOST=a.example,b.example"}, {"--allowed-host=c.example"});
    CHECK(replaced.cfg.allowed_hosts == std::vector<std::string>{"c.example"});
    // A certificate without its key, or a client CA without a certificate, is a usage error.
    const auto half = parse({"NETNSD_TLS_CERT=/etc/netnsd/tls/tls.crt"});
    CHECK(half.outcome == parse_outcome::exit_usage);
    CHECK(half.message == "netnsd: --tls-cert and --tls-key go together\n");
    const auto ca = parse({}, {"--tls-client-ca=/etc/netnsd/ca.crt"});
    CHECK(ca.outcome == parse_outcome::exit_usage);
    CHECK(ca.message == "netnsd: --tls-client-ca needs --tls-cert and --tls-key\n");
    // Values that cannot be names or origins.
    CHECK(parse({}, {"--allowed-host=a/b"}).outcome == parse_outcome::exit_usage);
    CHECK(parse({}, {"--allowed-origin=dash.example.com"}).outcome == parse_outcome::exit_usage);
    CHECK(parse({}, {"--allowed-origin=https://dash.example.com/"}).outcome ==
          parse_outcome::exit_usage);
    CHECK(parse({}, {"--allowed-origin=*", "--allowed-host=*"}).outcome == parse_outcome::run);
}
