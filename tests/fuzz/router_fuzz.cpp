// Fuzz target: a request as the api layer sees it, through api::router dispatch: routing,
// percent-decoding of names (api/uri), the event stream's query and Last-Event-ID
// (api/stream: names=, types=, since=, snapshot=, format=), auth, and every read handler and
// admin validation. The input is a request in the shape of HTTP/1.1 text, parsed leniently so
// that any bytes make one:
//     METHOD TARGET\n  (header lines "Name: value")\n  \n  body
// An "Upgrade" header makes it a websocket upgrade. A stream request becomes a subscription
// that greets, snapshots or replays, then is offered a new event; admin jobs are dropped unrun.
// Checked: every JSON answer is valid JSON, every name segment round-trips through
// percent_encode/percent_decode, and nothing crashes, leaks or trips UBSan.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "core/registry.hpp"

#include "api/json.hpp"
#include "api/router.hpp"
#include "api/stream.hpp"
#include "api/uri.hpp"

#include "wired_router.hpp"

namespace
{

using namespace netnsd;

struct fixture : fuzz::wired_router
{
    // An event to offer each subscription once it is live: a name in every glob's way.
    core::event next_event;

    fixture()
    {
        next_event.type = core::event_type::added;
        next_event.revision = model.revision() + 1;
        next_event.time = fuzz::fixed_time();
        next_event.name = "next";
        if (const auto blue = model.find("blue"))
            next_event.subject = std::make_shared<const core::entry>(*blue);
    }
};

std::string_view take_line(std::string_view& text)
{
    const auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    return line;
}

api::request parse(std::string_view text, bool& is_upgrade)
{
    api::request req;
    req.peer = "fuzz";
    auto line = take_line(text);
    const auto sp = line.find(' ');
    req.method = std::string(line.substr(0, sp));
    if (sp != std::string_view::npos)
    {
        line.remove_prefix(sp + 1);
        req.target = std::string(line.substr(0, line.find(' ')));
    }
    is_upgrade = false;
    while (!text.empty())
    {
        line = take_line(text);
        if (line.empty())
            break;
        const auto colon = line.find(':');
        auto value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
            value.remove_prefix(1);
        req.headers.emplace_back(line.substr(0, colon), value);
        is_upgrade = is_upgrade || req.headers.back().first == "Upgrade";
    }
    req.body = std::string(text);
    req.has_body = !req.body.empty();
    return req;
}

void check_json(const api::response& res)
{
    if (res.status < 100 || res.status > 599)
        __builtin_trap();
    if (res.content_type.find("json") != std::string::npos &&
        api::json::parse(res.payload(), nullptr, false).is_discarded())
        __builtin_trap(); // a name's bytes made invalid JSON
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static fixture f;
    bool is_upgrade = false;
    const auto req = parse({reinterpret_cast<const char*>(data), size}, is_upgrade);

    for (const auto segment : api::split_path(api::split_target(req.target).path))
        if (const auto name = api::percent_decode(segment))
            if (api::percent_decode(api::percent_encode(*name)) != *name)
                __builtin_trap();

    std::string_view route;
    auto out = f.router.dispatch(req, is_upgrade, route);
    if (route.empty())
        __builtin_trap(); // metrics label every request
    if (const auto* res = std::get_if<api::response>(&out))
        check_json(*res);
    else if (auto* params = std::get_if<api::stream_params>(&out))
    {
        api::subscription sub(f.hub, std::move(*params), [] {});
        for (int round = 0; round < 64 && !sub.next(16).empty(); ++round)
        {
        }
        sub.deliver(api::encode(f.next_event, fuzz::netns_dir));
        static_cast<void>(sub.next(16));
    }
    return 0;
}
