#include "support/process.hpp"

#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <signal.h>
#include <spawn.h>
#include <sstream>
#include <string_view>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <doctest/doctest.h>

extern char** environ;

namespace netnsd::test
{
namespace
{

std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string temp_path(const char* tag)
{
    char tmpl[] = "/tmp/netnsd-test-XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd >= 0)
        ::close(fd);
    return std::string(tmpl) + tag;
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path, const std::vector<std::string>& env = {})
{
    // The environment: the test's own, less the variables `env` sets, then `env`.
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e)
    {
        const std::string_view entry(*e);
        const auto name = entry.substr(0, entry.find('=') + 1);
        bool replaced = false;
        for (const auto& mine : env)
            replaced = replaced || (!name.empty() && std::string_view(mine).starts_with(name));
        if (!replaced)
            envp.push_back(*e);
    }
    for (const auto& mine : env)
        envp.push_back(const_cast<char*>(mine.c_str()));
    envp.push_back(nullptr);

    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    if (::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data()) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&actions);
    return pid;
}

int exit_code_of(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

} // namespace

run_result run(const std::vector<std::string>& argv)
{
    const auto out_path = temp_path(".out");
    const auto err_path = temp_path(".err");
    run_result result;
    const pid_t pid = spawn(argv, out_path, err_path);
    if (pid > 0)
    {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR)
        {
        }
        result.exit_code = exit_code_of(status);
        result.out = read_file(out_path);
        result.err = read_file(err_path);
    }
    ::unlink(out_path.c_str());
    ::unlink(err_path.c_str());
    ::unlink(out_path.substr(0, out_path.size() - 4).c_str());
    ::unlink(err_path.substr(0, err_path.size() - 4).c_str());
    return result;
}

std::string run_ok(const std::vector<std::string>& argv)
{
    auto r = run(argv);
    std::string cmd;
    for (const auto& a : argv)
        cmd += a + " ";
    INFO("command: " << cmd << "\nstderr: " << r.err);
    CHECK(r.exit_code == 0);
    return r.out;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds deadline)
{
    const auto until = std::chrono::steady_clock::now() + deadline;
    auto pause = std::chrono::milliseconds(1);
    for (;;)
    {
        if (condition())
            return true;
        if (std::chrono::steady_clock::now() >= until)
            return condition();
        std::this_thread::sleep_for(pause);
        pause = std::min(pause * 2, std::chrono::milliseconds(20));
    }
}

netnsd_process::netnsd_process(std::vector<std::string> args, endpoint where, std::string binary,
                               std::vector<std::string> env)
    : where_(std::move(where))
{
    log_path_ = temp_path(".log");
    std::vector<std::string> argv{std::move(binary),
                                  "--listen=" + where_.host + ":" + std::to_string(where_.port)};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = spawn(argv, "/dev/null", log_path_, env);
}

netnsd_process::~netnsd_process()
{
    if (pid_ > 0 && !status_)
    {
        ::kill(pid_, SIGTERM);
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        int status = 0;
        while (::waitpid(pid_, &status, WNOHANG) == 0)
        {
            if (std::chrono::steady_clock::now() > until)
            {
                ::kill(pid_, SIGKILL);
                ::waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    // Built with sanitizers (the asan preset), netnsd reports what they find on stderr: fail
    // the test that ran it, also one that never looks at how it ended (leaks show at exit).
    const auto text = read_file(log_path_);
    for (const char* marker :
         {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", ": runtime error: "})
    {
        if (const auto at = text.find(marker); at != std::string::npos)
        {
            const auto report = text.substr(at > 200 ? at - 200 : 0);
            FAIL_CHECK("netnsd's sanitizer report:\n" << report);
            break;
        }
    }
    ::unlink(log_path_.c_str());
    ::unlink(log_path_.substr(0, log_path_.size() - 4).c_str());
}

bool netnsd_process::ready(std::chrono::milliseconds deadline)
{
    if (pid_ <= 0)
        return false;
    return eventually(
               [&]
               {
                   int status = 0;
                   if (!status_ && ::waitpid(pid_, &status, WNOHANG) == pid_)
                       status_ = status;
                   if (status_)
                       return true; // exited: stop waiting, and fail below
                   auto r = http_get(where_, "/healthz");
                   return r && r->status == 200;
               },
               deadline) &&
           !status_;
}

void netnsd_process::signal(int signo)
{
    if (pid_ > 0 && !status_)
        ::kill(pid_, signo);
}

int netnsd_process::stop()
{
    if (pid_ <= 0)
        return -1;
    if (!status_)
    {
        ::kill(pid_, SIGTERM);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        status_ = status;
    }
    return exit_code_of(*status_);
}

std::string netnsd_process::log() const
{
    return read_file(log_path_);
}

} // namespace netnsd::test
