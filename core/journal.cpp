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
    return !dropped_through_ || since >= *dropped_through_;
}

} // namespace netnsd::core
