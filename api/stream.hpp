// The event stream without a transport: one subscription per client that decides what that
// client gets next (hello, snapshot, replay from the journal, reset, then live events through a
// bounded queue), and the hub that offers each event, encoded once (stream_encoding), to every
// subscription. What a client asks for is parsed in stream_query. The server's websocket and
// SSE/NDJSON sessions only move the bytes. Owned by main (the hub) and by each session (its
// subscription); loop thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "core/model.hpp"
#include "core/registry.hpp"

#include "api/http.hpp"
#include "api/stream_encoding.hpp"
#include "api/stream_query.hpp"

namespace netnsd::api
{

class list_cache;

// Limits on what one client may have queued while it is live; each a named default.
struct stream_limits
{
    static constexpr std::size_t default_max_messages = 10000;
    static constexpr std::size_t default_max_bytes = 8 << 20;
    std::size_t max_messages = default_max_messages;
    std::size_t max_bytes = default_max_bytes;
};

class stream_hub;

// Why netnsd closed a stream client (netnsd_stream_clients_dropped_total).
enum class drop_reason
{
    queue_full,   // it fell behind its queue limit
    unresponsive, // a websocket client that answered no ping
};

// One client's view of the stream.
class subscription
{
public:
    using message = std::shared_ptr<const std::string>;

    // `wake` is called when messages become available or the subscription overflowed; the
    // transport then calls next() once it has no write in flight.
    subscription(stream_hub& hub, stream_params params, std::function<void()> wake);
    ~subscription();
    subscription(const subscription&) = delete;
    subscription& operator=(const subscription&) = delete;

    // Up to `max` messages to write now, in order; empty when there is nothing to send.
    std::vector<message> next(std::size_t max);
    // The client fell behind its queue limit: close it (websocket 1013, stream ended).
    bool overflowed() const noexcept { return overflowed_; }
    const stream_params& params() const noexcept { return params_; }
    std::size_t queued_messages() const noexcept { return queue_.size(); }
    std::size_t queued_bytes() const noexcept { return queued_bytes_; }

    // The transport closes this client for its own reason: the hub counts it.
    void dropping(drop_reason why) noexcept;

    // From the hub: a new event, already encoded.
    void deliver(const std::shared_ptr<const encoded_event>& e);

private:
    bool wants(core::event_type type, const std::optional<std::string>& name) const;
    message frame(const std::shared_ptr<const encoded_event>& e) const;
    message control(std::string_view type, std::string json_body, bool with_id) const;
    void replay(std::vector<message>& out, std::size_t max);
    void push_snapshot(std::vector<message>& out);

    enum class phase
    {
        greeting,  // hello (and snapshot or reset) not sent yet
        replaying, // sending journaled events after cursor_
        live,      // caught up: new events arrive through deliver()
    };

    stream_hub& hub_;
    stream_params params_;
    std::function<void()> wake_;
    phase phase_ = phase::greeting;
    core::revision_t cursor_ = 0;
    std::deque<message> queue_;
    std::size_t queued_bytes_ = 0;
    bool overflowed_ = false;
};

// The hub: every subscription, plain pointers (one thread). The registry's listener calls
// publish() for each event; it is encoded once and offered to each subscription.
class stream_hub
{
public:
    // Stream clients at once (--max-stream-clients); more get 503.
    static constexpr std::size_t default_max_clients = 1024;

    stream_hub(const core::registry& model, list_cache& lists, stream_limits limits,
               std::size_t max_clients);

    void publish(const core::event& e);

    // The encoding of event `e`, shared with whatever client holds it now (the live path's, or
    // another client's replay); encoded afresh only when no client holds one. A reconnect storm
    // then costs one encoding per event, not one per event and client.
    std::shared_ptr<const encoded_event> encoded(const core::event& e);

    std::size_t size() const noexcept { return subscriptions_.size(); }
    std::size_t max_clients() const noexcept { return max_clients_; }
    bool full() const noexcept { return subscriptions_.size() >= max_clients_; }
    const core::registry& model() const noexcept { return model_; }
    list_cache& lists() noexcept { return lists_; }
    const stream_limits& limits() const noexcept { return limits_; }
    std::uint64_t dropped() const noexcept { return dropped_[0]; }
    std::uint64_t dropped(drop_reason why) const noexcept
    {
        return dropped_[static_cast<std::size_t>(why)];
    }
    // A transport closed a client for its own reason (a websocket that stopped answering).
    void count_drop(drop_reason why) noexcept { ++dropped_[static_cast<std::size_t>(why)]; }
    // Clients connected through one framing.
    std::size_t clients(stream_format format) const noexcept
    {
        return by_format_[static_cast<std::size_t>(format)];
    }

private:
    friend class subscription;
    void attach(subscription* s)
    {
        subscriptions_.insert(s);
        ++by_format_[static_cast<std::size_t>(s->params().format)];
    }
    void detach(subscription* s)
    {
        if (subscriptions_.erase(s) != 0)
            --by_format_[static_cast<std::size_t>(s->params().format)];
    }

    const core::registry& model_;
    list_cache& lists_;
    stream_limits limits_;
    std::size_t max_clients_;
    std::set<subscription*> subscriptions_;
    std::array<std::uint64_t, 2> dropped_{}; // by drop_reason
    std::array<std::size_t, 3> by_format_{}; // by stream_format
    // Weak, so that memory follows what clients hold, not the journal's length. Expired entries
    // are swept whenever the map has doubled since the last sweep.
    static constexpr std::size_t min_sweep = 1024;
    std::unordered_map<core::revision_t, std::weak_ptr<const encoded_event>> encodings_;
    std::size_t sweep_at_ = min_sweep;
};

} // namespace netnsd::api
