// model_control: what api/ asks of the model beyond reading it: to check itself against the
// kernel now (POST /api/v1/audit), and to scan every process's fds and sockets for the
// namespaces they hold (POST /api/v1/namespaces/scan). The server's model thread implements it;
// api's tests fake it. Blocking: worker threads only.
#pragma once

#include <cstddef>
#include <vector>

#include "core/reconciler.hpp"

namespace netnsd::core
{

class model_control
{
public:
    struct audit_report
    {
        std::vector<reconciler::divergence> divergences; // what was found and repaired
        std::size_t entries = 0;                         // names the scan found
        double seconds = 0;                              // scan and comparison
    };

    struct deep_scan_report
    {
        std::size_t processes = 0;       // fd tables read
        std::size_t fds = 0;             // fds visited
        std::size_t sockets = 0;         // sockets asked their namespace
        std::size_t socket_failures = 0; // sockets that could not be asked
        std::size_t held_by_fd = 0;      // namespaces an fd holds, after the scan
        std::size_t held_by_socket = 0;  // namespaces a socket holds, after the scan
        std::size_t found = 0;           // namespaces the scan made known
        double seconds = 0;              // the scan, on its worker
    };

    virtual ~model_control() = default;
    // Runs an audit and waits for it (or for the one already running).
    virtual audit_report audit_now() = 0;
    // Runs a deep scan and waits until the model has its result (or for the one running).
    virtual deep_scan_report deep_scan_now() = 0;
};

} // namespace netnsd::core
