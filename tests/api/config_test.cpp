// server/config: the daemon's flags. It lives with the api tests because config.hpp needs
// nothing beyond core/log.hpp, so this executable links netnsd_server without compiling Beast.
#include <initializer_list>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "core/log.hpp"

#include "server/config.hpp"

using netnsd::server::config;
using netnsd::server::listen_address;
using netnsd::server::parse_args;
using netnsd::server::parse_listen;
using netnsd::server::parse_outcome;
using level = netnsd::core::log::level;

namespace
{

struct parsed
{
    parse_outcome outcome;
    config cfg;
    std::string message;
};

// Parses `netnsd <args...>`.
parsed parse(std::initializer_list<const char*> args)
{
    std::vector<const char*> argv{"netnsd"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(nullptr);
    parsed out{parse_outcome::run, {}, {}};
    out.outcome = parse_args(static_cast<int>(argv.size() - 1), argv.data(), out.cfg, out.message);
    return out;
}

std::string usage_error(const std::string& value, const std::string& flag, const std::string& why)
{
    return "netnsd: invalid value '" + value + "' for " + flag + ": " + why + "\n";
}

const std::string listen_why =
    "expected ADDR:PORT, e.g. 127.0.0.1:9321 or [::1]:9321, or unix:/ABSOLUTE/PATH";

} // namespace

TEST_CASE("no flags give the defaults")
{
    const auto p = parse({});
    CHECK(p.outcome == parse_outcome::run);
    CHECK(p.message == "");
    CHECK(p.cfg.listen.at(0).host == "127.0.0.1");
    CHECK(p.cfg.listen.at(0).port == 9321);
    CHECK(p.cfg.netns_dir == "/run/netns");
    CHECK(p.cfg.log_level == level::info);
    CHECK(p.cfg.journal_size == 100000);
    CHECK(p.cfg.max_stream_clients == 1024);
    CHECK(p.cfg.stream_queue_messages == 10000);
    CHECK(p.cfg.stream_queue_bytes == 8388608);
}

TEST_CASE("the --listen flag takes an IPv4 address, a bracketed IPv6 address or a host name")
{
    SUBCASE("IPv4")
    {
        const auto p = parse({"--listen", "127.0.0.1:9321"});
        CHECK(p.outcome == parse_outcome::run);
        CHECK(p.cfg.listen.at(0).host == "127.0.0.1");
        CHECK(p.cfg.listen.at(0).port == 9321);
    }
    SUBCASE("IPv6 in brackets")
    {
        const auto p = parse({"--listen", "[::1]:80"});
        CHECK(p.outcome == parse_outcome::run);
        CHECK(p.cfg.listen.at(0).host == "::1");
        CHECK(p.cfg.listen.at(0).port == 80);
    }
    SUBCASE("a host name")
    {
        const auto p = parse({"--listen", "localhost:8080"});
        CHECK(p.outcome == parse_outcome::run);
        CHECK(p.cfg.listen.at(0).host == "localhost");
        CHECK(p.cfg.listen.at(0).port == 8080);
    }
    SUBCASE("every address")
    {
        const auto p = parse({"--listen", "0.0.0.0:1"});
        CHECK(p.cfg.listen.at(0).host == "0.0.0.0");
        CHECK(p.cfg.listen.at(0).port == 1);
    }
    SUBCASE("port 0 picks a free one")
    {
        const auto p = parse({"--listen", "127.0.0.1:0"});
        CHECK(p.outcome == parse_outcome::run);
        CHECK(p.cfg.listen.at(0).port == 0);
    }
    SUBCASE("the highest port")
    {
        const auto p = parse({"--listen", "[::]:65535"});
        CHECK(p.outcome == parse_outcome::run);
        CHECK(p.cfg.listen.at(0).host == "::");
        CHECK(p.cfg.listen.at(0).port == 65535);
    }
}

TEST_CASE("the --listen flag takes unix:PATH for a Unix socket")
{
    const auto p = parse({"--listen", "unix:/run/netnsd/netnsd.sock"});
    REQUIRE(p.outcome == parse_outcome::run);
    REQUIRE(p.cfg.listen.size() == 1u);
    CHECK(p.cfg.listen[0].is_unix());
    CHECK(p.cfg.listen[0].path == "/run/netnsd/netnsd.sock");
    CHECK(p.cfg.listen[0].to_string() == "unix:/run/netnsd/netnsd.sock");
    // The longest path sun_path holds, with its NUL.
    const std::string longest = "unix:/" + std::string(106, 'a');
    CHECK(parse({"--listen", longest.c_str()}).outcome == parse_outcome::run);
    for (const auto& bad : {std::string("unix:"), std::string("unix:relative"), longest + "a"})
    {
        CAPTURE(bad);
        const auto q = parse({"--listen", bad.c_str()});
        CHECK(q.outcome == parse_outcome::exit_usage);
        CHECK(q.message == usage_error(bad, "--listen", listen_why));
    }
}

TEST_CASE("--listen given more than once serves on every address, in order")
{
    const auto p =
        parse({"--listen", "127.0.0.1:1", "--listen=unix:/tmp/s", "--listen", "[::1]:2"});
    REQUIRE(p.outcome == parse_outcome::run);
    REQUIRE(p.cfg.listen.size() == 3u);
    CHECK(p.cfg.listen[0].to_string() == "127.0.0.1:1");
    CHECK(p.cfg.listen[1].to_string() == "unix:/tmp/s");
    CHECK(p.cfg.listen[2].to_string() == "[::1]:2");
    // Without --listen, the one default.
    REQUIRE(parse({}).cfg.listen.size() == 1u);
    CHECK(parse({}).cfg.listen[0].to_string() == "127.0.0.1:9321");
}

TEST_CASE("the --listen flag refuses what is not ADDR:PORT")
{
    for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":9321", "127.0.0.1:70000",
                            "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x", "127.0.0.1:+80",
                            "::1:80", "::1", "[::1]", "[::1]:", "[]:80", "[::1:80", "::1]:80", ""})
    {
        CAPTURE(bad);
        const auto p = parse({"--listen", bad});
        CHECK(p.outcome == parse_outcome::exit_usage);
        CHECK(p.message == usage_error(bad, "--listen", listen_why));
        // The default is left alone.
        CHECK(p.cfg.listen.at(0).host == "127.0.0.1");
        CHECK(p.cfg.listen.at(0).port == 9321);
    }
}

TEST_CASE("parse_listen leaves its output alone when it fails")
{
    listen_address out{"example", 1, {}};
    CHECK_FALSE(parse_listen("nope", out));
    CHECK(out.host == "example");
    CHECK(out.port == 1);
    CHECK(parse_listen("[fe80::1%eth0]:443", out));
    CHECK(out.host == "fe80::1%eth0");
    CHECK(out.port == 443);
}

TEST_CASE("a flag takes its value after '=' or as the next argument")
{
    SUBCASE("--flag=value")
    {
        const auto p = parse({"--netns-dir=/var/run/netns", "--listen=[::1]:9000"});
        CHECK(p.outcome == parse_outcome::run);
        CHECK(p.cfg.netns_dir == "/var/run/netns");
        CHECK(p.cfg.listen.at(0).host == "::1");
        CHECK(p.cfg.listen.at(0).port == 9000);
    }
    SUBCASE("--flag value")
    {
        const auto p = parse({"--netns-dir", "/var/run/netns", "--listen", "[::1]:9000"});
        CHECK(p.outcome == parse_outcome::run);
        CHECK(p.cfg.netns_dir == "/var/run/netns");
        CHECK(p.cfg.listen.at(0).port == 9000);
    }
    SUBCASE("a value that itself contains '='")
    {
        const auto p = parse({"--netns-dir=/tmp/a=b"});
        CHECK(p.outcome == parse_outcome::run);
        CHECK(p.cfg.netns_dir == "/tmp/a=b");
    }
    SUBCASE("the last of a repeated flag wins")
    {
        const auto p = parse({"--journal-size", "5", "--journal-size=7"});
        CHECK(p.cfg.journal_size == 7);
    }
}

TEST_CASE("a flag at the end without its value is a usage error")
{
    for (const char* flag :
         {"--listen", "--netns-dir", "--journal-size", "--log-level", "--max-stream-clients",
          "--stream-queue-messages", "--stream-queue-bytes"})
    {
        CAPTURE(flag);
        const auto p = parse({flag});
        CHECK(p.outcome == parse_outcome::exit_usage);
        CHECK(p.message == "netnsd: option " + std::string(flag) + " needs a value\n");
    }
}

TEST_CASE("the --netns-dir flag must be an absolute path")
{
    SUBCASE("relative")
    {
        const auto p = parse({"--netns-dir", "run/netns"});
        CHECK(p.outcome == parse_outcome::exit_usage);
        CHECK(p.message == usage_error("run/netns", "--netns-dir", "expected an absolute path"));
        CHECK(p.cfg.netns_dir == "/run/netns");
    }
    SUBCASE("dot-relative")
    {
        CHECK(parse({"--netns-dir", "./netns"}).outcome == parse_outcome::exit_usage);
    }
    SUBCASE("empty")
    {
        const auto p = parse({"--netns-dir="});
        CHECK(p.outcome == parse_outcome::exit_usage);
        CHECK(p.message == usage_error("", "--netns-dir", "expected an absolute path"));
    }
    SUBCASE("absolute")
    {
        const auto p = parse({"--netns-dir", "/tmp/netns test"});
        CHECK(p.outcome == parse_outcome::run);
        CHECK(p.cfg.netns_dir == "/tmp/netns test");
    }
}

TEST_CASE("the --cni-cache-dir flag is an absolute path, or empty to read no CNI cache")
{
    CHECK(parse({}).cfg.cni_cache_dir == "/var/lib/cni/results");
    const auto off = parse({"--cni-cache-dir="});
    CHECK(off.outcome == parse_outcome::run);
    CHECK(off.cfg.cni_cache_dir.empty());
    const auto other = parse({"--cni-cache-dir", "/var/lib/cni-alt/results"});
    CHECK(other.outcome == parse_outcome::run);
    CHECK(other.cfg.cni_cache_dir == "/var/lib/cni-alt/results");
    const auto relative = parse({"--cni-cache-dir", "cni/results"});
    CHECK(relative.outcome == parse_outcome::exit_usage);
    CHECK(relative.message ==
          usage_error("cni/results", "--cni-cache-dir", "expected an absolute path"));
}

TEST_CASE("the --log-level flag takes debug, info, warn or error")
{
    SUBCASE("debug")
    {
        CHECK(parse({"--log-level", "debug"}).cfg.log_level == level::debug);
    }
    SUBCASE("info")
    {
        CHECK(parse({"--log-level=info"}).cfg.log_level == level::info);
    }
    SUBCASE("warn")
    {
        CHECK(parse({"--log-level", "warn"}).cfg.log_level == level::warn);
    }
    SUBCASE("error")
    {
        CHECK(parse({"--log-level", "error"}).cfg.log_level == level::error);
    }
    SUBCASE("anything else")
    {
        for (const char* bad : {"verbose", "DEBUG", "warning", ""})
        {
            CAPTURE(bad);
            const auto p = parse({"--log-level", bad});
            CHECK(p.outcome == parse_outcome::exit_usage);
            CHECK(p.message ==
                  usage_error(bad, "--log-level", "expected debug, info, warn or error"));
        }
    }
}

TEST_CASE("the --log-format flag takes text or json, and text is the default")
{
    using format = netnsd::core::log::format;
    CHECK(parse({}).cfg.log_format == format::text);
    CHECK(parse({"--log-format", "json"}).cfg.log_format == format::json);
    CHECK(parse({"--log-format=text"}).cfg.log_format == format::text);
    for (const char* bad : {"JSON", "logfmt", ""})
    {
        CAPTURE(bad);
        const auto p = parse({"--log-format", bad});
        CHECK(p.outcome == parse_outcome::exit_usage);
        CHECK(p.message == usage_error(bad, "--log-format", "expected text or json"));
    }
    CHECK(parse({"--log-format"}).message == "netnsd: option --log-format needs a value\n");
    CHECK(netnsd::server::usage().find("--log-format FORMAT") != std::string::npos);
}

TEST_CASE("the --journal-size flag takes a whole number")
{
    CHECK(parse({"--journal-size", "5"}).cfg.journal_size == 5);
    CHECK(parse({"--journal-size=1000000"}).cfg.journal_size == 1000000);
    for (const char* bad : {"0", "-1", "1k", "1.5", "", " 5", "+5", "99999999999999999999999"})
    {
        CAPTURE(bad);
        const auto p = parse({"--journal-size", bad});
        CHECK(p.outcome == parse_outcome::exit_usage);
        CHECK(p.message == usage_error(bad, "--journal-size", "expected a whole number > 0"));
    }
}

TEST_CASE("the stream limits take a whole number above zero")
{
    const auto p = parse(
        {"--max-stream-clients", "3", "--stream-queue-messages=4", "--stream-queue-bytes", "5"});
    CHECK(p.outcome == parse_outcome::run);
    CHECK(p.cfg.max_stream_clients == 3);
    CHECK(p.cfg.stream_queue_messages == 4);
    CHECK(p.cfg.stream_queue_bytes == 5);

    for (const char* flag :
         {"--max-stream-clients", "--stream-queue-messages", "--stream-queue-bytes"})
    {
        for (const char* bad : {"0", "-1", "x", ""})
        {
            CAPTURE(flag);
            CAPTURE(bad);
            const auto q = parse({flag, bad});
            CHECK(q.outcome == parse_outcome::exit_usage);
            CHECK(q.message == usage_error(bad, flag, "expected a whole number > 0"));
        }
    }
}

TEST_CASE("an unknown flag is a usage error that names it")
{
    SUBCASE("a long flag")
    {
        const auto p = parse({"--bogus"});
        CHECK(p.outcome == parse_outcome::exit_usage);
        CHECK(p.message ==
              "netnsd: unknown option '--bogus'\nTry 'netnsd --help' for the list of options.\n");
    }
    SUBCASE("a long flag with a value is named as written")
    {
        const auto p = parse({"--bogus=1"});
        CHECK(p.outcome == parse_outcome::exit_usage);
        CHECK(p.message == "netnsd: unknown option '--bogus=1'\nTry 'netnsd --help' for the "
                           "list of options.\n");
    }
    SUBCASE("a positional argument")
    {
        const auto p = parse({"extra"});
        CHECK(p.outcome == parse_outcome::exit_usage);
        CHECK(p.message ==
              "netnsd: unknown option 'extra'\nTry 'netnsd --help' for the list of options.\n");
    }
    SUBCASE("after good flags")
    {
        const auto p = parse({"--journal-size", "5", "-v"});
        CHECK(p.outcome == parse_outcome::exit_usage);
        CHECK(p.message ==
              "netnsd: unknown option '-v'\nTry 'netnsd --help' for the list of options.\n");
    }
}

TEST_CASE("the --help and -h flags print the usage and exit 0")
{
    for (const char* flag : {"--help", "-h"})
    {
        CAPTURE(flag);
        const auto p = parse({flag});
        CHECK(p.outcome == parse_outcome::exit_ok);
        CHECK(p.message == netnsd::server::usage());
    }
    const auto usage = netnsd::server::usage();
    CHECK(usage.starts_with("Usage: netnsd [OPTIONS]\n"));
    for (const char* flag :
         {"--listen", "--netns-dir", "--journal-size", "--log-level", "--max-stream-clients",
          "--stream-queue-messages", "--stream-queue-bytes", "--help", "--version"})
    {
        CAPTURE(flag);
        CHECK(usage.find(flag) != std::string::npos);
    }
}

TEST_CASE("the --help flag wins over the flags after it")
{
    const auto p = parse({"--help", "--bogus"});
    CHECK(p.outcome == parse_outcome::exit_ok);
}

TEST_CASE("the --version flag prints the version and exits 0")
{
    const auto p = parse({"--version"});
    CHECK(p.outcome == parse_outcome::exit_ok);
    CHECK(p.message == "netnsd " NETNSD_VERSION "\n");
}
