#include "api/stream.hpp"

#include <algorithm>
#include <charconv>
#include <fnmatch.h>

#include "core/rfc3339.hpp"

#include "api/json.hpp"
#include "api/list_cache.hpp"
#include "api/problem.hpp"
#include "api/uri.hpp"
#include "api/ws_frame.hpp"

namespace netnsd::api
{
namespace
{

constexpr core::event_type all_types[] = {core::event_type::added, core::event_type::deleted,
                                          core::event_type::nsid_set, core::event_type::destroyed};

unsigned bit(core::event_type t) noexcept
{
    return 1u << static_cast<unsigned>(t);
}

bool parse_revision(std::string_view text, core::revision_t& out)
{
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return !text.empty() && ec == std::errc{} && ptr == end;
}

response bad_param(std::string detail)
{
    return problem(problem_type::bad_request, std::move(detail));
}

bool contains_token(std::string_view header, std::string_view token)
{
    // Accept: a, b;q=0.5 -- a token match on media ranges is enough here.
    while (!header.empty())
    {
        const auto comma = header.find(',');
        auto item = header.substr(0, comma);
        if (const auto semi = item.find(';'); semi != std::string_view::npos)
            item = item.substr(0, semi);
        while (!item.empty() && item.front() == ' ')
            item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
            item.remove_suffix(1);
        if (item == token)
            return true;
        if (comma == std::string_view::npos)
            break;
        header.remove_prefix(comma + 1);
    }
    return false;
}

} // namespace

std::string_view wire_name(core::event_type type) noexcept
{
    switch (type)
    {
    case core::event_type::added:
        return "add";
    case core::event_type::deleted:
        return "delete";
    case core::event_type::nsid_set:
        return "nsid";
    case core::event_type::destroyed:
        return "destroyed";
    }
    return "add";
}

stream_format negotiate_format(const request& req, bool is_upgrade)
{
    if (is_upgrade)
        return stream_format::websocket;
    const auto accept = req.header("Accept");
    if (contains_token(accept, "text/event-stream"))
        return stream_format::sse;
    return stream_format::ndjson;
}

std::variant<stream_params, response> parse_stream_params(const request& req, stream_format format)
{
    stream_params p;
    p.format = format;
    const auto query = parse_query(split_target(req.target).query);
    if (!query)
        return bad_param("the query string has a malformed percent-escape");
    for (const auto& [key, value] : *query)
    {
        if (key == "since")
        {
            core::revision_t r = 0;
            if (!parse_revision(value, r))
                return bad_param("since must be a revision: a whole number >= 0");
            p.since = r;
        }
        else if (key == "snapshot")
        {
            if (value != "true" && value != "false")
                return bad_param("snapshot must be true or false");
            p.snapshot = value == "true";
        }
        else if (key == "names")
        {
            if (value.empty())
                return bad_param("names must be a non-empty glob");
            p.names = value;
        }
        else if (key == "types")
        {
            std::string_view list = value;
            while (true)
            {
                const auto comma = list.find(',');
                const auto item = list.substr(0, comma);
                bool known = false;
                for (auto t : all_types)
                {
                    if (item == wire_name(t))
                    {
                        p.types |= bit(t);
                        known = true;
                    }
                }
                if (!known)
                    return bad_param("unknown event type '" + std::string(item) +
                                     "'; expected add, delete, nsid or destroyed");
                if (comma == std::string_view::npos)
                    break;
                list.remove_prefix(comma + 1);
            }
        }
        else if (key == "format")
        {
            if (value != "ndjson" && value != "sse")
                return bad_param("format must be ndjson or sse");
            if (format != stream_format::websocket)
                p.format = value == "sse" ? stream_format::sse : stream_format::ndjson;
        }
        else
        {
            return bad_param("unknown query parameter '" + key +
                             "'; expected since, snapshot, names, types or format");
        }
    }
    // A browser's EventSource reconnects to the same URL with Last-Event-ID: that says where
    // it really is, so it wins over a since= in the URL.
    if (p.format == stream_format::sse)
    {
        if (const auto last = req.header("Last-Event-ID"); !last.empty())
        {
            core::revision_t r = 0;
            if (!parse_revision(last, r))
                return bad_param("Last-Event-ID must be a revision");
            p.since = r;
        }
    }
    if (p.since && p.snapshot && req.header("Last-Event-ID").empty())
        return bad_param("since and snapshot=true exclude each other");
    if (p.since)
        p.snapshot = false; // resuming: the snapshot was had
    return p;
}

std::shared_ptr<const encoded_event> encode(const core::event& e, std::string_view netns_dir)
{
    auto out = std::make_shared<encoded_event>();
    out->revision = e.revision;
    out->type = e.type;
    out->name = e.name;
    json j = json::object();
    j["type"] = wire_name(e.type);
    j["revision"] = e.revision;
    j["time"] = core::rfc3339(e.time);
    j["name"] = e.name ? json(*e.name) : json(nullptr);
    j["nsid"] = e.nsid ? json(*e.nsid) : json(nullptr);
    j["namespace"] = e.subject ? to_json(*e.subject, netns_dir) : json(nullptr);
    out->json = dump(j);
    out->ws = ws::server_frame(ws::opcode::text, out->json);
    out->ndjson = out->json + "\n";
    out->sse = "id: " + std::to_string(e.revision) + "\nevent: " + std::string(wire_name(e.type)) +
               "\ndata: " + out->json + "\n\n";
    return out;
}

// --- subscription ---------------------------------------------------------------------------

subscription::subscription(stream_hub& hub, stream_params params, std::function<void()> wake)
    : hub_(hub), params_(std::move(params)), wake_(std::move(wake))
{
    hub_.attach(this);
}

subscription::~subscription()
{
    hub_.detach(this);
}

void subscription::dropping(drop_reason why) noexcept
{
    hub_.count_drop(why);
}

bool subscription::wants(core::event_type type, const std::optional<std::string>& name) const
{
    if (params_.types != 0 && (params_.types & bit(type)) == 0)
        return false;
    if (params_.names)
        return name && ::fnmatch(params_.names->c_str(), name->c_str(), 0) == 0;
    return true;
}

subscription::message subscription::frame(const std::shared_ptr<const encoded_event>& e) const
{
    // Aliasing constructors: the message shares ownership of the one encoded event.
    switch (params_.format)
    {
    case stream_format::websocket:
        return {e, &e->ws};
    case stream_format::sse:
        return {e, &e->sse};
    case stream_format::ndjson:
        return {e, &e->ndjson};
    }
    return {e, &e->ws};
}

subscription::message subscription::control(std::string_view type, std::string json_body,
                                            bool with_id) const
{
    switch (params_.format)
    {
    case stream_format::websocket:
        return std::make_shared<const std::string>(ws::server_frame(ws::opcode::text, json_body));
    case stream_format::ndjson:
        return std::make_shared<const std::string>(std::move(json_body) + "\n");
    case stream_format::sse:
    {
        std::string s;
        if (with_id)
            s += "id: " + std::to_string(hub_.model().revision()) + "\n";
        s.append("event: ").append(type).append("\ndata: ").append(json_body).append("\n\n");
        return std::make_shared<const std::string>(std::move(s));
    }
    }
    return {};
}

void subscription::push_snapshot(std::vector<message>& out)
{
    const auto entries = hub_.lists().entries_json();
    std::string body;
    body.reserve(entries.size() + 64);
    body.append("{\"namespaces\":").append(entries).append(",\"revision\":");
    body.append(std::to_string(hub_.model().revision())).append(",\"type\":\"snapshot\"}");
    out.push_back(control("snapshot", std::move(body), true));
    cursor_ = hub_.model().revision();
}

void subscription::replay(std::vector<message>& out, std::size_t max)
{
    const auto& history = hub_.model().history();
    if (!history.covers(cursor_))
    {
        // Too far behind, or a revision this run never had (from before a restart): say so,
        // then start again from a snapshot.
        json reset = json::object();
        reset["type"] = "reset";
        reset["revision"] = hub_.model().revision();
        out.push_back(control("reset", dump(reset), false));
        push_snapshot(out);
        phase_ = phase::live;
        return;
    }
    history.for_each_since(cursor_,
                           [&](const core::event& e)
                           {
                               if (out.size() >= max)
                                   return false;
                               cursor_ = e.revision;
                               if (wants(e.type, e.name))
                                   out.push_back(frame(hub_.encoded(e)));
                               return true;
                           });
    if (cursor_ >= hub_.model().revision())
        phase_ = phase::live;
}

std::vector<subscription::message> subscription::next(std::size_t max)
{
    std::vector<message> out;
    if (overflowed_ || max == 0)
        return out;
    if (phase_ == phase::greeting)
    {
        json hello = json::object();
        hello["type"] = "hello";
        hello["revision"] = hub_.model().revision();
        hello["version"] = NETNSD_VERSION;
        out.push_back(control("hello", dump(hello), false));
        if (params_.snapshot)
        {
            push_snapshot(out);
            phase_ = phase::live;
        }
        else if (params_.since)
        {
            cursor_ = *params_.since;
            phase_ = phase::replaying;
        }
        else
        {
            cursor_ = hub_.model().revision();
            phase_ = phase::live;
        }
    }
    if (phase_ == phase::replaying)
        replay(out, max);
    while (!queue_.empty() && out.size() < max)
    {
        queued_bytes_ -= queue_.front()->size();
        out.push_back(std::move(queue_.front()));
        queue_.pop_front();
    }
    return out;
}

void subscription::deliver(const std::shared_ptr<const encoded_event>& e)
{
    if (overflowed_ || phase_ != phase::live || e->revision <= cursor_)
        return; // still greeting or replaying: the journal has it
    cursor_ = e->revision;
    if (!wants(e->type, e->name))
        return;
    auto m = frame(e);
    const auto& limits = hub_.limits();
    if (queue_.size() + 1 > limits.max_messages || queued_bytes_ + m->size() > limits.max_bytes)
    {
        overflowed_ = true;
        queue_.clear();
        queued_bytes_ = 0;
        hub_.count_drop(drop_reason::queue_full);
        wake_();
        return;
    }
    queued_bytes_ += m->size();
    queue_.push_back(std::move(m));
    wake_();
}

// --- stream_hub -----------------------------------------------------------------------------

stream_hub::stream_hub(const core::registry& model, list_cache& lists, stream_limits limits,
                       std::size_t max_clients)
    : model_(model), lists_(lists), limits_(limits), max_clients_(max_clients)
{
}

void stream_hub::publish(const core::event& e)
{
    if (subscriptions_.empty())
        return;
    const auto shared = encoded(e);
    // deliver() may call wake(), which never destroys a subscription synchronously.
    for (auto* s : subscriptions_)
        s->deliver(shared);
}

std::shared_ptr<const encoded_event> stream_hub::encoded(const core::event& e)
{
    auto& slot = encodings_[e.revision];
    if (auto held = slot.lock())
        return held;
    auto fresh = encode(e, lists_.netns_dir());
    slot = fresh;
    if (encodings_.size() >= sweep_at_)
    {
        std::erase_if(encodings_, [](const auto& item) { return item.second.expired(); });
        sweep_at_ = std::max(min_sweep, 2 * encodings_.size());
    }
    return fresh;
}

} // namespace netnsd::api
