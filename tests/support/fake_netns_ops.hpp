// fake_netns_ops: an in-memory netns_ops for api's unit tests. It behaves like the kernel the
// real one talks to (names that are live namespaces or stale files, processes in namespaces,
// nsids that are never reused or changed), and a test can make the next call fail with any
// error, so that every admin response can be driven without root. probe() says what a look at
// a name finds now, for the model refresh a transport makes after a job. Test thread only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/errc.hpp"
#include "core/netns_ops.hpp"

namespace netnsd::test
{

class fake_netns_ops final : public core::netns_ops
{
public:
    // name -> the namespace it binds; nullopt for a stale file.
    std::map<std::string, std::optional<core::ns_identity>> names;
    std::map<pid_t, core::ns_identity> processes;
    std::map<std::uint64_t, core::nsid_t> nsids; // by ns_id
    // Namespaces held by something the fake does not model (an fd): they outlive their names.
    std::set<std::uint64_t> held;
    // When set, the next call fails with it (and detail) and is then cleared.
    std::optional<std::pair<std::error_code, std::string>> fail_next;
    std::vector<core::kernel::exec_request> execs;
    core::kernel::exec_result exec_answer;
    std::uint64_t next_ns = 1;

    core::ns_identity fresh()
    {
        const auto n = next_ns++;
        return core::ns_identity{5000 + n, 4, 4026540000 + n};
    }

    // What a look at `name` finds (the monitor's probe).
    core::probe_result probe(const std::string& name) const
    {
        core::probe_result r;
        const auto it = names.find(name);
        if (it == names.end())
        {
            r.exists = false;
            return r;
        }
        if (it->second)
        {
            r.state = core::entry_state::live;
            r.identity = *it->second;
            if (const auto n = nsids.find(it->second->ns_id); n != nsids.end())
                r.nsid = n->second;
        }
        return r;
    }

    std::error_code create(const std::string& name, std::string& detail) override
    {
        if (auto ec = failed(detail))
            return ec;
        if (names.count(name) != 0)
            return fail(core::errc::already_exists, detail, "netns \"" + name + "\" exists");
        names[name] = fresh();
        return {};
    }

    std::error_code attach(const std::string& name, pid_t pid, std::string& detail) override
    {
        if (auto ec = failed(detail))
            return ec;
        const auto p = processes.find(pid);
        if (p == processes.end())
            return fail(core::errc::no_such_process, detail, "no process " + std::to_string(pid));
        if (names.count(name) != 0)
            return fail(core::errc::already_exists, detail, "netns \"" + name + "\" exists");
        names[name] = p->second;
        return {};
    }

    std::error_code remove(const std::string& name, removal& out, std::string& detail) override
    {
        out = {};
        if (auto ec = failed(detail))
            return ec;
        const auto it = names.find(name);
        if (it == names.end())
            return fail(core::errc::not_found, detail, "no netns named \"" + name + "\"");
        out.identity = it->second;
        names.erase(it);
        if (out.identity)
        {
            bool named = false;
            for (const auto& [other, id] : names)
                named = named || id == out.identity;
            out.alive =
                named || !pids_in(*out.identity).empty() || held.count(out.identity->ns_id) != 0;
        }
        return {};
    }

    std::optional<core::nsid_t> set_nsid(const std::string& name, std::optional<core::nsid_t> want,
                                         std::error_code& ec, std::string& detail) override
    {
        const auto id = identity_of(name, ec, detail);
        if (!id)
            return std::nullopt;
        if (nsids.count(id->ns_id) != 0)
        {
            ec = fail(core::errc::nsid_assigned, detail, "the namespace already has an nsid");
            return std::nullopt;
        }
        core::nsid_t chosen = want.value_or(0);
        const auto used = [&](core::nsid_t n)
        {
            return std::any_of(nsids.begin(), nsids.end(),
                               [&](auto& kv) { return kv.second == n; });
        };
        if (want && used(*want))
        {
            ec = fail(core::errc::nsid_in_use, detail, "the nsid is already used");
            return std::nullopt;
        }
        while (!want && used(chosen))
            ++chosen;
        nsids[id->ns_id] = chosen;
        return chosen;
    }

    std::optional<core::ns_identity> identity_of(const std::string& name, std::error_code& ec,
                                                 std::string& detail) override
    {
        if ((ec = failed(detail)))
            return std::nullopt;
        const auto it = names.find(name);
        if (it == names.end())
        {
            ec = fail(core::errc::not_found, detail, "no netns named \"" + name + "\"");
            return std::nullopt;
        }
        if (!it->second)
        {
            ec = fail(core::errc::not_a_namespace, detail,
                      "the entry is stale: not a live network namespace");
            return std::nullopt;
        }
        return it->second;
    }

    std::vector<pid_t> pids_in(const core::ns_identity& id) override
    {
        std::vector<pid_t> out;
        for (const auto& [pid, in] : processes)
            if (in == id)
                out.push_back(pid);
        return out;
    }

    core::kernel::exec_result exec(core::kernel::exec_request req) override
    {
        execs.push_back(req);
        auto result = exec_answer;
        std::string detail;
        if (const auto ec = failed(detail))
        {
            result.ec = ec;
            result.detail = detail;
        }
        return result;
    }

private:
    static std::error_code fail(std::error_code ec, std::string& detail, std::string text)
    {
        detail = std::move(text);
        return ec;
    }

    std::error_code failed(std::string& detail)
    {
        if (!fail_next)
            return {};
        auto [ec, text] = std::move(*fail_next);
        fail_next.reset();
        return fail(ec, detail, std::move(text));
    }
};

} // namespace netnsd::test
