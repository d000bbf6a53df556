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

    // An entry of that name exists (a live namespace or a stale file).
    already_exists,
    // No process with that pid, or it has exited.
    no_such_process,
    // Still a mount point after one unmount: mounts were stacked on the entry.
    busy,
    // The namespace already has an nsid, and nsids cannot be changed.
    nsid_assigned,
    // The requested nsid belongs to another namespace.
    nsid_in_use,
    // A worker could not return to its own network namespace: the thread must be retired.
    thread_netns_lost,
    // exec: argv[0] is not an executable file in PATH.
    command_not_found,
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
