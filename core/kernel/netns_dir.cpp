#include "core/kernel/netns_dir.hpp"

#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "core/kernel/errno.hpp"
#include "core/kernel/nsfs.hpp"

namespace netnsd::core::kernel
{

netns_dir::netns_dir(std::string path, nsid_client& nsids) : path_(std::move(path)), nsids_(nsids)
{
}

std::string netns_dir::entry_path(std::string_view name) const
{
    std::string p;
    p.reserve(path_.size() + 1 + name.size());
    p.append(path_).append(1, '/').append(name);
    return p;
}

std::error_code netns_dir::list(std::vector<std::string>& names)
{
    names.clear();
    DIR* dir = ::opendir(path_.c_str());
    if (dir == nullptr)
        return last_error();
    errno = 0;
    while (const dirent* d = ::readdir(dir))
    {
        if (std::strcmp(d->d_name, ".") == 0 || std::strcmp(d->d_name, "..") == 0)
            continue;
        names.emplace_back(d->d_name);
    }
    const auto ec = errno != 0 ? last_error() : std::error_code{};
    ::closedir(dir);
    return ec;
}

probe_result netns_dir::probe(std::string_view name)
{
    return look_at(name, true);
}

probe_result netns_dir::probe_without_nsid(std::string_view name)
{
    return look_at(name, false);
}

probe_result netns_dir::look_at(std::string_view name, bool ask_nsid)
{
    probe_result result;
    const auto path = entry_path(name);
    // O_NONBLOCK: never hang on a FIFO someone left in the dir. Symlinks are followed, so they
    // act as aliases, exactly as `ip netns` treats them.
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
    if (!fd)
    {
        // Gone (or the dir is): nothing to list. Anything else (EACCES...) is a stale entry.
        result.exists = errno != ENOENT && errno != ENOTDIR;
        return result;
    }
    struct stat link
    {
    };
    result.alias = ::lstat(path.c_str(), &link) == 0 && S_ISLNK(link.st_mode);
    const auto id = identify_netns(fd.get());
    if (!id)
        return result;
    result.state = entry_state::live;
    result.identity = *id;
    if (!ask_nsid)
        return result;
    std::error_code ec;
    result.nsid = nsids_.nsid_of_fd(fd.get(), ec);
    return result;
}

bool netns_dir::still_is(std::string_view name, const ns_identity& id)
{
    struct stat st
    {
    };
    if (::stat(entry_path(name).c_str(), &st) != 0)
        return false;
    return st.st_dev == id.dev && st.st_ino == id.ino;
}

bool netns_dir::nsid_exists(nsid_t nsid)
{
    std::error_code ec;
    const bool exists = nsids_.nsid_exists(nsid, ec);
    return exists || ec; // when in doubt, keep it: a lost `destroyed` beats a false one
}

std::vector<nsid_t> netns_dir::dump_nsids()
{
    std::error_code ec;
    return nsids_.dump(ec);
}

unique_fd open_mountinfo(std::error_code& ec)
{
    unique_fd fd(::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC));
    ec = fd ? std::error_code{} : last_error();
    return fd;
}

} // namespace netnsd::core::kernel
