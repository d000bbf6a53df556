// server/config's defaults: each is the constant beside what it limits, and --help shows it as
// that constant has it. Also --help's layout, which netnsd(8)'s test reads: two spaces or a
// new line before each description. With the api tests for the reason config_test.cpp is.
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

#include "core/journal.hpp"
#include "core/kernel/exec.hpp"
#include "core/log.hpp"
#include "core/model_status.hpp"

#include "api/admin.hpp"
#include "api/interface_metrics.hpp"
#include "api/stream.hpp"

#include "server/config.hpp"
#include "server/model_thread.hpp"
#include "server/token_file.hpp"

using netnsd::server::config;
using netnsd::server::listen_address;
using settings = netnsd::server::model_thread::settings;
using exec_request = netnsd::core::kernel::exec_request;

namespace
{

// {"--flag": its description, continuation lines joined} from --help.
std::map<std::string, std::string> described_options()
{
    static const std::regex option(R"(^  (--[a-z][a-z-]*)(?: ([A-Z]+))?(?:  +(.*))?$)");
    static const std::regex continued(R"(^ {8,}(\S.*)$)");
    std::map<std::string, std::string> out;
    std::string current;
    std::istringstream lines(netnsd::server::usage());
    for (std::string line; std::getline(lines, line);)
    {
        std::smatch m;
        if (std::regex_match(line, m, option))
        {
            current = m[1];
            out[current] = m[3];
        }
        else if (!current.empty() && std::regex_match(line, m, continued))
            out[current] += (out[current].empty() ? "" : " ") + m[1].str();
        else
            current.clear();
    }
    return out;
}

// The word after "default " in a description: "(default 100000)" -> "100000".
std::string default_in(const std::string& description)
{
    static const std::regex stated(R"(default ([^\s;,)]+))");
    std::smatch m;
    return std::regex_search(description, m, stated) ? m[1].str() : std::string();
}

} // namespace

TEST_CASE("config defaults: --help states each default as its constant has it")
{
    const auto options = described_options();
    const std::map<std::string, std::string> expected{
        {"--listen", std::string(listen_address::default_host) + ":" +
                         std::to_string(listen_address::default_port)},
        {"--netns-dir", std::string(settings::default_netns_dir)},
        {"--journal-size", std::to_string(netnsd::core::journal::default_capacity)},
        {"--max-stream-clients", std::to_string(netnsd::api::stream_hub::default_max_clients)},
        {"--stream-queue-messages",
         std::to_string(netnsd::api::stream_limits::default_max_messages)},
        {"--stream-queue-bytes", std::to_string(netnsd::api::stream_limits::default_max_bytes)},
        {"--token-file", std::string(netnsd::server::token_file::default_path)},
        {"--exec-output-limit", std::to_string(exec_request::default_output_limit)},
        {"--max-exec", std::to_string(netnsd::api::admin_settings::default_max_exec)},
        {"--etc-netns-dir", std::string(exec_request::default_etc_netns_dir)},
        {"--audit-interval", std::to_string(settings::default_audit_interval.count())},
        {"--sweep-interval", std::to_string(settings::default_sweep_interval.count())},
        {"--deep-scan-interval", std::to_string(settings::default_deep_scan_interval.count())},
        {"--proc-events-netns", std::string(settings::default_proc_events_netns)},
        {"--cni-cache-dir", std::string(settings::default_cni_cache_dir)},
        {"--metrics-max-series",
         std::to_string(netnsd::api::interface_metrics::default_max_series)},
    };
    for (const auto& [flag, value] : expected)
    {
        CAPTURE(flag);
        REQUIRE(options.contains(flag));
        CHECK(default_in(options.at(flag)) == value);
    }
    // The enums: the word --help gives is the one their parser reads as the default.
    netnsd::core::mount_choice feed{};
    CHECK(netnsd::core::parse_mount_choice(default_in(options.at("--mount-feed")), feed));
    CHECK(feed == settings::default_mounts);
    CHECK(default_in(options.at("--mount-reader")) ==
          (settings{}.realtime_mount_reader ? "realtime" : "nice"));
    netnsd::core::log::level level{};
    CHECK(netnsd::core::log::parse_level(default_in(options.at("--log-level")), level));
    CHECK(level == netnsd::core::log::default_level);
    netnsd::core::log::format format{};
    CHECK(netnsd::core::log::parse_format(default_in(options.at("--log-format")), format));
    CHECK(format == netnsd::core::log::default_format);
}

TEST_CASE("config defaults: a config with no flags has the constants' values")
{
    const config cfg;
    REQUIRE(cfg.listen.size() == 1u);
    CHECK(cfg.listen[0].host == listen_address::default_host);
    CHECK(cfg.listen[0].port == listen_address::default_port);
    CHECK(cfg.netns_dir == settings::default_netns_dir);
    CHECK(cfg.journal_size == netnsd::core::journal::default_capacity);
    CHECK(cfg.max_stream_clients == netnsd::api::stream_hub::default_max_clients);
    CHECK(cfg.stream_queue_messages == netnsd::api::stream_limits{}.max_messages);
    CHECK(cfg.stream_queue_bytes == netnsd::api::stream_limits{}.max_bytes);
    CHECK(cfg.token_file == netnsd::server::token_file::default_path);
    CHECK(cfg.exec_output_limit == netnsd::api::admin_settings{}.exec_output_limit);
    CHECK(cfg.max_exec == netnsd::api::admin_settings{}.max_exec);
    CHECK(cfg.etc_netns_dir == netnsd::api::admin_settings{}.etc_netns_dir);
    CHECK(cfg.etc_netns_dir == exec_request{}.etc_netns_dir);
    CHECK(std::chrono::seconds(cfg.audit_interval_s) == settings{}.audit_interval);
    CHECK(std::chrono::seconds(cfg.sweep_interval_s) == settings{}.sweep_interval);
    CHECK(std::chrono::seconds(cfg.deep_scan_interval_s) == settings{}.deep_scan_interval);
    CHECK(cfg.mount_feed == settings{}.mounts);
    CHECK(cfg.cni_cache_dir == settings{}.cni_cache_dir);
    CHECK(cfg.log_level == netnsd::core::log::default_level);
    CHECK(cfg.log_format == netnsd::core::log::default_format);
    CHECK(!cfg.metrics_interfaces);
    CHECK(cfg.metrics_max_series == netnsd::api::interface_metrics::default_max_series);
    // admin's own exec timeout is exec_request's.
    CHECK(std::chrono::milliseconds(netnsd::api::admin::default_exec_timeout_ms) ==
          exec_request{}.timeout);
}

TEST_CASE("config defaults: --help lists every option with two spaces or a new line before its "
          "description, within 79 columns")
{
    const auto options = described_options();
    for (const char* flag : {"--listen",
                             "--netns-dir",
                             "--journal-size",
                             "--max-stream-clients",
                             "--stream-queue-messages",
                             "--stream-queue-bytes",
                             "--token-file",
                             "--auth-reads",
                             "--admin-group",
                             "--allowed-host",
                             "--allowed-origin",
                             "--tls-cert",
                             "--tls-key",
                             "--tls-client-ca",
                             "--enable-exec",
                             "--exec-output-limit",
                             "--max-exec",
                             "--etc-netns-dir",
                             "--audit-interval",
                             "--sweep-interval",
                             "--proc-events",
                             "--proc-events-netns",
                             "--follow-mount-namespaces",
                             "--cni-cache-dir",
                             "--deep-scan-interval",
                             "--mount-feed",
                             "--mount-reader",
                             "--log-level",
                             "--log-format",
                             "--metrics-interfaces",
                             "--metrics-max-series",
                             "--help",
                             "--version"})
    {
        CAPTURE(flag);
        REQUIRE(options.contains(flag));
        CHECK(!options.at(flag).empty());
    }
    std::istringstream lines(netnsd::server::usage());
    for (std::string line; std::getline(lines, line);)
    {
        CAPTURE(line);
        CHECK(line.size() <= 79u);
        CHECK((line.empty() || line.back() != ' '));
    }
}
