// model_control: what api/ asks of the model beyond reading it: to check itself against the
// kernel now (POST /api/v1/audit). The server's model thread implements it; api's tests fake
// it. Blocking: worker threads only.
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

    virtual ~model_control() = default;
    // Runs an audit and waits for it (or for the one already running).
    virtual audit_report audit_now() = 0;
};

} // namespace netnsd::core
