// config_flags: netnsd's options, each described once -- its name, its argument, its --help
// text with the default taken from the constant beside what it limits, and how a value goes
// into a config -- and read with Boost.Program_options. The command line (parse_args) and the
// NETNSD_* variables (config_env) both become Program_options' options, applied in order by
// apply(). The only place that knows Program_options' parser; start-up only, main thread.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/program_options/option.hpp>

#include "server/config.hpp"

namespace netnsd::server::flags
{

struct flag
{
    std::string name;     // "listen": --listen, NETNSD_LISTEN
    std::string argument; // "ADDRESS" in --help; empty for a switch, which takes no value
    std::string help;     // its description in --help
    // Takes one value into `cfg` (a switch's is empty); false, with why it is not one.
    std::function<bool(config& cfg, const std::string& value, std::string& why)> take;
    // Set for a flag that may be given more than once (each adds a value): the first one
    // given clears the default. Its variable holds several values separated by commas.
    std::function<void(config& cfg)> clear = nullptr;

    bool is_switch() const noexcept { return argument.empty(); }
    bool repeatable() const noexcept { return static_cast<bool>(clear); }
};

// Every option but --help and --version, in the order --help lists them.
const std::vector<flag>& all();

// The options part of --help: two spaces or a new line before each description, wrapped
// before the 80th column.
std::string options_help();

// argv's options in order, as Program_options reads them (`--flag=value`, `--flag value`;
// what is not an option of netnsd's is kept, unregistered, for apply() to name). exit_usage,
// with `message`, when a value is missing or a switch has one -- unless --help or --version
// came before, as flags are taken in order.
parse_outcome read_command_line(int argc, const char* const* argv,
                                std::vector<boost::program_options::option>& out,
                                std::string& message);

// Takes `options` into `out` in order; a later value of a flag replaces an earlier one, and
// a repeatable flag's values add up. Stops at --help or --version (exit_ok, with the text),
// at an unknown option or a bad value (exit_usage, with the message).
parse_outcome apply(const std::vector<boost::program_options::option>& options, config& out,
                    std::string& message);

} // namespace netnsd::server::flags
