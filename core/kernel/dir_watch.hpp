// dir_watch: inotify on the netns dir, and on its parent while the dir is missing, translated
// into the few changes the reconciler cares about. Owns the inotify fd; the server's shell
// waits for it to be readable and calls drain(). Loop thread only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "core/kernel/unique_fd.hpp"

namespace netnsd::core::kernel
{

// One inotify_event as laid out by the kernel, decoded.
struct inotify_record
{
    int wd = 0;
    std::uint32_t mask = 0;
    std::uint32_t cookie = 0;
    std::string name;
};

// Decodes a buffer of packed inotify_event structures (with their NUL-padded names).
// Returns false if the buffer ends inside a record.
bool decode_inotify(std::span<const std::byte> bytes, std::vector<inotify_record>& out);

struct dir_change
{
    enum class kind
    {
        entry_created, // IN_CREATE / IN_MOVED_TO in the dir
        entry_deleted, // IN_DELETE / IN_MOVED_FROM in the dir
        dir_lost,      // the dir was removed, moved away or unmounted: everything in it is gone
        dir_changed,   // the dir (re)appeared or its watch must be renewed: rescan
        overflow,      // IN_Q_OVERFLOW: events were lost, rescan
    };
    kind what;
    std::string name; // entries only

    friend bool operator==(const dir_change&, const dir_change&) = default;
};

// The watch descriptors a translation needs to know; -1 when not watching.
struct watch_ids
{
    int dir = -1;
    int parent = -1;
    std::string dir_basename;
};

// Pure translation of decoded records into changes. Directory noise (open/access) is ignored.
std::vector<dir_change> translate(const std::vector<inotify_record>& records, const watch_ids& ids);

class dir_watch
{
public:
    // The mask on the dir itself: entries made, moved, deleted, attributes, the dir itself
    // going or moving, its filesystem unmounted; directories only.
    static constexpr std::uint32_t dir_mask =
        0x100 | 0x200 | 0x40 | 0x80 | 0x400 | 0x800 | 0x2000 | 0x01000000; // IN_ONLYDIR
    // On the parent: the dir's name appearing, vanishing or changing mode.
    static constexpr std::uint32_t parent_mask = 0x100 | 0x200 | 0x40 | 0x80 | 0x4;

    explicit dir_watch(std::string dir_path);

    std::error_code open();
    int fd() const noexcept { return fd_.get(); }
    const std::string& path() const noexcept { return path_; }

    // Watches the dir if it is a directory now, else its parent. Returns whether the dir itself
    // is watched; `problem` says why not (missing, not a directory, unreadable).
    bool arm(std::error_code& problem);
    bool watching_dir() const noexcept { return ids_.dir >= 0; }

    // True when the path now resolves to another inode than the one watched (something was
    // mounted over it, or it was replaced): call arm() again and rescan.
    bool moved() const;

    // Reads everything queued and translates it. Watches that ended are re-armed by the caller.
    std::vector<dir_change> drain();

private:
    void drop_watches();

    std::string path_;
    std::string parent_;
    unique_fd fd_;
    watch_ids ids_;
    std::uint64_t watched_dev_ = 0;
    std::uint64_t watched_ino_ = 0;
};

} // namespace netnsd::core::kernel
