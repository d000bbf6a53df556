// Name rules for entries of the netns dir: exactly what `ip netns` accepts.
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace netnsd::core
{

// NAME_MAX: the longest name a directory entry (and so `ip netns add`) allows.
inline constexpr std::size_t max_name_length = 255;

enum class name_error
{
    none,
    empty,
    too_long,
    dot,
    dot_dot,
    contains_slash,
    contains_nul,
};

// Everything else is accepted: spaces, tabs, newlines, a leading '-', bytes that are not UTF-8.
name_error check_name(std::string_view name) noexcept;

inline bool is_valid_name(std::string_view name) noexcept
{
    return check_name(name) == name_error::none;
}

// A sentence for a problem response, e.g. "the name contains '/'".
std::string_view describe(name_error error) noexcept;

} // namespace netnsd::core
