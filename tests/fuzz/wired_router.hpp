// wired_router: the loop objects main wires around the router (list cache, stream hub, metrics,
// admin behind a token, exec on), over the fixture's model, for the targets that send
// requests. Exec is never refused for being busy: the admin jobs are dropped unrun, so none
// ever finishes. Nothing here reaches the kernel. The fuzzer's thread only.
#pragma once

#include <cstddef>
#include <limits>

#include "core/monitor.hpp"
#include "core/registry.hpp"

#include "api/admin.hpp"
#include "api/assets.hpp"
#include "api/auth.hpp"
#include "api/list_cache.hpp"
#include "api/metrics.hpp"
#include "api/router.hpp"
#include "api/stream.hpp"

#include "fixture.hpp"
#include "support/fake_netns_ops.hpp"

namespace netnsd::fuzz
{

struct wired_router
{
    core::registry model{1000};
    core::monitor watch{model, netns_dir};
    api::list_cache lists{model, netns_dir};
    api::stream_hub hub{model, lists, api::stream_limits{}, 1024};
    api::metrics stats;
    api::token_auth auth{admin_token};
    test::fake_netns_ops kernel;
    api::admin ops{model, kernel, netns_dir,
                   api::admin_settings{true, 1 << 20, std::numeric_limits<std::size_t>::max(),
                                       "/nonexistent/netnsd-fuzz/etc"}};
    api::router router{model, watch.status(), lists, hub, api::embedded_assets()};

    wired_router()
    {
        fill(model);
        router.enable_admin(ops, auth, false);
        router.enable_metrics(stats);
    }
};

} // namespace netnsd::fuzz
