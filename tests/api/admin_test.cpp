// api/admin's checks before it hands work to a worker: a request is never refused on the model's
// word alone, because the model trails the kernel by the notifications the loop has not read
// yet. The dir here is a scratch directory with plain files, which the probes see as stale
// entries; the deferred jobs are never run, so nothing touches a namespace.
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>

#include <doctest/doctest.h>

#include "core/monitor.hpp"
#include "core/registry.hpp"

#include "api/admin.hpp"
#include "api/http.hpp"

#include "support/builders.hpp"

namespace
{

using namespace netnsd;
using api::deferred;
using api::request;
using api::response;
using test::at_ms;
using test::live;

struct fixture
{
    std::filesystem::path dir;
    core::registry model{100};
    core::monitor watch;
    api::admin ops;

    fixture() : dir(make_dir()), watch(model, dir.string()), ops(model, watch, {}) {}
    ~fixture() { std::filesystem::remove_all(dir); }
    fixture(const fixture&) = delete;
    fixture& operator=(const fixture&) = delete;

    static std::filesystem::path make_dir()
    {
        char pattern[] = "/tmp/netnsd-admin-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        return pattern;
    }

    void touch(const std::string& name) { std::ofstream(dir / name) << ""; }

    static request make(std::string method, std::string target, std::string body = {})
    {
        request req;
        req.method = std::move(method);
        req.target = std::move(target);
        req.has_body = !body.empty();
        req.body = std::move(body);
        return req;
    }
};

unsigned status_of(const api::admin::outcome& out)
{
    const auto* r = std::get_if<response>(&out);
    return r == nullptr ? 0 : r->status;
}

} // namespace

TEST_CASE_FIXTURE(fixture, "a create the model would refuse as existing looks at the dir first")
{
    // The model still has "gone", which the dir no longer has (its deletion not read yet).
    model.apply_probe("gone", live(1), at_ms(0));
    const auto out = ops.create(make("POST", "/api/v1/netns", R"({"name":"gone"})"));
    CHECK(std::holds_alternative<deferred>(out));
    CHECK_FALSE(model.find("gone"));

    // One the dir has is refused.
    touch("here");
    model.apply_probe("here", live(2), at_ms(0));
    CHECK(status_of(ops.create(make("POST", "/api/v1/netns", R"({"name":"here"})"))) == 409u);
}

TEST_CASE_FIXTURE(fixture, "a delete the model would refuse as missing looks at the dir first")
{
    touch("new"); // made a moment ago; the model has not seen it
    const auto out = ops.remove("new");
    CHECK(std::holds_alternative<deferred>(out));
    REQUIRE(model.find("new"));
    CHECK(model.find("new")->state == core::entry_state::stale);

    CHECK(status_of(ops.remove("nowhere")) == 404u);
}

TEST_CASE_FIXTURE(fixture, "a request on a live namespace looks again before it says 404")
{
    touch("plain"); // not a namespace: found by the second look, and refused as stale
    const auto out =
        ops.set_nsid("plain", make("PUT", "/api/v1/netns/plain/nsid", R"({"nsid":3})"));
    CHECK(status_of(out) == 409u);
    CHECK(model.find("plain"));
    CHECK(status_of(ops.set_nsid(
              "absent", make("PUT", "/api/v1/netns/absent/nsid", R"({"nsid":3})"))) == 404u);
}
