#include "server/config.hpp"

#include <charconv>
#include <string_view>

namespace netnsd::server
{
namespace
{

template <typename T>
bool parse_number(std::string_view text, T& out)
{
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc{} && ptr == end && !text.empty();
}

} // namespace

std::string listen_address::to_string() const
{
    if (is_unix())
        return "unix:" + path;
    const auto shown = host.find(':') == std::string::npos ? host : "[" + host + "]";
    return shown + ":" + std::to_string(port);
}

bool parse_listen(const std::string& text, listen_address& out)
{
    if (text.starts_with("unix:"))
    {
        auto path = text.substr(5);
        // sun_path holds 108 bytes, the terminating NUL included.
        if (path.empty() || path.front() != '/' || path.size() > 107 ||
            path.find('\0') != std::string::npos)
            return false;
        out = listen_address{};
        out.path = std::move(path);
        return true;
    }
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0)
        return false;
    std::string host = text.substr(0, colon);
    if (host.front() == '[')
    {
        if (host.size() < 3 || host.back() != ']')
            return false;
        host = host.substr(1, host.size() - 2);
    }
    else if (host.find(':') != std::string::npos)
        return false; // an IPv6 address needs brackets
    std::uint16_t port = 0;
    if (!parse_number(std::string_view(text).substr(colon + 1), port))
        return false;
    out = listen_address{};
    out.host = std::move(host);
    out.port = port;
    return true;
}

std::string usage()
{
    return "Usage: netnsd [OPTIONS]\n"
           "\n"
           "A live model of the host's network namespaces, served over HTTP/JSON.\n"
           "\n"
           "Options:\n"
           "  --listen ADDRESS     where to serve: ADDR:PORT (default 127.0.0.1:9321; IPv6\n"
           "                       as [::1]:9321; port 0 picks a free one) or unix:PATH, a\n"
           "                       Unix socket (mode 0660; what local tools should use).\n"
           "                       Give it more than once to serve on several addresses\n"
           "  --netns-dir DIR      the directory of named namespaces (default /run/netns)\n"
           "  --journal-size N     events kept for clients that resume (default 100000)\n"
           "  --max-stream-clients N\n"
           "                       event stream clients at once; more get 503 (default 1024)\n"
           "  --stream-queue-messages N\n"
           "                       events queued for one slow client before it is dropped\n"
           "                       (default 10000)\n"
           "  --stream-queue-bytes N\n"
           "                       bytes queued for one slow client before it is dropped\n"
           "                       (default 8388608)\n"
           "  --token-file PATH    the admin bearer token; created (0600) when missing\n"
           "                       (default /etc/netnsd/token)\n"
           "  --auth-reads         require a token for reads too, read: or admin: scoped\n"
           "                       (not for /healthz)\n"
           "  --admin-group GROUP  root and members of GROUP may use admin on the Unix\n"
           "                       socket without a token; the socket file gets the group\n"
           "  --allowed-host NAME  a name Host may carry besides the listen addresses,\n"
           "                       localhost and the hostname (more than once; * turns the\n"
           "                       check off, for use behind a proxy that makes it)\n"
           "  --allowed-origin ORIGIN\n"
           "                       an origin (https://name[:port]) whose pages may write and\n"
           "                       open the event stream, besides netnsd's own (more than once)\n"
           "  --tls-cert FILE      serve HTTPS on the TCP listeners with this certificate\n"
           "                       chain (PEM); reloaded when it changes, or on SIGHUP\n"
           "  --tls-key FILE       its private key (PEM)\n"
           "  --tls-client-ca FILE\n"
           "                       require a client certificate signed by this CA (mutual TLS)\n"
           "  --enable-exec        allow POST /api/v1/netns/{name}/exec (off by default)\n"
           "  --exec-output-limit N\n"
           "                       bytes kept of each of an exec's stdout and stderr\n"
           "                       (default 1048576)\n"
           "  --max-exec N         execs running at once; more get 429 (default 16)\n"
           "  --etc-netns-dir DIR  per-namespace /etc files for exec (default /etc/netns)\n"
           "  --audit-interval SECONDS\n"
           "                       how often the model is checked against a full scan of\n"
           "                       the kernel, differences repaired and counted; 0: only on\n"
           "                       POST /api/v1/audit (default 60)\n"
           "  --mount-feed FEED    how to follow the mount table: fanotify (mount events in\n"
           "                       kernel order; Linux 6.15+, CAP_SYS_ADMIN), mountinfo (a\n"
           "                       change somewhere, then a look), or auto: fanotify where\n"
           "                       the kernel has it (default auto)\n"
           "  --log-level LEVEL    debug, info, warn or error (default info)\n"
           "  --log-format FORMAT  text (\"level: message key=value\") or json (one object\n"
           "                       per line: time, level, msg and fields); default text\n"
           "  --help               print this help and exit\n"
           "  --version            print the version and exit\n"
           "\n"
           "Every option can also be set in the environment as NETNSD_<OPTION>, in upper case\n"
           "with '_' for '-': NETNSD_LISTEN, NETNSD_NETNS_DIR, NETNSD_TOKEN_FILE, ...; a switch\n"
           "as NETNSD_ENABLE_EXEC=1 (or true, yes, on); several addresses in NETNSD_LISTEN\n"
           "separated by commas. An option on the command line wins over its variable.\n";
}

parse_outcome parse_args(int argc, const char* const* argv, config& out, std::string& message)
{
    bool listen_given = false; // the first --listen replaces the default, the next ones add
    for (int i = 1; i < argc; ++i)
    {
        std::string_view arg = argv[i];
        std::string value;
        bool has_value = false;
        if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos)
        {
            value = std::string(arg.substr(eq + 1));
            arg = arg.substr(0, eq);
            has_value = true;
        }
        auto take_value = [&]() -> bool
        {
            if (has_value)
                return true;
            if (i + 1 >= argc)
            {
                message = "netnsd: option " + std::string(arg) + " needs a value\n";
                return false;
            }
            value = argv[++i];
            return true;
        };
        auto bad_value = [&](std::string_view why)
        {
            message = "netnsd: invalid value '" + value + "' for " + std::string(arg) + ": " +
                      std::string(why) + "\n";
            return parse_outcome::exit_usage;
        };

        if (arg == "--help" || arg == "-h")
        {
            message = usage();
            return parse_outcome::exit_ok;
        }
        if (arg == "--version")
        {
            message = "netnsd " NETNSD_VERSION "\n";
            return parse_outcome::exit_ok;
        }
        if (arg == "--listen")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            listen_address where;
            if (!parse_listen(value, where))
                return bad_value("expected ADDR:PORT, e.g. 127.0.0.1:9321 or [::1]:9321, or "
                                 "unix:/ABSOLUTE/PATH");
            if (!listen_given)
                out.listen.clear();
            listen_given = true;
            out.listen.push_back(std::move(where));
        }
        else if (arg == "--netns-dir")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            if (value.empty() || value.front() != '/')
                return bad_value("expected an absolute path");
            // One spelling everywhere: "/run/netns/" and "/run/netns" are the same dir.
            while (value.size() > 1 && value.back() == '/')
                value.pop_back();
            out.netns_dir = value;
        }
        else if (arg == "--journal-size")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            if (!parse_number(std::string_view(value), out.journal_size) || out.journal_size == 0)
                return bad_value("expected a whole number > 0");
        }
        else if (arg == "--auth-reads" || arg == "--enable-exec")
        {
            if (has_value)
            {
                message = "netnsd: option " + std::string(arg) + " takes no value\n";
                return parse_outcome::exit_usage;
            }
            (arg == "--auth-reads" ? out.auth_reads : out.enable_exec) = true;
        }
        else if (arg == "--tls-cert" || arg == "--tls-key" || arg == "--tls-client-ca")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            if (value.empty())
                return bad_value("expected a file");
            (arg == "--tls-cert"  ? out.tls_cert
             : arg == "--tls-key" ? out.tls_key
                                  : out.tls_client_ca) = value;
        }
        else if (arg == "--allowed-host" || arg == "--allowed-origin")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            const bool blank = value.empty() || value.find_first_of(" \t") != std::string::npos;
            if (arg == "--allowed-host" && (blank || value.find('/') != std::string::npos))
                return bad_value("expected a host name or address, or *");
            if (arg == "--allowed-origin" && value != "*" &&
                (blank || value.find("://") == std::string::npos || value.back() == '/'))
                return bad_value("expected scheme://host[:port], or *");
            (arg == "--allowed-host" ? out.allowed_hosts : out.allowed_origins).push_back(value);
        }
        else if (arg == "--admin-group")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            if (value.empty())
                return bad_value("expected a group name or number");
            out.admin_group = value;
        }
        else if (arg == "--token-file" || arg == "--etc-netns-dir")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            if (value.empty() || value.front() != '/')
                return bad_value("expected an absolute path");
            (arg == "--token-file" ? out.token_file : out.etc_netns_dir) = value;
        }
        else if (arg == "--exec-output-limit" || arg == "--max-exec")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            std::size_t n = 0;
            if (!parse_number(std::string_view(value), n) || n == 0)
                return bad_value("expected a whole number > 0");
            (arg == "--max-exec" ? out.max_exec : out.exec_output_limit) = n;
        }
        else if (arg == "--max-stream-clients" || arg == "--stream-queue-messages" ||
                 arg == "--stream-queue-bytes")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            std::size_t n = 0;
            if (!parse_number(std::string_view(value), n) || n == 0)
                return bad_value("expected a whole number > 0");
            if (arg == "--max-stream-clients")
                out.max_stream_clients = n;
            else if (arg == "--stream-queue-messages")
                out.stream_queue_messages = n;
            else
                out.stream_queue_bytes = n;
        }
        else if (arg == "--audit-interval")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            if (!parse_number(std::string_view(value), out.audit_interval_s) ||
                out.audit_interval_s > 86400 * 365)
                return bad_value("expected a whole number of seconds (0 turns it off)");
        }
        else if (arg == "--mount-feed")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            if (!core::parse_mount_choice(value, out.mount_feed))
                return bad_value("expected auto, fanotify or mountinfo");
        }
        else if (arg == "--log-level")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            if (!core::log::parse_level(value, out.log_level))
                return bad_value("expected debug, info, warn or error");
        }
        else if (arg == "--log-format")
        {
            if (!take_value())
                return parse_outcome::exit_usage;
            if (!core::log::parse_format(value, out.log_format))
                return bad_value("expected text or json");
        }
        else
        {
            message = "netnsd: unknown option '" + std::string(argv[i]) +
                      "'\nTry 'netnsd --help' for the list of options.\n";
            return parse_outcome::exit_usage;
        }
    }
    return parse_outcome::run;
}

bool check_config(const config& cfg, std::string& message)
{
    if (cfg.tls_cert.empty() != cfg.tls_key.empty())
    {
        message = "netnsd: --tls-cert and --tls-key go together\n";
        return false;
    }
    if (!cfg.tls_client_ca.empty() && cfg.tls_cert.empty())
    {
        message = "netnsd: --tls-client-ca needs --tls-cert and --tls-key\n";
        return false;
    }
    return true;
}

} // namespace netnsd::server
