// A minimal leveled logger to stderr, one line per message: "LEVEL message". Set up once by
// main before the loop starts; then used from the loop thread (and workers, whose lines are
// single write(2) calls and so never interleave mid-line).
#pragma once

#include <string_view>

namespace netnsd::core::log
{

enum class level
{
    debug,
    info,
    warn,
    error,
};

void set_level(level l) noexcept;
level current_level() noexcept;
bool parse_level(std::string_view text, level& out) noexcept;

void write(level l, std::string_view message);

inline void debug(std::string_view m)
{
    write(level::debug, m);
}
inline void info(std::string_view m)
{
    write(level::info, m);
}
inline void warn(std::string_view m)
{
    write(level::warn, m);
}
inline void error(std::string_view m)
{
    write(level::error, m);
}

} // namespace netnsd::core::log
