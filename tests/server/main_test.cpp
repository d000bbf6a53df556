// The netnsd binary's command line: bad flags, --help and --version. None of these starts the
// daemon (which needs root for its kernel feeds; tests/integration runs it).
#include <cstdlib>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "server/config.hpp"

#include "support/process.hpp"

namespace
{

// NETNSD_BIN overrides the binary CMake built next to the tests.
std::string binary()
{
    if (const char* bin = std::getenv("NETNSD_BIN"))
        return bin;
    return NETNSD_TEST_BINARY;
}

netnsd::test::run_result run_netnsd(const std::vector<std::string>& args)
{
    std::vector<std::string> argv{binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return netnsd::test::run(argv);
}

const std::string try_help = "Try 'netnsd --help' for the list of options.\n";

} // namespace

TEST_CASE("netnsd with a bad flag exits 2 and says why on stderr")
{
    std::vector<std::string> args;
    std::string message;
    SUBCASE("an unknown option")
    {
        args = {"--bogus"};
        message = "netnsd: unknown option '--bogus'\n" + try_help;
    }
    SUBCASE("an unknown option with a value")
    {
        args = {"--bogus=1"};
        message = "netnsd: unknown option '--bogus=1'\n" + try_help;
    }
    SUBCASE("a positional argument")
    {
        args = {"serve"};
        message = "netnsd: unknown option 'serve'\n" + try_help;
    }
    SUBCASE("a bad flag after good ones")
    {
        args = {"--log-level=debug", "--listen", "127.0.0.1:0", "-x"};
        message = "netnsd: unknown option '-x'\n" + try_help;
    }
    SUBCASE("an option without its value")
    {
        args = {"--listen"};
        message = "netnsd: option --listen needs a value\n";
    }
    SUBCASE("an address without a port")
    {
        args = {"--listen=localhost"};
        message = "netnsd: invalid value 'localhost' for --listen: expected ADDR:PORT, e.g. "
                  "127.0.0.1:9321 or [::1]:9321, or unix:/ABSOLUTE/PATH\n";
    }
    SUBCASE("a port out of range")
    {
        args = {"--listen", "127.0.0.1:65536"};
        message = "netnsd: invalid value '127.0.0.1:65536' for --listen: expected ADDR:PORT, "
                  "e.g. 127.0.0.1:9321 or [::1]:9321, or unix:/ABSOLUTE/PATH\n";
    }
    SUBCASE("an IPv6 address without brackets")
    {
        args = {"--listen=::1:9321"};
        message = "netnsd: invalid value '::1:9321' for --listen: expected ADDR:PORT, e.g. "
                  "127.0.0.1:9321 or [::1]:9321, or unix:/ABSOLUTE/PATH\n";
    }
    SUBCASE("a relative netns dir")
    {
        args = {"--netns-dir=run/netns"};
        message = "netnsd: invalid value 'run/netns' for --netns-dir: expected an absolute path\n";
    }
    SUBCASE("a negative journal size")
    {
        args = {"--journal-size=-1"};
        message = "netnsd: invalid value '-1' for --journal-size: expected a whole number > 0\n";
    }
    SUBCASE("a stream limit of zero")
    {
        args = {"--max-stream-clients=0"};
        message =
            "netnsd: invalid value '0' for --max-stream-clients: expected a whole number > 0\n";
    }
    SUBCASE("an unknown log level")
    {
        args = {"--log-level", "loud"};
        message = "netnsd: invalid value 'loud' for --log-level: expected debug, info, warn or "
                  "error\n";
    }
    CAPTURE(args.front());
    const auto r = run_netnsd(args);
    CHECK(r.exit_code == 2);
    CHECK(r.err == message);
    CHECK(r.out.empty());
}

TEST_CASE("netnsd --help prints the usage on stdout and exits 0")
{
    std::string flag;
    SUBCASE("--help")
    {
        flag = "--help";
    }
    SUBCASE("-h")
    {
        flag = "-h";
    }
    const auto r = run_netnsd({flag});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == netnsd::server::usage());
    CHECK(r.out.starts_with("Usage: netnsd [OPTIONS]\n"));
    for (const char* option :
         {"--listen", "--netns-dir", "--journal-size", "--log-level", "--help", "--version"})
    {
        CAPTURE(option);
        CHECK(r.out.find(option) != std::string::npos);
    }
}

TEST_CASE("netnsd --version prints the version and exits 0")
{
    const auto r = run_netnsd({"--version"});
    CHECK(r.exit_code == 0);
    CHECK(r.err.empty());
    CHECK(r.out == "netnsd " NETNSD_VERSION "\n");
}
