#include "api/stream.hpp"

#include <algorithm>
#include <fnmatch.h>

#include "api/json.hpp"
#include "api/list_cache.hpp"
#include "api/ws_frame.hpp"

namespace netnsd::api
{
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
    if (((params_.types != 0 ? params_.types : default_types) & type_bit(type)) == 0)
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
