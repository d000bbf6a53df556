// Turning errno into std::error_code at the syscall boundary. Any thread.
#pragma once

#include <cerrno>
#include <system_error>

namespace netnsd::core::kernel
{

inline std::error_code last_error() noexcept
{
    return {errno, std::system_category()};
}

inline std::error_code errno_code(int value) noexcept
{
    return {value, std::system_category()};
}

} // namespace netnsd::core::kernel
