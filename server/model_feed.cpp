#include "server/model_feed.hpp"

#include <boost/asio/post.hpp>

namespace netnsd::server
{

namespace asio = boost::asio;

model_feed::model_feed(asio::io_context& io, core::registry& replica, core::model_status& status)
    : io_(io), replica_(replica), status_(status)
{
}

void model_feed::publish(batch b)
{
    asio::post(io_, [this, b = std::move(b)]() mutable { enqueue(std::move(b)); });
}

void model_feed::publish_then(std::function<void()> then)
{
    asio::post(io_, [this, then = std::move(then)]() mutable { enqueue(std::move(then)); });
}

void model_feed::apply_now(batch b)
{
    for (const auto& c : b.changes)
        replica_.apply(c);
    if (b.status)
        status_ = std::move(*b.status);
}

void model_feed::enqueue(item it)
{
    if (const auto* b = std::get_if<batch>(&it))
        backlog_ += b->changes.size();
    items_.push_back(std::move(it));
    if (!draining_)
        drain();
}

void model_feed::drain()
{
    draining_ = false;
    std::size_t budget = changes_per_turn;
    while (!items_.empty())
    {
        if (auto* then = std::get_if<std::function<void()>>(&items_.front()))
        {
            auto run = std::move(*then);
            items_.pop_front();
            run();
            continue;
        }
        auto& b = std::get<batch>(items_.front());
        for (; next_change_ < b.changes.size() && budget > 0; ++next_change_, --budget)
        {
            replica_.apply(b.changes[next_change_]);
            --backlog_;
        }
        if (next_change_ < b.changes.size())
            break; // this turn's slice is done
        if (b.status)
            status_ = std::move(*b.status);
        items_.pop_front();
        next_change_ = 0;
    }
    if (!items_.empty())
    {
        draining_ = true;
        asio::post(io_, [this] { drain(); });
    }
}

} // namespace netnsd::server
