// Fuzz target: the JSON bodies of the admin endpoints (api/admin), each validated the way the
// router hands it over. The first byte picks the endpoint: 'c' POST /api/v1/netns (create or
// attach), 'n' PUT /api/v1/netns/{name}/nsid, 'e' POST /api/v1/netns/{name}/exec (upper case:
// the same on a stale entry; any other byte: by its value); the rest is the body. A body that
// passes becomes a job for a worker, which is dropped unrun: nothing reaches the kernel. Every
// answer must be a problem whose body is valid JSON.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <variant>

#include "core/monitor.hpp"
#include "core/registry.hpp"

#include "api/admin.hpp"
#include "api/json.hpp"

#include "fixture.hpp"
#include "support/fake_netns_ops.hpp"

namespace
{

using namespace netnsd;

struct fixture
{
    core::registry model{1000};
    test::fake_netns_ops kernel;
    // Exec is on and never refused for being busy (the dropped jobs never finish).
    api::admin ops{model, kernel, fuzz::netns_dir,
                   api::admin_settings{true, 1 << 20, std::numeric_limits<std::size_t>::max(),
                                       "/nonexistent/netnsd-fuzz/etc"}};

    fixture() { fuzz::fill(model); }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static fixture f;
    if (size == 0)
        return 0;
    api::request req;
    req.method = "POST";
    req.headers.emplace_back("Content-Type", "application/json");
    req.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
    req.has_body = true;
    const char pick = static_cast<char>(data[0]);
    const std::string name = (pick >= 'A' && pick <= 'Z') ? "stale" : "blue";
    api::admin::outcome out;
    switch (pick | 0x20)
    {
    case 'c':
        out = f.ops.create(req);
        break;
    case 'n':
        req.method = "PUT";
        out = f.ops.set_nsid(name, req);
        break;
    case 'e':
        out = f.ops.exec(name, req);
        break;
    default:
        switch (data[0] % 3)
        {
        case 0:
            out = f.ops.create(req);
            break;
        case 1:
            out = f.ops.set_nsid(name, req);
            break;
        default:
            out = f.ops.exec(name, req);
            break;
        }
    }
    if (const auto* res = std::get_if<api::response>(&out))
    {
        if (res->status < 400 || res->status > 499)
            __builtin_trap(); // validation answers only with a client error
        if (api::json::parse(res->payload(), nullptr, false).is_discarded())
            __builtin_trap(); // and its problem body is JSON, whatever the input held
    }
    return 0;
}
