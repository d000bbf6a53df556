// running_server: the server's loop objects as main wires them (a registry, a monitor for
// /run/netns that is never opened, the list cache, the stream hub fed by the registry, the
// router with the embedded assets, a listener on 127.0.0.1 port 0) with one io_context run by a
// thread of its own. The test fills the registry before start(); from then on the loop objects
// belong to the loop thread, and the test reaches them over TCP or through on_loop(). Asio stays
// out of this header so test TUs compile fast.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/registry.hpp"

#include "server/config.hpp"

#include "support/http_client.hpp"

namespace netnsd::test
{

// A fixed time, so that "first_seen" has known bytes: 2026-11-28T17:40:01.123Z.
core::time_point fixed_time();

// A live entry, as a probe of a bind mount would find it: ns_id ino + 1000, dev 4.
void add_live(core::registry& model, const std::string& name, std::uint64_t ino,
              std::optional<core::nsid_t> nsid = std::nullopt);

class running_server
{
public:
    // Listens on `where`: by default 127.0.0.1 with a port the kernel picks. Throws
    // server::listen_error when the address cannot be used.
    explicit running_server(const server::listen_address& where = {"127.0.0.1", 0, {}});
    // Stops the server if the test did not (with the backstop; see stop()).
    ~running_server();
    running_server(const running_server&) = delete;
    running_server& operator=(const running_server&) = delete;

    // The model: fill it before start(); afterwards only inside on_loop().
    core::registry& model() noexcept;

    // Starts accepting and runs the loop on its own thread.
    void start();
    const endpoint& where() const noexcept { return where_; }

    // Runs `fn` on the loop thread and waits for it; false when it did not run in time.
    bool on_loop(std::function<void()> fn,
                 std::chrono::milliseconds deadline = std::chrono::milliseconds(5000));
    // The session_set's size, read on the loop thread.
    std::optional<std::size_t> open_sessions();

    // Posts listener::stop() and session_set::close_all_gracefully() (as main does) and waits for
    // io_context::run() to return by itself. False when it did not within `deadline`; the loop
    // is then stopped with io_context::stop() so that the test can end, and the test should fail.
    bool stop(std::chrono::milliseconds deadline = std::chrono::milliseconds(5000));
    // The two halves of stop(), for tests that must talk to clients in between.
    void request_stop();
    bool wait_stopped(std::chrono::milliseconds deadline = std::chrono::milliseconds(5000));

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    endpoint where_;
};

} // namespace netnsd::test
