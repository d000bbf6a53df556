// The journal: the last N events, so that a client that reconnects with `since=R` gets exactly
// what it missed. Owned by the registry; loop thread only.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <type_traits>

#include "core/model.hpp"

namespace netnsd::core
{

class journal
{
public:
    // How many events netnsd keeps (--journal-size).
    static constexpr std::size_t default_capacity = 100000;

    // Keeps at least one event, so that the newest is always at hand.
    // `base` is the revision before the first event: a client asking for anything older, or
    // newer than the newest, cannot be served from here.
    explicit journal(std::size_t capacity, revision_t base = 0)
        : capacity_(capacity == 0 ? 1 : capacity), base_(base)
    {
    }

    // Events arrive with contiguous revisions; the oldest is dropped beyond capacity.
    void append(event e);

    std::size_t size() const noexcept { return events_.size(); }
    // The event just appended. Precondition: capacity() > 0 and append() was called.
    const event& newest() const { return events_.back(); }
    std::size_t capacity() const noexcept { return capacity_; }

    // True when the events after `since` are exactly the ones kept after it: `since` is not
    // older than the oldest kept (or the base) and not newer than the newest.
    bool covers(revision_t since) const noexcept;

    // Calls f(const event&) for each kept event with revision > since, oldest first; an f that
    // returns bool stops the walk by returning false. Precondition: covers(since).
    template <typename F>
    void for_each_since(revision_t since, F&& f) const
    {
        if (events_.empty() || since >= events_.back().revision)
            return;
        auto first = since < events_.front().revision
                         ? events_.begin()
                         : events_.begin() +
                               static_cast<std::ptrdiff_t>(since - events_.front().revision + 1);
        for (auto it = first; it != events_.end(); ++it)
        {
            if constexpr (std::is_same_v<decltype(f(*it)), bool>)
            {
                if (!f(*it))
                    return;
            }
            else
                f(*it);
        }
    }

private:
    std::size_t capacity_;
    revision_t base_;
    std::deque<event> events_;
    // The revision of the newest event ever dropped, so covers() stays exact after trimming.
    std::optional<revision_t> dropped_through_;
};

} // namespace netnsd::core
