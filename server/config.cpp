#include "server/config.hpp"

#include <charconv>
#include <string_view>

#include "server/config_flags.hpp"

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
           "\n" +
           flags::options_help() +
           "\n"
           "Every option can also be set in the environment as NETNSD_<OPTION>, in upper\n"
           "case with '_' for '-': NETNSD_LISTEN, NETNSD_NETNS_DIR, NETNSD_TOKEN_FILE, ...;\n"
           "a switch as NETNSD_ENABLE_EXEC=1 (or true, yes, on); several values in\n"
           "NETNSD_LISTEN, NETNSD_ALLOWED_HOST and NETNSD_ALLOWED_ORIGIN separated by\n"
           "commas. An option on the command line wins over its variable.\n";
}

parse_outcome parse_args(int argc, const char* const* argv, config& out, std::string& message)
{
    std::vector<boost::program_options::option> options;
    if (const auto outcome = flags::read_command_line(argc, argv, options, message);
        outcome != parse_outcome::run)
        return outcome;
    return flags::apply(options, out, message);
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
    if (cfg.assign_nsids && !cfg.watch_links)
    {
        message = "netnsd: --assign-nsids needs --watch-links\n";
        return false;
    }
    return true;
}

} // namespace netnsd::server
