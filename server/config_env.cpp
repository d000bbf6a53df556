#include "server/config_env.hpp"

#include <algorithm>
#include <cctype>
#include <string_view>

#include "server/config_flags.hpp"

namespace netnsd::server
{
namespace
{

namespace po = boost::program_options;

// A variable's value as the option it stands for.
struct from_variable
{
    std::string name; // NETNSD_LISTEN
    po::option option;
};

// "netns-dir" -> "NETNSD_NETNS_DIR".
std::string variable_of(std::string_view flag)
{
    std::string name = "NETNSD_";
    for (const char c : flag)
        name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return name;
}

// The first value of `name` in `envp`, as getenv(3) finds it; null when it is not set.
const char* find_variable(const char* const* envp, const std::string& name)
{
    for (; envp != nullptr && *envp != nullptr; ++envp)
    {
        const std::string_view entry(*envp);
        if (entry.size() > name.size() && entry.starts_with(name) && entry[name.size()] == '=')
            return *envp + name.size() + 1;
    }
    return nullptr;
}

bool lower_equals(std::string_view text, std::string_view word)
{
    return std::equal(text.begin(), text.end(), word.begin(), word.end(),
                      [](char a, char b)
                      { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

bool is_any_of(std::string_view text, std::initializer_list<std::string_view> words)
{
    return std::any_of(words.begin(), words.end(),
                       [text](std::string_view word) { return lower_equals(text, word); });
}

// One variable's options: each comma-separated value of a repeatable flag's, the value of
// another flag's, a switch when it is on. False, with `message`, when a switch is neither on
// nor off.
bool options_of(const flags::flag& f, std::string name, std::string_view value,
                std::vector<from_variable>& out, std::string& message)
{
    if (f.repeatable())
    {
        std::size_t start = 0;
        for (std::size_t comma; (comma = value.find(',', start)) != std::string_view::npos;
             start = comma + 1)
            out.push_back(
                {name, po::option(f.name, {std::string(value.substr(start, comma - start))})});
        out.push_back({name, po::option(f.name, {std::string(value.substr(start))})});
    }
    else if (!f.is_switch())
        out.push_back({name, po::option(f.name, {std::string(value)})});
    else if (is_any_of(value, {"1", "true", "yes", "on"}))
        out.push_back({name, po::option(f.name, {})});
    else if (!is_any_of(value, {"", "0", "false", "no", "off"}))
    {
        message = "netnsd: invalid value '" + std::string(value) + "' for " + name +
                  ": expected 1, true, yes or on, or 0, false, no or off\n";
        return false;
    }
    return true;
}

// The NETNSD_* variables of `envp` as options, in --help's order.
bool collect(const char* const* envp, std::vector<from_variable>& out, std::string& message)
{
    for (const auto& f : flags::all())
    {
        auto name = variable_of(f.name);
        if (const char* value = find_variable(envp, name))
            if (!options_of(f, std::move(name), value, out, message))
                return false;
    }
    return true;
}

// Each variable alone, so that a bad value is reported as the variable's -- even one the
// command line overrides: it is wrong all the same.
bool check_each(const std::vector<from_variable>& found, std::string& message)
{
    for (const auto& variable : found)
    {
        config scratch;
        if (flags::apply({variable.option}, scratch, message) != parse_outcome::exit_usage)
            continue;
        const std::string_view why(message);
        message = "netnsd: " + variable.name + ": " +
                  std::string(why.starts_with("netnsd: ") ? why.substr(8) : why);
        return false;
    }
    return true;
}

bool sets(const std::vector<po::option>& command_line, const std::string& flag)
{
    return std::any_of(command_line.begin(), command_line.end(),
                       [&flag](const po::option& o)
                       { return !o.unregistered && o.string_key == flag; });
}

} // namespace

bool environment_args(const char* const* envp, std::vector<std::string>& out, std::string& message)
{
    std::vector<from_variable> found;
    if (!collect(envp, found, message))
        return false;
    for (const auto& variable : found)
    {
        const auto& o = variable.option;
        out.push_back("--" + o.string_key + (o.value.empty() ? "" : "=" + o.value.front()));
    }
    return true;
}

parse_outcome parse_args_with_environment(int argc, const char* const* argv,
                                          const char* const* envp, config& out,
                                          std::string& message)
{
    std::vector<from_variable> found;
    if (!collect(envp, found, message) || !check_each(found, message))
        return parse_outcome::exit_usage;
    std::vector<po::option> command_line;
    if (const auto outcome = flags::read_command_line(argc, argv, command_line, message);
        outcome != parse_outcome::run)
        return outcome;
    // The variables first, so that the command line's flags come after them and win; a flag
    // the command line sets leaves its variable out altogether, so that a --listen replaces
    // every address of NETNSD_LISTEN instead of adding to them.
    std::vector<po::option> options;
    for (auto& variable : found)
        if (!sets(command_line, variable.option.string_key))
            options.push_back(std::move(variable.option));
    options.insert(options.end(), command_line.begin(), command_line.end());
    const auto outcome = flags::apply(options, out, message);
    if (outcome == parse_outcome::run && !check_config(out, message))
        return parse_outcome::exit_usage;
    return outcome;
}

} // namespace netnsd::server
