// api/admin: every admin response, driven through a fake kernel (tests/support/fake_netns_ops)
// without root. A job runs as a transport runs it: the work (here, in place), then the model
// looks at the names the job changed (the fake's view of them), then the continuation answers
// from the model. The kernel, never the model, decides whether a name exists: the model trails
// the kernel by the notifications not read yet, so nothing is refused on its word.
#include <string>
#include <variant>

#include <doctest/doctest.h>

#include "core/registry.hpp"

#include "api/admin.hpp"
#include "api/http.hpp"
#include "api/json.hpp"
#include "api/problem.hpp"

#include "support/builders.hpp"
#include "support/fake_netns_ops.hpp"

namespace
{

using namespace netnsd;
using api::deferred;
using api::json;
using api::request;
using api::response;
using test::at_ms;

constexpr const char* dir = "/run/netns-test";

struct fake_control final : core::model_control
{
    audit_report answer;
    int audits = 0;
    audit_report audit_now() override
    {
        ++audits;
        return answer;
    }
    deep_scan_report scan_answer;
    int scans = 0;
    deep_scan_report deep_scan_now() override
    {
        ++scans;
        return scan_answer;
    }
};

struct fixture
{
    core::registry model{100};
    test::fake_netns_ops kernel;
    fake_control control;
    api::admin ops{model, kernel, dir, api::admin_settings{true, 1 << 20, 2, "/etc/netns"},
                   &control};

    static request make(std::string method, std::string target, std::string body = {})
    {
        request req;
        req.method = std::move(method);
        req.target = std::move(target);
        req.has_body = !body.empty();
        req.body = std::move(body);
        return req;
    }

    // Runs an outcome as http_session does: work, refresh the names, answer.
    response run(api::admin::outcome out)
    {
        if (auto* r = std::get_if<response>(&out))
            return std::move(*r);
        auto& job = std::get<deferred>(out);
        auto finish = job.work();
        for (const auto& name : job.refresh)
        {
            const auto found = kernel.probe(name);
            if (found.exists)
                model.apply_probe(name, found, at_ms(1));
            else
                model.erase(name, at_ms(1));
        }
        return finish();
    }

    response create(const std::string& body)
    {
        return run(ops.create(make("POST", "/api/v1/netns", body)));
    }
};

json body_of(const response& r)
{
    auto j = json::parse(r.payload(), nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    return j;
}

std::string problem_type_of(const response& r)
{
    return body_of(r).at("type").get<std::string>();
}

bool has_header(const response& r, const std::string& name, const std::string& value)
{
    for (const auto& [k, v] : r.headers)
        if (k == name && v == value)
            return true;
    return false;
}

} // namespace

TEST_CASE_FIXTURE(fixture, "create answers 201 with the entry as the model has it after the job")
{
    const auto r = create(R"({"name":"blue"})");
    CHECK(r.status == 201u);
    CHECK(body_of(r).at("name") == "blue");
    CHECK(body_of(r).at("state") == "live");
    CHECK(body_of(r).at("nsid").is_null());
    CHECK(has_header(r, "Location", "/api/v1/netns/blue"));
    CHECK(r.audit_name == "blue");
    REQUIRE(model.find("blue"));
    CHECK(model.find("blue")->state == core::entry_state::live);
}

TEST_CASE_FIXTURE(fixture, "create with an nsid sets it, auto picks the lowest free one")
{
    kernel.names["taken"] = kernel.fresh();
    kernel.nsids[kernel.names["taken"]->ns_id] = 0;
    CHECK(body_of(create(R"({"name":"a","nsid":"auto"})")).at("nsid") == 1);
    CHECK(body_of(create(R"({"name":"b","nsid":7})")).at("nsid") == 7);
}

TEST_CASE_FIXTURE(fixture, "create with an nsid in use is 409 and leaves nothing half-created")
{
    kernel.names["owner"] = kernel.fresh();
    kernel.nsids[kernel.names["owner"]->ns_id] = 4;
    const auto r = create(R"({"name":"c","nsid":4})");
    CHECK(r.status == 409u);
    CHECK(problem_type_of(r) == "urn:netnsd:problem:nsid-in-use");
    CHECK(kernel.names.count("c") == 0);
    CHECK_FALSE(model.find("c"));
}

TEST_CASE_FIXTURE(fixture, "create of a name the kernel has is 409, whatever the model says")
{
    // The model has not seen it yet: the kernel's answer decides.
    kernel.names["here"] = std::nullopt;
    const auto r = create(R"({"name":"here"})");
    CHECK(r.status == 409u);
    CHECK(problem_type_of(r) == "urn:netnsd:problem:already-exists");
    // And the model has, after the job, looked at the name.
    REQUIRE(model.find("here"));
    CHECK(model.find("here")->state == core::entry_state::stale);

    // The model still has one the kernel no longer has: the create goes ahead.
    model.apply_probe("gone", test::live(9), at_ms(0));
    CHECK(create(R"({"name":"gone"})").status == 201u);
}

TEST_CASE_FIXTURE(fixture, "create with a pid attaches the process's namespace")
{
    const auto id = kernel.fresh();
    kernel.processes[4242] = id;
    const auto r = create(R"({"name":"sleeper","pid":4242})");
    CHECK(r.status == 201u);
    CHECK(body_of(r).at("ns_id") == id.ns_id);
    const auto missing = create(R"({"name":"nobody","pid":999})");
    CHECK(missing.status == 404u);
    CHECK(problem_type_of(missing) == "urn:netnsd:problem:no-such-process");
}

TEST_CASE_FIXTURE(fixture, "create refuses bad input before any job")
{
    for (const auto& [body, type] : std::initializer_list<std::pair<const char*, const char*>>{
             {R"({"name":".."})", "invalid-name"},
             {R"({"name":"a/b"})", "invalid-name"},
             {R"({})", "invalid-body"},
             {R"({"name":1})", "invalid-body"},
             {R"({"name":"a","extra":1})", "invalid-body"},
             {R"({"name":"a","nsid":-1})", "invalid-body"},
             {R"({"name":"a","pid":0})", "invalid-body"},
             {R"(not json)", "invalid-body"},
             {R"([1])", "invalid-body"}})
    {
        CAPTURE(body);
        const auto out = ops.create(make("POST", "/api/v1/netns", body));
        REQUIRE(std::holds_alternative<response>(out));
        CHECK(problem_type_of(std::get<response>(out)) ==
              std::string("urn:netnsd:problem:") + type);
    }
    auto req = make("POST", "/api/v1/netns", R"({"name":"a"})");
    req.headers.emplace_back("Content-Type", "text/plain");
    CHECK(std::get<response>(ops.create(req)).status ==
          api::status_of(api::problem_type::unsupported_media));
}

TEST_CASE_FIXTURE(fixture, "a kernel failure of create is the problem its error maps to")
{
    kernel.fail_next = {core::errc::dir_unavailable, "cannot create namespace file"};
    const auto r = create(R"({"name":"x"})");
    CHECK(r.status == 500u);
    CHECK(problem_type_of(r) == "urn:netnsd:problem:operation-failed");
    CHECK(body_of(r).at("detail") == "cannot create namespace file");
}

TEST_CASE_FIXTURE(fixture, "delete says whether the namespace lives on, and which processes "
                           "hold it, as the model's last sweep saw them")
{
    create(R"({"name":"plain"})");
    auto r = run(ops.remove("plain"));
    CHECK(r.status == 200u);
    CHECK(body_of(r) == json::parse(R"({"name":"plain","namespace_alive":false,"pids":[]})"));
    CHECK_FALSE(model.find("plain"));

    const auto id = kernel.fresh();
    kernel.processes[77] = id;
    create(R"({"name":"busy","pid":77})");
    // The kernel has 77 inside; the model has not swept it yet: no pid is made up.
    r = run(ops.remove("busy"));
    CHECK(body_of(r) == json::parse(R"({"name":"busy","namespace_alive":true,"pids":[]})"));
    // Once the sweep has seen them, the answer is the model's pids.
    create(R"({"name":"busy","pid":77})");
    model.found_namespace(id, false, at_ms(2), {{77, 78}, {}, 0, 0});
    r = run(ops.remove("busy"));
    CHECK(body_of(r) == json::parse(R"({"name":"busy","namespace_alive":true,"pids":[77,78]})"));

    // A namespace the kernel freed with its name has no process left, whatever the last sweep
    // saw.
    const auto freed = kernel.fresh();
    kernel.names["gone"] = freed;
    model.apply_probe("gone", kernel.probe("gone"), at_ms(3));
    model.found_namespace(freed, false, at_ms(3), {{90}, {}, 0, 0});
    r = run(ops.remove("gone"));
    CHECK(body_of(r) == json::parse(R"({"name":"gone","namespace_alive":false,"pids":[]})"));

    create(R"({"name":"held"})");
    kernel.held.insert(kernel.names["held"]->ns_id);
    CHECK(body_of(run(ops.remove("held"))).at("namespace_alive") == true);
}

TEST_CASE_FIXTURE(fixture, "delete of a name the kernel does not have is 404, stacked mounts 409")
{
    model.apply_probe("ghost", test::live(3), at_ms(0)); // the model trails the kernel
    auto r = run(ops.remove("ghost"));
    CHECK(r.status == 404u);
    CHECK(problem_type_of(r) == "urn:netnsd:problem:not-found");
    CHECK_FALSE(model.find("ghost")); // and it has caught up

    create(R"({"name":"stacked"})");
    kernel.fail_next = {core::errc::busy, "2 mounts were stacked on it"};
    r = run(ops.remove("stacked"));
    CHECK(r.status == 409u);
    CHECK(problem_type_of(r) == "urn:netnsd:problem:busy");
    CHECK(problem_type_of(run(ops.remove(".."))) == "urn:netnsd:problem:invalid-name");
}

TEST_CASE_FIXTURE(fixture, "delete all goes past failures and names them")
{
    create(R"({"name":"one"})");
    create(R"({"name":"two"})");
    kernel.names.erase("two"); // gone from the kernel before the job: a failure of its own
    const auto r = run(ops.remove_all());
    CHECK(r.status == 200u);
    const auto body = body_of(r);
    CHECK(body.at("deleted") == json::parse(R"(["one"])"));
    REQUIRE(body.at("failed").size() == 1);
    CHECK(body.at("failed").at(0).at("name") == "two");
    CHECK(model.slots().empty());
}

TEST_CASE_FIXTURE(fixture, "set nsid answers the entry, and every refusal the kernel makes")
{
    create(R"({"name":"n"})");
    const auto put = [&](const std::string& name, const std::string& body)
    {
        return run(ops.set_nsid(name, make("PUT", "/api/v1/netns/" + name + "/nsid", body)));
    };
    auto r = put("n", R"({"nsid":3})");
    CHECK(r.status == 200u);
    CHECK(body_of(r).at("nsid") == 3);
    CHECK(model.find("n")->nsid == 3);

    CHECK(problem_type_of(put("n", R"({"nsid":5})")) == "urn:netnsd:problem:nsid-assigned");
    create(R"({"name":"m"})");
    CHECK(problem_type_of(put("m", R"({"nsid":3})")) == "urn:netnsd:problem:nsid-in-use");
    CHECK(problem_type_of(put("absent", R"({"nsid":1})")) == "urn:netnsd:problem:not-found");
    kernel.names["plain"] = std::nullopt;
    CHECK(problem_type_of(put("plain", R"({"nsid":1})")) == "urn:netnsd:problem:not-a-namespace");
    CHECK(problem_type_of(put("m", R"({"nsid":"x"})")) == "urn:netnsd:problem:invalid-body");
    CHECK(problem_type_of(put("m", R"({})")) == "urn:netnsd:problem:invalid-body");
}

TEST_CASE_FIXTURE(fixture,
                  "pids lists the processes inside, from the kernel's identity of the name")
{
    const auto id = kernel.fresh();
    kernel.processes[10] = id;
    kernel.processes[12] = id;
    kernel.processes[11] = kernel.fresh();
    kernel.names["p"] = id;
    auto r = run(ops.pids("p"));
    CHECK(r.status == 200u);
    CHECK(body_of(r) == json::parse(R"({"pids":[10,12]})"));
    CHECK(problem_type_of(run(ops.pids("none"))) == "urn:netnsd:problem:not-found");
    kernel.names["stale"] = std::nullopt;
    CHECK(problem_type_of(run(ops.pids("stale"))) == "urn:netnsd:problem:not-a-namespace");
    CHECK(problem_type_of(run(ops.pids(".."))) == "urn:netnsd:problem:invalid-name");
}

TEST_CASE_FIXTURE(fixture, "exec answers the command's result, and its refusals")
{
    kernel.exec_answer.exit_code = 3;
    kernel.exec_answer.out = "hi\n";
    kernel.exec_answer.err = std::string("\xff", 1);
    kernel.exec_answer.duration_ms = 1.5;
    kernel.exec_answer.warnings = {"no /etc/hosts to bind on"};
    const auto post = [&](const std::string& name, const std::string& body)
    {
        return run(ops.exec(name, make("POST", "/api/v1/netns/" + name + "/exec", body)));
    };
    auto r = post("x", R"({"argv":["sh","-c","exit 3"],"timeout_ms":50,"env":{"A":"b"}})");
    CHECK(r.status == 200u);
    const auto body = body_of(r);
    CHECK(body.at("exit_code") == 3);
    CHECK(body.at("signal").is_null());
    CHECK(body.at("stdout") == "hi\n");
    CHECK(body.at("warnings") == json::parse(R"(["no /etc/hosts to bind on"])"));
    REQUIRE(kernel.execs.size() == 1);
    CHECK(kernel.execs[0].name == "x");
    CHECK(kernel.execs[0].timeout == std::chrono::milliseconds(50));
    CHECK(kernel.execs[0].env == std::vector<std::pair<std::string, std::string>>{{"A", "b"}});
    CHECK(kernel.execs[0].etc_netns_dir == "/etc/netns");

    CHECK(body_of(post("x", R"({"argv":["true"],"output":"base64"})")).at("stderr") == "/w==");

    kernel.fail_next = {core::errc::not_found, "no netns named \"x\""};
    CHECK(problem_type_of(post("x", R"({"argv":["true"]})")) == "urn:netnsd:problem:not-found");
    kernel.fail_next = {core::errc::command_not_found, "nope: not found in PATH"};
    CHECK(problem_type_of(post("x", R"({"argv":["nope"]})")) == "urn:netnsd:problem:invalid-body");
    CHECK(problem_type_of(post("x", R"({"argv":[]})")) == "urn:netnsd:problem:invalid-body");
    CHECK(problem_type_of(post("x", R"({"argv":["a"],"timeout_ms":0})")) ==
          "urn:netnsd:problem:invalid-body");
    CHECK(ops.running_execs() == 0);

    // Two at once is the limit here; the third is 429 until one finishes.
    auto first = ops.exec("x", make("POST", "/", R"({"argv":["a"]})"));
    auto second = ops.exec("x", make("POST", "/", R"({"argv":["a"]})"));
    CHECK(ops.running_execs() == 2);
    CHECK(problem_type_of(run(ops.exec("x", make("POST", "/", R"({"argv":["a"]})")))) ==
          "urn:netnsd:problem:too-many-execs");
    run(std::move(first));
    run(std::move(second));
    CHECK(ops.running_execs() == 0);
}

TEST_CASE("exec is refused when it is not enabled")
{
    core::registry model(10);
    test::fake_netns_ops kernel;
    api::admin ops(model, kernel, dir, {});
    const auto out = ops.exec("x", fixture::make("POST", "/", R"({"argv":["true"]})"));
    REQUIRE(std::holds_alternative<response>(out));
    CHECK(problem_type_of(std::get<response>(out)) == "urn:netnsd:problem:exec-disabled");
    CHECK(kernel.execs.empty());
}

TEST_CASE_FIXTURE(fixture, "audit answers what the model's audit found")
{
    control.answer.entries = 12;
    control.answer.seconds = 0.002;
    control.answer.divergences = {
        {core::divergence_kind::entry_missing, "new", std::nullopt, "the model had no such name"},
        {core::divergence_kind::nsid, {}, 4, "the kernel has it"}};
    const auto r = run(ops.audit());
    CHECK(r.status == 200u);
    CHECK(control.audits == 1);
    const auto body = body_of(r);
    CHECK(body.at("entries") == 12);
    CHECK(body.at("duration_ms").get<double>() == doctest::Approx(2.0));
    CHECK(body.at("divergences") ==
          json::parse(R"([{"kind":"entry_missing","name":"new","nsid":null,)"
                      R"("detail":"the model had no such name"},)"
                      R"({"kind":"nsid","name":null,"nsid":4,"detail":"the kernel has it"}])"));
}

TEST_CASE_FIXTURE(fixture, "the deep scan answers what it visited and what holds namespaces")
{
    control.scan_answer = {120, 900, 40, 2, 1, 3, 1, 0.0125};
    const auto r = run(ops.deep_scan());
    CHECK(r.status == 200u);
    CHECK(control.scans == 1);
    CHECK(r.audit_name == "*");
    CHECK(body_of(r) == json::parse(R"({"processes":120,"fds":900,"sockets":40,)"
                                    R"("socket_failures":2,"held_by_fd":1,"held_by_socket":3,)"
                                    R"("found":1,"duration_ms":12.5})"));
}
