// model_feed: the I/O thread's end of what the model thread publishes. Batches of registry
// changes (with the model thread's status when it changed) and callbacks (an admin request's
// answer, due once the model has seen its change) are applied to the replica -- the registry
// the API reads -- in the order they were published. At most changes_per_turn changes are
// applied per turn of the I/O loop: each change may publish events to every stream client, and
// a burst of thousands applied in one turn would queue all of them for every client before any
// is written; in slices, the loop writes in between, so a client that keeps up is never more
// than about one slice behind. Owned by main; publish() and publish_then() from any thread,
// the rest on the I/O thread.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "core/model_status.hpp"
#include "core/registry.hpp"

namespace netnsd::server
{

class model_feed
{
public:
    static constexpr std::size_t changes_per_turn = 64;

    struct batch
    {
        std::vector<core::registry::change> changes;
        std::optional<core::model_status> status; // when it changed
    };

    model_feed(boost::asio::io_context& io, core::registry& replica, core::model_status& status);
    model_feed(const model_feed&) = delete;
    model_feed& operator=(const model_feed&) = delete;

    void publish(batch b);
    // `then` runs on the I/O thread after everything published before it was applied.
    void publish_then(std::function<void()> then);
    // Applies a batch at once: before the I/O loop runs (the first scan), never after.
    void apply_now(batch b);

    // Changes published but not applied yet (I/O thread).
    std::size_t backlog() const noexcept { return backlog_; }

private:
    using item = std::variant<batch, std::function<void()>>;
    void enqueue(item it);
    void drain();

    boost::asio::io_context& io_;
    core::registry& replica_;
    core::model_status& status_;
    std::deque<item> items_;
    std::size_t next_change_ = 0; // in the batch at the front
    std::size_t backlog_ = 0;
    bool draining_ = false; // a drain() is posted
};

} // namespace netnsd::server
