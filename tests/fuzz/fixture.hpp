// fixture: the model every fuzz target that needs one shares: a registry with live, stale and
// odd-named entries (spaces, UTF-8, bytes that are not UTF-8), nsids named and unnamed, and a
// journal with events of every type, so that lookups, lists, ?since= replays and name globs
// all have something to find. The netns dir does not exist, and the monitor is never opened:
// nothing here reaches the kernel. Built once per fuzzer process; the fuzzer's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "core/model.hpp"
#include "core/registry.hpp"

namespace netnsd::fuzz
{

// Nothing is ever created here: the admin jobs that would are dropped unrun.
inline constexpr const char* netns_dir = "/nonexistent/netnsd-fuzz/netns";
inline constexpr const char* admin_token = "fuzz-token";

inline core::time_point fixed_time()
{
    return core::time_point{std::chrono::milliseconds{1'795'887'601'123}};
}

inline core::probe_result live(std::uint64_t n, std::optional<core::nsid_t> nsid = std::nullopt)
{
    return core::probe_result{core::entry_state::live,
                              core::ns_identity{1000 + n, 4, 4026532000 + n}, nsid};
}

// Fills `model`: a history of every event type, then the state the targets see.
inline void fill(core::registry& model)
{
    const auto t = fixed_time();
    model.apply_probe("blue", live(1, 0), t);
    model.apply_probe("red", live(2), t);
    model.apply_probe("green", live(3), t);
    model.set_nsid(core::ns_identity{1003, 4, 4026532003}, 7, t);
    model.apply_probe("alias", live(3, 7), t); // a second name of green's namespace
    model.apply_probe("stale", core::probe_result{}, t);
    model.apply_probe("with space", live(4), t);
    model.apply_probe("caf\xc3\xa9", live(5), t);
    model.apply_probe("\xff\xfe-not-utf8", live(6), t);
    model.apply_probe(std::string(255, 'a'), live(8), t); // the longest name the kernel takes
    model.apply_probe("gone", live(7, 9), t);
    model.erase("gone", t);
    model.destroy_nsid(9, t);
    model.add_unnamed_nsid(11, t);
}

} // namespace netnsd::fuzz
