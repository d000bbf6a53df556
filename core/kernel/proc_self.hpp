// proc_self: what the kernel says about this process in /proc (resident memory, CPU time,
// open descriptors, start time), for the process_* metrics. Read at scrape time: a few small
// reads of /proc/self. Stateless; any thread.
#pragma once

#include <optional>

namespace netnsd::core::kernel
{

struct process_stats
{
    double resident_bytes = 0;
    double open_fds = 0;
    double cpu_seconds = 0;
    double start_time_seconds = 0; // since the Unix epoch
};

// nullopt when /proc cannot be read (no /proc mounted, a format it does not know).
std::optional<process_stats> read_process_stats();

} // namespace netnsd::core::kernel
