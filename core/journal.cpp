#include "core/journal.hpp"

#include <utility>

namespace netnsd::core
{

void journal::append(event e)
{
    if (events_.size() == capacity_)
    {
        dropped_through_ = events_.front().revision;
        events_.pop_front();
    }
    events_.push_back(std::move(e));
}

bool journal::covers(revision_t since) const noexcept
{
    const revision_t newest = events_.empty() ? base_ : events_.back().revision;
    const revision_t oldest = dropped_through_ ? *dropped_through_ : base_;
    return since >= oldest && since <= newest;
}

} // namespace netnsd::core
