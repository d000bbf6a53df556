// netnsd::core::errc — the expected failures of the namespace domain as std::error_code values.
// Owned by nobody (a category singleton); usable from any thread.
#pragma once

#include <system_error>

namespace netnsd::core
{

enum class errc
{
    invalid_name = 1, // empty, ".", "..", contains '/' or NUL, or over 255 bytes
    not_found,        // no entry of that name
    not_a_namespace,  // the file exists but is not a live nsfs mount of a network namespace
    dir_unavailable,  // the netns dir is missing, not a directory, or unreadable
    protocol,         // the kernel answered something we cannot parse
};

const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept
{
    return {static_cast<int>(e), error_category()};
}

} // namespace netnsd::core

template <>
struct std::is_error_code_enum<netnsd::core::errc> : std::true_type
{
};
