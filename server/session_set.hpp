// session_set: every open connection (HTTP, websocket, event stream), so that shutdown can close
// them. Single-threaded, so plain pointers: a session inserts itself when constructed and
// erases itself when destroyed. Shared by every listener, so the connection limit and the
// netnsd_connections gauge cover them all. Owned by main; loop thread only.
#pragma once

#include <cstddef>
#include <set>
#include <vector>

#include "api/metrics.hpp"

namespace netnsd::server
{

// The kernel send buffer of a stream client's socket. Fixed (not autotuned up to megabytes), so
// that a client that stops reading meets its bounded queue soon, and memory stays accounted.
inline constexpr int stream_send_buffer_bytes = 64 * 1024;

// What shutdown needs of a connection. The two ways it ends one; each session also has a
// private close_socket() (shut the socket down and close it: the end of every path).
class closable
{
public:
    // Shutdown: finish what is in flight politely (the answer being written, then TLS
    // close_notify; websocket close 1001; the last chunk), then close.
    virtual void close_gracefully() = 0;
    // The shutdown backstop: close the socket now; every pending operation ends at once.
    virtual void close_now() = 0;

protected:
    ~closable() = default;
};

class session_set
{
public:
    // `stats`, when given, has its netnsd_connections gauge kept up to date.
    explicit session_set(api::metrics* stats = nullptr) noexcept : stats_(stats) {}

    void insert(closable* s)
    {
        sessions_.insert(s);
        report();
    }
    void erase(closable* s)
    {
        sessions_.erase(s);
        report();
    }
    std::size_t size() const noexcept { return sessions_.size(); }
    bool stopping() const noexcept { return stopping_; }

    void close_all_gracefully()
    {
        stopping_ = true;
        // Closing may erase from the set; iterate over a copy.
        const std::vector<closable*> all(sessions_.begin(), sessions_.end());
        for (auto* s : all)
            s->close_gracefully();
    }

    void close_all_now()
    {
        stopping_ = true;
        const std::vector<closable*> all(sessions_.begin(), sessions_.end());
        for (auto* s : all)
            s->close_now();
    }

private:
    void report() noexcept
    {
        if (stats_ != nullptr)
            stats_->set_open_connections(sessions_.size());
    }

    std::set<closable*> sessions_;
    api::metrics* stats_;
    bool stopping_ = false;
};

} // namespace netnsd::server
