#include "server/config_flags.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>

#include <boost/make_shared.hpp>
#include <boost/program_options/errors.hpp>
#include <boost/program_options/options_description.hpp>
#include <boost/program_options/parsers.hpp>
#include <boost/program_options/value_semantic.hpp>

#include "core/log.hpp"
#include "core/model_status.hpp"

namespace netnsd::server::flags
{
namespace
{

namespace po = boost::program_options;

using take_function = std::function<bool(config&, const std::string&, std::string&)>;

// --help's layout, as it always was: descriptions from the 24th column (or on a line of their
// own below a longer name), no line past the 79th.
constexpr unsigned help_width = 80;
constexpr unsigned description_column = 23;

const std::string try_help = "Try 'netnsd --help' for the list of options.\n";

template <typename T>
bool parse_number(std::string_view text, T& out)
{
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc{} && ptr == end && !text.empty();
}

// "a, b or c".
std::string one_of(const std::vector<std::string_view>& words)
{
    std::string text;
    for (std::size_t i = 0; i < words.size(); ++i)
    {
        if (i > 0)
            text += i + 1 == words.size() ? " or " : ", ";
        text += words[i];
    }
    return text;
}

// The takers of the common kinds of value, into a member of config.

take_function whole_number(std::size_t config::*member)
{
    return [member](config& cfg, const std::string& value, std::string& why)
    {
        if (parse_number(std::string_view(value), cfg.*member) && cfg.*member > 0)
            return true;
        why = "expected a whole number > 0";
        return false;
    };
}

take_function absolute_path(std::string config::*member)
{
    return [member](config& cfg, const std::string& value, std::string& why)
    {
        if (value.empty() || value.front() != '/')
        {
            why = "expected an absolute path";
            return false;
        }
        cfg.*member = value;
        return true;
    };
}

// A value that must not be empty; `expected` says what it names.
take_function not_empty(std::string config::*member, std::string expected)
{
    return [member, expected](config& cfg, const std::string& value, std::string& why)
    {
        if (value.empty())
        {
            why = expected;
            return false;
        }
        cfg.*member = value;
        return true;
    };
}

take_function switch_on(bool config::*member)
{
    return [member](config& cfg, const std::string&, std::string&)
    {
        cfg.*member = true;
        return true;
    };
}

// One of `words`, read by `parse` (core's own reader of the setting).
template <typename T, typename Parse>
take_function one_of_words(T config::*member, std::vector<std::string_view> words, Parse parse)
{
    return [member, words, parse](config& cfg, const std::string& value, std::string& why)
    {
        if (parse(value, cfg.*member))
            return true;
        why = "expected " + one_of(words);
        return false;
    };
}

// The word `parse` reads as `value`: how --help names a default kept as an enum.
template <typename T, typename Parse>
std::string word_of(T value, const std::vector<std::string_view>& words, Parse parse)
{
    for (const auto word : words)
        if (T read{}; parse(word, read) && read == value)
            return std::string(word);
    return "?";
}

std::string number(std::size_t n)
{
    return std::to_string(n);
}

const std::vector<std::string_view> log_levels{"debug", "info", "warn", "error"};
const std::vector<std::string_view> log_formats{"text", "json"};
const std::vector<std::string_view> mount_feeds{"auto", "fanotify", "mountinfo"};
// A thread's scheduling: --mount-reader and --model-thread.
const std::vector<std::string_view> thread_priorities{"realtime", "nice"};

bool parse_thread_priority(std::string_view text, bool& realtime) noexcept
{
    if (text != "realtime" && text != "nice")
        return false;
    realtime = text == "realtime";
    return true;
}

// Where to serve, the netns dir and the model's history.
void add_model_flags(std::vector<flag>& out, const config& defaults)
{
    out.push_back(
        {"listen", "ADDRESS",
         "where to serve: ADDR:PORT (default " + defaults.listen.at(0).to_string() +
             "; IPv6 as [::1]:9321; port 0 picks a free one) or unix:PATH, a Unix socket (mode "
             "0660; what local tools should use). Give it more than once to serve on several "
             "addresses",
         [](config& cfg, const std::string& value, std::string& why)
         {
             listen_address where;
             if (!parse_listen(value, where))
             {
                 why = "expected ADDR:PORT, e.g. 127.0.0.1:9321 or [::1]:9321, or "
                       "unix:/ABSOLUTE/PATH";
                 return false;
             }
             cfg.listen.push_back(std::move(where));
             return true;
         },
         [](config& cfg)
         {
             cfg.listen.clear();
         }});
    out.push_back({"netns-dir", "DIR",
                   "the directory of named namespaces (default " + defaults.netns_dir + ")",
                   [take = absolute_path(&config::netns_dir)](config& cfg, const std::string& value,
                                                              std::string& why)
                   {
                       if (!take(cfg, value, why))
                           return false;
                       // One spelling everywhere: "/run/netns/" and "/run/netns" are one dir.
                       while (cfg.netns_dir.size() > 1 && cfg.netns_dir.back() == '/')
                           cfg.netns_dir.pop_back();
                       return true;
                   }});
    out.push_back(
        {"journal-size", "N",
         "events kept for clients that resume (default " + number(defaults.journal_size) + ")",
         whole_number(&config::journal_size)});
}

// The event stream's limits.
void add_stream_flags(std::vector<flag>& out, const config& defaults)
{
    out.push_back({"max-stream-clients", "N",
                   "event stream clients at once; more get 503 (default " +
                       number(defaults.max_stream_clients) + ")",
                   whole_number(&config::max_stream_clients)});
    out.push_back({"stream-queue-messages", "N",
                   "events queued for one slow client before it is dropped (default " +
                       number(defaults.stream_queue_messages) + ")",
                   whole_number(&config::stream_queue_messages)});
    out.push_back({"stream-queue-bytes", "N",
                   "bytes queued for one slow client before it is dropped (default " +
                       number(defaults.stream_queue_bytes) + ")",
                   whole_number(&config::stream_queue_bytes)});
}

// Who may do what: tokens, the admin group, Host and Origin, TLS.
void add_security_flags(std::vector<flag>& out, const config& defaults)
{
    out.push_back({"token-file", "PATH",
                   "the admin bearer token; created (0600) when missing (default " +
                       defaults.token_file + ")",
                   absolute_path(&config::token_file)});
    out.push_back({"auth-reads", "",
                   "require a token for reads too, read: or admin: scoped (not for /healthz)",
                   switch_on(&config::auth_reads)});
    out.push_back({"admin-group", "GROUP",
                   "root and members of GROUP may use admin on the Unix socket without a "
                   "token; the socket file gets the group",
                   not_empty(&config::admin_group, "expected a group name or number")});
    out.push_back(
        {"allowed-host", "NAME",
         "a name Host may carry besides the listen addresses, localhost and the hostname (more "
         "than once; * turns the check off, for use behind a proxy that makes it)",
         [](config& cfg, const std::string& value, std::string& why)
         {
             if (value.empty() || value.find_first_of(" \t/") != std::string::npos)
             {
                 why = "expected a host name or address, or *";
                 return false;
             }
             cfg.allowed_hosts.push_back(value);
             return true;
         },
         [](config& cfg)
         {
             cfg.allowed_hosts.clear();
         }});
    out.push_back(
        {"allowed-origin", "ORIGIN",
         "an origin (https://name[:port]) whose pages may write and open the event stream, "
         "besides netnsd's own (more than once)",
         [](config& cfg, const std::string& value, std::string& why)
         {
             if (value != "*" &&
                 (value.empty() || value.find_first_of(" \t") != std::string::npos ||
                  value.find("://") == std::string::npos || value.back() == '/'))
             {
                 why = "expected scheme://host[:port], or *";
                 return false;
             }
             cfg.allowed_origins.push_back(value);
             return true;
         },
         [](config& cfg)
         {
             cfg.allowed_origins.clear();
         }});
    out.push_back({"tls-cert", "FILE",
                   "serve HTTPS on the TCP listeners with this certificate chain (PEM); "
                   "reloaded when it changes, or on SIGHUP",
                   not_empty(&config::tls_cert, "expected a file")});
    out.push_back({"tls-key", "FILE", "its private key (PEM)",
                   not_empty(&config::tls_key, "expected a file")});
    out.push_back({"tls-client-ca", "FILE",
                   "require a client certificate signed by this CA (mutual TLS)",
                   not_empty(&config::tls_client_ca, "expected a file")});
}

// Running commands in a namespace.
void add_exec_flags(std::vector<flag>& out, const config& defaults)
{
    out.push_back({"enable-exec", "", "allow POST /api/v1/netns/{name}/exec (off by default)",
                   switch_on(&config::enable_exec)});
    out.push_back({"exec-output-limit", "N",
                   "bytes kept of each of an exec's stdout and stderr (default " +
                       number(defaults.exec_output_limit) + ")",
                   whole_number(&config::exec_output_limit)});
    out.push_back(
        {"max-exec", "N",
         "execs running at once; more get 429 (default " + number(defaults.max_exec) + ")",
         whole_number(&config::max_exec)});
    out.push_back({"etc-netns-dir", "DIR",
                   "per-namespace /etc files for exec (default " + defaults.etc_netns_dir + ")",
                   absolute_path(&config::etc_netns_dir)});
}

// How the kernel is followed, and what netnsd says about it.
void add_kernel_and_log_flags(std::vector<flag>& out, const config& defaults)
{
    out.push_back({"audit-interval", "SECONDS",
                   "how often the model is checked against a full scan of the kernel, differences "
                   "repaired and counted; 0: only on POST /api/v1/audit (default " +
                       number(defaults.audit_interval_s) + ")",
                   [](config& cfg, const std::string& value, std::string& why)
                   {
                       if (parse_number(std::string_view(value), cfg.audit_interval_s) &&
                           cfg.audit_interval_s <= 86400 * 365)
                           return true;
                       why = "expected a whole number of seconds (0 turns it off)";
                       return false;
                   }});
    out.push_back({"sweep-interval", "SECONDS",
                   "how often /proc is swept for the processes that hold each network namespace "
                   "of the host (default " +
                       number(defaults.sweep_interval_s) + ")",
                   [](config& cfg, const std::string& value, std::string& why)
                   {
                       if (parse_number(std::string_view(value), cfg.sweep_interval_s) &&
                           cfg.sweep_interval_s >= 1 && cfg.sweep_interval_s <= 86400)
                           return true;
                       why = "expected a whole number of seconds from 1 to 86400";
                       return false;
                   }});
    out.push_back({"watch-links", "",
                   "send link and address events (types=link,address): one rtnetlink listener "
                   "for every namespace with an nsid; it slows every link change on the host "
                   "(off by default)",
                   switch_on(&config::watch_links)});
    out.push_back({"assign-nsids", "",
                   "with --watch-links, give every namespace netnsd knows an nsid (ip netns set "
                   "NAME auto), so that its link events are heard (off by default)",
                   switch_on(&config::assign_nsids)});
    out.push_back({"proc-events", "",
                   "follow the kernel's process events (fork, exec, exit) to find a namespace "
                   "as soon as a process forks or execs into it, not at the next sweep; costs "
                   "every fork and exit on the host a little (off by default)",
                   switch_on(&config::proc_events)});
    out.push_back({"proc-events-netns", "PATH",
                   "the network namespace the process events' socket is made in when netnsd's "
                   "own is not the host's initial one (default " +
                       defaults.proc_events_netns + ")",
                   absolute_path(&config::proc_events_netns)});
    out.push_back({"follow-mount-namespaces", "",
                   "between the sweeps' walks of the other mount namespaces, follow their mount "
                   "events: a namespace bound there is found and destroyed at once, not at the "
                   "next sweep; every mount there wakes netnsd a little, and walks again "
                   "(off by default)",
                   switch_on(&config::follow_mount_namespaces)});
    out.push_back({"cni-cache-dir", "DIR",
                   "libcni's cache of attachments, read (and watched) for the Kubernetes pod "
                   "of each namespace: its namespace/name and UID; empty: not read (default " +
                       defaults.cni_cache_dir + ")",
                   [take = absolute_path(&config::cni_cache_dir)](
                       config& cfg, const std::string& value, std::string& why)
                   {
                       if (value.empty())
                       {
                           cfg.cni_cache_dir.clear();
                           return true;
                       }
                       return take(cfg, value, why);
                   }});
    out.push_back({"deep-scan-interval", "SECONDS",
                   "how often every process's fds are scanned for the namespaces open fds and "
                   "sockets hold; 0: only on POST /api/v1/namespaces/scan (default " +
                       number(defaults.deep_scan_interval_s) + ")",
                   [](config& cfg, const std::string& value, std::string& why)
                   {
                       if (parse_number(std::string_view(value), cfg.deep_scan_interval_s) &&
                           cfg.deep_scan_interval_s <= 86400)
                           return true;
                       why = "expected a whole number of seconds from 0 to 86400 (0 turns it off)";
                       return false;
                   }});
    out.push_back(
        {"mount-feed", "FEED",
         "how to follow the mount table: fanotify (mount events in kernel order; Linux 6.15+, "
         "CAP_SYS_ADMIN), mountinfo (a change somewhere, then a look), or auto: fanotify where "
         "the kernel has it (default " +
             word_of(defaults.mount_feed, mount_feeds, core::parse_mount_choice) + ")",
         one_of_words(&config::mount_feed, mount_feeds, core::parse_mount_choice)});
    out.push_back(
        {"mount-reader", "PRIORITY",
         "the fanotify feed's reader threads: realtime (SCHED_FIFO priority 2, above the model "
         "thread, where netnsd has CAP_SYS_NICE; ~30 µs of CPU per mount event and reader) or "
         "nice (nice -10) "
         "(default " +
             word_of(defaults.realtime_mount_reader, thread_priorities, parse_thread_priority) +
             ")",
         one_of_words(&config::realtime_mount_reader, thread_priorities, parse_thread_priority)});
    out.push_back(
        {"model-thread", "PRIORITY",
         "the thread that applies the kernel's changes to the model: realtime (SCHED_FIFO "
         "priority 1, where netnsd has CAP_SYS_NICE; its work per turn is bounded) or nice "
         "(nice -10) (default " +
             word_of(defaults.realtime_model_thread, thread_priorities, parse_thread_priority) +
             ")",
         one_of_words(&config::realtime_model_thread, thread_priorities, parse_thread_priority)});
    out.push_back({"log-level", "LEVEL",
                   one_of(log_levels) + " (default " +
                       word_of(defaults.log_level, log_levels, core::log::parse_level) + ")",
                   one_of_words(&config::log_level, log_levels, core::log::parse_level)});
    out.push_back({"log-format", "FORMAT",
                   "text (\"level: message key=value\") or json (one object per line: time, "
                   "level, msg and fields); default " +
                       word_of(defaults.log_format, log_formats, core::log::parse_format),
                   one_of_words(&config::log_format, log_formats, core::log::parse_format)});
}

// The per-interface metrics.
void add_metrics_flags(std::vector<flag>& out, const config& defaults)
{
    out.push_back({"metrics-interfaces", "",
                   "/metrics also carries the counters and state of every interface of every "
                   "namespace netnsd can read, at scrape time (off by default)",
                   switch_on(&config::metrics_interfaces)});
    out.push_back({"metrics-max-series", "N",
                   "per-interface series at most, whole interfaces in the order of their labels "
                   "(default " +
                       number(defaults.metrics_max_series) + ")",
                   whole_number(&config::metrics_max_series)});
}

std::vector<flag> make_flags()
{
    const config defaults;
    std::vector<flag> out;
    add_model_flags(out, defaults);
    add_stream_flags(out, defaults);
    add_security_flags(out, defaults);
    add_exec_flags(out, defaults);
    add_kernel_and_log_flags(out, defaults);
    add_metrics_flags(out, defaults);
    return out;
}

const flag* find(std::string_view name)
{
    const auto& flags = all();
    const auto it =
        std::find_if(flags.begin(), flags.end(), [name](const flag& f) { return f.name == name; });
    return it == flags.end() ? nullptr : &*it;
}

// Every flag for Program_options: a switch takes no value, the others exactly one.
po::options_description make_description()
{
    po::options_description described("Options", help_width, help_width - description_column);
    for (const auto& f : all())
    {
        const po::value_semantic* semantic =
            f.is_switch() ? static_cast<const po::value_semantic*>(new po::untyped_value(true))
                          : po::value<std::string>()->value_name(f.argument);
        // Program_options starts a description one space after a name that ends just short of
        // its column; --help has two spaces or a new line there (tests/package/check-options
        // reads it so), so such a description starts on the next line.
        const auto named = "  --" + f.name + " " + f.argument; // as Program_options prints it
        const auto help = named.size() + 1 == description_column ? "\n" + f.help : f.help;
        described.add(
            boost::make_shared<po::option_description>(f.name.c_str(), semantic, help.c_str()));
    }
    described.add_options()("help", "print this help and exit")("version",
                                                                "print the version and exit");
    return described;
}

const po::options_description& description()
{
    static const po::options_description described = make_description();
    return described;
}

// What netnsd reads differently from Program_options, as a parser that runs before its own:
// "--flag=" with nothing after '=' is the empty value, which the flag then judges (an empty
// --netns-dir is not an absolute path) where Program_options would refuse the syntax; and
// "--", its end of options, is no option of netnsd's, so it is kept as an unknown word.
std::vector<po::option> netnsd_words(std::vector<std::string>& args)
{
    const std::string& word = args.front();
    po::option read;
    if (word == "--")
        read.value = {word};
    else if (word.starts_with("--") && word.find('=') == word.size() - 1)
    {
        read.string_key = word.substr(2, word.size() - 3);
        read.value = {std::string()};
    }
    else
        return {};
    read.original_tokens = {word};
    args.erase(args.begin());
    return {read};
}

std::vector<po::option> options_in(const std::vector<std::string>& args)
{
    namespace style = po::command_line_style;
    // Long options only, without guessing from a prefix. A word such as -h or -x is left to
    // apply(), which takes -h for --help (as netnsd always has) and calls any other an unknown
    // option, where Program_options would read short options and bundles of them.
    return po::command_line_parser(args)
        .options(description())
        .style(style::allow_long | style::long_allow_adjacent | style::long_allow_next)
        .extra_style_parser(netnsd_words)
        .allow_unregistered()
        .run()
        .options;
}

bool is_help_or_version(const std::string& word)
{
    return word == "--help" || word == "-h" || word == "--version";
}

std::string unknown(const std::string& word)
{
    return "netnsd: unknown option '" + word + "'\n" + try_help;
}

} // namespace

const std::vector<flag>& all()
{
    static const std::vector<flag> flags = make_flags();
    return flags;
}

std::string options_help()
{
    std::ostringstream printed;
    printed << description();
    // Program_options leaves a space after a name too long for its column, and at the end of
    // a line broken at a space: no line ends in one.
    std::string text;
    std::istringstream lines(printed.str());
    for (std::string line; std::getline(lines, line);)
    {
        line.erase(line.find_last_not_of(' ') + 1);
        text += line + "\n";
    }
    return text;
}

parse_outcome read_command_line(int argc, const char* const* argv, std::vector<po::option>& out,
                                std::string& message)
{
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i)
        args.emplace_back(argv[i]);
    for (;;)
    {
        try
        {
            out = options_in(args);
            return parse_outcome::run;
        }
        catch (const po::error& e)
        {
            // Flags are taken in order: the options up to a --help or --version before the
            // trouble are read again without it, and apply() stops at that --help.
            const auto stop = std::find_if(args.begin(), args.end(), is_help_or_version);
            if (stop != args.end() && stop + 1 != args.end())
            {
                args.erase(stop + 1, args.end());
                continue;
            }
            const auto* syntax = dynamic_cast<const po::invalid_command_line_syntax*>(&e);
            if (syntax != nullptr && syntax->kind() == po::invalid_syntax::missing_parameter)
                message = "netnsd: option " + syntax->get_option_name() + " needs a value\n";
            else if (syntax != nullptr && syntax->kind() == po::invalid_syntax::extra_parameter)
                message = "netnsd: option " + syntax->get_option_name() + " takes no value\n";
            else
                message = "netnsd: " + std::string(e.what()) + "\n" + try_help;
            return parse_outcome::exit_usage;
        }
    }
}

parse_outcome apply(const std::vector<po::option>& options, config& out, std::string& message)
{
    std::vector<const flag*> given; // the repeatable flags seen, whose default is gone
    for (const auto& option : options)
    {
        const auto& word =
            option.original_tokens.empty() ? option.string_key : option.original_tokens.front();
        if (option.string_key == "help" || (option.string_key.empty() && word == "-h"))
        {
            message = usage();
            return parse_outcome::exit_ok;
        }
        if (option.string_key == "version")
        {
            message = "netnsd " NETNSD_VERSION "\n";
            return parse_outcome::exit_ok;
        }
        const flag* f = option.unregistered ? nullptr : find(option.string_key);
        if (f == nullptr)
        {
            message = unknown(word);
            return parse_outcome::exit_usage;
        }
        // Taken into a copy: a bad value leaves `out` as it was (the default --listen too).
        config next = out;
        if (f->repeatable() && std::find(given.begin(), given.end(), f) == given.end())
        {
            f->clear(next);
            given.push_back(f);
        }
        const std::string value = option.value.empty() ? std::string() : option.value.front();
        if (std::string why; !f->take(next, value, why))
        {
            message = "netnsd: invalid value '" + value + "' for --" + f->name + ": " + why + "\n";
            return parse_outcome::exit_usage;
        }
        out = std::move(next);
    }
    return parse_outcome::run;
}

} // namespace netnsd::server::flags
