// api/problem: the one table from problem type to status and type URI, and the RFC 9457 body.
#include <string>
#include <string_view>
#include <system_error>

#include <doctest/doctest.h>

#include "core/errc.hpp"

#include "api/json.hpp"
#include "api/problem.hpp"

using netnsd::api::json;
using netnsd::api::problem;
using netnsd::api::problem_for;
using netnsd::api::problem_type;
using netnsd::api::problem_type_of;
using netnsd::api::slug_of;
using netnsd::api::status_of;
using netnsd::api::type_uri;

namespace
{

struct row
{
    problem_type type;
    unsigned status;
    std::string_view slug;
    std::string_view title;
};

// Every problem type there is, in the enum's order (the last test checks none is missing).
constexpr row expected[] = {
    {problem_type::bad_request, 400, "bad-request", "Bad request"},
    {problem_type::invalid_body, 400, "invalid-body", "Invalid request body"},
    {problem_type::invalid_name, 400, "invalid-name", "Invalid netns name"},
    {problem_type::unexpected_body, 400, "unexpected-body", "This request takes no body"},
    {problem_type::https_required, 400, "https-required", "This port speaks HTTPS"},
    {problem_type::unauthorized, 401, "unauthorized", "Authentication required"},
    {problem_type::exec_disabled, 403, "exec-disabled", "exec is disabled"},
    {problem_type::insufficient_scope, 403, "insufficient-scope", "The token may only read"},
    {problem_type::origin_not_allowed, 403, "origin-not-allowed", "Cross-origin request refused"},
    {problem_type::not_found, 404, "not-found", "No such netns"},
    {problem_type::no_such_process, 404, "no-such-process", "No such process"},
    {problem_type::no_route, 404, "no-route", "No such resource"},
    {problem_type::method_not_allowed, 405, "method-not-allowed", "Method not allowed"},
    {problem_type::not_acceptable, 406, "not-acceptable", "Not acceptable"},
    {problem_type::already_exists, 409, "already-exists", "The name is taken"},
    {problem_type::busy, 409, "busy", "The name is still mounted"},
    {problem_type::not_a_namespace, 409, "not-a-namespace", "Not a live network namespace"},
    {problem_type::nsid_assigned, 409, "nsid-assigned", "The namespace already has an nsid"},
    {problem_type::nsid_in_use, 409, "nsid-in-use", "That nsid is in use"},
    {problem_type::host_not_allowed, 421, "host-not-allowed", "Misdirected request"},
    {problem_type::payload_too_large, 413, "payload-too-large", "Request body too large"},
    {problem_type::unsupported_media, 415, "unsupported-media-type", "Unsupported media type"},
    {problem_type::too_many_execs, 429, "too-many-execs", "Too many execs running"},
    {problem_type::header_too_large, 431, "header-too-large", "Request header too large"},
    {problem_type::too_many_streams, 503, "too-many-streams", "Too many stream clients"},
    {problem_type::internal, 500, "internal", "Internal error"},
    {problem_type::operation_failed, 500, "operation-failed", "The operation failed"},
};

} // namespace

TEST_CASE("every problem type has its status, slug and type URI")
{
    for (const auto& r : expected)
    {
        CAPTURE(r.slug);
        CHECK(status_of(r.type) == r.status);
        CHECK(slug_of(r.type) == r.slug);
        CHECK(type_uri(r.type) == "urn:netnsd:problem:" + std::string(r.slug));
    }
}

TEST_CASE("every problem type has its own slug")
{
    for (const auto& a : expected)
        for (const auto& b : expected)
            if (a.type != b.type)
                CHECK(slug_of(a.type) != slug_of(b.type));
}

TEST_CASE("a problem response is application/problem+json with the RFC 9457 members")
{
    for (const auto& r : expected)
    {
        CAPTURE(r.slug);
        const auto res = problem(r.type, "what went wrong");
        CHECK(res.status == r.status);
        CHECK(res.content_type == "application/problem+json");
        CHECK(res.headers.empty());
        CHECK(res.body == R"({"detail":"what went wrong","status":)" + std::to_string(r.status) +
                              R"(,"title":")" + std::string(r.title) +
                              R"(","type":"urn:netnsd:problem:)" + std::string(r.slug) + R"("})");
    }
}

TEST_CASE("a problem response carries the instance when one is given")
{
    const auto res = problem(problem_type::not_found, "no entry of that name in /run/netns",
                             "/api/v1/netns/a%20b");
    CHECK(res.status == 404);
    CHECK(res.body == R"({"detail":"no entry of that name in /run/netns",)"
                      R"("instance":"/api/v1/netns/a%20b","status":404,"title":"No such netns",)"
                      R"("type":"urn:netnsd:problem:not-found"})");
}

TEST_CASE("a problem detail that is not UTF-8 still gives valid JSON")
{
    const auto res = problem(problem_type::bad_request, "bad byte \xFF here");
    const auto body = json::parse(res.body, nullptr, false);
    REQUIRE_FALSE(body.is_discarded());
    CHECK(body.at("detail").get<std::string>() == "bad byte \xEF\xBF\xBD here");
}

TEST_CASE("a problem type outside the table is answered as internal")
{
    const auto unknown = static_cast<problem_type>(999);
    CHECK(status_of(unknown) == 500);
    CHECK(slug_of(unknown) == "internal");
}

TEST_CASE("the table covers every problem type, in the enum's order")
{
    for (std::size_t i = 0; i < std::size(expected); ++i)
        CHECK(static_cast<std::size_t>(expected[i].type) == i);
    // The one after the last is not a type: it is answered as internal.
    CHECK(slug_of(static_cast<problem_type>(std::size(expected))) == "internal");
}

TEST_CASE("every kernel failure maps to its problem, anything else to operation-failed")
{
    using netnsd::core::errc;
    const std::pair<std::error_code, problem_type> cases[] = {
        {errc::invalid_name, problem_type::invalid_name},
        {errc::not_found, problem_type::not_found},
        {errc::not_a_namespace, problem_type::not_a_namespace},
        {errc::dir_unavailable, problem_type::operation_failed},
        {errc::protocol, problem_type::operation_failed},
        {errc::already_exists, problem_type::already_exists},
        {errc::no_such_process, problem_type::no_such_process},
        {errc::busy, problem_type::busy},
        {errc::nsid_assigned, problem_type::nsid_assigned},
        {errc::nsid_in_use, problem_type::nsid_in_use},
        {errc::thread_netns_lost, problem_type::operation_failed},
        {errc::command_not_found, problem_type::invalid_body},
        {std::make_error_code(std::errc::invalid_argument), problem_type::invalid_body},
        {std::make_error_code(std::errc::permission_denied), problem_type::operation_failed},
        {std::error_code(ENOSPC, std::system_category()), problem_type::operation_failed},
    };
    for (const auto& [ec, type] : cases)
    {
        CAPTURE(ec.message());
        CHECK(problem_type_of(ec) == type);
        const auto res = problem_for(ec, "why");
        CHECK(res.status == status_of(type));
        CHECK(json::parse(res.body).at("detail") == "why");
    }
    // Without a detail, the error's own message.
    CHECK(json::parse(problem_for(errc::busy, {}).body).at("detail") ==
          std::error_code(errc::busy).message());
}
