#include "core/kernel/mount_watch.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <iterator>
#include <memory>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unordered_set>
#include <utility>

#include "core/kernel/drain_fd.hpp"
#include "core/kernel/errno.hpp"

namespace netnsd::core::kernel
{
namespace
{

// Newer than Debian 12's uapi headers (linux-libc-dev 6.1): defined here, probed at run time.
constexpr unsigned report_mnt = 0x00004000;      // FAN_REPORT_MNT (6.15)
constexpr unsigned mark_mntns = 0x00000110;      // FAN_MARK_MNTNS (6.15)
constexpr std::uint64_t mnt_attach = 0x01000000; // FAN_MNT_ATTACH
constexpr std::uint64_t mnt_detach = 0x02000000; // FAN_MNT_DETACH
constexpr std::uint64_t q_overflow = 0x00004000; // FAN_Q_OVERFLOW
constexpr std::uint8_t info_type_mnt = 7;        // FAN_EVENT_INFO_TYPE_MNT
constexpr long sys_statmount = 457;              // x86_64, and every arch of 6.8's table
constexpr long sys_listmount = 458;
constexpr std::uint64_t statmount_sb_basic = 0x1;           // STATMOUNT_SB_BASIC
constexpr std::uint64_t statmount_mnt_basic = 0x2;          // STATMOUNT_MNT_BASIC
constexpr std::uint64_t statmount_mnt_root = 0x8;           // STATMOUNT_MNT_ROOT
constexpr std::uint64_t statmount_mnt_point = 0x10;         // STATMOUNT_MNT_POINT
constexpr std::uint64_t statmount_fs_type = 0x20;           // STATMOUNT_FS_TYPE
constexpr std::uint64_t listmount_root = ~std::uint64_t{0}; // LSMT_ROOT
constexpr std::uint32_t mnt_id_req_size_ver0 = 24;          // MNT_ID_REQ_SIZE_VER0
constexpr std::uint32_t mnt_id_req_size_ver1 = 32;          // MNT_ID_REQ_SIZE_VER1 (6.11)

static_assert(FAN_EVENT_METADATA_LEN == sizeof(fanotify_event_metadata));

// struct mnt_id_req (VER1): which mount, what to ask of it, and in which mount namespace (0:
// the caller's). Sent as VER0 (without mnt_ns_id) when that is 0, for kernels before 6.11.
struct mnt_id_req
{
    std::uint32_t size;
    std::uint32_t spare;
    std::uint64_t mnt_id;
    std::uint64_t param;
    std::uint64_t mnt_ns_id;
};
static_assert(sizeof(mnt_id_req) == mnt_id_req_size_ver1);

constexpr std::uint32_t req_size(std::uint64_t mnt_ns_id)
{
    return mnt_ns_id == 0 ? mnt_id_req_size_ver0 : mnt_id_req_size_ver1;
}

// The fixed head of struct statmount, as far as netnsd reads it; strings follow the whole
// struct (512 bytes in every version), addressed by offsets from `str`.
struct statmount_head
{
    std::uint32_t size;
    std::uint32_t mnt_opts;
    std::uint64_t mask;
    std::uint32_t sb_dev_major;
    std::uint32_t sb_dev_minor;
    std::uint64_t sb_magic;
    std::uint32_t sb_flags;
    std::uint32_t fs_type;
    std::uint64_t mnt_id;
    std::uint64_t mnt_parent_id;
    std::uint32_t mnt_id_old;
    std::uint32_t mnt_parent_id_old;
    std::uint64_t mnt_attr;
    std::uint64_t mnt_propagation;
    std::uint64_t mnt_peer_group;
    std::uint64_t mnt_master;
    std::uint64_t propagate_from;
    std::uint32_t mnt_root;
    std::uint32_t mnt_point;
};
constexpr std::size_t statmount_struct_size = 512; // sizeof(struct statmount) without str[]

std::string string_at(std::span<const std::byte> buf, std::uint32_t offset)
{
    const auto base = statmount_struct_size + offset;
    if (base >= buf.size())
        return {};
    const auto* p = reinterpret_cast<const char*>(buf.data() + base);
    return std::string(p, ::strnlen(p, buf.size() - base));
}

// The calling thread's buffer for statmount's answers, kept: a mount reader calls statmount
// for every attach and must not allocate (mount_watch::batch).
std::vector<std::byte>& statmount_buffer()
{
    thread_local std::vector<std::byte> buf;
    // A mount point is at most PATH_MAX; stat_mount_raw grows it if the kernel says otherwise.
    if (buf.size() < statmount_struct_size + 2 * 4096)
        buf.resize(statmount_struct_size + 2 * 4096);
    return buf;
}

// The calling thread's buffers for reading the fanotify queue, kept (as above). 64 KiB is
// ~2700 mount events a read(2).
struct read_buffers
{
    std::vector<std::byte> bytes = std::vector<std::byte>(64 * 1024);
    std::vector<mount_record> records;

    read_buffers()
    {
        // Touched once here, like every buffer a reader fills: a first touch is a page fault,
        // which waits for the process's mmap lock while another thread maps or unmaps memory.
        records.resize(4096);
        records.clear();
    }
};

read_buffers& thread_read_buffers()
{
    thread_local read_buffers buffers;
    return buffers;
}

} // namespace

std::optional<std::uint64_t> mount_facts::netns_inode() const
{
    // nsfs names a mount's root after the namespace: "net:[4026532177]".
    constexpr std::string_view prefix = "net:[";
    if (fs_type != "nsfs" || !root.starts_with(prefix) || !root.ends_with(']'))
        return std::nullopt;
    const auto digits =
        std::string_view(root).substr(prefix.size(), root.size() - prefix.size() - 1);
    std::uint64_t ino = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), ino);
    if (ec != std::errc{} || end != digits.data() + digits.size() || digits.empty())
        return std::nullopt;
    return ino;
}

bool decode_mount_events(std::span<const std::byte> bytes, std::vector<mount_record>& out)
{
    std::size_t at = 0;
    while (at < bytes.size())
    {
        if (bytes.size() - at < sizeof(fanotify_event_metadata))
            return false;
        fanotify_event_metadata meta;
        std::memcpy(&meta, bytes.data() + at, sizeof meta);
        if (meta.event_len < meta.metadata_len || meta.metadata_len < sizeof meta ||
            meta.event_len > bytes.size() - at)
            return false;
        if ((meta.mask & q_overflow) != 0)
        {
            out.push_back({mount_record::kind::overflow, 0});
        }
        else if ((meta.mask & (mnt_attach | mnt_detach)) != 0)
        {
            // The mount's id is in an info record of type FAN_EVENT_INFO_TYPE_MNT.
            std::size_t info = at + meta.metadata_len;
            const std::size_t end = at + meta.event_len;
            while (end - info >= sizeof(fanotify_event_info_header))
            {
                fanotify_event_info_header head;
                std::memcpy(&head, bytes.data() + info, sizeof head);
                if (head.len < sizeof head || head.len > end - info)
                    return false;
                // struct fanotify_event_info_mnt: the header, 4 bytes of padding, the u64 id.
                if (head.info_type == info_type_mnt && head.len >= 16)
                {
                    std::uint64_t id = 0;
                    std::memcpy(&id, bytes.data() + info + 8, sizeof id);
                    const auto what = (meta.mask & mnt_attach) != 0 ? mount_record::kind::attached
                                                                    : mount_record::kind::detached;
                    out.push_back({what, id});
                }
                info += head.len;
            }
        }
        at += meta.event_len;
    }
    return true;
}

std::span<const std::byte> stat_mount_raw(std::uint64_t mount_id, std::error_code& ec,
                                          std::uint64_t mnt_ns_id)
{
    const mnt_id_req req{req_size(mnt_ns_id), 0, mount_id,
                         statmount_sb_basic | statmount_mnt_basic | statmount_mnt_root |
                             statmount_mnt_point | statmount_fs_type,
                         mnt_ns_id};
    auto& buf = statmount_buffer();
    for (int attempt = 0; attempt < 3; ++attempt)
    {
        if (::syscall(sys_statmount, &req, buf.data(), buf.size(), 0) == 0)
        {
            // `size` is what the kernel wrote: the struct and the strings after it.
            statmount_head head;
            std::memcpy(&head, buf.data(), sizeof head);
            ec.clear();
            return std::span<const std::byte>(buf).first(
                std::clamp<std::size_t>(head.size, sizeof head, buf.size()));
        }
        if (errno != EOVERFLOW)
            break;
        buf.resize(buf.size() * 4);
    }
    ec = last_error();
    return {};
}

mount_facts parse_statmount(std::span<const std::byte> answer)
{
    statmount_head head{};
    std::memcpy(&head, answer.data(), std::min(sizeof head, answer.size()));
    mount_facts facts;
    facts.mount_id = head.mnt_id;
    facts.dev_major = head.sb_dev_major;
    facts.dev_minor = head.sb_dev_minor;
    if ((head.mask & statmount_mnt_basic) != 0)
        facts.propagation = head.mnt_propagation;
    facts.fs_type = string_at(answer, head.fs_type);
    facts.root = string_at(answer, head.mnt_root);
    facts.mount_point = string_at(answer, head.mnt_point);
    return facts;
}

std::optional<mount_facts> stat_mount(std::uint64_t mount_id, std::error_code& ec,
                                      std::uint64_t mnt_ns_id)
{
    const auto answer = stat_mount_raw(mount_id, ec, mnt_ns_id);
    if (ec)
        return std::nullopt;
    return parse_statmount(answer);
}

mount_change to_change(const mount_sighting& seen, std::span<const std::byte> answers)
{
    mount_change c{seen.what, seen.mount_id, std::nullopt, {}, seen.read_at, seen.lookups};
    if (seen.what != mount_record::kind::attached)
        return c;
    if (seen.stat_errno != 0)
        c.stat_error = errno_code(seen.stat_errno);
    else if (seen.answer_at + std::size_t{seen.answer_size} <= answers.size())
        c.facts = parse_statmount(answers.subspan(seen.answer_at, seen.answer_size));
    return c;
}

std::size_t look_up_again(std::span<mount_sighting> sightings,
                          const std::function<void(mount_sighting&)>& lookup,
                          std::span<const std::chrono::microseconds> waits)
{
    // Said gone, with no detach of it read after: gone may be wrong. A plain scan for the
    // detach (batches are small, and this runs on a reader, which must not allocate).
    auto unresolved = [&](std::size_t i)
    {
        const auto& s = sightings[i];
        if (s.what != mount_record::kind::attached || s.stat_errno != ENOENT)
            return false;
        return std::none_of(sightings.begin() + static_cast<std::ptrdiff_t>(i) + 1, sightings.end(),
                            [&](const mount_sighting& later) {
                                return later.what == mount_record::kind::detached &&
                                       later.mount_id == s.mount_id;
                            });
    };
    auto any_unresolved = [&]
    {
        for (std::size_t i = 0; i < sightings.size(); ++i)
            if (unresolved(i))
                return true;
        return false;
    };
    std::size_t resolved = 0;
    for (const auto wait : waits)
    {
        if (!any_unresolved())
            break;
        if (wait.count() > 0)
            std::this_thread::sleep_for(wait);
        for (std::size_t i = 0; i < sightings.size(); ++i)
            if (unresolved(i))
            {
                lookup(sightings[i]);
                ++sightings[i].lookups;
                resolved += sightings[i].stat_errno == 0 ? 1U : 0U;
            }
    }
    return resolved;
}

std::error_code list_mounts(std::vector<std::uint64_t>& ids, std::uint64_t mnt_ns_id)
{
    ids.clear();
    std::array<std::uint64_t, 512> chunk{};
    std::uint64_t last = 0;
    for (;;)
    {
        const mnt_id_req req{req_size(mnt_ns_id), 0, listmount_root, last, mnt_ns_id};
        const long n = ::syscall(sys_listmount, &req, chunk.data(), chunk.size(), 0);
        if (n < 0)
            return last_error();
        ids.insert(ids.end(), chunk.begin(), chunk.begin() + n);
        if (static_cast<std::size_t>(n) < chunk.size())
            return {};
        last = chunk[static_cast<std::size_t>(n) - 1];
    }
}

std::error_code mount_watch::open()
{
    unique_fd group(::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | report_mnt, 0));
    if (!group)
        return last_error();
    // The mark is on the mount namespace itself, named by an nsfs fd that is closed again at
    // once (a mount namespace, not a network one: holding it would keep nothing of ours alive).
    unique_fd mntns(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
    if (!mntns)
        return last_error();
    if (::fanotify_mark(group.get(), FAN_MARK_ADD | mark_mntns, mnt_attach | mnt_detach,
                        mntns.get(), nullptr) != 0)
        return last_error();
    fd_ = std::move(group);
    return {};
}

std::error_code foreign_mount_feed::open()
{
    unique_fd group(::fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | report_mnt, 0));
    if (!group)
        return last_error();
    fd_ = std::move(group);
    return {};
}

std::vector<mount_record> foreign_mount_feed::drain()
{
    std::vector<mount_record> out;
    alignas(fanotify_event_metadata) std::array<std::byte, 64 * 1024> buf;
    drain_fd(fd_.get(), buf,
             [&](std::span<const std::byte> bytes)
             {
                 const bool whole = decode_mount_events(bytes, out);
                 if (!whole)
                     out.push_back({mount_record::kind::overflow, 0}); // cannot happen
                 return whole;
             });
    return out;
}

std::error_code mark_mount_namespace(int group, int mntns_fd) noexcept
{
    if (::fanotify_mark(group, FAN_MARK_ADD | mark_mntns, mnt_attach | mnt_detach, mntns_fd,
                        nullptr) != 0)
        return last_error();
    return {};
}

mount_watch::~mount_watch()
{
    if (readers_.empty())
        return;
    signal(stop_);
    for (auto& reader : readers_)
        reader.join();
    free_all(ready_.exchange(nullptr)); // what no drain() took
    free_all(spent_.exchange(nullptr));
    free_all(idle_);
}

void mount_watch::free_all(batch* b) noexcept
{
    while (b != nullptr)
        delete std::exchange(b, b->next);
}

void mount_watch::signal(const unique_fd& eventfd) noexcept
{
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(eventfd.get(), &one, sizeof one);
}

void mount_watch::read_queued(batch& into)
{
    into.sightings.clear();
    into.answers.clear();
    auto& buffers = thread_read_buffers();
    auto& buf = buffers.bytes;
    auto& records = buffers.records; // a reference, not a binding: clang 14 captures no bindings
    auto look_up = [&into](mount_sighting& seen)
    {
        std::error_code ec;
        const auto answer = stat_mount_raw(seen.mount_id, ec);
        seen.stat_errno = ec.value();
        if (ec)
            return;
        seen.answer_at = static_cast<std::uint32_t>(into.answers.size());
        seen.answer_size = static_cast<std::uint32_t>(answer.size());
        into.answers.insert(into.answers.end(), answer.begin(), answer.end());
    };
    drain_fd(
        fd_.get(), buf,
        [&](std::span<const std::byte> bytes)
        {
            records.clear();
            const bool whole = decode_mount_events(bytes, records);
            const auto read_at = std::chrono::system_clock::now();
            // Each read's attached mounts are looked up before the next read: the sooner,
            // the fewer are gone already.
            for (const auto& r : records)
            {
                mount_sighting seen{r.what, r.mount_id, read_at, 0, 0, 0, 0};
                if (r.what == mount_record::kind::attached)
                {
                    look_up(seen);
                    seen.lookups = 1;
                }
                into.sightings.push_back(seen);
            }
            if (!whole) // cannot happen
                into.sightings.push_back({mount_record::kind::overflow, 0, read_at, 0, 0, 0, 0});
            return whole;
        });
    // The queue is read to its end: an attach said gone without its detach behind it may have
    // been looked at too soon. A retry costs nothing in the usual case and at most ~1.1 ms
    // when the mount really is gone (its detach not queued yet).
    using std::chrono::microseconds;
    static constexpr std::array<microseconds, 3> waits{microseconds(0), microseconds(100),
                                                       microseconds(1000)};
    look_up_again(into.sightings, look_up, waits);
}

std::vector<mount_change> mount_watch::drain()
{
    if (readers_.empty())
    {
        batch read;
        read_queued(read);
        std::vector<mount_change> out;
        out.reserve(read.sightings.size());
        for (const auto& seen : read.sightings)
            out.push_back(to_change(seen, read.answers));
        return out;
    }
    // Nothing queued and no reader between a read and its push: everything the kernel queued
    // before now is in ready_ already (a reader sets reading_ before it reads, so an event gone
    // from the queue is either pushed or still being looked up). The common case, without a
    // round trip to the readers.
    pollfd queued{fd_.get(), POLLIN, 0};
    if (::poll(&queued, 1, 0) != 0 || reading_.load())
    {
        // A reader reads the queue to its end after it sees this ticket, so everything the
        // kernel queued before now is in ready_ once it is answered. The readers run at a
        // higher priority and do nothing else: the wait is one of their turns (tens of µs).
        const auto ticket = flushes_asked_.fetch_add(1) + 1;
        signal(flush_);
        for (auto done = flushes_done_.load(); done < ticket; done = flushes_done_.load())
            flushes_done_.wait(done);
    }
    // The wakeup first, then the batches: one pushed after this read signals again.
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(wake_.get(), &count, sizeof count);
    return take_ready();
}

void mount_watch::push(std::atomic<batch*>& stack, batch* b) noexcept
{
    b->next = stack.load(std::memory_order_relaxed);
    while (!stack.compare_exchange_weak(b->next, b, std::memory_order_release,
                                        std::memory_order_relaxed))
    {
    }
}

std::vector<mount_change> mount_watch::take_ready()
{
    std::vector<batch*> newest_first;
    for (batch* b = ready_.exchange(nullptr, std::memory_order_acquire); b != nullptr; b = b->next)
        newest_first.push_back(b);
    std::vector<mount_change> out;
    for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it)
        for (const auto& seen : (*it)->sightings)
            out.push_back(to_change(seen, (*it)->answers));
    // Back to the readers, to be filled again (a batch grown past the usual stays grown: a
    // free here would take the lock of a reader's malloc arena).
    for (batch* b : newest_first)
        push(spent_, b);
    return out;
}

mount_watch::batch* mount_watch::fresh_batch()
{
    if (idle_ == nullptr)
        idle_ = spent_.exchange(nullptr, std::memory_order_acquire);
    if (idle_ != nullptr)
        return std::exchange(idle_, idle_->next);
    return new_batch();
}

mount_watch::batch* mount_watch::new_batch()
{
    // Room for a pass without growing: 64 events, an answer of ~0.6 KB for each of ~25
    // attaches (more than a reader held up for 15 ms finds queued under bench/soak). Touched
    // here (read_buffers says why), kept when cleared.
    auto* b = new batch;
    b->sightings.resize(64);
    b->sightings.clear();
    b->answers.resize(16 * 1024);
    b->answers.clear();
    return b;
}

bool mount_watch::pending() const
{
    if (!fd_)
        return false;
    pollfd queued{fd_.get(), POLLIN, 0};
    return ::poll(&queued, 1, 0) != 0 || reading_.load() || ready_.load() != nullptr;
}

namespace
{

// The CPUs this process may run on, ascending (empty when the kernel does not say).
std::vector<int> allowed_cpus()
{
    std::vector<int> out;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0)
        return out;
    for (std::size_t cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &set))
            out.push_back(static_cast<int>(cpu));
    return out;
}

} // namespace

std::error_code mount_watch::start_reader(int nice)
{
    unique_fd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    unique_fd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    unique_fd flush(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake || !stop || !flush)
        return last_error();
    wake_ = std::move(wake);
    stop_ = std::move(stop);
    flush_ = std::move(flush);
    // The readers' batches, made here (~1.1 MB): a reader allocates only when the model
    // thread holds all of them. A batch a pass: the model thread takes them all at each turn,
    // and ~30 ms behind while 2 CPUs are saturated (bench/soak) it holds up to ~60.
    for (std::size_t i = 0; i < pooled_batches; ++i)
    {
        batch* b = new_batch();
        b->next = idle_;
        idle_ = b;
    }
    // Two CPUs are enough: the stall they are against is one kernel worker on one CPU. The
    // first two allowed ones are distinct cores on the usual x86 numbering (SMT siblings are
    // N apart).
    if (const auto cpus = allowed_cpus(); cpus.size() >= 2)
        reader_cpus_.assign(cpus.begin(), cpus.begin() + 2);
    const std::size_t count = reader_cpus_.empty() ? 1 : reader_cpus_.size();
    for (std::size_t i = 0; i < count; ++i)
    {
        const int cpu = reader_cpus_.empty() ? -1 : reader_cpus_[i];
        readers_.emplace_back([this, nice, cpu] { run_reader(nice, cpu); });
        // Its own name in top -H and perf, given here so that it has it once this returns.
        ::pthread_setname_np(readers_.back().native_handle(), "netnsd-mounts");
    }
    return {};
}

std::error_code mount_watch::make_reader_realtime(int priority)
{
    if (readers_.empty())
        return std::make_error_code(std::errc::operation_not_permitted);
    sched_param param{};
    param.sched_priority = priority;
    for (auto& reader : readers_)
        // Returns the error number rather than setting errno.
        if (const int rc = ::pthread_setschedparam(reader.native_handle(), SCHED_FIFO, &param))
        {
            const sched_param ordinary{};
            for (auto& undo : readers_)
                ::pthread_setschedparam(undo.native_handle(), SCHED_OTHER, &ordinary);
            return {rc, std::system_category()};
        }
    return {};
}

void mount_watch::run_reader(int nice, int cpu)
{
    // The model thread's priority (it is part of its work), unless made real-time.
    [[maybe_unused]] const auto ignored =
        ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice);
    if (cpu >= 0)
    {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(static_cast<std::size_t>(cpu), &set);
        // On failure (a cpuset changed meanwhile) it runs anywhere: still a reader.
        ::sched_setaffinity(0, sizeof set, &set);
    }
    // This thread's buffers, made and touched before the first event (read_buffers).
    statmount_buffer();
    thread_read_buffers();
    for (;;)
    {
        std::array<pollfd, 3> fds{pollfd{fd_.get(), POLLIN, 0}, pollfd{stop_.get(), POLLIN, 0},
                                  pollfd{flush_.get(), POLLIN, 0}};
        if (::poll(fds.data(), fds.size(), -1) < 0)
            continue; // EINTR; poll fails otherwise only without memory: try again
        if (fds[1].revents != 0)
            return;
        read_pass();
    }
}

void mount_watch::read_pass()
{
    // Both readers were woken; the second finds the queue read (or reads what came since).
    const std::lock_guard pass(pass_);
    std::uint64_t asked = 0;
    if (std::uint64_t count = 0; ::read(flush_.get(), &count, sizeof count) > 0)
        // The tickets asked so far: answered once the queue is read to its end below.
        asked = flushes_asked_.load();
    reading_.store(true);
    batch* read = fresh_batch();
    read_queued(*read);
    const bool any = !read->sightings.empty();
    if (any)
        push(ready_, read);
    else
    {
        read->next = idle_; // kept for the next turn
        idle_ = read;
    }
    reading_.store(false);
    if (asked > flushes_done_.load())
    {
        flushes_done_.store(asked);
        flushes_done_.notify_all();
    }
    if (any)
        signal(wake_);
}

} // namespace netnsd::core::kernel
