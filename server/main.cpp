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

// What the process needs before anything runs.
void prepare_process()
{
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
}

// Revisions continue from the start time, so they never repeat across restarts.
core::revision_t revision_base()
{
    const auto start_us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    return static_cast<core::revision_t>(start_us.count());
}

server::model_thread::settings kernel_settings(const server::config& cfg)
{
    server::model_thread::settings s;
    s.netns_dir = cfg.netns_dir;
    s.mounts = cfg.mount_feed;
    s.realtime_mount_reader = cfg.realtime_mount_reader;
    s.realtime_model_thread = cfg.realtime_model_thread;
    s.audit_interval = std::chrono::seconds(cfg.audit_interval_s);
    s.sweep_interval = std::chrono::seconds(cfg.sweep_interval_s);
    s.deep_scan_interval = std::chrono::seconds(cfg.deep_scan_interval_s);
    s.watch_links = cfg.watch_links;
    s.assign_nsids = cfg.assign_nsids;
    s.proc_events = cfg.proc_events;
    s.proc_events_netns = cfg.proc_events_netns;
    s.follow_mount_namespaces = cfg.follow_mount_namespaces;
    s.cni_cache_dir = cfg.cni_cache_dir;
    // Fault injection for the overrun's test: a receive buffer a fork storm overflows.
    if (const char* buffer = std::getenv("NETNSD_TEST_PROC_EVENTS_BUFFER"))
        s.proc_events_buffer = std::atoi(buffer);
    // ... and a pause between subscribing and reading the kernel's answer, in milliseconds.
    if (const char* pause = std::getenv("NETNSD_TEST_PROC_EVENTS_SUBSCRIBE_PAUSE_MS"))
        s.proc_events_subscribe_pause = std::chrono::milliseconds(std::atoi(pause));
    // Fault injection for the audit's tests: mount events are read and dropped.
    if (const char* fault = std::getenv("NETNSD_TEST_IGNORE_MOUNT_EVENTS"))
        s.ignore_mount_events = std::string_view(fault) == "1";
    // Fault injection for the link listener's overrun test: its receive buffer, in bytes.
    if (const char* fault = std::getenv("NETNSD_TEST_LINK_RECEIVE_BUFFER"))
        s.link_receive_buffer = std::atoi(fault);
    return s;
}

// Every object of the process, in the order they are built (and the reverse, torn down); the
// steps of start-up and shutdown. A step that cannot go on returns the exit status.
class process
{
public:
    process(const server::config& cfg, const server::sd_notifier& systemd)
        : cfg_(cfg), systemd_(systemd), base_(revision_base()), model_(cfg.journal_size, base_),
          feed_(ioc_, model_, status_), kernel_(kernel_settings(cfg), base_, feed_),
          lists_(model_, cfg.netns_dir),
          hub_(model_, lists_, {cfg.stream_queue_messages, cfg.stream_queue_bytes},
               cfg.max_stream_clients),
          router_(model_, status_, lists_, hub_, api::embedded_assets()),
          auth_([this] { return tokens_->current(); }), origins_(server::origin_settings_of(cfg)),
          kernel_ops_(cfg.netns_dir),
          ops_(model_, kernel_ops_, cfg.netns_dir,
               {cfg.enable_exec, cfg.exec_output_limit, cfg.max_exec, cfg.etc_netns_dir}, &kernel_),
          workers_(cfg.max_exec), sessions_(&stats_), watchdog_(ioc_), reload_(ioc_, SIGHUP),
          signals_(ioc_, SIGINT, SIGTERM)
    {
        // As the model thread's primary does: the replica replays the same state machine.
        model_.track_names_in_inventory(true);
    }

    int run()
    {
        for (auto step : {&process::start_kernel, &process::start_api, &process::start_access,
                          &process::start_listeners})
            if (const auto failed = (this->*step)())
                return *failed;
        announce();
        feed_watchdog();
        wait_for_hangup();
        wait_for_stop();
        while (!stopping_ && ioc_.run_one() != 0)
        {
        }
        return finish();
    }

private:
    using step_result = std::optional<int>;

    step_result start_kernel()
    {
        if (auto ec = kernel_.open())
        {
            core::log::error("cannot open the kernel feeds", {{"error", ec.message()}});
            return EXIT_FAILURE;
        }
        // Subscribed in open(); now the first scan, applied to the replica before its listener
        // is set (the first scan's entries are no news), then the model thread runs. What it
        // publishes from now on waits in the I/O loop's queue until the loop runs.
        kernel_.start();
        return std::nullopt;
    }

    step_result start_api()
    {
        model_.set_listener(
            [this](const core::event& e)
            {
                stats_.count_event(e.type);
                hub_.publish(e);
            });
        router_.enable_metrics(stats_);
        if (cfg_.metrics_interfaces)
            router_.enable_interface_metrics(cfg_.metrics_max_series,
                                             api::interface_metrics::default_threads());
        router_.enable_origin_policy(origins_);
        workers_.refresh_then = [this](std::vector<std::string> names, std::function<void()> then)
        {
            kernel_.refresh_then(std::move(names), std::move(then));
        };
        return std::nullopt;
    }

    // Tokens (re-read whenever their file changes), --admin-group, TLS.
    step_result start_access()
    {
        try
        {
            tokens_.emplace(cfg_.token_file);
            admin_group_ = server::admin_group_of(cfg_);
        }
        catch (const std::exception& e)
        {
            core::log::error("cannot use the admin token file or group",
                             {{"token_file", cfg_.token_file}, {"error", e.what()}});
            return EXIT_FAILURE;
        }
        core::log::info(
            tokens_->created() ? "created the admin token" : "read the admin tokens",
            {{"token_file", cfg_.token_file}, {"tokens", std::to_string(tokens_->size())}});
        auth_.set_admin_group(admin_group_);
        router_.enable_admin(ops_, auth_, cfg_.auth_reads);
        if (!cfg_.tls())
            return std::nullopt;
        try
        {
            tls_.emplace(ioc_, server::tls_files{cfg_.tls_cert, cfg_.tls_key, cfg_.tls_client_ca});
        }
        catch (const server::tls_error& e)
        {
            core::log::error("cannot serve TLS", {{"error", e.what()}});
            return EXIT_FAILURE;
        }
        return std::nullopt;
    }

    // Every address, one session_set for all: one limit, one shutdown.
    step_result start_listeners()
    {
        for (const auto& where : cfg_.listen)
        {
            try
            {
                listeners_.push_back(std::make_unique<server::listener>(
                    ioc_, where, router_, hub_, sessions_, workers_,
                    server::listener_options{tls_ ? &*tls_ : nullptr, admin_group_}));
            }
            catch (const server::listen_error& e)
            {
                core::log::error("cannot listen",
                                 {{"listen", where.to_string()}, {"error", e.what()}});
                return EXIT_FAILURE;
            }
            listeners_.back()->start();
        }
        return std::nullopt;
    }

    void announce()
    {
        std::string listening;
        for (const auto& l : listeners_)
            listening += std::string(listening.empty() ? "" : " ") +
                         (l->serves_tls() ? "https://" : "") + l->address();
        const auto entries = std::to_string(model_.slots().size());
        core::log::info("netnsd started", {{"version", NETNSD_VERSION},
                                           {"listen", listening},
                                           {"netns_dir", cfg_.netns_dir},
                                           {"entries", entries},
                                           {"exec", cfg_.enable_exec ? "on" : "off"},
                                           {"mount_feed", core::to_string(status_.mounts)},
                                           {"auth_reads", cfg_.auth_reads ? "on" : "off"}});
        // The first scan is done (start_kernel) and the sockets listen: ready.
        systemd_.notify("READY=1\nSTATUS=watching " + cfg_.netns_dir);
    }

    // The watchdog is fed from the loop, so a stuck loop is what systemd notices.
    void feed_watchdog()
    {
        const auto interval = systemd_.watchdog_interval();
        if (!interval)
            return;
        systemd_.notify("WATCHDOG=1");
        watchdog_.expires_after(std::max(*interval / 2, std::chrono::microseconds(1000)));
        watchdog_.async_wait(
            [this](boost::system::error_code ec)
            {
                if (!ec)
                    feed_watchdog();
            });
    }

    // SIGHUP: load the TLS certificate and key again (they are also watched).
    void wait_for_hangup()
    {
        reload_.async_wait(
            [this](boost::system::error_code ec, int)
            {
                if (ec)
                    return;
                if (tls_)
                    tls_->reload("SIGHUP");
                wait_for_hangup();
            });
    }

    void wait_for_stop()
    {
        signals_.async_wait(
            [this](boost::system::error_code ec, int signo)
            {
                if (ec)
                    return;
                core::log::info("shutting down", {{"signal", std::to_string(signo)}});
                systemd_.notify("STOPPING=1");
                stopping_ = true;
                watchdog_.cancel();
                for (auto& l : listeners_)
                    l->stop();
                sessions_.close_all_gracefully();
                if (tls_)
                    tls_->stop();
                reload_.cancel();
            });
    }

    // Let the sessions finish closing; the loop ends by itself once they have. Every handler
    // must run (and every session go) here, while the objects they use still exist.
    void drain()
    {
        ioc_.restart();
        ioc_.run_for(shutdown_backstop);
        if (ioc_.stopped())
            return;
        core::log::warn("shutdown took too long; closing the remaining connections",
                        {{"connections", std::to_string(sessions_.size())}});
        sessions_.close_all_now();
        ioc_.restart();
        ioc_.run_for(shutdown_backstop);
        if (!ioc_.stopped())
        {
            core::log::error("the loop did not drain; exiting without cleanup");
            std::_Exit(EXIT_FAILURE);
        }
    }

    int finish()
    {
        drain();
        // Admin jobs still on a worker (an exec can run to its timeout) post their answers
        // through the model thread (refresh_then): join them, then let the model thread finish
        // what they posted and stop, then deliver the answers.
        workers_.stop_and_join();
        kernel_.stop();
        drain();
        core::log::info("stopped");
        return EXIT_SUCCESS;
    }

    const server::config& cfg_;
    const server::sd_notifier& systemd_;
    asio::io_context ioc_{1};
    core::revision_t base_;
    // The I/O thread's replica of the model, which the API reads, and the model thread's status.
    core::registry model_;
    core::model_status status_;
    server::model_feed feed_;
    server::model_thread kernel_;
    api::list_cache lists_;
    api::stream_hub hub_;
    api::metrics stats_;
    api::router router_;
    std::optional<server::token_file> tokens_;
    std::optional<std::uint32_t> admin_group_;
    api::token_auth auth_;
    const api::origin_policy origins_;
    std::optional<server::tls_contexts> tls_;
    core::kernel::system_netns_ops kernel_ops_;
    api::admin ops_;
    server::worker_pools workers_;
    server::session_set sessions_;
    std::vector<std::unique_ptr<server::listener>> listeners_;
    asio::steady_timer watchdog_;
    asio::signal_set reload_;
    asio::signal_set signals_;
    bool stopping_ = false;
};

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
    prepare_process();
    process netnsd(cfg, systemd);
    return netnsd.run();
}
