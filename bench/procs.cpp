// procs: N cheap processes for the inventory benchmark (bench/inventory.py), each blocked in
// pause(): `procs N idle` in the caller's network namespace, `procs N unshare` each in a network
// namespace of its own (unshare(CLONE_NEWNET) before pause(), like `unshare -n sleep`). Prints
// "ready N" once every child is in place, then waits until its stdin closes (or SIGTERM) and
// kills them all. Children die with it (PR_SET_PDEATHSIG) whatever happens.
//
//   g++ -O2 -std=c++20 bench/procs.cpp -o bench/out/procs
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sched.h>
#include <string>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

int main(int argc, char** argv)
{
    if (argc != 3 || (std::string(argv[2]) != "idle" && std::string(argv[2]) != "unshare"))
    {
        std::fprintf(stderr, "usage: procs N idle|unshare\n");
        return 2;
    }
    const long n = std::strtol(argv[1], nullptr, 10);
    const bool unshare_net = std::string(argv[2]) == "unshare";
    int ready[2];
    if (::pipe(ready) != 0)
        return 1;
    std::vector<pid_t> children;
    children.reserve(static_cast<std::size_t>(n));
    const pid_t parent = ::getpid();
    for (long i = 0; i < n; ++i)
    {
        const pid_t pid = ::fork();
        if (pid < 0)
        {
            std::fprintf(stderr, "procs: fork %ld: %s\n", i, std::strerror(errno));
            break;
        }
        if (pid == 0)
        {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (::getppid() != parent)
                ::_exit(1);
            ::close(ready[0]);
            char ok = 1;
            if (unshare_net && ::unshare(CLONE_NEWNET) != 0)
                ok = 0;
            if (::write(ready[1], &ok, 1) != 1)
                ::_exit(1);
            ::close(ready[1]);
            ::close(0);
            for (;;)
                ::pause();
        }
        children.push_back(pid);
    }
    ::close(ready[1]);
    long up = 0;
    long failed = 0;
    for (std::size_t i = 0; i < children.size(); ++i)
    {
        char ok = 0;
        if (::read(ready[0], &ok, 1) != 1)
            break;
        (ok != 0 ? up : failed) += 1;
    }
    std::printf("ready %ld failed %ld\n", up, failed);
    std::fflush(stdout);
    char buf[64];
    while (::read(0, buf, sizeof buf) > 0)
    {
    }
    for (const auto pid : children)
        ::kill(pid, SIGKILL);
    for (std::size_t i = 0; i < children.size(); ++i)
        ::wait(nullptr);
    return failed == 0 && up == n ? 0 : 1;
}
