// Builders for unit tests of the model: identities, probe results, fixed times, and an event
// log that records what a registry emits as one line per event, so a test can assert a whole
// sequence exactly. Also teaches doctest to print the std types the tests compare. Test
// thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream> // doctest prints std::error_code through operator<<
#include <string>
#include <type_traits>
#include <vector>

#include <doctest/doctest.h>

#include "core/model.hpp"
#include "core/registry.hpp"

namespace netnsd::test
{

// A distinct namespace per n, shaped like the kernel's: nsfs is dev 0:4, inodes near 4026531840.
inline core::ns_identity identity(std::uint64_t n)
{
    return core::ns_identity{1000 + n, 4, 4026532000 + n};
}

inline core::probe_result live(std::uint64_t n, std::optional<core::nsid_t> nsid = std::nullopt)
{
    return core::probe_result{core::entry_state::live, identity(n), nsid};
}

inline core::probe_result stale()
{
    return core::probe_result{};
}

// A fixed instant: the epoch plus `ms` milliseconds.
inline core::time_point at_ms(std::int64_t ms)
{
    return core::time_point{} + std::chrono::milliseconds(ms);
}

inline const char* type_name(core::event_type type)
{
    switch (type)
    {
    case core::event_type::added:
        return "added";
    case core::event_type::deleted:
        return "deleted";
    case core::event_type::nsid_set:
        return "nsid_set";
    case core::event_type::destroyed:
        return "destroyed";
    case core::event_type::found:
        return "found";
    case core::event_type::holders:
        return "holders";
    case core::event_type::link:
        return "link";
    case core::event_type::address:
        return "address";
    }
    return "?";
}

// "3 added a nsid=7": revision, type, name ("-" when none), nsid ("none" when none).
inline std::string line(const core::event& e)
{
    std::string out = std::to_string(e.revision) + " " + type_name(e.type) + " ";
    out += e.name ? *e.name : std::string("-");
    out += " nsid=" + (e.nsid ? std::to_string(*e.nsid) : std::string("none"));
    return out;
}

// Records every event a registry emits, through its listener.
class event_log
{
public:
    explicit event_log(core::registry& model)
    {
        model.set_listener([this](const core::event& e) { events.push_back(e); });
    }

    std::vector<std::string> lines() const
    {
        std::vector<std::string> out;
        for (const auto& e : events)
            out.push_back(line(e));
        return out;
    }

    // The lines of the events recorded since the last call, so a test can go step by step.
    std::vector<std::string> take()
    {
        std::vector<std::string> out;
        for (auto i = taken_; i < events.size(); ++i)
            out.push_back(line(events[i]));
        taken_ = events.size();
        return out;
    }

    std::vector<core::event> events;

private:
    std::size_t taken_ = 0;
};

using lines = std::vector<std::string>;

} // namespace netnsd::test

namespace doctest
{

template <typename T>
struct StringMaker<std::vector<T>>
{
    static String convert(const std::vector<T>& v)
    {
        String out = "{";
        for (std::size_t i = 0; i < v.size(); ++i)
        {
            if (i != 0)
                out += ", ";
            if constexpr (std::is_same_v<T, std::string>)
                out += String("\"") + v[i].c_str() + "\"";
            else
                out += toString(v[i]);
        }
        out += "}";
        return out;
    }
};

template <typename T>
struct StringMaker<std::optional<T>>
{
    static String convert(const std::optional<T>& v)
    {
        if (!v)
            return "nullopt";
        return toString(*v);
    }
};

} // namespace doctest
