#include "core/kernel/proc_self.hpp"

#include <dirent.h>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace netnsd::core::kernel
{
namespace
{

// The fields of /proc/self/stat after "pid (comm) ", which may itself hold spaces.
std::optional<std::vector<std::string>> stat_fields(const std::string& text)
{
    const auto close = text.rfind(')');
    if (close == std::string::npos)
        return std::nullopt;
    std::istringstream in(text.substr(close + 1));
    return std::vector<std::string>(std::istream_iterator<std::string>(in), {});
}

std::string slurp(const char* path)
{
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

} // namespace

std::optional<process_stats> read_process_stats()
{
    // proc(5): after the comm field, state is field 3; utime 14, stime 15, starttime 22 (clock
    // ticks after boot), rss 24 (pages).
    const auto fields = stat_fields(slurp("/proc/self/stat"));
    if (!fields || fields->size() < 22)
        return std::nullopt;
    const auto field = [&](std::size_t n)
    {
        return std::stod((*fields)[n - 3]);
    };
    const auto ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const auto page = static_cast<double>(::sysconf(_SC_PAGESIZE));
    process_stats out;
    try
    {
        out.cpu_seconds = (field(14) + field(15)) / ticks;
        out.resident_bytes = field(24) * page;
        std::istringstream stat(slurp("/proc/stat"));
        for (std::string key; stat >> key;)
        {
            if (key == "btime")
            {
                double boot = 0;
                stat >> boot;
                out.start_time_seconds = boot + field(22) / ticks;
                break;
            }
        }
    }
    catch (const std::exception&)
    {
        return std::nullopt;
    }
    if (DIR* dir = ::opendir("/proc/self/fd"))
    {
        std::size_t n = 0;
        while (const dirent* e = ::readdir(dir))
            if (e->d_name[0] != '.')
                ++n;
        ::closedir(dir);
        out.open_fds = static_cast<double>(n - 1); // not the one reading the dir
    }
    return out;
}

} // namespace netnsd::core::kernel
