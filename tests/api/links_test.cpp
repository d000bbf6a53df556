// api/links through the router, on the test's own network namespace (a dump of one's own
// namespace needs no privilege): the first request is a job for a worker, whose answer is
// made back on the loop; within link_views::max_age the next is answered at once, from the
// same dump. The kernel side against `ip` is tests/integration/links_api_test.cpp.
#include <fcntl.h>
#include <string>
#include <variant>

#include <doctest/doctest.h>

#include "core/kernel/nsfs.hpp"
#include "core/kernel/unique_fd.hpp"
#include "core/monitor.hpp"
#include "core/registry.hpp"

#include "api/assets.hpp"
#include "api/http.hpp"
#include "api/json.hpp"
#include "api/list_cache.hpp"
#include "api/router.hpp"
#include "api/stream.hpp"

#include "support/builders.hpp"

using netnsd::api::deferred;
using netnsd::api::json;
using netnsd::api::request;
using netnsd::api::response;

namespace
{

request get(std::string target)
{
    request req;
    req.method = "GET";
    req.target = std::move(target);
    return req;
}

} // namespace

TEST_CASE("a namespace's links are read on a worker once, then answered from that reading")
{
    const netnsd::core::kernel::unique_fd self(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
    REQUIRE(self);
    const auto id = netnsd::core::kernel::identify_netns(self.get());
    REQUIRE(id);
    if (id->ns_id == 0)
        return; // a kernel without NS_GET_ID has no inventory to ask by ns_id

    netnsd::core::registry model(10);
    netnsd::core::monitor watch(model, "/run/netns-test");
    netnsd::api::list_cache lists(model, "/run/netns-test");
    netnsd::api::stream_hub hub(model, lists, {}, 1);
    model.found_namespace(*id, true, netnsd::test::at_ms(0));
    netnsd::api::router routes(model, watch.status(), lists, hub, netnsd::api::embedded_assets());
    const auto target = "/api/v1/namespaces/" + std::to_string(id->ns_id) + "/links";

    auto first = routes.dispatch(get(target), false);
    REQUIRE(std::holds_alternative<deferred>(first));
    auto& job = std::get<deferred>(first);
    CHECK(job.where == deferred::pool::admin);
    CHECK(job.refresh.empty());
    const auto finish = job.work();   // what the worker does
    const response answer = finish(); // what the loop does with it
    REQUIRE(answer.status == 200);
    const auto body = json::parse(answer.body);
    CHECK(body["ns_id"] == id->ns_id);
    CHECK(body["read_by"] == "nsid");
    bool has_lo = false;
    for (const auto& l : body["links"])
        has_lo = has_lo || (l["name"] == "lo" && l["ifindex"] == 1 && l["kind"].is_null());
    CHECK(has_lo);

    // Asked again at once: answered on the loop, the same reading (counters included).
    const auto second = routes.dispatch(get(target), false);
    REQUIRE(std::holds_alternative<response>(second));
    CHECK(std::get<response>(second).body == answer.body);
}
