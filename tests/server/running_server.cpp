#include "running_server.hpp"

#include <exception>
#include <future>
#include <thread>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <doctest/doctest.h>

#include "core/monitor.hpp"

#include "api/assets.hpp"
#include "api/list_cache.hpp"
#include "api/router.hpp"
#include "api/stream.hpp"

#include "server/config.hpp"
#include "server/listener.hpp"

namespace netnsd::test
{

core::time_point fixed_time()
{
    return core::time_point{std::chrono::milliseconds{1'795'887'601'123}};
}

void add_live(core::registry& model, const std::string& name, std::uint64_t ino,
              std::optional<core::nsid_t> nsid)
{
    model.apply_probe(
        name,
        core::probe_result{core::entry_state::live, core::ns_identity{ino + 1000, 4, ino}, nsid},
        fixed_time());
}

struct running_server::impl
{
    boost::asio::io_context ioc{1};
    core::registry model{1000};
    core::monitor watch{model, "/run/netns"};
    api::list_cache lists{model, "/run/netns"};
    api::stream_hub hub{model, lists, api::stream_limits{}, 1024};
    api::router router{model, watch.status(), lists, hub, api::embedded_assets()};
    server::worker_pools workers{2};
    api::metrics stats;
    server::session_set sessions{&stats};
    server::listener http;

    explicit impl(const server::listen_address& where)
        : http(ioc, where, router, hub, sessions, workers)
    {
        model.set_listener([this](const core::event& e) { hub.publish(e); });
        router.enable_metrics(stats);
    }
    std::thread loop;
    std::promise<void> done;
    std::future<void> finished = done.get_future();
};

running_server::running_server(const server::listen_address& where)
    : impl_(std::make_unique<impl>(where))
{
    where_.unix_path = where.path;
}

running_server::~running_server()
{
    if (impl_ && impl_->loop.joinable())
        stop();
}

core::registry& running_server::model() noexcept
{
    return impl_->model;
}

void running_server::start()
{
    impl_->http.start();
    where_.port = impl_->http.port();
    impl_->loop = std::thread(
        [this]
        {
            try
            {
                impl_->ioc.run();
                impl_->done.set_value();
            }
            catch (...)
            {
                impl_->done.set_exception(std::current_exception());
            }
        });
}

bool running_server::on_loop(std::function<void()> fn, std::chrono::milliseconds deadline)
{
    if (!impl_)
        return false;
    auto ran = std::make_shared<std::promise<void>>();
    auto result = ran->get_future();
    boost::asio::post(impl_->ioc,
                      [fn = std::move(fn), ran]
                      {
                          fn();
                          ran->set_value();
                      });
    return result.wait_for(deadline) == std::future_status::ready;
}

std::optional<std::size_t> running_server::open_sessions()
{
    auto count = std::make_shared<std::size_t>(0);
    if (!on_loop([this, count] { *count = impl_->sessions.size(); }))
        return std::nullopt;
    return *count;
}

bool running_server::stop(std::chrono::milliseconds deadline)
{
    request_stop();
    return wait_stopped(deadline);
}

void running_server::request_stop()
{
    if (impl_)
        boost::asio::post(impl_->ioc,
                          [this]
                          {
                              impl_->http.stop();
                              impl_->sessions.close_all_gracefully();
                          });
}

bool running_server::wait_stopped(std::chrono::milliseconds deadline)
{
    if (!impl_ || !impl_->loop.joinable())
        return false;
    const bool by_itself = impl_->finished.wait_for(deadline) == std::future_status::ready;
    if (!by_itself)
        impl_->ioc.stop();
    impl_->loop.join();
    // An exception that escaped a handler ended run(): a bug in the server.
    CHECK_NOTHROW(impl_->finished.get());
    if (!by_itself)
    {
        // Sessions still live in pending handlers, which only the io_context's destructor
        // destroys; they refer to the listener and the hub, which die before it. No order of
        // destruction is safe, so the failed test leaks the lot and the others go on.
        static_cast<void>(impl_.release());
    }
    return by_itself;
}

} // namespace netnsd::test
