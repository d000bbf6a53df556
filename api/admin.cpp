#include "api/admin.hpp"

#include <cctype>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "core/errc.hpp"
#include "core/log.hpp"
#include "core/name.hpp"

#include "api/json.hpp"
#include "api/problem.hpp"
#include "api/uri.hpp"

namespace netnsd::api
{
namespace
{

response bad_body(std::string detail)
{
    return problem(problem_type::invalid_body, std::move(detail));
}

// A JSON object body whose keys are all in `allowed`; or the problem to answer.
std::variant<json, response> object_body(const request& req,
                                         std::initializer_list<std::string_view> allowed)
{
    // JSON, or no type, or curl's default for -d (application/x-www-form-urlencoded), so that
    // `curl -d '{...}'` works as people type it; anything else is surely not JSON.
    // Media types are case-insensitive (RFC 9110 §8.3.1).
    const auto header = req.header("Content-Type");
    std::string type(header.substr(0, header.find(';')));
    while (!type.empty() && type.back() == ' ')
        type.pop_back();
    for (auto& c : type)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!type.empty() && type != "application/json" && !type.ends_with("+json") &&
        type != "application/x-www-form-urlencoded")
        return problem(problem_type::unsupported_media, "send the body as application/json");
    auto body = json::parse(req.body, nullptr, false);
    if (body.is_discarded())
        return bad_body("the body is not JSON");
    if (!body.is_object())
        return bad_body("the body must be a JSON object");
    for (const auto& [key, value] : body.items())
    {
        bool known = false;
        for (auto a : allowed)
            known = known || key == a;
        if (!known)
            return bad_body("unknown field '" + key + "'");
    }
    return body;
}

// An nsid field: a whole number 0..INT32_MAX, or "auto" (nullopt).
std::variant<std::optional<core::nsid_t>, response> nsid_field(const json& value)
{
    if (value.is_string() && value.get<std::string>() == "auto")
        return std::optional<core::nsid_t>{};
    if (value.is_number_integer())
    {
        const auto n = value.get<std::int64_t>();
        if (n >= 0 && n <= INT32_MAX)
            return std::optional<core::nsid_t>{static_cast<core::nsid_t>(n)};
    }
    return bad_body("nsid must be a whole number from 0 to 2147483647, or \"auto\"");
}

std::optional<response> check_name(std::string_view name)
{
    if (const auto error = core::check_name(name); error != core::name_error::none)
        return problem(problem_type::invalid_name, std::string(core::describe(error)));
    return std::nullopt;
}

std::string base64(std::string_view bytes)
{
    static constexpr char table[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3)
    {
        const auto n = (static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16) |
                       (static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                       static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 2]));
        out.push_back(table[(n >> 18) & 63]);
        out.push_back(table[(n >> 12) & 63]);
        out.push_back(table[(n >> 6) & 63]);
        out.push_back(table[n & 63]);
    }
    if (i < bytes.size())
    {
        auto n = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
        if (i + 1 < bytes.size())
            n |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        out.push_back(table[(n >> 18) & 63]);
        out.push_back(table[(n >> 12) & 63]);
        out.push_back(i + 1 < bytes.size() ? table[(n >> 6) & 63] : '=');
        out.push_back('=');
    }
    return out;
}

json pid_list(const std::vector<pid_t>& pids)
{
    json list = json::array();
    for (auto p : pids)
        list.push_back(p);
    return list;
}

} // namespace

admin::admin(const core::registry& model, core::netns_ops& ops, std::string netns_dir,
             admin_settings settings, core::model_control* control)
    : model_(model), ops_(ops), netns_dir_(std::move(netns_dir)), settings_(std::move(settings)),
      control_(control)
{
}

response admin::failure(const std::error_code& ec, const std::string& detail,
                        const std::string& name) const
{
    // The same 404 as a read of the name: the kernel has no such entry.
    if (ec == core::errc::not_found)
        return problem(problem_type::not_found, "no entry of that name in " + netns_dir_,
                       entry_href(name));
    return problem_for(ec, detail);
}

response admin::entry_response(const std::string& name, unsigned status) const
{
    const auto found = model_.find(name);
    if (!found)
        return problem(problem_type::not_found, "no entry of that name in " + netns_dir_,
                       entry_href(name));
    return json_response(status, dump(to_json(*found, netns_dir_)));
}

admin::outcome admin::create(const request& req)
{
    auto parsed = object_body(req, {"name", "nsid", "pid"});
    if (auto* r = std::get_if<response>(&parsed))
        return std::move(*r);
    const auto& body = std::get<json>(parsed);
    if (!body.contains("name") || !body["name"].is_string())
        return bad_body("name is required and must be a string");
    auto name = body["name"].get<std::string>();
    if (auto bad = check_name(name))
        return std::move(*bad);
    std::optional<std::optional<core::nsid_t>> nsid; // outer: requested at all
    if (body.contains("nsid"))
    {
        auto field = nsid_field(body["nsid"]);
        if (auto* r = std::get_if<response>(&field))
            return std::move(*r);
        nsid = std::get<std::optional<core::nsid_t>>(field);
    }
    std::optional<pid_t> pid;
    if (body.contains("pid"))
    {
        const auto& v = body["pid"];
        if (!v.is_number_integer() || v.get<std::int64_t>() <= 0 ||
            v.get<std::int64_t>() > INT32_MAX)
            return bad_body("pid must be a whole number from 1 to 2147483647");
        pid = static_cast<pid_t>(v.get<std::int64_t>());
    }

    deferred job;
    job.refresh = {name};
    job.work = [this, name, nsid, pid]() -> std::function<response()>
    {
        std::string detail;
        auto ec = pid ? ops_.attach(name, *pid, detail) : ops_.create(name, detail);
        if (ec == core::errc::thread_netns_lost)
        {
            // This worker thread is stuck in another network namespace: anything it did next
            // (an nsid, a socket) would happen in the wrong one. Stop; the supervisor restarts.
            core::log::error("exiting: a worker thread is stuck in another namespace",
                             {{"error", detail}});
            std::_Exit(EXIT_FAILURE);
        }
        if (!ec && nsid)
        {
            ops_.set_nsid(name, *nsid, ec, detail);
            if (ec)
            {
                // Nothing half-created: the name goes again.
                core::netns_ops::removal ignored;
                std::string undo_detail;
                ops_.remove(name, ignored, undo_detail);
            }
        }
        return [this, name, ec, detail]() -> response
        {
            auto r = ec ? problem_for(ec, detail) : entry_response(name, 201);
            if (!ec && r.status == 201)
                r.headers.emplace_back("Location", entry_href(name));
            else if (!ec)
                r = problem(problem_type::operation_failed,
                            "the namespace was created but has gone again");
            r.audit_name = name;
            return r;
        };
    };
    return job;
}

admin::outcome admin::remove(std::string_view raw)
{
    std::string name(raw);
    if (auto bad = check_name(name))
        return std::move(*bad);
    deferred job;
    job.refresh = {name};
    job.work = [this, name]() -> std::function<response()>
    {
        std::string detail;
        core::netns_ops::removal out;
        const auto ec = ops_.remove(name, out, detail);
        return [this, name, ec, detail, out]() -> response
        {
            if (ec)
            {
                auto r = failure(ec, detail, name);
                r.audit_name = name;
                return r;
            }
            // The processes inside, as the model's last /proc sweep saw them (no scan of every
            // process per delete), and only while the namespace lives on: a freed one has none.
            std::vector<pid_t> pids;
            if (out.identity && out.alive.value_or(true))
                if (const auto* swept = model_.processes_of(out.identity->ns_id))
                    pids.assign(swept->begin(), swept->end());
            // Where the kernel cannot say, alive while a process is inside or another name
            // still binds it (open fds elsewhere cannot be seen; its `destroyed` event tells
            // when it is really gone).
            const bool alive = out.alive.value_or(
                !pids.empty() || (out.identity && !model_.names_of(*out.identity).empty()));
            json body = json::object();
            body["name"] = name;
            body["namespace_alive"] = alive;
            body["pids"] = pid_list(pids);
            auto r = json_response(200, dump(body));
            r.audit_name = name;
            return r;
        };
    };
    return job;
}

admin::outcome admin::remove_all()
{
    std::vector<std::string> names;
    for (const auto& [name, slot] : model_.slots())
        names.push_back(name);
    deferred job;
    job.refresh = names;
    job.work = [this, names]() -> std::function<response()>
    {
        std::vector<std::string> deleted;
        std::vector<std::pair<std::string, std::string>> failed;
        for (const auto& name : names)
        {
            std::string detail;
            core::netns_ops::removal out;
            // Unlike `ip -all netns del`, keep going past a failure.
            if (auto ec = ops_.remove(name, out, detail))
                failed.emplace_back(name, detail.empty() ? ec.message() : detail);
            else
                deleted.push_back(name);
        }
        return [deleted, failed]() -> response
        {
            json body = json::object();
            body["deleted"] = json::array();
            for (const auto& name : deleted)
                body["deleted"].push_back(name);
            body["failed"] = json::array();
            for (const auto& [name, detail] : failed)
                body["failed"].push_back(json{{"name", name}, {"detail", detail}});
            auto r = json_response(200, dump(body));
            r.audit_name = "*";
            return r;
        };
    };
    return job;
}

admin::outcome admin::set_nsid(std::string_view raw, const request& req)
{
    std::string name(raw);
    if (auto bad = check_name(name))
        return std::move(*bad);
    auto parsed = object_body(req, {"nsid"});
    if (auto* r = std::get_if<response>(&parsed))
        return std::move(*r);
    const auto& body = std::get<json>(parsed);
    if (!body.contains("nsid"))
        return bad_body("nsid is required");
    auto field = nsid_field(body["nsid"]);
    if (auto* r = std::get_if<response>(&field))
        return std::move(*r);
    const auto want = std::get<std::optional<core::nsid_t>>(field);
    deferred job;
    job.refresh = {name};
    job.work = [this, name, want]() -> std::function<response()>
    {
        std::error_code ec;
        std::string detail;
        ops_.set_nsid(name, want, ec, detail);
        return [this, name, ec, detail]() -> response
        {
            auto r = ec ? failure(ec, detail, name) : entry_response(name, 200);
            r.audit_name = name;
            return r;
        };
    };
    return job;
}

admin::outcome admin::pids(std::string_view raw)
{
    const std::string name(raw);
    if (auto bad = check_name(name))
        return std::move(*bad);
    deferred job;
    job.work = [this, name]() -> std::function<response()>
    {
        std::error_code ec;
        std::string detail;
        const auto id = ops_.identity_of(name, ec, detail);
        auto list = id ? ops_.pids_in(*id) : std::vector<pid_t>{};
        return [this, name, ec, detail, list]() -> response
        {
            if (ec)
                return failure(ec, detail, name);
            json body = json::object();
            body["pids"] = pid_list(list);
            return json_response(200, dump(body));
        };
    };
    return job;
}

namespace
{

// An exec body into the request; or the problem to answer.
std::optional<response> parse_exec(const json& body, core::kernel::exec_request& run,
                                   bool& as_base64)
{
    if (!body.contains("argv") || !body["argv"].is_array() || body["argv"].empty())
        return bad_body("argv is required: a non-empty array of strings");
    for (const auto& a : body["argv"])
    {
        if (!a.is_string())
            return bad_body("argv must hold only strings");
        run.argv.push_back(a.get<std::string>());
    }
    if (body.contains("stdin"))
    {
        if (!body["stdin"].is_string())
            return bad_body("stdin must be a string");
        run.stdin_data = body["stdin"].get<std::string>();
    }
    long timeout = admin::default_exec_timeout_ms;
    if (body.contains("timeout_ms"))
    {
        const auto& t = body["timeout_ms"];
        if (!t.is_number_integer() || t.get<std::int64_t>() < 1 ||
            t.get<std::int64_t>() > admin::max_exec_timeout_ms)
            return bad_body("timeout_ms must be a whole number from 1 to 300000");
        timeout = static_cast<long>(t.get<std::int64_t>());
    }
    run.timeout = std::chrono::milliseconds(timeout);
    if (body.contains("env"))
    {
        if (!body["env"].is_object())
            return bad_body("env must be an object of strings");
        for (const auto& [key, value] : body["env"].items())
        {
            if (!value.is_string() || key.empty() || key.find('=') != std::string::npos)
                return bad_body("env must map names (without '=') to strings");
            run.env.emplace_back(key, value.get<std::string>());
        }
    }
    if (body.contains("output"))
    {
        const auto& o = body["output"];
        if (!o.is_string() || (o.get<std::string>() != "text" && o.get<std::string>() != "base64"))
            return bad_body("output must be \"text\" or \"base64\"");
        as_base64 = o.get<std::string>() == "base64";
    }
    return std::nullopt;
}

json exec_json(const core::kernel::exec_result& result, bool as_base64)
{
    json out = json::object();
    out["exit_code"] = result.exit_code ? json(*result.exit_code) : json(nullptr);
    out["signal"] = result.signal ? json(*result.signal) : json(nullptr);
    out["stdout"] = as_base64 ? base64(result.out) : result.out;
    out["stderr"] = as_base64 ? base64(result.err) : result.err;
    out["stdout_truncated"] = result.out_truncated;
    out["stderr_truncated"] = result.err_truncated;
    out["timed_out"] = result.timed_out;
    out["duration_ms"] = result.duration_ms;
    out["warnings"] = json::array();
    for (const auto& w : result.warnings)
        out["warnings"].push_back(w);
    return out;
}

} // namespace

admin::outcome admin::exec(std::string_view raw, const request& req)
{
    std::string name(raw);
    if (!settings_.enable_exec)
        return problem(problem_type::exec_disabled, "netnsd runs without --enable-exec");
    if (auto bad = check_name(name))
        return std::move(*bad);
    auto parsed = object_body(req, {"argv", "stdin", "timeout_ms", "env", "output"});
    if (auto* r = std::get_if<response>(&parsed))
        return std::move(*r);
    core::kernel::exec_request run;
    run.name = name;
    run.etc_netns_dir = settings_.etc_netns_dir;
    run.output_limit = settings_.exec_output_limit;
    bool as_base64 = false;
    if (auto bad = parse_exec(std::get<json>(parsed), run, as_base64))
        return std::move(*bad);
    if (running_execs_ >= settings_.max_exec)
        return problem(problem_type::too_many_execs,
                       std::to_string(running_execs_) + " execs are running; try again later");

    ++running_execs_;
    deferred job;
    job.where = deferred::pool::exec;
    job.work = [this, run = std::move(run), as_base64, name]() -> std::function<response()>
    {
        auto result = ops_.exec(run);
        return [this, result = std::move(result), as_base64, name]() -> response
        {
            --running_execs_;
            auto r = result.ec ? failure(result.ec, result.detail, name)
                               : json_response(200, dump(exec_json(result, as_base64)));
            r.audit_name = name;
            return r;
        };
    };
    return job;
}

admin::outcome admin::audit()
{
    if (control_ == nullptr)
        return problem(problem_type::no_route, "this netnsd cannot audit its model");
    deferred job;
    job.work = [this]() -> std::function<response()>
    {
        auto report = control_->audit_now();
        return [report = std::move(report)]() -> response
        {
            json body = json::object();
            body["entries"] = report.entries;
            body["duration_ms"] = report.seconds * 1000.0;
            json found = json::array();
            for (const auto& d : report.divergences)
            {
                json one = json::object();
                one["kind"] = std::string(core::to_string(d.what));
                one["name"] = d.name.empty() ? json(nullptr) : json(d.name);
                one["nsid"] = d.nsid ? json(*d.nsid) : json(nullptr);
                one["detail"] = d.detail;
                found.push_back(std::move(one));
            }
            body["divergences"] = std::move(found);
            auto r = json_response(200, dump(body));
            r.audit_name = "*";
            return r;
        };
    };
    return job;
}

admin::outcome admin::deep_scan()
{
    if (control_ == nullptr)
        return problem(problem_type::no_route, "this netnsd cannot scan for fd and socket holders");
    deferred job;
    job.work = [this]() -> std::function<response()>
    {
        auto report = control_->deep_scan_now();
        return [report]() -> response
        {
            json body = json::object();
            body["processes"] = report.processes;
            body["fds"] = report.fds;
            body["sockets"] = report.sockets;
            body["socket_failures"] = report.socket_failures;
            body["held_by_fd"] = report.held_by_fd;
            body["held_by_socket"] = report.held_by_socket;
            body["found"] = report.found;
            body["duration_ms"] = report.seconds * 1000.0;
            auto r = json_response(200, dump(body));
            r.audit_name = "*";
            return r;
        };
    };
    return job;
}

} // namespace netnsd::api
