// Fuzz target: the inotify decoder (core/kernel/dir_watch), fed bytes as read() returns them
// from an inotify fd, and the translation of what it decodes into changes, with the watch ids
// of both states dir_watch can be in (watching the dir; watching its parent while it is missing).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/kernel/dir_watch.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace netnsd::core::kernel;
    std::vector<inotify_record> records;
    const std::span<const std::byte> bytes{reinterpret_cast<const std::byte*>(data), size};
    static_cast<void>(decode_inotify(bytes, records));
    for (const auto& rec : records)
        if (rec.name.find('\0') != std::string::npos)
            __builtin_trap(); // names end at their first NUL
    const auto in_dir = translate(records, watch_ids{1, -1, "netns"});
    const auto in_parent = translate(records, watch_ids{-1, 1, "netns"});
    if (in_dir.size() > records.size() || in_parent.size() > records.size())
        __builtin_trap(); // at most one change per record
    return 0;
}
