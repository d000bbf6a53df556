#include "core/kernel/exec.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/errc.hpp"
#include "core/kernel/errno.hpp"
#include "core/kernel/nsfs.hpp"
#include "core/kernel/unique_fd.hpp"
#include "core/name.hpp"

namespace netnsd::core::kernel
{
namespace
{

using steady = std::chrono::steady_clock;

// After the command's own process exits, how long to keep reading what it left in the pipes
// when something else (a background grandchild) still holds them open.
constexpr auto drain_grace = std::chrono::milliseconds(100);
// Without a pidfd to wake poll when the child exits, poll in slices this long.
constexpr int poll_slice_ms = 10;
// Longer timeouts are taken as this (a year: no timeout, without overflowing the clock).
constexpr std::chrono::milliseconds max_timeout = std::chrono::hours(24 * 365);
// Reads per wakeup on one stream, so a fast writer cannot starve the deadline check.
constexpr int reads_per_wakeup = 16;

std::string text_of(int error)
{
    return std::error_code(error, std::system_category()).message();
}

std::string quoted(const std::string& s)
{
    return "\"" + s + "\"";
}

std::error_code invalid(std::string& detail, std::string text)
{
    detail = std::move(text);
    return std::make_error_code(std::errc::invalid_argument);
}

bool has_nul(const std::string& s)
{
    return s.find('\0') != std::string::npos;
}

// What execvp does, but before forking: the first regular, executable file named `command`
// in PATH (or `command` itself when it contains a slash).
std::error_code resolve_command(const std::string& command, const std::string& path_value,
                                std::string& program, std::string& detail)
{
    std::vector<std::string> candidates;
    if (command.find('/') != std::string::npos)
        candidates.push_back(command);
    else
    {
        std::size_t begin = 0;
        for (;;)
        {
            const auto end = path_value.find(':', begin);
            auto dir = path_value.substr(begin, end == std::string::npos ? end : end - begin);
            candidates.push_back((dir.empty() ? std::string(".") : dir) + "/" + command);
            if (end == std::string::npos)
                break;
            begin = end + 1;
        }
    }
    bool denied = false;
    for (const auto& candidate : candidates)
    {
        struct stat st
        {
        };
        if (::stat(candidate.c_str(), &st) != 0)
        {
            denied = denied || errno == EACCES;
            continue;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        if (::access(candidate.c_str(), X_OK) != 0)
        {
            denied = true;
            continue;
        }
        program = candidate;
        return {};
    }
    if (denied)
    {
        detail = "command " + quoted(command) + " is not executable";
        return errno_code(EACCES);
    }
    detail = command.find('/') != std::string::npos
                 ? "command " + quoted(command) + " not found"
                 : "command " + quoted(command) + " not found in PATH=" + path_value;
    return errc::command_not_found;
}

// --- the child -------------------------------------------------------------------------------

// What the child tells the parent through a CLOEXEC pipe: EOF alone means execve succeeded.
enum class step : int
{
    stdio,
    setns,
    unshare_mount_ns,
    make_rslave,
    mount_sys,   // warning
    etc_missing, // warning: the target does not exist, the entry is skipped
    etc_bind,    // warning
    execve,
};

struct report
{
    int fatal;
    int step;
    int error;
    int index; // into the binds, for the etc steps
};

// The functions the child runs, on its own stack in netnsd's memory: AddressSanitizer (the
// asan build) keeps one shadow of that memory for both and knows only the parent thread's
// stack, so it would take the child's frames for overflows; they are left uninstrumented.
#define CHILD_SIDE [[gnu::no_sanitize_address]]

// Everything the child uses, prepared before the clone: the child shares netnsd's memory (and
// another thread may hold any lock), so only async-signal-safe calls are allowed there (no
// malloc, no opendir, no std::string).
struct child_context
{
    int netns_fd = -1;
    int stdin_fd = -1;
    int stdout_fd = -1;
    int stderr_fd = -1;
    int report_fd = -1;
    int max_fd = 0; // for the close loop when close_range is missing
    const char* sysfs_source = nullptr;
    const char* const* bind_sources = nullptr;
    const char* const* bind_targets = nullptr;
    std::size_t bind_count = 0;
    const char* program = nullptr;
    char* const* argv = nullptr;
    char* const* envp = nullptr;
    sigset_t unblocked{};
};

CHILD_SIDE void send_report(int fd, bool fatal, step s, int error, int index) noexcept
{
    const report r{fatal ? 1 : 0, static_cast<int>(s), error, index};
    // A pipe write this small is atomic; if it fails there is no one to tell.
    [[maybe_unused]] const auto n = ::write(fd, &r, sizeof(r));
}

[[noreturn]] CHILD_SIDE void child_failed(int report_fd, step s) noexcept
{
    send_report(report_fd, true, s, errno, -1);
    ::_exit(127);
}

[[noreturn]] CHILD_SIDE void child_main(const child_context& c) noexcept
{
    int report_fd = c.report_fd;

    // The parent blocked every signal around the clone. Reset what the daemon installed: an
    // ignored signal (the daemon ignores SIGPIPE) stays ignored across execve.
    struct sigaction default_action
    {
    };
    default_action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig)
        ::sigaction(sig, &default_action, nullptr); // EINVAL for KILL, STOP and glibc's own
    ::setpgid(0, 0);                                // a group of its own, killed as one

    if (::dup2(c.stdin_fd, STDIN_FILENO) < 0 || ::dup2(c.stdout_fd, STDOUT_FILENO) < 0 ||
        ::dup2(c.stderr_fd, STDERR_FILENO) < 0)
        child_failed(report_fd, step::stdio);

    // As iproute2's netns_switch does: the namespace, a mount namespace of our own made a
    // slave so nothing mounted below propagates back, a sysfs describing the namespace.
    if (::setns(c.netns_fd, CLONE_NEWNET) != 0)
        child_failed(report_fd, step::setns);
    if (::unshare(CLONE_NEWNS) != 0)
        child_failed(report_fd, step::unshare_mount_ns);
    if (::mount("", "/", "none", MS_SLAVE | MS_REC, nullptr) != 0)
        child_failed(report_fd, step::make_rslave);
    unsigned long sys_flags = 0;
    if (::umount2("/sys", MNT_DETACH) != 0)
    {
        // A /sys we cannot unmount may be read-only, and a read-write sysfs cannot shadow it.
        // statfs, not statvfs: glibc's statvfs may read /proc/mounts, with malloc.
        struct statfs fs
        {
        };
        if (::statfs("/sys", &fs) == 0 && (fs.f_flags & ST_RDONLY) != 0)
            sys_flags = MS_RDONLY;
    }
    if (::mount(c.sysfs_source, "/sys", "sysfs", sys_flags, nullptr) != 0)
        send_report(report_fd, false, step::mount_sys, errno, -1);

    // bind_etc: the target must exist. stat follows symlinks, as the bind will, so a dangling
    // /etc symlink is skipped too; a good one gets its target covered.
    for (std::size_t i = 0; i < c.bind_count; ++i)
    {
        struct stat st
        {
        };
        const int index = static_cast<int>(i);
        if (::stat(c.bind_targets[i], &st) != 0)
            send_report(report_fd, false, step::etc_missing, errno, index);
        else if (::mount(c.bind_sources[i], c.bind_targets[i], "none", MS_BIND, nullptr) != 0)
            send_report(report_fd, false, step::etc_bind, errno, index);
    }

    // No inherited fds: whatever other threads opened is closed too. The report pipe moves to
    // fd 3 and closes itself at execve (CLOEXEC).
    if (report_fd != 3 && ::dup3(report_fd, 3, O_CLOEXEC) == 3)
        report_fd = 3;
    if (::close_range(static_cast<unsigned>(report_fd) + 1, ~0U, 0) != 0)
        for (int fd = 3; fd < c.max_fd; ++fd)
            if (fd != report_fd)
                ::close(fd);

    ::sigprocmask(SIG_SETMASK, &c.unblocked, nullptr);
    ::execve(c.program, c.argv, c.envp);
    child_failed(report_fd, step::execve);
}

CHILD_SIDE int child_entry(void* context)
{
    child_main(*static_cast<const child_context*>(context));
}

// The child's stack while it shares netnsd's memory: mapped for one command, unmapped once it
// has exec'd (or exited). child_main needs little; 256 KiB leaves room for the libc calls.
class child_stack
{
public:
    child_stack()
        : base_(::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0))
    {
    }
    ~child_stack()
    {
        if (base_ != MAP_FAILED)
            ::munmap(base_, size);
    }
    child_stack(const child_stack&) = delete;
    child_stack& operator=(const child_stack&) = delete;
    explicit operator bool() const noexcept { return base_ != MAP_FAILED; }
    // Stacks grow down on every architecture netnsd builds for.
    void* top() const noexcept { return static_cast<std::byte*>(base_) + size; }

private:
    static constexpr std::size_t size = 256 * 1024;
    void* base_;
};

// --- the parent ------------------------------------------------------------------------------

// Keeps fds off 0-2, so that the child's dup2 onto stdio never overwrites one it still needs.
std::error_code above_stdio(unique_fd& fd)
{
    if (fd.get() > STDERR_FILENO)
        return {};
    const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
    if (moved < 0)
        return last_error();
    fd.reset(moved);
    return {};
}

struct pipe_ends
{
    unique_fd read;
    unique_fd write;
};

std::error_code make_pipe(pipe_ends& p)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return last_error();
    p.read.reset(fds[0]);
    p.write.reset(fds[1]);
    if (auto ec = above_stdio(p.read))
        return ec;
    return above_stdio(p.write);
}

void set_nonblocking(int fd)
{
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

// Reads what is there into `into` up to `limit`, dropping the rest. False at EOF or error.
bool read_some(int fd, std::string& into, std::size_t limit, bool& truncated)
{
    std::array<char, 64 * 1024> buf;
    for (int i = 0; i < reads_per_wakeup; ++i)
    {
        const auto n = ::read(fd, buf.data(), buf.size());
        if (n == 0)
            return false;
        if (n < 0)
        {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN;
        }
        const auto got = static_cast<std::size_t>(n);
        const auto room = limit - std::min(limit, into.size());
        into.append(buf.data(), std::min(room, got));
        truncated = truncated || got > room;
    }
    return true;
}

struct child_reports
{
    std::string bytes;
    std::vector<report> all;

    void take_complete()
    {
        while (bytes.size() >= sizeof(report))
        {
            report r{};
            std::copy_n(bytes.data(), sizeof(report), reinterpret_cast<char*>(&r));
            all.push_back(r);
            bytes.erase(0, sizeof(report));
        }
    }
};

std::string describe_warning(const report& r, const exec_plan& plan)
{
    const auto bind = [&](auto member) -> std::string
    {
        if (r.index < 0 || static_cast<std::size_t>(r.index) >= plan.binds.size())
            return "?";
        return plan.binds[static_cast<std::size_t>(r.index)].*member;
    };
    switch (static_cast<step>(r.step))
    {
    case step::mount_sys:
        return "mounting a sysfs for the namespace on /sys failed (" + text_of(r.error) +
               "); /sys in the command does not describe its namespace";
    case step::etc_missing:
        return r.error == ENOENT
                   ? bind(&etc_bind::source) + " skipped: " + bind(&etc_bind::target) +
                         " does not exist (or is a dangling symlink)"
                   : bind(&etc_bind::source) + " skipped: " + bind(&etc_bind::target) + ": " +
                         text_of(r.error);
    case step::etc_bind:
        return "bind " + bind(&etc_bind::source) + " -> " + bind(&etc_bind::target) +
               " failed: " + text_of(r.error);
    default:
        return "step " + std::to_string(r.step) + " failed: " + text_of(r.error);
    }
}

std::error_code describe_failure(const report& r, const exec_request& req, const exec_plan& plan,
                                 std::string& detail)
{
    const auto ec = errno_code(r.error);
    switch (static_cast<step>(r.step))
    {
    case step::setns:
        detail = "setting the network namespace " + quoted(req.name) + " failed: " + ec.message();
        return r.error == EINVAL ? std::error_code(errc::not_a_namespace) : ec;
    case step::unshare_mount_ns:
        detail = "unshare(CLONE_NEWNS) failed: " + ec.message();
        return ec;
    case step::make_rslave:
        detail = "mount --make-rslave / failed: " + ec.message();
        return ec;
    case step::execve:
        detail = "exec of " + quoted(plan.program) + " failed: " + ec.message();
        return r.error == ENOENT ? std::error_code(errc::command_not_found) : ec;
    default:
        detail = "setting up the command's stdio failed: " + ec.message();
        return ec;
    }
}

// Blocks SIGPIPE in this thread while we write to the command's stdin (a command that exits
// without reading it makes write fail with EPIPE), and takes back a SIGPIPE we caused before
// restoring the mask, so it is never delivered to a process that does not ignore it.
class sigpipe_guard
{
public:
    explicit sigpipe_guard(const sigset_t& restore) : restore_(restore)
    {
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        sigset_t pending;
        sigpending(&pending);
        was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    }
    sigpipe_guard(const sigpipe_guard&) = delete;
    sigpipe_guard& operator=(const sigpipe_guard&) = delete;
    ~sigpipe_guard()
    {
        sigset_t pending;
        sigpending(&pending);
        if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1)
        {
            const timespec now{};
            sigtimedwait(&pipe_, nullptr, &now);
        }
        pthread_sigmask(SIG_SETMASK, &restore_, nullptr);
    }

    // The mask to run under: the caller's, plus SIGPIPE.
    sigset_t mask() const
    {
        sigset_t m = restore_;
        sigaddset(&m, SIGPIPE);
        return m;
    }

private:
    sigset_t restore_;
    sigset_t pipe_{};
    bool was_pending_ = false;
};

int wait_status(pid_t pid, bool block, bool& reaped, bool& lost)
{
    int status = 0;
    for (;;)
    {
        const auto got = ::waitpid(pid, &status, block ? 0 : WNOHANG);
        if (got == pid)
        {
            reaped = true;
            return status;
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) // ECHILD: someone else reaped it (SIGCHLD ignored?)
        {
            reaped = true;
            lost = true;
        }
        return status;
    }
}

int poll_timeout(steady::time_point now, steady::time_point until)
{
    if (until <= now)
        return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(until - now).count();
    return static_cast<int>(std::min<long long>(ms, 60'000));
}

} // namespace

std::error_code make_exec_plan(const exec_request& req, exec_plan& plan, std::string& detail)
{
    plan = {};
    if (req.argv.empty() || req.argv.front().empty())
        return invalid(detail, "argv is empty");
    for (std::size_t i = 0; i < req.argv.size(); ++i)
        if (has_nul(req.argv[i]))
            return invalid(detail, "argv[" + std::to_string(i) + "] contains a NUL byte");
    if (!is_valid_name(req.name))
        return invalid(detail,
                       "invalid netns name: " + std::string(describe(check_name(req.name))));

    plan.envp.push_back(std::string("PATH=") + exec_default_path);
    for (const auto& [key, value] : req.env)
    {
        if (key.empty() || key.find('=') != std::string::npos || has_nul(key) || has_nul(value))
            return invalid(detail, "invalid environment variable name " + quoted(key));
        const auto prefix = key + "=";
        const auto same =
            std::find_if(plan.envp.begin(), plan.envp.end(),
                         [&](const auto& e) { return e.compare(0, prefix.size(), prefix) == 0; });
        if (same != plan.envp.end())
            *same = prefix + value;
        else
            plan.envp.push_back(prefix + value);
    }
    const auto path_entry =
        std::find_if(plan.envp.begin(), plan.envp.end(),
                     [](const auto& e) { return e.compare(0, 5, "PATH=") == 0; });
    if (auto ec = resolve_command(req.argv.front(), path_entry->substr(5), plan.program, detail))
        return ec;
    plan.argv = req.argv;

    // ip gives a name of NAME_MAX bytes no /etc handling (ip/ipnetns.c).
    if (req.name.size() >= max_name_length)
        return {};
    const auto dir = req.etc_netns_dir + "/" + req.name;
    std::unique_ptr<DIR, int (*)(DIR*)> etc(::opendir(dir.c_str()), &::closedir);
    if (!etc)
    {
        const int error = errno;
        if (error != ENOENT && error != ENOTDIR)
            plan.warnings.push_back("cannot read " + dir + ": " + text_of(error));
        return {};
    }
    while (const dirent* ent = ::readdir(etc.get()))
    {
        const std::string entry = ent->d_name;
        if (entry == "." || entry == "..")
            continue;
        plan.binds.push_back({dir + "/" + entry, "/etc/" + entry});
    }
    return {};
}

namespace
{

// The namespace to enter, opened and checked before forking: the common failures get a precise
// answer here. Closed in the parent once the child has it.
unique_fd open_target(const exec_request& req, exec_result& r)
{
    unique_fd netns(::open(req.netns_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!netns)
    {
        const int error = errno;
        r.ec = error == ENOENT ? std::error_code(errc::not_found) : errno_code(error);
        r.detail =
            "cannot open network namespace " + quoted(req.netns_path) + ": " + text_of(error);
        return netns;
    }
    if (!identify_netns(netns.get()))
    {
        r.ec = errc::not_a_namespace;
        r.detail = quoted(req.netns_path) + " is not a live network namespace (a stale entry)";
        netns.reset();
        return netns;
    }
    if ((r.ec = above_stdio(netns)))
    {
        r.detail = "cannot move an fd: " + r.ec.message();
        netns.reset();
    }
    return netns;
}

// The four pipes between the parent and the command.
struct child_pipes
{
    pipe_ends in, out, err, reports;

    std::error_code make(std::string& detail)
    {
        for (auto* p : {&in, &out, &err, &reports})
            if (auto ec = make_pipe(*p))
            {
                detail = "cannot create a pipe: " + ec.message();
                return ec;
            }
        return {};
    }

    // After fork: the parent keeps its ends only, non-blocking.
    void parent_side(bool has_stdin)
    {
        in.read.reset();
        out.write.reset();
        err.write.reset();
        reports.write.reset();
        for (int fd : {in.write.get(), out.read.get(), err.read.get(), reports.read.get()})
            set_nonblocking(fd);
        if (!has_stdin)
            in.write.reset();
    }
};

// The arrays the child reads after fork (no allocation there): built before, kept alive until
// the child has exec'd.
struct child_arrays
{
    std::vector<const char*> sources, targets;
    std::vector<char*> argv, envp;

    explicit child_arrays(exec_plan& plan)
    {
        for (const auto& b : plan.binds)
        {
            sources.push_back(b.source.c_str());
            targets.push_back(b.target.c_str());
        }
        for (auto& a : plan.argv)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        for (auto& e : plan.envp)
            envp.push_back(e.data());
        envp.push_back(nullptr);
    }

    child_context context(const exec_request& req, const exec_plan& plan, int netns_fd,
                          const child_pipes& io)
    {
        child_context c;
        c.netns_fd = netns_fd;
        c.stdin_fd = io.in.read.get();
        c.stdout_fd = io.out.write.get();
        c.stderr_fd = io.err.write.get();
        c.report_fd = io.reports.write.get();
        c.max_fd = static_cast<int>(std::max(::sysconf(_SC_OPEN_MAX), 1024L));
        c.sysfs_source = req.name.c_str();
        c.bind_sources = sources.data();
        c.bind_targets = targets.data();
        c.bind_count = sources.size();
        c.program = plan.program.c_str();
        c.argv = argv.data();
        c.envp = envp.data();
        sigemptyset(&c.unblocked);
        return c;
    }
};

// The parent's side of a running command: feeds its stdin, collects stdout, stderr and the
// child's reports (each capped), and kills its process group at the deadline.
class supervisor
{
public:
    supervisor(const exec_request& req, exec_result& r, child_pipes& io, pid_t pid,
               steady::time_point start)
        : req_(req), r_(r), io_(io), pid_(pid),
          deadline_(start + std::min(req.timeout, max_timeout)),
          pidfd_(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)))
    {
    }

    // Until the child is reaped and its streams are drained (or drain_grace after its exit),
    // or the deadline passes.
    void run()
    {
        for (;;)
        {
            if (!reaped_)
            {
                status_ = wait_status(pid_, false, reaped_, lost_);
                if (reaped_)
                    exited_at_ = steady::now();
            }
            const auto now = steady::now();
            if (reaped_ && ((!io_.out.read && !io_.err.read && !io_.reports.read) ||
                            now >= exited_at_ + drain_grace))
                return;
            if (!reaped_ && now >= deadline_)
                return kill_at_deadline();
            if (!poll_once(now))
                return;
        }
    }

    int status() const noexcept { return status_; }
    bool lost() const noexcept { return lost_; }
    child_reports& reports() noexcept { return child_; }

private:
    void kill_at_deadline()
    {
        ::kill(-pid_, SIGKILL);
        r_.timed_out = true;
        status_ = wait_status(pid_, true, reaped_, lost_);
        // Keep what it wrote before it died; stop there.
        if (io_.out.read)
            read_some(io_.out.read.get(), r_.out, req_.output_limit, r_.out_truncated);
        if (io_.err.read)
            read_some(io_.err.read.get(), r_.err, req_.output_limit, r_.err_truncated);
        if (io_.reports.read)
        {
            bool ignored = false;
            read_some(io_.reports.read.get(), child_.bytes, 1 << 20, ignored);
        }
    }

    // One poll over the open streams and the pidfd; false when poll failed (the command is
    // killed: never leave it running unwatched).
    bool poll_once(steady::time_point now)
    {
        // A closed stream is -1, which poll skips.
        std::array<pollfd, 5> fds{
            pollfd{io_.in.write.get(), POLLOUT, 0}, pollfd{io_.out.read.get(), POLLIN, 0},
            pollfd{io_.err.read.get(), POLLIN, 0}, pollfd{io_.reports.read.get(), POLLIN, 0},
            pollfd{reaped_ ? -1 : pidfd_.get(), POLLIN, 0}};
        int timeout = poll_timeout(now, reaped_ ? exited_at_ + drain_grace : deadline_);
        if (!reaped_ && !pidfd_)
            timeout = std::min(timeout, poll_slice_ms);
        if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR)
        {
            // Cannot happen with these arguments.
            r_.ec = last_error();
            r_.detail = "poll failed: " + r_.ec.message() + "; the command was killed";
            ::kill(-pid_, SIGKILL);
            status_ = wait_status(pid_, true, reaped_, lost_);
            return false;
        }
        const auto ready = [&](std::size_t at)
        {
            return fds[at].fd >= 0 && (fds[at].revents & (POLLIN | POLLOUT | POLLHUP | POLLERR));
        };
        if (ready(0))
            feed_stdin();
        if (ready(1) && !read_some(io_.out.read.get(), r_.out, req_.output_limit, r_.out_truncated))
            io_.out.read.reset();
        if (ready(2) && !read_some(io_.err.read.get(), r_.err, req_.output_limit, r_.err_truncated))
            io_.err.read.reset();
        bool ignored = false;
        if (ready(3) && !read_some(io_.reports.read.get(), child_.bytes, 1 << 20, ignored))
            io_.reports.read.reset();
        return true;
    }

    void feed_stdin()
    {
        const auto& data = req_.stdin_data;
        const auto n = ::write(io_.in.write.get(), data.data() + sent_, data.size() - sent_);
        if (n > 0)
            sent_ += static_cast<std::size_t>(n);
        if ((n < 0 && errno != EAGAIN && errno != EINTR) || sent_ == data.size())
            io_.in.write.reset(); // done, or the command closed its stdin (EPIPE)
    }

    const exec_request& req_;
    exec_result& r_;
    child_pipes& io_;
    pid_t pid_;
    steady::time_point deadline_;
    unique_fd pidfd_; // readable when the child exits
    child_reports child_;
    std::size_t sent_ = 0;
    bool reaped_ = false;
    bool lost_ = false;
    int status_ = 0;
    steady::time_point exited_at_{};
};

// What the child reported and how it ended, into the result.
void conclude(const exec_request& req, const exec_plan& plan, supervisor& watch, exec_result& r)
{
    auto& child = watch.reports();
    child.take_complete();
    for (const auto& rep : child.all)
    {
        if (rep.fatal != 0)
        {
            r.ec = describe_failure(rep, req, plan, r.detail);
            return;
        }
        r.warnings.push_back(describe_warning(rep, plan));
    }
    if (r.ec)
        return;
    const int status = watch.status();
    if (watch.lost())
    {
        r.ec = errno_code(ECHILD);
        r.detail = "the command's exit status was lost (is SIGCHLD ignored?)";
    }
    else if (WIFEXITED(status))
        r.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        r.signal = WTERMSIG(status);
}

} // namespace

exec_result run_in_netns(const exec_request& req)
{
    exec_result r;
    exec_plan plan;
    if ((r.ec = make_exec_plan(req, plan, r.detail)))
        return r;
    r.warnings = plan.warnings;
    unique_fd netns = open_target(req, r);
    child_pipes io;
    if (!netns || (r.ec = io.make(r.detail)))
        return r;
    child_arrays arrays(plan);
    const auto c = arrays.context(req, plan, netns.get(), io);

    // The child shares netnsd's memory until it execs (clone with CLONE_VM | CLONE_VFORK, as
    // posix_spawn does; this thread waits meanwhile), on a stack of its own. A fork() would
    // copy the address space under the process's mmap lock and write-protect every page, and
    // every thread of netnsd that touched memory meanwhile, the real-time mount readers
    // included, would wait in a page fault (a soak's trace: a reader held 5 ms so, the 10 ms
    // lives it was reading at risk).
    child_stack stack;
    if (!stack)
    {
        r.ec = last_error();
        r.detail = "no memory for the child's stack: " + r.ec.message();
        return r;
    }
    // Every signal blocked across the clone, so no handler of the daemon runs in the child
    // before it has reset them.
    sigset_t all, caller;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &caller);
    const auto start = steady::now();
    const pid_t pid = ::clone(&child_entry, stack.top(), CLONE_VM | CLONE_VFORK | SIGCHLD,
                              const_cast<child_context*>(&c));
    const int fork_error = errno;
    sigpipe_guard guard(caller);
    const auto running_mask = guard.mask();
    pthread_sigmask(SIG_SETMASK, &running_mask, nullptr);
    if (pid < 0)
    {
        r.ec = errno_code(fork_error);
        r.detail = "clone failed: " + r.ec.message();
        return r;
    }
    // Also here, so the group exists before we could ever signal it (EACCES once the child
    // has exec'd: it made the group itself by then).
    ::setpgid(pid, pid);
    netns.reset();
    io.parent_side(!req.stdin_data.empty());
    supervisor watch(req, r, io, pid, start);
    watch.run();
    r.duration_ms = std::chrono::duration<double, std::milli>(steady::now() - start).count();
    conclude(req, plan, watch, r);
    return r;
}

} // namespace netnsd::core::kernel
