#include "api/host_inventory.hpp"

#include <charconv>
#include <optional>
#include <variant>

#include "core/kernel/proc_sweep.hpp"
#include "core/owner.hpp"

#include "api/json.hpp"
#include "api/problem.hpp"
#include "api/uri.hpp"

namespace netnsd::api
{
namespace
{

template <typename T>
bool parse_whole(std::string_view text, T& out)
{
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return !text.empty() && ec == std::errc{} && ptr == end;
}

response bad(std::string detail)
{
    return problem(problem_type::bad_request, std::move(detail));
}

// held_by=name,mount,process (any of them) or none (leak candidates): the bits; 0 for none.
std::optional<unsigned> parse_held_by(std::string_view list, bool& none)
{
    unsigned bits = 0;
    while (true)
    {
        const auto comma = list.find(',');
        const auto item = list.substr(0, comma);
        if (item == "name")
            bits |= static_cast<unsigned>(core::holder::name);
        else if (item == "mount")
            bits |= static_cast<unsigned>(core::holder::mount);
        else if (item == "process")
            bits |= static_cast<unsigned>(core::holder::process);
        else if (item == "fd")
            bits |= static_cast<unsigned>(core::holder::fd);
        else if (item == "socket")
            bits |= static_cast<unsigned>(core::holder::socket);
        else if (item == "none")
            none = true;
        else
            return std::nullopt;
        if (comma == std::string_view::npos)
            return bits;
        list.remove_prefix(comma + 1);
    }
}

// The ns_id of the path, or the problem to answer.
std::variant<std::uint64_t, response> ns_id_of(const core::registry& model, std::string_view raw)
{
    std::uint64_t ns_id = 0;
    if (!parse_whole(raw, ns_id) || ns_id == 0)
        return bad("the namespace's ns_id is a whole number >= 1");
    if (!model.host(ns_id))
        return problem(problem_type::not_found,
                       "netnsd knows no network namespace with that ns_id (now)", host_href(ns_id));
    return ns_id;
}

// {"namespaces":[...],"revision":N} (the keys in dump()'s order) with the rows `keep` keeps,
// written a row at a time: the JSON tree of the whole list is never built (at 5000 namespaces
// it took ~18 MiB, which the heap then kept, freed but not given back).
template <typename Keep>
std::string list_body(const core::registry& model, Keep keep)
{
    std::string out = R"({"namespaces":[)";
    bool first = true;
    model.for_each_host_namespace(
        [&](const core::host_namespace& h)
        {
            if (!keep(h))
                return;
            if (!first)
                out += ',';
            first = false;
            out += dump(to_json(h));
        });
    out += R"(],"revision":)";
    out += std::to_string(model.revision());
    out += '}';
    return out;
}

} // namespace

std::shared_ptr<const std::string> host_list_cache::body()
{
    if (!body_ || generation_ != model_.host_generation())
    {
        body_ = std::make_shared<const std::string>(
            list_body(model_, [](const core::host_namespace&) { return true; }));
        generation_ = model_.host_generation();
    }
    return body_;
}

response list_hosts(const core::registry& model, std::string_view query, host_list_cache* cache)
{
    if (cache != nullptr && query.empty())
    {
        auto r = json_response(200, {});
        r.shared_body = cache->body();
        return r;
    }
    const auto params = parse_query(query);
    if (!params)
        return bad("the query string has a malformed percent-escape");
    std::optional<unsigned> held_by;
    bool held_by_none = false;
    std::optional<bool> leak;
    std::optional<std::string> owner;
    for (const auto& [key, value] : *params)
    {
        if (key == "owner")
        {
            bool known = false;
            for (auto k :
                 {core::owner_kind::unknown, core::owner_kind::process, core::owner_kind::netns_dir,
                  core::owner_kind::systemd, core::owner_kind::kubernetes, core::owner_kind::podman,
                  core::owner_kind::cri_o, core::owner_kind::containerd, core::owner_kind::docker})
                known = known || core::to_string(k) == value;
            if (!known)
                return bad("owner is one of docker, containerd, cri-o, podman, kubernetes, "
                           "systemd, netns-dir, process or unknown");
            owner = value;
            continue;
        }
        if (key == "held_by")
        {
            held_by = parse_held_by(value, held_by_none);
            if (!held_by)
                return bad("held_by is a comma-separated list of name, mount, process, fd, socket "
                           "or none");
        }
        else if (key == "leak")
        {
            if (value != "true" && value != "false")
                return bad("leak must be true or false");
            leak = value == "true";
        }
        else
            return bad("unknown query parameter '" + key + "'; expected owner, held_by or leak");
    }
    return json_response(
        200, list_body(model,
                       [&](const core::host_namespace& h)
                       {
                           const auto bits = h.held_by();
                           if (held_by && (bits & *held_by) == 0 && !(held_by_none && bits == 0))
                               return false;
                           if (leak && h.is_leak() != *leak)
                               return false;
                           return !owner || core::to_string(h.owner.kind) == *owner;
                       }));
}

response get_host(const core::registry& model, std::string_view raw_ns_id)
{
    auto id = ns_id_of(model, raw_ns_id);
    if (auto* r = std::get_if<response>(&id))
        return std::move(*r);
    return json_response(200, dump(to_json(*model.host(std::get<std::uint64_t>(id)))));
}

response process_host(const core::registry& model, std::string_view raw_pid)
{
    std::int32_t pid = 0;
    if (!parse_whole(raw_pid, pid) || pid <= 0)
        return bad("the pid must be a whole number above 0");
    const auto ns_id = model.host_of_pid(pid);
    if (!ns_id)
        return problem(problem_type::no_such_process,
                       "no process " + std::to_string(pid) +
                           " was in any network namespace at the last /proc sweep");
    return json_response(200, dump(to_json(*model.host(*ns_id))));
}

response host_processes(const core::registry& model, std::string_view raw_ns_id,
                        std::string_view query)
{
    auto id = ns_id_of(model, raw_ns_id);
    if (auto* r = std::get_if<response>(&id))
        return std::move(*r);
    const auto ns_id = std::get<std::uint64_t>(id);
    const auto params = parse_query(query);
    if (!params)
        return bad("the query string has a malformed percent-escape");
    std::size_t offset = 0;
    std::size_t limit = host_page_limits::default_page_size;
    for (const auto& [key, value] : *params)
    {
        if (key == "offset")
        {
            if (!parse_whole(std::string_view(value), offset))
                return bad("offset must be a whole number >= 0");
        }
        else if (key == "limit")
        {
            if (!parse_whole(std::string_view(value), limit) || limit == 0 ||
                limit > host_page_limits::max_page_size)
                return bad("limit must be a whole number from 1 to " +
                           std::to_string(host_page_limits::max_page_size));
        }
        else
            return bad("unknown query parameter '" + key + "'; expected offset or limit");
    }
    const auto& pids = *model.processes_of(ns_id);
    json rows = json::array();
    for (auto i = offset; i < pids.size() && i < offset + limit; ++i)
    {
        json row = json::object();
        row["pid"] = pids[i];
        // The pids are the last sweep's; the rest is read now. A process that exited since
        // shows null (until the next sweep drops it).
        const auto info = core::kernel::read_process(pids[i]);
        row["comm"] = info ? json(info->comm) : json(nullptr);
        row["uid"] = info && info->uid ? json(*info->uid) : json(nullptr);
        row["cgroup"] = info && info->cgroup ? json(*info->cgroup) : json(nullptr);
        rows.push_back(std::move(row));
    }
    json body = json::object();
    body["ns_id"] = ns_id;
    body["revision"] = model.revision();
    body["count"] = pids.size();
    body["offset"] = offset;
    body["limit"] = limit;
    body["processes"] = std::move(rows);
    body["next"] =
        offset + limit < pids.size()
            ? json(host_href(ns_id) + "/processes?offset=" + std::to_string(offset + limit) +
                   "&limit=" + std::to_string(limit))
            : json(nullptr);
    return json_response(200, dump(body));
}

} // namespace netnsd::api
