// Child processes for tests: run a command to completion and capture its output (the `ip`
// oracle), or start the real netnsd and wait until it answers. Test thread only.
#pragma once

#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "support/http_client.hpp"

namespace netnsd::test
{

struct run_result
{
    int exit_code = -1; // -1 when killed by a signal or not started
    std::string out;
    std::string err;
};

// Runs argv[0] (searched in PATH) with the arguments; waits for it.
run_result run(const std::vector<std::string>& argv);

// Runs and requires exit code 0 (a failed CHECK shows the command and its stderr).
std::string run_ok(const std::vector<std::string>& argv);

// Polls `condition` until it holds or `deadline` passes. Never a fixed sleep.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds deadline = std::chrono::milliseconds(5000));

// The netnsd binary under test: NETNSD_BIN, else the path CMake compiled into the test
// executable (NETNSD_TEST_BINARY; inline, so only executables that start netnsd depend on it).
inline std::string netnsd_binary()
{
    if (const char* bin = std::getenv("NETNSD_BIN"))
        return bin;
#ifdef NETNSD_TEST_BINARY
    return NETNSD_TEST_BINARY;
#else
    return "netnsd";
#endif
}

// A running netnsd. The destructor stops it (SIGTERM, then SIGKILL after 10 s). `env` entries
// ("NAME=value") are added to the test's environment for it, replacing a variable of that name.
class netnsd_process
{
public:
    explicit netnsd_process(std::vector<std::string> args = {}, endpoint where = {},
                            std::string binary = netnsd_binary(),
                            std::vector<std::string> env = {});
    ~netnsd_process();
    netnsd_process(const netnsd_process&) = delete;
    netnsd_process& operator=(const netnsd_process&) = delete;

    // Waits until /healthz answers; false if the process exited or the deadline passed.
    bool ready(std::chrono::milliseconds deadline = std::chrono::milliseconds(10000));
    // SIGTERM and wait; returns the exit code (-1 if killed by a signal).
    int stop();
    void signal(int signo);

    pid_t pid() const noexcept { return pid_; }
    const endpoint& where() const noexcept { return where_; }
    // Everything the daemon wrote to stderr so far.
    std::string log() const;

private:
    pid_t pid_ = -1;
    endpoint where_;
    std::string log_path_;
    std::optional<int> status_;
};

} // namespace netnsd::test
