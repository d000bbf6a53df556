// netnsd's composition root.
//
// Threads:
// - the I/O thread (this one) runs one io_context that owns the API side: the replica of the
//   model, the router, the stream hub, the listeners and every session;
// - the model thread (server/model_thread) runs its own io_context that owns the kernel side:
//   the monitor and its fds, and the primary model, whose changes it publishes to the replica
//   (server/model_feed), so that no client can delay reading the kernel;
// - worker pools run what blocks or changes a thread's namespace (admin jobs, execs, the
//   audit's scan) and post their results back.
// No object is shared between threads except through those posts, so nothing locks.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <malloc.h>
#include <memory>
#include <optional>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/kernel/system_netns_ops.hpp"
#include "core/log.hpp"
#include "core/model_status.hpp"
#include "core/registry.hpp"

#include "api/admin.hpp"
#include "api/assets.hpp"
#include "api/auth.hpp"
#include "api/list_cache.hpp"
#include "api/metrics.hpp"
#include "api/origin_policy.hpp"
#include "api/router.hpp"
#include "api/stream.hpp"

#include "server/config.hpp"
#include "server/config_env.hpp"
#include "server/listener.hpp"
#include "server/model_feed.hpp"
#include "server/model_thread.hpp"
#include "server/sd_notify.hpp"
#include "server/security.hpp"
#include "server/tls.hpp"
#include "server/token_file.hpp"
#include "server/worker_pools.hpp"

namespace
{

namespace asio = boost::asio;
using namespace netnsd;

// How long shutdown may take before the loop is stopped regardless.
constexpr std::chrono::seconds shutdown_backstop{5};

} // namespace

int main(int argc, char** argv)
{
    server::config cfg;
    std::string message;
    switch (server::parse_args_with_environment(argc, argv, environ, cfg, message))
    {
    case server::parse_outcome::exit_ok:
        std::cout << message;
        return EXIT_SUCCESS;
    case server::parse_outcome::exit_usage:
        std::cerr << message;
        return 2;
    case server::parse_outcome::run:
        break;
    }
    core::log::set_level(cfg.log_level);
    core::log::set_format(cfg.log_format);
    // systemd (Type=notify): read $NOTIFY_SOCKET and the watchdog settings, and take them out
    // of the environment before anything could start a child.
    const server::sd_notifier systemd;
    if (!systemd.problem().empty())
        core::log::warn("systemd notification is off", {{"reason", systemd.problem()}});
    std::signal(SIGPIPE, SIG_IGN);
    // Large buffers (list bodies, snapshots: ~180 bytes per namespace) are allocated and freed
    // per request. glibc raises its mmap threshold after the first such free and then keeps
    // them in the heap, where they stay resident; a fixed threshold returns them at once.
    ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    // Every client is a descriptor: take the whole hard limit (the soft one is often 1024,
    // below --max-stream-clients' default plus the HTTP clients).
    if (rlimit files{}; ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max)
    {
        files.rlim_cur = files.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &files);
    }

    asio::io_context ioc{1};
    // Revisions continue from the start time, so they never repeat across restarts.
    const auto start_us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    const auto base = static_cast<core::revision_t>(start_us.count());
    // The I/O thread's replica of the model, which the API reads, and the model thread's status.
    core::registry model(cfg.journal_size, base);
    core::model_status status;
    server::model_feed feed(ioc, model, status);
    server::model_thread::settings kernel_side;
    kernel_side.netns_dir = cfg.netns_dir;
    kernel_side.mounts = cfg.mount_feed;
    kernel_side.audit_interval = std::chrono::seconds(cfg.audit_interval_s);
    // Fault injection for the audit's tests: mount events are read and dropped.
    if (const char* fault = std::getenv("NETNSD_TEST_IGNORE_MOUNT_EVENTS"))
        kernel_side.ignore_mount_events = std::string_view(fault) == "1";
    server::model_thread kernel(kernel_side, base, feed);
    if (auto ec = kernel.open())
    {
        core::log::error("cannot open the kernel feeds", {{"error", ec.message()}});
        return EXIT_FAILURE;
    }
    // Subscribed in open(); now the first scan, applied to the replica before the listener
    // below is set (the first scan's entries are no news), then the model thread runs. What
    // it publishes from now on waits in the I/O loop's queue until the loop runs.
    kernel.start();

    api::list_cache lists(model, cfg.netns_dir);
    api::stream_hub hub(model, lists, {cfg.stream_queue_messages, cfg.stream_queue_bytes},
                        cfg.max_stream_clients);
    api::metrics stats;
    model.set_listener(
        [&hub, &stats](const core::event& e)
        {
            stats.count_event(e.type);
            hub.publish(e);
        });
    api::router router(model, status, lists, hub, api::embedded_assets());
    router.enable_metrics(stats);

    // Tokens are re-read whenever the file changes; the peers of --admin-group need none.
    std::optional<server::token_file> tokens;
    std::optional<std::uint32_t> admin_group;
    try
    {
        tokens.emplace(cfg.token_file);
        admin_group = server::admin_group_of(cfg);
    }
    catch (const std::exception& e)
    {
        core::log::error("cannot use the admin token file or group",
                         {{"token_file", cfg.token_file}, {"error", e.what()}});
        return EXIT_FAILURE;
    }
    core::log::info(tokens->created() ? "created the admin token" : "read the admin tokens",
                    {{"token_file", cfg.token_file}, {"tokens", std::to_string(tokens->size())}});
    api::token_auth auth([&tokens] { return tokens->current(); });
    auth.set_admin_group(admin_group);
    const api::origin_policy origins(server::origin_settings_of(cfg));
    router.enable_origin_policy(origins);
    std::optional<server::tls_contexts> tls;
    if (cfg.tls())
    {
        try
        {
            tls.emplace(ioc, server::tls_files{cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca});
        }
        catch (const server::tls_error& e)
        {
            core::log::error("cannot serve TLS", {{"error", e.what()}});
            return EXIT_FAILURE;
        }
    }
    core::kernel::system_netns_ops kernel_ops(cfg.netns_dir);
    api::admin ops(model, kernel_ops, cfg.netns_dir,
                   {cfg.enable_exec, cfg.exec_output_limit, cfg.max_exec, cfg.etc_netns_dir},
                   &kernel);
    router.enable_admin(ops, auth, cfg.auth_reads);
    server::worker_pools workers(cfg.max_exec);
    workers.refresh_then = [&kernel](std::vector<std::string> names, std::function<void()> then)
    {
        kernel.refresh_then(std::move(names), std::move(then));
    };

    // Every connection, whichever listener accepted it: one limit, one shutdown.
    server::session_set sessions(&stats);
    std::vector<std::unique_ptr<server::listener>> listeners;
    std::string listening;
    for (const auto& where : cfg.listen)
    {
        try
        {
            listeners.push_back(std::make_unique<server::listener>(
                ioc, where, router, hub, sessions, workers,
                server::listener_options{tls ? &*tls : nullptr, admin_group}));
        }
        catch (const server::listen_error& e)
        {
            core::log::error("cannot listen", {{"listen", where.to_string()}, {"error", e.what()}});
            return EXIT_FAILURE;
        }
        listeners.back()->start();
        listening += std::string(listening.empty() ? "" : " ") +
                     (listeners.back()->serves_tls() ? "https://" : "") +
                     listeners.back()->address();
    }
    const auto entries = std::to_string(model.slots().size());
    core::log::info("netnsd started", {{"version", NETNSD_VERSION},
                                       {"listen", listening},
                                       {"netns_dir", cfg.netns_dir},
                                       {"entries", entries},
                                       {"exec", cfg.enable_exec ? "on" : "off"},
                                       {"mount_feed", core::to_string(status.mounts)},
                                       {"auth_reads", cfg.auth_reads ? "on" : "off"}});
    // The first scan is done (kernel.start() above) and the socket listens: ready.
    systemd.notify("READY=1\nSTATUS=watching " + cfg.netns_dir);

    // The watchdog is fed from the loop, so a stuck loop is what systemd notices.
    asio::steady_timer watchdog(ioc);
    std::function<void()> feed_watchdog;
    if (const auto interval = systemd.watchdog_interval())
    {
        const auto period = std::max(*interval / 2, std::chrono::microseconds(1000));
        feed_watchdog = [&, period]
        {
            systemd.notify("WATCHDOG=1");
            watchdog.expires_after(period);
            watchdog.async_wait(
                [&](boost::system::error_code ec)
                {
                    if (!ec)
                        feed_watchdog();
                });
        };
        feed_watchdog();
    }

    // SIGHUP: load the TLS certificate and key again (they are also watched).
    asio::signal_set reload(ioc, SIGHUP);
    std::function<void()> on_hup = [&]
    {
        reload.async_wait(
            [&](boost::system::error_code ec, int)
            {
                if (ec)
                    return;
                if (tls)
                    tls->reload("SIGHUP");
                on_hup();
            });
    };
    on_hup();

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    bool stopping = false;
    signals.async_wait(
        [&](boost::system::error_code ec, int signo)
        {
            if (ec)
                return;
            core::log::info("shutting down", {{"signal", std::to_string(signo)}});
            systemd.notify("STOPPING=1");
            stopping = true;
            watchdog.cancel();
            for (auto& l : listeners)
                l->stop();
            sessions.close_all_gracefully();
            if (tls)
                tls->stop();
            reload.cancel();
        });

    while (!stopping && ioc.run_one() != 0)
    {
    }
    // Let the sessions finish closing; the loop ends by itself once they have. Admin jobs still
    // on a worker (an exec can run to its timeout) post their answers when they end: join the
    // workers, then run the loop once more to deliver them. Every handler must run (and every
    // session go) here, while the objects they use still exist.
    auto drain = [&]
    {
        ioc.restart();
        ioc.run_for(shutdown_backstop);
        if (ioc.stopped())
            return;
        core::log::warn("shutdown took too long; closing the remaining connections",
                        {{"connections", std::to_string(sessions.size())}});
        sessions.close_all_now();
        ioc.restart();
        ioc.run_for(shutdown_backstop);
        if (!ioc.stopped())
        {
            core::log::error("the loop did not drain; exiting without cleanup");
            std::_Exit(EXIT_FAILURE);
        }
    };
    drain();
    // Workers post their answers through the model thread (refresh_then): join them, then let
    // the model thread finish what they posted and stop, then deliver the answers.
    workers.stop_and_join();
    kernel.stop();
    drain();
    core::log::info("stopped");
    return EXIT_SUCCESS;
}
