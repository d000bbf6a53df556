// worker_pools: the threads that run what must not run on the loop: admin operations (they
// block on the kernel, and create a namespace by unsharing the worker's own network namespace
// for a moment) and execs (which wait for a child up to its timeout, so they get their own pool
// and never starve the others). Jobs touch no loop state; they post their continuation back.
// Owned by main, which joins them after the loop has stopped.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/thread_pool.hpp>

namespace netnsd::server
{

struct worker_pools
{
    static constexpr std::size_t admin_threads = 4;

    explicit worker_pools(std::size_t exec_threads) : worker_pools(admin_threads, exec_threads) {}
    // A pool of no threads runs nothing: its jobs wait until it is destroyed, then are dropped
    // unrun (the HTTP fuzz target's admin requests must not reach the kernel).
    worker_pools(std::size_t admin_count, std::size_t exec_count)
        : admin(admin_count), exec(exec_count)
    {
    }

    void stop_and_join()
    {
        admin.stop();
        exec.stop();
        admin.join();
        exec.join();
    }

    boost::asio::thread_pool admin;
    boost::asio::thread_pool exec;
    // Set by main (the model thread's refresh_then): has the model look at the names a job
    // changed, then runs `then` on the loop once the API's model has what that changed. Unset
    // (tests, fuzzing), `then` is posted to the loop at once.
    std::function<void(std::vector<std::string> names, std::function<void()> then)> refresh_then;
};

} // namespace netnsd::server
