// mkns: creates or deletes named network namespaces as fast as the kernel allows, with exactly
// the system calls `ip netns add` / `ip netns del` make (iproute2's ip/ipnetns.c: netns_add,
// netns_delete), but in one process, so a benchmark can set up thousands of them in seconds instead
// of the ~8 ms per `ip` process. Single-threaded on purpose: unshare(CLONE_NEWNET) followed by a
// bind of /proc/self/ns/net is only correct when the process has one thread.
//
//   mkns add DIR PREFIX COUNT [--nsid]   names PREFIX00000 .. PREFIX{COUNT-1}
//   mkns del DIR PREFIX COUNT
//
// --nsid also gives each new namespace an nsid in the caller's netns, as `ip netns set NAME
// auto` does (RTM_NEWNSID with NETNSA_FD and NETNSA_NSID = -1: the kernel picks the lowest free
// id). Prints the elapsed time per operation on stdout; errors go to stderr with exit code 1.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/net_namespace.h>
#include <linux/rtnetlink.h>
#include <optional>
#include <sched.h>
#include <string>
#include <string_view>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <libmnl/libmnl.h>

namespace
{

using steady = std::chrono::steady_clock;

// Big enough for an ACK that quotes the 36-byte request, and for any extack text.
constexpr std::size_t reply_buffer_size = 8192;

[[noreturn]] void die(const std::string& what, int err)
{
    std::fprintf(stderr, "mkns: %s: %s\n", what.c_str(), std::strerror(err));
    std::exit(1);
}

double ms_since(steady::time_point start)
{
    return std::chrono::duration<double, std::milli>(steady::now() - start).count();
}

std::string entry_name(const std::string& prefix, unsigned i)
{
    char digits[16];
    std::snprintf(digits, sizeof digits, "%05u", i);
    return prefix + digits;
}

// Per-operation times of one phase, printed as one line.
class timings
{
public:
    explicit timings(std::string label) : label_(std::move(label)) {}

    void add(double ms) { samples_.push_back(ms); }

    void print() const
    {
        if (samples_.empty())
            return;
        std::vector<double> sorted = samples_;
        std::sort(sorted.begin(), sorted.end());
        double sum = 0;
        for (double s : sorted)
            sum += s;
        const auto n = sorted.size();
        const auto at = [&](double q)
        {
            return sorted[std::min(n - 1, static_cast<std::size_t>(q * static_cast<double>(n)))];
        };
        std::printf("%s: %zu operations, %.1f ms in all; each: mean %.3f ms, median %.3f ms, "
                    "p99 %.3f ms, max %.3f ms\n",
                    label_.c_str(), n, sum, sum / static_cast<double>(n), at(0.5), at(0.99),
                    sorted.back());
    }

private:
    std::string label_;
    std::vector<double> samples_;
};

// The run dir preparation of `ip netns add` (§2 steps 2-5, with upstream's MS_PRIVATE step):
// make DIR a shared mount point so the bind mounts under it propagate like iproute2's do.
void prepare_dir(const std::string& dir)
{
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        die("mkdir " + dir, errno);
    const int lock = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0)
        die("open " + dir, errno);
    if (::flock(lock, LOCK_EX) != 0)
        std::fprintf(stderr, "mkns: warning: could not flock %s: %s\n", dir.c_str(),
                     std::strerror(errno));
    bool converted = false;
    while (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0)
    {
        if (errno != EINVAL || converted)
            die("mount --make-shared " + dir, errno);
        // Not a mount point yet: bind it onto itself, then move it into a peer group of its
        // own before sharing it, so it does not join the parent's group (§2 step 4).
        if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0)
            die("mount --bind " + dir, errno);
        if (::mount(dir.c_str(), dir.c_str(), "none", MS_PRIVATE | MS_REC, nullptr) != 0)
            die("mount --make-private " + dir, errno);
        converted = true;
    }
    ::flock(lock, LOCK_UN);
    ::close(lock);
}

// An rtnetlink socket in the netns the tool started in; it stays there while the process
// visits new namespaces, so every nsid lands in the original netns's table.
class nsid_setter
{
public:
    nsid_setter()
    {
        nl_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
        if (nl_ == nullptr)
            die("netlink socket", errno);
        if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0)
            die("netlink bind", errno);
        port_ = mnl_socket_get_portid(nl_);
        seq_ = static_cast<unsigned>(std::time(nullptr));
    }
    nsid_setter(const nsid_setter&) = delete;
    nsid_setter& operator=(const nsid_setter&) = delete;
    ~nsid_setter() { mnl_socket_close(nl_); }

    // RTM_NEWNSID for the namespace bound at `path`, id chosen by the kernel.
    void assign_auto(const std::string& path)
    {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            die("open " + path, errno);
        alignas(nlmsghdr) char buf[reply_buffer_size];
        nlmsghdr* nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_NEWNSID;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        nlh->nlmsg_seq = ++seq_;
        auto* gen = static_cast<rtgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtgenmsg)));
        gen->rtgen_family = AF_UNSPEC;
        mnl_attr_put_u32(nlh, NETNSA_FD, static_cast<std::uint32_t>(fd));
        mnl_attr_put_u32(nlh, NETNSA_NSID, static_cast<std::uint32_t>(NETNSA_NSID_NOT_ASSIGNED));
        if (mnl_socket_sendto(nl_, nlh, nlh->nlmsg_len) < 0)
            die("RTM_NEWNSID send", errno);
        const ssize_t got = mnl_socket_recvfrom(nl_, buf, sizeof buf);
        if (got < 0)
            die("RTM_NEWNSID receive", errno);
        if (mnl_cb_run(buf, static_cast<std::size_t>(got), seq_, port_, nullptr, nullptr) < 0)
            die("RTM_NEWNSID for " + path, errno);
        ::close(fd);
    }

private:
    mnl_socket* nl_ = nullptr;
    unsigned port_ = 0;
    unsigned seq_ = 0;
};

// `ip netns del`: the lazy unmount's result is ignored, as iproute2 does (§3).
bool remove_entry(const std::string& path)
{
    ::umount2(path.c_str(), MNT_DETACH);
    if (::unlink(path.c_str()) != 0)
    {
        std::fprintf(stderr, "mkns: cannot remove namespace file \"%s\": %s\n", path.c_str(),
                     std::strerror(errno));
        return false;
    }
    return true;
}

int add(const std::string& dir, const std::string& prefix, unsigned count, bool with_nsid)
{
    const auto start = steady::now();
    prepare_dir(dir);
    const int saved = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved < 0)
        die("open /proc/self/ns/net", errno);
    std::optional<nsid_setter> setter;
    if (with_nsid)
        setter.emplace();
    timings create("add (create + unshare + bind + setns)"), nsid("nsid (RTM_NEWNSID auto)");
    for (unsigned i = 0; i < count; ++i)
    {
        const std::string path = dir + "/" + entry_name(prefix, i);
        const auto t0 = steady::now();
        const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
        if (fd < 0)
            die("cannot create namespace file \"" + path + "\"", errno);
        ::close(fd);
        if (::unshare(CLONE_NEWNET) != 0)
        {
            const int err = errno;
            ::unlink(path.c_str());
            die("unshare(CLONE_NEWNET) for " + path, err);
        }
        if (::mount("/proc/self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0)
        {
            const int err = errno;
            if (::setns(saved, CLONE_NEWNET) != 0)
                die("setns back", errno);
            remove_entry(path);
            die("bind /proc/self/ns/net -> " + path, err);
        }
        if (::setns(saved, CLONE_NEWNET) != 0)
            die("setns back", errno);
        create.add(ms_since(t0));
        if (with_nsid)
        {
            const auto t1 = steady::now();
            setter->assign_auto(path);
            nsid.add(ms_since(t1));
        }
    }
    ::close(saved);
    create.print();
    nsid.print();
    std::printf("wall: %.1f ms\n", ms_since(start));
    return 0;
}

int del(const std::string& dir, const std::string& prefix, unsigned count)
{
    const auto start = steady::now();
    timings remove("del (umount2 + unlink)");
    unsigned failed = 0;
    for (unsigned i = 0; i < count; ++i)
    {
        const auto t0 = steady::now();
        if (!remove_entry(dir + "/" + entry_name(prefix, i)))
            ++failed;
        remove.add(ms_since(t0));
    }
    remove.print();
    std::printf("wall: %.1f ms\n", ms_since(start));
    return failed == 0 ? 0 : 1;
}

int usage()
{
    std::fputs("usage: mkns add DIR PREFIX COUNT [--nsid]\n"
               "       mkns del DIR PREFIX COUNT\n",
               stderr);
    return 2;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 5 || argc > 6)
        return usage();
    const std::string_view verb = argv[1];
    const std::string dir = argv[2];
    const std::string prefix = argv[3];
    const std::string_view count_text = argv[4];
    unsigned count = 0;
    const auto [end, ec] =
        std::from_chars(count_text.data(), count_text.data() + count_text.size(), count);
    if (ec != std::errc{} || end != count_text.data() + count_text.size() || dir.empty() ||
        prefix.empty() || prefix.find('/') != std::string::npos)
        return usage();
    const bool with_nsid = argc == 6 && std::string_view(argv[5]) == "--nsid";
    if (argc == 6 && !with_nsid)
        return usage();
    if (verb == "add")
        return add(dir, prefix, count, with_nsid);
    if (verb == "del" && !with_nsid)
        return del(dir, prefix, count);
    return usage();
}
