// mounttax: what netnsd's following of another mount namespace costs the processes that mount
// in it. Makes a mount namespace of its own (private, a tmpfs at DIR), says "ready" with its
// pid, waits for a line on stdin (the driver has netnsd walk it, and so follow it, or not),
// then times PAIRS bind mounts + unmounts there. Prints one line: the wall time and the
// kernel CPU time per pair, in µs. Needs CAP_SYS_ADMIN.
//
//   g++ -O2 -std=c++20 bench/mounttax.cpp -o bench/out/mounttax
//   mounttax DIR PAIRS   -> "ready PID", then after a line on stdin: "wall_us sys_us"
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sched.h>
#include <string>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

namespace
{

double sys_us()
{
    rusage r{};
    ::getrusage(RUSAGE_SELF, &r);
    return static_cast<double>(r.ru_stime.tv_sec) * 1e6 + static_cast<double>(r.ru_stime.tv_usec);
}

[[noreturn]] void fail(const char* what)
{
    std::fprintf(stderr, "mounttax: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 3)
    {
        std::fprintf(stderr, "usage: mounttax DIR PAIRS\n");
        return 2;
    }
    const std::string dir = argv[1];
    const long pairs = std::atol(argv[2]);
    if (::unshare(CLONE_NEWNS) != 0)
        fail("unshare");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        fail("private");
    ::mkdir(dir.c_str(), 0755);
    if (::mount("mounttax", dir.c_str(), "tmpfs", 0, nullptr) != 0)
        fail("tmpfs");
    const auto from = dir + "/from";
    const auto to = dir + "/to";
    if (::mkdir(from.c_str(), 0755) != 0 || ::mkdir(to.c_str(), 0755) != 0)
        fail("mkdir");
    std::printf("ready %d\n", static_cast<int>(::getpid()));
    std::fflush(stdout);
    char line[16];
    if (!std::fgets(line, sizeof line, stdin))
        return 1;
    const auto sys0 = sys_us();
    const auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < pairs; ++i)
    {
        if (::mount(from.c_str(), to.c_str(), nullptr, MS_BIND, nullptr) != 0)
            fail("bind");
        if (::umount2(to.c_str(), 0) != 0)
            fail("umount");
    }
    const auto wall =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0);
    std::printf("%.3f %.3f\n", wall.count() / static_cast<double>(pairs),
                (sys_us() - sys0) / static_cast<double>(pairs));
    return 0;
}
