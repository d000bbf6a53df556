#include "core/log.hpp"

#include <string>
#include <unistd.h>

namespace netnsd::core::log
{
namespace
{

level threshold = level::info;

std::string_view label(level l) noexcept
{
    switch (l)
    {
    case level::debug:
        return "debug";
    case level::info:
        return "info";
    case level::warn:
        return "warn";
    case level::error:
        return "error";
    }
    return "info";
}

} // namespace

void set_level(level l) noexcept
{
    threshold = l;
}

level current_level() noexcept
{
    return threshold;
}

bool parse_level(std::string_view text, level& out) noexcept
{
    for (auto l : {level::debug, level::info, level::warn, level::error})
    {
        if (text == label(l))
        {
            out = l;
            return true;
        }
    }
    return false;
}

void write(level l, std::string_view message)
{
    if (l < threshold)
        return;
    std::string line;
    line.reserve(message.size() + 16);
    line.append(label(l)).append(": ").append(message).append(1, '\n');
    // One write(2) per line: lines from different threads never interleave.
    [[maybe_unused]] const auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

} // namespace netnsd::core::log
