#include "server/config_env.hpp"

#include <cctype>
#include <sstream>
#include <string_view>

namespace netnsd::server
{
namespace
{

// The long options usage() documents, but --help and --version.
std::vector<std::string> documented_flags()
{
    std::vector<std::string> flags;
    std::istringstream text(usage());
    for (std::string line; std::getline(text, line);)
    {
        if (!line.starts_with("  --"))
            continue;
        const auto end = line.find(' ', 2);
        std::string flag = line.substr(2, end == std::string::npos ? end : end - 2);
        if (flag != "--help" && flag != "--version")
            flags.push_back(std::move(flag));
    }
    return flags;
}

// "--netns-dir" -> "NETNSD_NETNS_DIR".
std::string variable_of(std::string_view flag)
{
    std::string name = "NETNSD_";
    for (const char c : flag.substr(2))
        name += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return name;
}

// Whether the flag takes a value: parse_args itself says so when it is given none.
bool takes_value(const std::string& flag)
{
    const char* argv[] = {"netnsd", flag.c_str()};
    config scratch;
    std::string message;
    return parse_args(2, argv, scratch, message) == parse_outcome::exit_usage &&
           message.find("needs a value") != std::string::npos;
}

bool lower_equals(std::string_view text, std::string_view word)
{
    if (text.size() != word.size())
        return false;
    for (std::size_t i = 0; i < text.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(text[i])) != word[i])
            return false;
    return true;
}

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

} // namespace

namespace
{

struct from_variable
{
    std::string name; // NETNSD_LISTEN
    std::string flag; // --listen
    std::string arg;  // --listen=VALUE
};

// Flags that may be given more than once; their variable holds the values separated by commas.
bool repeatable(std::string_view flag)
{
    return flag == "--listen" || flag == "--allowed-host" || flag == "--allowed-origin";
}

// Whether the command line sets `flag` itself (then its variable is ignored: for a flag given
// more than once, mixing the two would serve on addresses nobody asked for together).
bool on_command_line(int argc, const char* const* argv, std::string_view flag)
{
    for (int i = 1; i < argc; ++i)
    {
        const std::string_view arg(argv[i]);
        if (arg == flag ||
            (arg.starts_with(flag) && arg.size() > flag.size() && arg[flag.size()] == '='))
            return true;
    }
    return false;
}

bool collect(const char* const* envp, std::vector<from_variable>& out, std::string& message)
{
    for (const auto& flag : documented_flags())
    {
        auto name = variable_of(flag);
        const char* value = find_variable(envp, name);
        if (value == nullptr)
            continue;
        const std::string_view text(value);
        if (repeatable(flag))
        {
            std::size_t start = 0;
            for (std::size_t comma; (comma = text.find(',', start)) != std::string_view::npos;
                 start = comma + 1)
                out.push_back(
                    {name, flag, flag + "=" + std::string(text.substr(start, comma - start))});
            out.push_back({std::move(name), flag, flag + "=" + std::string(text.substr(start))});
        }
        else if (takes_value(flag))
            out.push_back({std::move(name), flag, flag + "=" + value});
        else if (lower_equals(text, "1") || lower_equals(text, "true") ||
                 lower_equals(text, "yes") || lower_equals(text, "on"))
            out.push_back({std::move(name), flag, flag});
        else if (!(text.empty() || lower_equals(text, "0") || lower_equals(text, "false") ||
                   lower_equals(text, "no") || lower_equals(text, "off")))
        {
            message = "netnsd: invalid value '" + std::string(text) + "' for " + name +
                      ": expected 1, true, yes or on, or 0, false, no or off\n";
            return false;
        }
    }
    return true;
}

} // namespace

bool environment_args(const char* const* envp, std::vector<std::string>& out, std::string& message)
{
    std::vector<from_variable> found;
    if (!collect(envp, found, message))
        return false;
    for (auto& f : found)
        out.push_back(std::move(f.arg));
    return true;
}

parse_outcome parse_args_with_environment(int argc, const char* const* argv,
                                          const char* const* envp, config& out,
                                          std::string& message)
{
    std::vector<from_variable> found;
    if (!collect(envp, found, message))
        return parse_outcome::exit_usage;
    const char* program = argc > 0 ? argv[0] : "netnsd";
    std::vector<const char*> args{program};
    for (const auto& f : found)
    {
        // Each alone first, so that a bad value is reported as the variable's.
        const char* alone[] = {program, f.arg.c_str()};
        config scratch;
        if (parse_args(2, alone, scratch, message) == parse_outcome::exit_usage)
        {
            const std::string_view why(message);
            message = "netnsd: " + f.name + ": " +
                      std::string(why.starts_with("netnsd: ") ? why.substr(8) : why);
            return parse_outcome::exit_usage;
        }
        // Checked all the same, but left out: the command line's own value wins.
        if (!on_command_line(argc, argv, f.flag))
            args.push_back(f.arg.c_str());
    }
    for (int i = 1; i < argc; ++i)
        args.push_back(argv[i]);
    const auto outcome = parse_args(static_cast<int>(args.size()), args.data(), out, message);
    if (outcome == parse_outcome::run && !check_config(out, message))
        return parse_outcome::exit_usage;
    return outcome;
}

} // namespace netnsd::server
