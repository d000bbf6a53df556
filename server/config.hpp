// config: the daemon's settings and their parsing from the command line. Built once by main
// before anything starts; read-only afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/log.hpp"
#include "core/model_status.hpp"

namespace netnsd::server
{

// Where to serve: a TCP address and port, or a Unix socket (`path` set).
struct listen_address
{
    std::string host = "127.0.0.1";
    std::uint16_t port = 9321;
    std::string path;

    bool is_unix() const noexcept { return !path.empty(); }
    // As --listen spells it: "127.0.0.1:9321", "[::1]:9321", "unix:/run/netnsd/netnsd.sock".
    std::string to_string() const;
};

struct config
{
    // Every address to serve on; --listen given once or more replaces the default.
    std::vector<listen_address> listen{listen_address{}};
    std::string netns_dir = "/run/netns";
    core::log::level log_level = core::log::level::info;
    core::log::format log_format = core::log::format::text;
    std::size_t journal_size = 100000;
    std::size_t max_stream_clients = 1024;
    std::size_t stream_queue_messages = 10000;
    std::size_t stream_queue_bytes = 8 << 20;
    std::string token_file = "/etc/netnsd/token";
    bool auth_reads = false;
    bool enable_exec = false;
    std::size_t exec_output_limit = 1 << 20;
    std::size_t max_exec = 16;
    std::string etc_netns_dir = "/etc/netns";
    std::size_t audit_interval_s = 60; // 0: audits only on demand (POST /api/v1/audit)
    core::mount_choice mount_feed = core::mount_choice::automatic;
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

    bool tls() const noexcept { return !tls_cert.empty(); }
};

enum class parse_outcome
{
    run,       // start the daemon
    exit_ok,   // --help or --version: print `message` to stdout, exit 0
    exit_usage // bad flags: print `message` to stderr, exit 2
};

parse_outcome parse_args(int argc, const char* const* argv, config& out, std::string& message);

// What no single flag can say: --tls-cert and --tls-key go together, --tls-client-ca needs
// them. False, with `message`, when the settings do not fit.
bool check_config(const config& cfg, std::string& message);

// "127.0.0.1:9321", "[::1]:9321", "localhost:80", "unix:/run/netnsd/netnsd.sock" (an
// absolute path that fits in sockaddr_un). False when malformed.
bool parse_listen(const std::string& text, listen_address& out);

std::string usage();

} // namespace netnsd::server
