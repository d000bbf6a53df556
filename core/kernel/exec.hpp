// exec: `ip netns exec NAME argv...` for a daemon, as iproute2's netns_switch does it. The command
// runs in a child (a clone sharing netnsd's memory until it execs, as posix_spawn makes one;
// no copy of the address space) that enters the namespace, gets a mount namespace of its own (made
// a slave first, so nothing it mounts reaches the host), a fresh /sys, and the /etc/netns/NAME
// binds; the parent feeds stdin, collects stdout and stderr with caps, and kills the child's
// process group on timeout. Blocking: run it on a worker thread. No shared state, so several
// workers may run commands at once; the calling thread's namespaces are never changed.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace netnsd::core::kernel
{

// The PATH of the minimal environment a command starts with.
inline constexpr const char* exec_default_path =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct exec_request
{
    // Where `ip netns exec` finds the per-namespace /etc files (--etc-netns-dir).
    static constexpr std::string_view default_etc_netns_dir = "/etc/netns";
    static constexpr std::chrono::milliseconds default_timeout{10000};
    // Per stream (--exec-output-limit).
    static constexpr std::size_t default_output_limit = 1 << 20;

    std::string netns_path; // /run/netns/NAME
    std::string name;       // NAME, for /etc/netns/NAME and the sysfs source
    std::string etc_netns_dir{default_etc_netns_dir};
    std::vector<std::string> argv; // argv[0] is looked up in PATH before forking
    std::string stdin_data;        // written to the command's stdin, which then closes
    std::vector<std::pair<std::string, std::string>> env; // over the minimal environment
    std::chrono::milliseconds timeout = default_timeout;
    std::size_t output_limit = default_output_limit; // per stream; the rest is read and dropped
};

struct exec_result
{
    std::optional<int> exit_code; // the command exited
    std::optional<int> signal;    // the command was killed by this signal
    std::string out, err;
    bool out_truncated = false, err_truncated = false;
    bool timed_out = false; // the timeout passed; the process group got SIGKILL
    double duration_ms = 0;
    // Set when the command could not be run at all (then neither exit_code nor signal is):
    // errc::not_found / errc::not_a_namespace for the namespace, errc::command_not_found,
    // std::errc::invalid_argument for a bad request, or the errno of the step that failed.
    std::error_code ec;
    std::string detail;
    // Steps that failed without stopping the command, as ip only warns about them: an /etc
    // entry without a target to bind on, a bind or the /sys remount that failed.
    std::vector<std::string> warnings;
};

exec_result run_in_netns(const exec_request& req);

// --- The part computed before forking (after fork only async-signal-safe calls are allowed).
// Pure apart from reading PATH directories and /etc/netns/NAME; exposed for unit tests.

struct etc_bind
{
    std::string source; // /etc/netns/NAME/ENTRY
    std::string target; // /etc/ENTRY
};

struct exec_plan
{
    std::string program;           // argv[0] resolved through PATH
    std::vector<std::string> argv; // as requested
    std::vector<std::string> envp; // "KEY=VALUE", the minimal environment plus the request's
    std::vector<etc_bind> binds;   // in readdir order, like ip; none for a 255-byte name
    std::vector<std::string> warnings;
};

// Validates the request and resolves what the child needs. std::errc::invalid_argument for an
// empty argv or bytes a C string cannot carry, errc::command_not_found, EACCES.
std::error_code make_exec_plan(const exec_request& req, exec_plan& plan, std::string& detail);

} // namespace netnsd::core::kernel
