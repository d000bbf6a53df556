#include "core/cni_cache.hpp"

#include <array>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <set>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "core/log.hpp"
#include "core/owner.hpp"

namespace netnsd::core
{
namespace
{

constexpr std::uint32_t watch_mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM |
                                     IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
// inotify reads per on_readable(): a flood of events is read over several turns of the loop,
// between the model thread's other work.
constexpr int reads_per_turn = 16;

enum class read_outcome
{
    ok,
    gone,    // no such file (any more)
    skipped, // not a regular file, too large, unreadable
};

// The whole file, when it is a regular file of at most `cap` bytes. Non-blocking and without
// following a symlink: a FIFO or a link planted in the directory is skipped, never waited on.
read_outcome read_bounded(int dir_fd, const std::string& name, std::size_t cap, std::string& out)
{
    const kernel::unique_fd fd(
        ::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY));
    if (!fd)
        return errno == ENOENT ? read_outcome::gone : read_outcome::skipped;
    struct stat st
    {
    };
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<std::uint64_t>(st.st_size) > cap)
        return read_outcome::skipped;
    out.clear();
    out.resize(cap + 1);
    std::size_t got = 0;
    while (got < out.size())
    {
        const auto n = ::read(fd.get(), out.data() + got, out.size() - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return read_outcome::skipped;
        if (n == 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    if (got > cap) // grew since the fstat
        return read_outcome::skipped;
    out.resize(got);
    return read_outcome::ok;
}

} // namespace

cni_cache::cni_cache(registry& model, std::string dir, cni_parser parse)
    : model_(model), dir_(std::move(dir)), parse_(std::move(parse))
{
}

std::error_code cni_cache::open(time_point now)
{
    inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_)
        return {errno, std::system_category()};
    retry(now);
    return {};
}

void cni_cache::add_watch()
{
    watch_ = ::inotify_add_watch(inotify_.get(), dir_.c_str(), watch_mask);
}

void cni_cache::retry(time_point now)
{
    if (!inotify_ || watch_ >= 0)
        return;
    add_watch();
    if (watch_ < 0)
        return;
    log::info("reading the CNI cache: pods are told from it", {{"dir", dir_}});
    read_all();
    sync(now);
}

void cni_cache::read_all()
{
    std::set<std::string> present;
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir_.c_str()), ::closedir);
    if (d)
        while (const auto* e = ::readdir(d.get()))
        {
            const std::string_view name = e->d_name;
            if (name == "." || name == "..")
                continue;
            present.emplace(name);
        }
    std::vector<std::string> went;
    for (const auto& [name, f] : files_)
        if (present.count(name) == 0)
            went.push_back(name);
    for (const auto& name : went)
        forget(name);
    for (const auto& name : present)
        reread(name);
}

void cni_cache::forget(const std::string& name)
{
    if (files_.erase(name) != 0)
    {
        --counters_.files;
        dirty_ = true;
    }
}

void cni_cache::reread(const std::string& name)
{
    const kernel::unique_fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    std::string bytes;
    const auto outcome =
        dir ? read_bounded(dir.get(), name, max_file_size, bytes) : read_outcome::gone;
    if (outcome == read_outcome::gone)
        return forget(name);
    std::optional<cni_record> record;
    if (outcome == read_outcome::skipped)
        ++counters_.skipped;
    else if (!(record = parse_(bytes)))
        ++counters_.malformed;
    if (!record)
    {
        // Once at warn (the metrics count every one), then at debug: a directory anyone with
        // write access to it fills with junk must not flood the log.
        const std::string_view why = outcome == read_outcome::skipped
                                         ? "too large, not a regular file, or unreadable"
                                         : "not a libcni cache entry";
        if (!warned_)
            log::warn(
                "a CNI cache file was refused (further ones: netnsd_cni_cache_rejected_total)",
                {{"file", name}, {"why", why}});
        else
            log::debug("a CNI cache file was refused", {{"file", name}, {"why", why}});
        warned_ = true;
        return forget(name);
    }
    auto it = files_.find(name);
    if (it == files_.end())
    {
        if (files_.size() >= max_files)
        {
            ++counters_.skipped;
            return;
        }
        it = files_.emplace(name, file{}).first;
        ++counters_.files;
    }
    it->second.record = std::move(*record);
    it->second.ns_id = 0; // matched again
    dirty_ = true;
}

void cni_cache::on_readable(time_point now)
{
    std::set<std::string> changed;
    bool overflow = false;
    bool dir_gone = false;
    alignas(inotify_event) std::array<char, 4096> buf{};
    for (int i = 0; i < reads_per_turn; ++i)
    {
        const auto n = ::read(inotify_.get(), buf.data(), buf.size());
        if (n <= 0)
            break;
        for (std::size_t at = 0; at + sizeof(inotify_event) <= static_cast<std::size_t>(n);)
        {
            const auto* ev = reinterpret_cast<const inotify_event*>(buf.data() + at);
            at += sizeof(inotify_event) + ev->len;
            if ((ev->mask & IN_Q_OVERFLOW) != 0)
                overflow = true;
            else if (ev->wd != watch_)
                continue; // a watch removed before
            else if ((ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) != 0)
                dir_gone = true;
            else if (ev->len > 0)
                changed.emplace(ev->name); // NUL-padded: the name ends at the first NUL
        }
    }
    if (dir_gone)
    {
        if (watch_ >= 0)
            ::inotify_rm_watch(inotify_.get(), watch_);
        watch_ = -1;
        log::info("the CNI cache dir went: pods are no longer told from it until it is back",
                  {{"dir", dir_}});
        std::vector<std::string> names;
        for (const auto& [name, f] : files_)
            names.push_back(name);
        for (const auto& name : names)
            forget(name);
    }
    else if (overflow)
        read_all();
    else
        for (const auto& name : changed)
            reread(name);
    sync(now);
}

void cni_cache::sync(time_point now)
{
    const auto generation = model_.host_generation();
    if (!dirty_ && generation == matched_generation_)
        return;
    // The files not matched, or matched to a namespace the model no longer has, are looked up
    // again: a stat of the path, then its inode among the model's namespaces.
    std::map<std::uint64_t, ns_identity> by_ino; // made on first need
    bool by_ino_made = false;
    for (auto& [name, f] : files_)
    {
        if (!f.record.pod || f.record.netns.empty())
            continue;
        if (f.ns_id != 0 && model_.has_host(f.ns_id))
            continue;
        f.ns_id = 0;
        struct stat st
        {
        };
        if (::stat(f.record.netns.c_str(), &st) != 0)
            continue;
        if (!by_ino_made)
        {
            model_.for_each_host([&](const ns_identity& id, const std::vector<std::int32_t>&)
                                 { by_ino.emplace(id.ino, id); });
            by_ino_made = true;
        }
        const auto it = by_ino.find(st.st_ino);
        if (it != by_ino.end() && (it->second.dev == 0 || it->second.dev == st.st_dev))
            f.ns_id = it->second.ns_id;
    }
    // A file without a netns path (older libcni) is matched by its pod's UID, to the namespace
    // whose kubepods cgroup says that UID: the cgroup names the pod, the file its name.
    std::map<std::string, std::uint64_t, std::less<>> by_uid; // made on first need
    bool by_uid_made = false;
    for (auto& [name, f] : files_)
    {
        if (!f.record.pod || !f.record.netns.empty() || f.record.pod->uid.empty())
            continue;
        if (f.ns_id != 0 && model_.has_host(f.ns_id))
            continue;
        f.ns_id = 0;
        if (!by_uid_made)
        {
            model_.for_each_host_cgroup(
                [&](std::uint64_t ns_id, std::string_view cgroup)
                {
                    if (cgroup.empty())
                        return;
                    const auto o = owner_of_cgroup(cgroup);
                    if (o && o->kind == owner_kind::kubernetes)
                        by_uid.emplace(o->id, ns_id);
                });
            by_uid_made = true;
        }
        if (const auto it = by_uid.find(f.record.pod->uid); it != by_uid.end())
            f.ns_id = it->second;
    }
    // One pod per namespace: the first file in name order (a pod with several networks has a
    // file per attachment, all naming it).
    std::map<std::uint64_t, ns_pod> wanted;
    for (const auto& [name, f] : files_)
        if (f.ns_id != 0)
            wanted.emplace(f.ns_id, *f.record.pod);
    for (const auto& [ns_id, pod] : told_)
        if (wanted.count(ns_id) == 0)
            model_.set_pod(ns_id, std::nullopt, now);
    for (const auto& [ns_id, pod] : wanted)
    {
        const auto before = told_.find(ns_id);
        if (before == told_.end() || before->second != pod)
        {
            model_.set_pod(ns_id, pod, now);
            disagreed_.erase(ns_id);
        }
        // The cgroup may come (or change) after the file: looked at with every change.
        const auto cgroup = model_.cgroup_of(ns_id);
        if (pod_disagrees(cgroup, pod) && disagreed_.insert(ns_id).second)
            log::warn("a CNI cache entry and the cgroup disagree on a namespace's pod: the "
                      "cgroup's is kept",
                      {{"ns_id", std::to_string(ns_id)},
                       {"cni_pod_uid", pod.uid},
                       {"cni_pod", pod.namespace_ + "/" + pod.name},
                       {"cgroup", cgroup}});
    }
    std::erase_if(disagreed_, [&](std::uint64_t ns_id) { return wanted.count(ns_id) == 0; });
    told_ = std::move(wanted);
    counters_.pods = told_.size();
    dirty_ = false;
    matched_generation_ = model_.host_generation();
}

} // namespace netnsd::core
