#include "core/kernel/dir_watch.hpp"

#include <array>
#include <cstring>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/kernel/drain_fd.hpp"
#include "core/kernel/errno.hpp"

namespace netnsd::core::kernel
{

static_assert(dir_watch::dir_mask == (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                      IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_ONLYDIR));
static_assert(dir_watch::parent_mask ==
              (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB));

bool decode_inotify(std::span<const std::byte> bytes, std::vector<inotify_record>& out)
{
    std::size_t at = 0;
    while (at < bytes.size())
    {
        if (bytes.size() - at < sizeof(inotify_event))
            return false;
        inotify_event head;
        std::memcpy(&head, bytes.data() + at, sizeof head);
        at += sizeof head;
        if (bytes.size() - at < head.len)
            return false;
        inotify_record rec{head.wd, head.mask, head.cookie, {}};
        if (head.len > 0)
        {
            const auto* name = reinterpret_cast<const char*>(bytes.data() + at);
            rec.name.assign(name, ::strnlen(name, head.len)); // the kernel pads with NULs
        }
        at += head.len;
        out.push_back(std::move(rec));
    }
    return true;
}

std::vector<dir_change> translate(const std::vector<inotify_record>& records, const watch_ids& ids)
{
    using kind = dir_change::kind;
    std::vector<dir_change> out;
    for (const auto& rec : records)
    {
        if ((rec.mask & IN_Q_OVERFLOW) != 0)
        {
            out.push_back({kind::overflow, {}});
            continue;
        }
        if (ids.dir >= 0 && rec.wd == ids.dir)
        {
            if ((rec.mask & (IN_CREATE | IN_MOVED_TO)) != 0)
                out.push_back({kind::entry_created, rec.name});
            else if ((rec.mask & (IN_DELETE | IN_MOVED_FROM)) != 0)
                out.push_back({kind::entry_deleted, rec.name});
            else if ((rec.mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT)) != 0)
                out.push_back({kind::dir_lost, {}});
            else if ((rec.mask & IN_IGNORED) != 0)
                out.push_back({kind::dir_changed, {}}); // the watch ended; renew it
        }
        else if (ids.parent >= 0 && rec.wd == ids.parent)
        {
            if (rec.name == ids.dir_basename || (rec.mask & IN_IGNORED) != 0)
                out.push_back({kind::dir_changed, {}});
        }
    }
    return out;
}

dir_watch::dir_watch(std::string dir_path) : path_(std::move(dir_path))
{
    while (path_.size() > 1 && path_.back() == '/')
        path_.pop_back();
    const auto slash = path_.rfind('/');
    parent_ = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
    ids_.dir_basename = slash == std::string::npos ? path_ : path_.substr(slash + 1);
}

std::error_code dir_watch::open()
{
    fd_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!fd_)
        return last_error();
    return {};
}

void dir_watch::drop_watches()
{
    // inotify_rm_watch fails harmlessly for a watch the kernel already ended.
    if (ids_.dir >= 0)
        ::inotify_rm_watch(fd_.get(), ids_.dir);
    if (ids_.parent >= 0)
        ::inotify_rm_watch(fd_.get(), ids_.parent);
    ids_.dir = ids_.parent = -1;
    watched_dev_ = watched_ino_ = 0;
}

bool dir_watch::arm(std::error_code& problem)
{
    drop_watches();
    problem.clear();
    // Watch the parent first: the dir may appear between a failed attempt and the parent watch.
    ids_.parent = ::inotify_add_watch(fd_.get(), parent_.c_str(), parent_mask);
    const int wd = ::inotify_add_watch(fd_.get(), path_.c_str(), dir_mask);
    if (wd < 0)
    {
        problem = last_error(); // ENOENT: missing; ENOTDIR: not a directory; EACCES: unreadable
        return false;
    }
    struct stat st
    {
    };
    if (::stat(path_.c_str(), &st) == 0)
    {
        watched_dev_ = st.st_dev;
        watched_ino_ = st.st_ino;
    }
    ids_.dir = wd;
    // With the dir watched, the parent matters only for the dir vanishing, which the dir's own
    // IN_DELETE_SELF/IN_MOVE_SELF report; drop it so /run's traffic does not wake us.
    if (ids_.parent >= 0 && ids_.parent != wd)
        ::inotify_rm_watch(fd_.get(), ids_.parent);
    ids_.parent = -1;
    return true;
}

bool dir_watch::moved() const
{
    if (ids_.dir < 0)
        return false;
    struct stat st
    {
    };
    if (::stat(path_.c_str(), &st) != 0)
        return true;
    return st.st_dev != watched_dev_ || st.st_ino != watched_ino_;
}

std::vector<dir_change> dir_watch::drain()
{
    std::vector<inotify_record> records;
    // Big enough for hundreds of events per read(); each event is at most 16 + NAME_MAX + 1.
    alignas(inotify_event) std::array<std::byte, 64 * 1024> buf;
    drain_fd(fd_.get(), buf,
             [&](std::span<const std::byte> bytes)
             {
                 if (decode_inotify(bytes, records))
                     return true;
                 records.push_back({-1, IN_Q_OVERFLOW, 0, {}}); // cannot happen; resync if so
                 return false;
             });
    return translate(records, ids_);
}

} // namespace netnsd::core::kernel
