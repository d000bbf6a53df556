// metrics: the counters behind GET /metrics and their rendering in the Prometheus text format
// 0.0.4. Counters are kept as things happen: events (from the registry's listener in main),
// HTTP requests and their durations (from the server's sessions, with the route template the
// router matched), admin operations (derived from those requests). What the model already
// counts (namespaces, nsids, revision, resyncs, stream clients and drops, running execs) is read
// from its owner at scrape time, each an O(1) accessor: a scrape costs no syscall per
// namespace, only a few reads of /proc/self. Owned by main; loop thread only.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "core/kernel/proc_self.hpp"
#include "core/model.hpp"
#include "core/model_status.hpp"

namespace netnsd::api
{

// What the kernel says about this process (/proc/self), read at scrape time.
using core::kernel::process_stats;

// Appends a label value as the text format wants it: UTF-8 (a byte that is not becomes U+FFFD),
// with backslash, quote and newline escaped (the format's three escapes).
void append_label_value(std::string& out, std::string_view value);

// The gauges read from their owners at scrape time.
struct scrape_inputs
{
    std::size_t live = 0;
    std::size_t stale = 0;
    std::size_t nsids = 0;
    core::revision_t revision = 0;
    // The model thread's status: resyncs, mount feed, audits (all zero when null).
    const core::model_status* model = nullptr;
    // By api::stream_format: websocket, sse, ndjson.
    std::array<std::size_t, 3> stream_clients{};
    // By api::drop_reason: queue_full, unresponsive.
    std::array<std::uint64_t, 2> stream_dropped{};
    std::size_t exec_running = 0;
    // The host inventory: namespaces by owner kind (core::owner_kind order), and those held by
    // nothing netnsd sees.
    std::array<std::size_t, 9> host_namespaces{};
    std::size_t leaked_namespaces = 0;
    std::optional<process_stats> process;
};

// Why a connection was closed before it was served.
enum class connection_rejection
{
    limit,         // max_connections were open already
    accept_failed, // accept(2) failed (EMFILE, ENFILE, ENOBUFS, ...)
};

class metrics
{
public:
    // Upper bounds of the request duration histogram, in seconds: reads answer in well under a
    // millisecond, admin operations in milliseconds, execs in up to minutes.
    static constexpr std::array<double, 14> duration_buckets = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60};

    static constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

    void count_event(core::event_type type) noexcept;

    // Connections open now, on every listener (HTTP, websocket and stream clients alike).
    void set_open_connections(std::size_t n) noexcept { open_connections_ = n; }
    void count_connection_rejected(connection_rejection why) noexcept;

    // One answered request. `route` is the route template the router matched ("other" when
    // none did); an unknown method counts as "other", so no label takes values from the wire.
    void observe_request(std::string_view method, std::string_view route, unsigned status,
                         double seconds);

    std::string render(const scrape_inputs& in) const;

private:
    // Appends families and samples in the text format (metrics.cpp).
    class writer;
    void render_inventory(writer& w, const scrape_inputs& in,
                          const core::model_status& model) const;
    static void render_model(writer& w, const core::model_status& m);
    void render_http(writer& w) const;
    void render_clients(writer& w, const scrape_inputs& in) const;
    void render_admin(writer& w, const scrape_inputs& in) const;
    static void render_process(writer& w, const process_stats& p);

    struct histogram
    {
        std::array<std::uint64_t, duration_buckets.size()> buckets{}; // not cumulative
        std::uint64_t count = 0;
        double sum = 0;
    };

    std::array<std::uint64_t, 8> events_{};
    std::size_t open_connections_ = 0;
    std::array<std::uint64_t, 2> rejected_{}; // by connection_rejection
    // method, route, status; looked up by views, so that counting a request allocates nothing
    // once its key exists.
    using request_key = std::tuple<std::string, std::string, unsigned>;
    using request_view = std::tuple<std::string_view, std::string_view, unsigned>;
    struct by_view
    {
        using is_transparent = void;
        static request_view view(const request_view& k) noexcept { return k; }
        static request_view view(const request_key& k) noexcept
        {
            return {std::get<0>(k), std::get<1>(k), std::get<2>(k)};
        }
        template <class A, class B>
        bool operator()(const A& a, const B& b) const noexcept
        {
            return view(a) < view(b);
        }
    };
    std::map<request_key, std::uint64_t, by_view> requests_;
    std::map<std::string, histogram, std::less<>> durations_;
    std::map<std::pair<std::string, std::string>, std::uint64_t> admin_ops_;
};

} // namespace netnsd::api
