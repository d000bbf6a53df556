// config: the daemon's settings and their parsing from the command line. Built once by main
// before anything starts; read-only afterwards. Each default is the named constant beside what
// it limits, and --help shows it from there (server/config_flags); the flags are read with
// Boost.Program_options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/journal.hpp"
#include "core/kernel/exec.hpp"
#include "core/log.hpp"
#include "core/model_status.hpp"

#include "api/admin.hpp"
#include "api/interface_metrics.hpp"
#include "api/stream.hpp"

#include "server/model_thread.hpp"
#include "server/token_file.hpp"

namespace netnsd::server
{

// Where to serve: a TCP address and port, or a Unix socket (`path` set).
struct listen_address
{
    static constexpr std::string_view default_host = "127.0.0.1";
    static constexpr std::uint16_t default_port = 9321;

    std::string host{default_host};
    std::uint16_t port = default_port;
    std::string path;

    bool is_unix() const noexcept { return !path.empty(); }
    // As --listen spells it: "127.0.0.1:9321", "[::1]:9321", "unix:/run/netnsd/netnsd.sock".
    std::string to_string() const;
};

struct config
{
    // Every address to serve on; --listen given once or more replaces the default.
    std::vector<listen_address> listen{listen_address{}};
    std::string netns_dir{model_thread::settings::default_netns_dir};
    core::log::level log_level = core::log::default_level;
    core::log::format log_format = core::log::default_format;
    std::size_t journal_size = core::journal::default_capacity;
    std::size_t max_stream_clients = api::stream_hub::default_max_clients;
    std::size_t stream_queue_messages = api::stream_limits::default_max_messages;
    std::size_t stream_queue_bytes = api::stream_limits::default_max_bytes;
    std::string token_file{server::token_file::default_path};
    bool auth_reads = false;
    bool enable_exec = false;
    std::size_t exec_output_limit = core::kernel::exec_request::default_output_limit;
    std::size_t max_exec = api::admin_settings::default_max_exec;
    std::string etc_netns_dir{core::kernel::exec_request::default_etc_netns_dir};
    // 0: audits only on demand (POST /api/v1/audit).
    std::size_t audit_interval_s =
        static_cast<std::size_t>(model_thread::settings::default_audit_interval.count());
    std::size_t sweep_interval_s =
        static_cast<std::size_t>(model_thread::settings::default_sweep_interval.count());
    bool proc_events = false;
    bool follow_mount_namespaces = false;
    std::string proc_events_netns{model_thread::settings::default_proc_events_netns};
    std::string cni_cache_dir{model_thread::settings::default_cni_cache_dir}; // empty: off
    // 0: deep scans only on demand (POST /api/v1/namespaces/scan).
    std::size_t deep_scan_interval_s =
        static_cast<std::size_t>(model_thread::settings::default_deep_scan_interval.count());
    core::mount_choice mount_feed = model_thread::settings::default_mounts;
    bool realtime_mount_reader = true; // --mount-reader realtime|nice
    bool realtime_model_thread = true; // --model-thread realtime|nice
    // Live link and address events (a NETLINK_LISTEN_ALL_NSID listener: a tax on every link
    // change of the host), and nsids for every namespace so that they are heard.
    bool watch_links = false;
    bool assign_nsids = false;
    // Names besides the listen addresses, localhost and the hostname that Host may carry; "*"
    // turns the Host check off (behind a proxy that checks it).
    std::vector<std::string> allowed_hosts;
    // Origins besides netnsd's own that may write or open the event stream.
    std::vector<std::string> allowed_origins;
    // HTTPS on the TCP listeners: the certificate chain and key (PEM), reloaded when they
    // change; with a client CA, a client certificate it signed is required (mutual TLS).
    std::string tls_cert;
    std::string tls_key;
    std::string tls_client_ca;
    // Root and this group's members may use admin on the Unix socket without a token; the
    // socket file gets the group. A name or a number; empty: none.
    std::string admin_group;
    // /metrics also carries every interface's counters, at most this many series.
    bool metrics_interfaces = false;
    std::size_t metrics_max_series = api::interface_metrics::default_max_series;

    bool tls() const noexcept { return !tls_cert.empty(); }
};

enum class parse_outcome
{
    run,       // start the daemon
    exit_ok,   // --help or --version: print `message` to stdout, exit 0
    exit_usage // bad flags: print `message` to stderr, exit 2
};

// The command line alone, flags taken in order: --help and --version end it, and so does the
// first unknown option or bad value.
parse_outcome parse_args(int argc, const char* const* argv, config& out, std::string& message);

// What no single flag can say: --tls-cert and --tls-key go together, --tls-client-ca needs
// them. False, with `message`, when the settings do not fit.
bool check_config(const config& cfg, std::string& message);

// "127.0.0.1:9321", "[::1]:9321", "localhost:80", "unix:/run/netnsd/netnsd.sock" (an
// absolute path that fits in sockaddr_un). False when malformed.
bool parse_listen(const std::string& text, listen_address& out);

// --help's text.
std::string usage();

} // namespace netnsd::server
