// mountnotify: how late the kernel's fanotify mount notifications (FAN_MNT_ATTACH/DETACH, Linux
// 6.15+) reach a reader that does nothing else, with no netnsd anywhere. A reader thread marks
// the mount namespace and reads; the main thread bind-mounts a network namespace on a file,
// keeps it mounted HOLD ms, unmounts it (MNT_DETACH, as `ip netns del`) and goes on, COUNT
// times. For each mount it sets the time the reader read the attach (and the detach) beside
// the time mount(2) (umount2(2)) returned. Optional load: CHURN threads that make and drop
// network namespaces as fast as they can (the kernel's cleanup_net work), as a busy host does.
// Runs in a private mount namespace of its own with a tmpfs on DIR; needs CAP_SYS_ADMIN.
//
//   g++ -O2 -std=c++20 -pthread bench/mountnotify.cpp -o bench/out/mountnotify
//   mountnotify DIR COUNT HOLD_MS [CHURN [realtime] [statmount]]
//
// Prints one summary line per direction (read − returned, µs: p50 p99 max, and how many were
// over 1, 5 and 10 ms) and one for the control (a pipe the same reader thread polls, written
// right after mount(2) returns), then the five latest attaches with the events read in the same
// read() and when the control's word for that mount was read.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string>
#include <sys/fanotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace
{

// Newer than Debian 12's uapi headers (6.15+; statx's unique mount id 6.8+).
constexpr unsigned report_mnt = 0x00004000;         // FAN_REPORT_MNT
constexpr unsigned mark_mntns = 0x00000110;         // FAN_MARK_MNTNS
constexpr std::uint64_t mnt_attach = 0x01000000;    // FAN_MNT_ATTACH
constexpr std::uint64_t mnt_detach = 0x02000000;    // FAN_MNT_DETACH
constexpr std::uint8_t info_type_mnt = 7;           // FAN_EVENT_INFO_TYPE_MNT
constexpr unsigned statx_mnt_id_unique = 0x4000U;   // STATX_MNT_ID_UNIQUE
constexpr long sys_statmount = 457;                 // statmount(2), 6.8+
constexpr std::uint64_t statmount_mnt_point = 0x10; // STATMOUNT_MNT_POINT

struct mnt_id_req // MNT_ID_REQ_SIZE_VER0
{
    std::uint32_t size, spare;
    std::uint64_t mnt_id, param;
};

using clock_type = std::chrono::steady_clock;

[[noreturn]] void fail(const char* what)
{
    std::fprintf(stderr, "mountnotify: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

double us_since(clock_type::time_point origin, clock_type::time_point t)
{
    return std::chrono::duration<double, std::micro>(t - origin).count();
}

// Calls `each(attach, mount_id)` for every mount event in `n` bytes read from a FAN_REPORT_MNT
// group (the id is in an info record of type FAN_EVENT_INFO_TYPE_MNT).
template <typename Each>
void for_each_mount_event(const char* buf, long n, Each each)
{
    for (long off = 0; off + static_cast<long>(sizeof(fanotify_event_metadata)) <= n;)
    {
        fanotify_event_metadata meta;
        std::memcpy(&meta, buf + off, sizeof meta);
        if (meta.event_len < sizeof meta)
            return;
        for (long info = off + meta.metadata_len;
             info + static_cast<long>(sizeof(fanotify_event_info_header)) <= off + meta.event_len;)
        {
            fanotify_event_info_header head;
            std::memcpy(&head, buf + info, sizeof head);
            if (head.len < sizeof head)
                break;
            if (head.info_type == info_type_mnt && head.len >= 16)
            {
                std::uint64_t id = 0;
                std::memcpy(&id, buf + info + 8, sizeof id);
                each((meta.mask & mnt_attach) != 0, id);
            }
            info += head.len;
        }
        off += meta.event_len;
    }
}

struct seen
{
    clock_type::time_point at;
    std::size_t batch = 0; // which read() brought it
};

struct reader_log
{
    bool look_up = false; // statmount(2) each attached mount as it is read, as netnsd does
    std::vector<double> statmount_us;
    std::map<std::uint64_t, std::pair<int, clock_type::time_point>> statmount_failed; // errno, when
    std::mutex mutex;
    std::map<long, clock_type::time_point> told; // life -> when its index came through the pipe
    std::map<std::uint64_t, seen> attached, detached;
    std::vector<std::vector<std::pair<bool, std::uint64_t>>> batches; // (attach?, id) per read
};

// The same thread reads the fanotify group and a pipe the mounter writes each life's index to
// right after mount(2) returns: the pipe is the control. An attach read late while the pipe's
// word came on time was queued late by the kernel; both late means the thread ran late.
void read_events(int fd, int told_fd, int stop_fd, reader_log& log)
{
    alignas(fanotify_event_metadata) static char buf[64 * 1024];
    for (;;)
    {
        pollfd fds[3]{{fd, POLLIN, 0}, {told_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        if (::poll(fds, 3, -1) < 0)
            continue;
        if ((fds[1].revents & POLLIN) != 0)
        {
            long words[256];
            const auto n = ::read(told_fd, words, sizeof words);
            const auto at = clock_type::now();
            std::lock_guard lock(log.mutex);
            for (long k = 0; k < n / static_cast<long>(sizeof(long)); ++k)
                log.told.try_emplace(words[k], at);
        }
        if ((fds[0].revents & POLLIN) == 0)
        {
            if (fds[2].revents != 0)
                return;
            continue;
        }
        const auto n = ::read(fd, buf, sizeof buf);
        const auto at = clock_type::now();
        if (n <= 0)
            continue;
        std::lock_guard lock(log.mutex);
        const std::size_t batch = log.batches.size();
        auto& ids = log.batches.emplace_back();
        for_each_mount_event(
            buf, n,
            [&](bool attach, std::uint64_t id)
            {
                (attach ? log.attached : log.detached).try_emplace(id, seen{at, batch});
                ids.emplace_back(attach, id);
                if (attach && log.look_up)
                {
                    alignas(8) static char answer[16 * 1024];
                    const mnt_id_req req{sizeof(mnt_id_req), 0, id, statmount_mnt_point};
                    const auto t0 = clock_type::now();
                    if (::syscall(sys_statmount, &req, answer, sizeof answer, 0) != 0)
                        log.statmount_failed.try_emplace(id, errno, t0);
                    log.statmount_us.push_back(us_since(t0, clock_type::now()));
                }
            });
    }
}

// Makes a network namespace in a thread of its own and lets it go with the thread.
void churn(const std::atomic<bool>& stop, std::atomic<long>& made)
{
    while (!stop.load())
    {
        std::thread([] { (void)::unshare(CLONE_NEWNET); }).join();
        made.fetch_add(1);
    }
}

struct life
{
    std::uint64_t id = 0;
    clock_type::time_point mounted, unmounting, unmounted;
    std::int64_t mounted_us = 0; // CLOCK_REALTIME, to set beside other tools' logs
};

void summary(const char* what, std::vector<double> d, std::size_t expected,
             const char* measured = "read − returned")
{
    std::sort(d.begin(), d.end());
    auto pct = [&](double p)
    {
        return d.empty() ? 0.0 : d[std::min(d.size() - 1, static_cast<std::size_t>(p * d.size()))];
    };
    auto over = [&](double us)
    {
        return std::count_if(d.begin(), d.end(), [&](double x) { return x > us; });
    };
    std::printf("%s: %zu of %zu; %s µs p50 %.1f p99 %.1f max %.1f; over 1/5/10 ms: "
                "%ld/%ld/%ld\n",
                what, d.size(), expected, measured, pct(0.5), pct(0.99), d.empty() ? 0.0 : d.back(),
                over(1000), over(5000), over(10000));
}

} // namespace

// `mountnotify observe SECONDS`: marks the mount namespace it runs in (enter another's with
// nsenter -m) and prints every mount event as read, "attached|detached ID READ_US" (µs on
// CLOCK_REALTIME), to set beside netnsd's `mount event` lines for the same mounts.
int observe(long seconds)
{
    const int group = ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | report_mnt, 0);
    const int mntns = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (group < 0 || mntns < 0 ||
        ::fanotify_mark(group, FAN_MARK_ADD | mark_mntns, mnt_attach | mnt_detach, mntns,
                        nullptr) != 0)
        fail("fanotify");
    sched_param p{};
    p.sched_priority = 1;
    (void)::sched_setscheduler(0, SCHED_FIFO, &p);
    const auto end = clock_type::now() + std::chrono::seconds(seconds);
    alignas(fanotify_event_metadata) static char buf[64 * 1024];
    while (clock_type::now() < end)
    {
        pollfd fds{group, POLLIN, 0};
        if (::poll(&fds, 1, 200) <= 0)
            continue;
        const auto n = ::read(group, buf, sizeof buf);
        const auto at = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
        for_each_mount_event(buf, n,
                             [&](bool attach, std::uint64_t id)
                             {
                                 std::printf("%s %llu %lld\n", attach ? "attached" : "detached",
                                             static_cast<unsigned long long>(id),
                                             static_cast<long long>(at));
                             });
    }
    return 0;
}

int main(int argc, char** argv)
{
    if (argc == 3 && std::string(argv[1]) == "observe")
        return observe(std::atol(argv[2]));
    if (argc < 4 || argc > 7)
    {
        std::fprintf(stderr,
                     "usage: mountnotify DIR COUNT HOLD_MS [CHURN [realtime] [statmount]]\n");
        return 2;
    }
    const std::string dir = argv[1];
    const long count = std::atol(argv[2]);
    const auto hold = std::chrono::milliseconds(std::atol(argv[3]));
    const long churners = argc > 4 ? std::atol(argv[4]) : 0;
    bool realtime = false;
    bool look_up = false;
    for (int k = 5; k < argc; ++k)
    {
        realtime = realtime || std::string(argv[k]) == "realtime";
        look_up = look_up || std::string(argv[k]) == "statmount";
    }

    if (::unshare(CLONE_NEWNS) != 0)
        fail("unshare");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        fail("private");
    ::mkdir(dir.c_str(), 0755);
    if (::mount("mountnotify", dir.c_str(), "tmpfs", 0, nullptr) != 0)
        fail("tmpfs");

    const int group = ::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | report_mnt, 0);
    if (group < 0)
        fail("fanotify_init(FAN_REPORT_MNT)");
    const int mntns = ::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
    if (mntns < 0 || ::fanotify_mark(group, FAN_MARK_ADD | mark_mntns, mnt_attach | mnt_detach,
                                     mntns, nullptr) != 0)
        fail("fanotify_mark(FAN_MARK_MNTNS)");
    ::close(mntns);
    int stop_pipe[2], told_pipe[2];
    if (::pipe2(stop_pipe, O_CLOEXEC) != 0 || ::pipe2(told_pipe, O_CLOEXEC) != 0)
        fail("pipe");

    reader_log log;
    log.look_up = look_up;
    std::thread reader(read_events, group, told_pipe[0], stop_pipe[0], std::ref(log));
    if (realtime)
    {
        sched_param p{};
        p.sched_priority = 1;
        if (const int rc = ::pthread_setschedparam(reader.native_handle(), SCHED_FIFO, &p))
        {
            errno = rc;
            fail("SCHED_FIFO");
        }
    }
    std::atomic<bool> stop{false};
    std::atomic<long> made{0};
    std::vector<std::thread> load;
    for (long i = 0; i < churners; ++i)
        load.emplace_back(churn, std::cref(stop), std::ref(made));

    std::vector<life> lives;
    lives.reserve(static_cast<std::size_t>(count));
    for (long i = 0; i < count; ++i)
    {
        const auto path = dir + "/mn" + std::to_string(i);
        const int f = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
        if (f < 0)
            fail("create");
        ::close(f);
        life l;
        if (::mount("/proc/self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0)
            fail("mount");
        l.mounted = clock_type::now();
        l.mounted_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
        if (::write(told_pipe[1], &i, sizeof i) != sizeof i)
            fail("write");
        struct statx sx
        {
        };
        if (::statx(AT_FDCWD, path.c_str(), 0, statx_mnt_id_unique, &sx) != 0 ||
            (sx.stx_mask & statx_mnt_id_unique) == 0)
            fail("statx(STATX_MNT_ID_UNIQUE)");
        l.id = sx.stx_mnt_id;
        std::this_thread::sleep_until(l.mounted + hold);
        l.unmounting = clock_type::now();
        if (::umount2(path.c_str(), MNT_DETACH) != 0)
            fail("umount2");
        l.unmounted = clock_type::now();
        ::unlink(path.c_str());
        lives.push_back(l);
    }
    stop = true;
    for (auto& t : load)
        t.join();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    [[maybe_unused]] const auto w = ::write(stop_pipe[1], "x", 1);
    reader.join();

    std::vector<double> attach, detach, told;
    long kernel_late = 0, thread_late = 0;
    std::vector<std::pair<double, std::size_t>> late; // (delay, life)
    for (std::size_t i = 0; i < lives.size(); ++i)
    {
        const auto& l = lives[i];
        if (const auto a = log.attached.find(l.id); a != log.attached.end())
        {
            attach.push_back(us_since(l.mounted, a->second.at));
            late.emplace_back(attach.back(), i);
            if (const auto t = log.told.find(static_cast<long>(i)); t != log.told.end())
            {
                told.push_back(us_since(l.mounted, t->second));
                if (attach.back() > 1000 && told.back() < 500)
                    ++kernel_late;
                else if (attach.back() > 1000)
                    ++thread_late;
            }
        }
        if (const auto d = log.detached.find(l.id); d != log.detached.end())
            detach.push_back(us_since(l.unmounted, d->second.at));
    }
    std::printf(
        "mountnotify: %ld lives of %lld ms, %ld churn threads (%ld namespaces made), reader %s\n",
        count, static_cast<long long>(hold.count()), churners, made.load(),
        realtime ? "SCHED_FIFO 1" : "SCHED_OTHER");
    summary("attach", attach, lives.size());
    summary("detach", detach, lives.size());
    summary("pipe (control, same thread)", told, lives.size());
    if (look_up)
    {
        summary("statmount(2) of each attach", log.statmount_us, lives.size(), "duration");
        long while_mounted = 0;
        for (const auto& l : lives)
            if (const auto f = log.statmount_failed.find(l.id);
                f != log.statmount_failed.end() && f->second.second < l.unmounting)
            {
                ++while_mounted;
                std::printf("  statmount(2) of mount %llu failed (%s) %.1f µs after mount(2) "
                            "returned, %.1f µs before umount2(2) was called\n",
                            static_cast<unsigned long long>(l.id), std::strerror(f->second.first),
                            us_since(l.mounted, f->second.second),
                            us_since(f->second.second, l.unmounting));
            }
        std::printf("statmount(2) failed for %zu attaches, %ld of them while still mounted\n",
                    log.statmount_failed.size(), while_mounted);
    }
    std::printf(
        "attaches read over 1 ms late: %ld with the pipe's word on time (< 0.5 ms: the kernel "
        "queued the attach late), %ld with the pipe late too (the reader ran late)\n",
        kernel_late, thread_late);
    std::sort(late.begin(), late.end(), std::greater<>());
    for (std::size_t k = 0; k < std::min<std::size_t>(5, late.size()); ++k)
    {
        const auto& l = lives[late[k].second];
        const auto& batch = log.batches[log.attached[l.id].batch];
        const auto t = log.told.find(static_cast<long>(late[k].second));
        std::printf("  life %zu (mounted at %lld µs, CLOCK_REALTIME): attach read %.1f µs after "
                    "mount(2) returned, in a read of %zu events; the pipe's word %.1f µs after\n",
                    late[k].second, static_cast<long long>(l.mounted_us), late[k].first,
                    batch.size(), t == log.told.end() ? -1.0 : us_since(l.mounted, t->second));
    }
    return 0;
}
