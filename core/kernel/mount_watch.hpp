// mount_watch: the mount table of netnsd's own mount namespace, exactly, as the kernel reports
// it. fanotify mount notifications (FAN_MNT_ATTACH/FAN_MNT_DETACH, Linux 6.15+) queue one event
// per mount attached or detached, in kernel order, and never merge them; statmount (6.8+) says
// what each mount is, while it exists, and listmount (6.8+) walks the table once at start.
// Together they replace "the mount table changed somewhere" (POLLPRI on /proc/self/mountinfo)
// followed by a stat of every entry. The kernel names only the mount's id in an event, so what
// a mount was must be learnt before it goes: drain() asks statmount for every attached mount
// at once, as it reads the event. A mount that is attached and detached again before netnsd
// reads its event cannot be described any more (statmount says ENOENT); such events are
// counted, not guessed at.
// Owns the fanotify fd; the server's shell waits for it to be readable and calls drain().
// Needs CAP_SYS_ADMIN in the initial user namespace; open() says when the kernel refuses, and
// the caller falls back to mountinfo. Model thread only (its reader thread aside, see
// start_reader); the free functions are stateless.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "core/kernel/unique_fd.hpp"

namespace netnsd::core::kernel
{

// What statmount says of one mount (only what netnsd uses).
struct mount_facts
{
    std::uint64_t mount_id = 0;  // the unique 64-bit id (never reused while the system runs)
    std::string mount_point;     // absolute, as this process sees it; raw bytes, no escaping
    std::string fs_type;         // "nsfs", "tmpfs", ...
    std::string root;            // the mount's root in its filesystem: "net:[4026532177]"
    std::uint32_t dev_major = 0; // of the superblock
    std::uint32_t dev_minor = 0;
    std::uint64_t propagation = 0; // MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE bits

    // The inode of the network namespace this mount binds, when it is an nsfs mount of one.
    std::optional<std::uint64_t> netns_inode() const;

    friend bool operator==(const mount_facts&, const mount_facts&) = default;
};

// One fanotify record of a mount event, decoded.
struct mount_record
{
    enum class kind
    {
        attached,
        detached,
        overflow, // FAN_Q_OVERFLOW: events were lost
    };
    kind what = kind::attached;
    std::uint64_t mount_id = 0;

    friend bool operator==(const mount_record&, const mount_record&) = default;
};

// Decodes a buffer of fanotify events read from a FAN_REPORT_MNT group. Records that are not
// mount events (and info records of other types) are skipped. Returns false when the buffer
// is malformed (a record longer than what is left, or shorter than its header).
bool decode_mount_events(std::span<const std::byte> bytes, std::vector<mount_record>& out);

// statmount(2) of one mount of this mount namespace, or of the mount namespace with id
// `mnt_ns_id` (6.11+; its mount point is then as that namespace sees it): nullopt with `ec` =
// ENOENT when it is gone, ENOSYS on kernels before 6.8.
std::optional<mount_facts> stat_mount(std::uint64_t mount_id, std::error_code& ec,
                                      std::uint64_t mnt_ns_id = 0);
// The same call, its answer as the kernel wrote it (struct statmount and its strings), in a
// buffer of the calling thread that the next call reuses: no allocation once that buffer is
// grown. Empty, with `ec`, on failure. parse_statmount reads it, here or after a copy.
std::span<const std::byte> stat_mount_raw(std::uint64_t mount_id, std::error_code& ec,
                                          std::uint64_t mnt_ns_id = 0);
mount_facts parse_statmount(std::span<const std::byte> answer);

// listmount(2): the ids of every mount of this mount namespace, or of the one with id
// `mnt_ns_id` (6.11+; ENOENT when it is gone), ascending. ENOSYS before 6.8.
std::error_code list_mounts(std::vector<std::uint64_t>& ids, std::uint64_t mnt_ns_id = 0);

// A mount event with what statmount said of the mount when netnsd read it.
struct mount_change
{
    mount_record::kind what = mount_record::kind::attached;
    std::uint64_t mount_id = 0;
    // Attached mounts: what it is, looked up as the event was read; nullopt when it was already
    // gone (attached and detached before netnsd could look).
    std::optional<mount_facts> facts;
    // Why statmount said nothing (ENOENT: gone), and when the event was read (logged at debug
    // level, on the clock a creator of namespaces can compare with).
    std::error_code stat_error;
    std::chrono::system_clock::time_point read_at;
    // statmount calls made for it: more than one when the first said ENOENT (look_up_again).
    unsigned lookups = 0;
};

// A mount event as a reader keeps it until the model thread takes it: fixed-size, with
// statmount's answer kept as raw bytes elsewhere (in its batch), so that a reader allocates
// nothing: the model thread makes the mount_change, strings and all.
struct mount_sighting
{
    mount_record::kind what = mount_record::kind::attached;
    std::uint64_t mount_id = 0;
    std::chrono::system_clock::time_point read_at;
    int stat_errno = 0;   // attached: statmount's errno, 0 when it answered
    unsigned lookups = 0; // statmount calls made for it
    // Where its answer is in the bytes kept beside it (attached, stat_errno 0).
    std::uint32_t answer_at = 0;
    std::uint32_t answer_size = 0;

    friend bool operator==(const mount_sighting&, const mount_sighting&) = default;
};

// The mount_change a sighting says, its answer parsed from `answers`.
mount_change to_change(const mount_sighting& seen, std::span<const std::byte> answers);

// Looks again at each attached mount that statmount said was gone (ENOENT) and whose detach is
// not among `sightings`: 6.18 has answered ENOENT for a mount read during its own mount(2)
// that stayed mounted 10 ms more (a soak's 10 ms life missed so). Before each round it waits
// the next of `waits`; stops early once none is left. A mount really gone stays unresolved
// (its detach is then on its way). `lookup` asks statmount again and sets stat_errno (and the
// answer) in netnsd, a fake in tests; the count of lookups is kept here. Allocates nothing.
// Returns how many a second look resolved.
std::size_t look_up_again(std::span<mount_sighting> sightings,
                          const std::function<void(mount_sighting&)>& lookup,
                          std::span<const std::chrono::microseconds> waits);

class mount_watch
{
public:
    mount_watch() = default;

    // fanotify_init(FAN_REPORT_MNT) and a mark on this process's mount namespace. EINVAL
    // (before 6.15), EPERM (no CAP_SYS_ADMIN in the initial user namespace) and ENOSYS mean the
    // kernel cannot do it here: use mountinfo instead.
    std::error_code open();
    // The fd to wait on: the fanotify group's, or the reader's eventfd once it runs.
    int fd() const noexcept { return wake_ ? wake_.get() : fd_.get(); }
    // Whether an event the kernel queued is not drained yet: in the group's queue, being read
    // by the reader, or read and waiting in its queue. Any thread.
    bool pending() const;
    // Gives the fanotify group up (before any reader starts).
    void close() noexcept { fd_.reset(); }
    bool is_open() const noexcept { return static_cast<bool>(fd_); }

    // Reads everything queued; every attached mount is looked up with statmount at once.
    // With the reader running: what it read, including everything the kernel queued before
    // this call (it waits for the reader to read the queue to its end), in kernel order. A
    // caller that read inotify first therefore has every mount event made before those.
    std::vector<mount_change> drain();

    // Reads the fanotify queue on threads of its own from now on (at `nice`), looking each
    // attached mount up as soon as the kernel reports it: the model thread can be held up in
    // the kernel (opening an entry waits for the netns dir's inode lock while a creator holds
    // it), and a mount made meanwhile and gone before it is read cannot be described. fd()
    // becomes an eventfd, readable while the readers have changes for drain(). The threads do
    // nothing else, hold no namespace, and never wait for the model thread (they hand what
    // they read over without a lock); they stop when this object goes.
    // Two readers where netnsd may run on two CPUs or more, each bound to its own CPU, both
    // woken by every event; one reads at a time (the queue's order is kept), the other finds
    // the queue read. A woken thread waits for a CPU on the one it last ran on, and a kernel
    // without full preemption (CONFIG_PREEMPT_NONE, _VOLUNTARY) lets a kernel worker keep a
    // CPU for tens of ms (cleanup_net freeing a batch of namespaces), even from a SCHED_FIFO
    // thread, even while the other CPU is idle: the reader on another CPU reads meanwhile.
    std::error_code start_reader(int nice);
    // The readers' CPUs (empty before start_reader, or where they are not bound: one CPU).
    const std::vector<int>& reader_cpus() const noexcept { return reader_cpus_; }
    // Puts the readers under SCHED_FIFO at `priority` (1 is the lowest real-time priority):
    // they then run as soon as the kernel queues a mount event, however many ordinary threads
    // want the CPU. The work per event is a wakeup, a read and a statmount: ~25-32 µs of CPU
    // measured on a loaded 2-core machine (9-14 µs at nice -10, where events batch), and a
    // wakeup of the second reader that finds nothing to read. Needs CAP_SYS_NICE (and a
    // real-time budget where cgroups ration one); on failure the readers keep their nice value
    // and this says why.
    std::error_code make_reader_realtime(int priority);

    ~mount_watch();
    mount_watch(const mount_watch&) = delete;
    mount_watch& operator=(const mount_watch&) = delete;

private:
    // What the readers read and drain() has not taken yet: a stack of batches, newest first,
    // pushed by one reader at a time (under pass_) and taken whole. Lock-free, so that a reader
    // never waits for the model thread: that thread runs at an ordinary priority, and a lock it
    // holds when it is preempted would hold a real-time reader back as long as the CPU is
    // given to others (a priority inversion: the flush request's write woke a reader that then
    // waited for the lock its waker held).
    // Nor does a reader call malloc or free once it has its batches: glibc shares its arenas
    // between threads (16 on 2 CPUs, for netnsd's ~27 threads), and a thread that holds an
    // arena's lock while off its CPU holds back every thread that allocates there, a real-time
    // reader included. A scheduler trace of the soak caught both readers idle 12 ms so, with
    // four 10 ms lives unseen: one reader waiting in malloc for the lock an ordinary netnsd
    // thread held, the other waiting for its turn behind it. A batch holds fixed-size
    // sightings and statmount's answers as raw bytes, in vectors that are cleared and reused,
    // never freed; drain() makes the mount_changes (strings and all) on the model thread and
    // hands the batch back on spent_. The batches are made, and their memory touched, before
    // the readers start: a first touch is a page fault, which waits for the process's mmap
    // lock, and another trace caught a reader waiting 5 ms so while an ordinary thread mapped
    // or unmapped memory. The readers' own buffers are touched as each starts.
    struct batch
    {
        std::vector<mount_sighting> sightings;
        std::vector<std::byte> answers; // statmount's answers, back to back
        batch* next = nullptr;
    };
    static void push(std::atomic<batch*>& stack, batch* b) noexcept;
    static void free_all(batch* b) noexcept;
    std::vector<mount_change> take_ready();
    // A batch to fill (a reader, under pass_): one handed back, else a new one (the first
    // turns, or while the model thread holds many).
    batch* fresh_batch();
    static batch* new_batch();
    static constexpr std::size_t pooled_batches = 64;
    // Reads the fanotify fd until it is empty, into `into` (one thread at a time: a reader,
    // under pass_, or the model thread when there is no reader).
    void read_queued(batch& into);
    void run_reader(int nice, int cpu);
    // One reader's turn after a wakeup: reads the queue to its end, answering the flushes
    // asked so far.
    void read_pass();
    static void signal(const unique_fd& eventfd) noexcept;

    unique_fd fd_;
    unique_fd wake_;  // eventfd: the readers have changes (the fd the model thread waits on)
    unique_fd stop_;  // eventfd: the readers must end (stays readable once written)
    unique_fd flush_; // eventfd: drain() asks the readers to read the queue to its end
    std::mutex pass_; // one reader reads the queue at a time (the readers only)
    std::atomic<batch*> ready_{nullptr};
    std::atomic<batch*> spent_{nullptr}; // taken by drain(), for the readers to fill again
    batch* idle_ = nullptr;              // taken from spent_ by a reader (under pass_)
    // drain()'s requests to read the queue to its end, and the last one a reader answered.
    std::atomic<std::uint64_t> flushes_asked_{0};
    std::atomic<std::uint64_t> flushes_done_{0};
    // Set by a reader from before it reads the queue until what it read is in ready_.
    std::atomic<bool> reading_{false};
    std::vector<int> reader_cpus_;
    std::vector<std::thread> readers_;
};

// The mount events of the other mount namespaces (a container's, an `unshare -m` shell's): one
// fanotify group, in which walk_mount_namespaces marks every mount namespace it walks
// (mark_mount_namespace). A mark does not pin its namespace: when the namespace goes, the
// kernel reports the detach of each of its mounts and drops the mark. The events name a mount
// only, not its namespace, so they are not looked up here: the caller matches a detach against
// the mounts the walk found, and walks again for an attach. Needs what mount_watch needs.
// Model thread only.
class foreign_mount_feed
{
public:
    std::error_code open();
    int fd() const noexcept { return fd_.get(); }
    bool is_open() const noexcept { return static_cast<bool>(fd_); }
    // Everything queued, in kernel order (an overflow record when events were lost).
    std::vector<mount_record> drain();

private:
    unique_fd fd_;
};

// Marks the mount namespace `mntns_fd` (an nsfs fd) in `group`: its mounts' attach and detach
// events are queued there from now on. Marking it again changes nothing.
std::error_code mark_mount_namespace(int group, int mntns_fd) noexcept;

} // namespace netnsd::core::kernel
