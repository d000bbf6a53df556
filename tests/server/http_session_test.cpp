// http_session over a real loopback connection: the exact bytes of answers, keep-alive and
// pipelining, the limits on what a client can send, bad requests, and odd names.
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "server/http_session.hpp"

#include "running_server.hpp"
#include "support/http_client.hpp"
#include "wire.hpp"

namespace
{

using namespace netnsd;
using test::connection;
using test::get_request;
using test::running_server;

const std::string server_header = "Server: netnsd/" NETNSD_VERSION "\r\n";

// The head of a response as the session writes it: Server, Content-Type, Cache-Control, the
// router's extra headers, Connection (only when it differs from the version's default), and
// Content-Length.
std::string head(const std::string& status_line, const std::string& content_type,
                 std::size_t length, const std::string& extra = {})
{
    return status_line + "\r\n" + server_header + "Content-Type: " + content_type +
           "\r\nCache-Control: no-store\r\n" + extra + "Content-Length: " + std::to_string(length) +
           "\r\n\r\n";
}

std::string ok_json(const std::string& body)
{
    return head("HTTP/1.1 200 OK", "application/json", body.size()) + body;
}

std::string problem_body(unsigned status, const std::string& slug, const std::string& title,
                         const std::string& detail)
{
    return R"({"detail":")" + detail + R"(","status":)" + std::to_string(status) + R"(,"title":")" +
           title + R"(","type":"urn:netnsd:problem:)" + slug + R"("})";
}

std::string problem(const std::string& status_line, const std::string& body,
                    const std::string& extra = {})
{
    return head(status_line, "application/problem+json", body.size(), extra) + body;
}

// Two live entries; "blue" has nsid 0.
void fill(core::registry& model)
{
    test::add_live(model, "blue", 4026532001, 0);
    test::add_live(model, "red", 4026532002);
}

std::string health_body(const core::registry& model)
{
    return R"({"namespaces":)" + std::to_string(model.slots().size()) +
           R"(,"netns_dir":"/run/netns","problem":"","revision":)" +
           std::to_string(model.revision()) + R"(,"start_revision":)" +
           std::to_string(model.start_revision()) + R"(,"status":"degraded","watching":false})";
}

std::string list_body(const core::registry& model)
{
    return R"({"namespaces":[)"
           R"({"first_seen":"2026-11-28T17:40:01.123Z","href":"/api/v1/netns/blue",)"
           R"("inode":4026532001,"name":"blue","ns_id":4026533001,"nsid":0,)"
           R"("path":"/run/netns/blue","state":"live"},)"
           R"({"first_seen":"2026-11-28T17:40:01.123Z","href":"/api/v1/netns/red",)"
           R"("inode":4026532002,"name":"red","ns_id":4026533002,"nsid":null,)"
           R"("path":"/run/netns/red","state":"live"}],"revision":)" +
           std::to_string(model.revision()) + "}";
}

// A server over fill()'s model, started.
struct fixture
{
    running_server srv;
    std::string health;
    std::string list;

    fixture()
    {
        fill(srv.model());
        health = health_body(srv.model());
        list = list_body(srv.model());
        srv.start();
    }
};

// After a bad request, a fresh connection is still served.
void check_still_serving(const running_server& srv)
{
    const auto r = test::http_get(srv.where(), "/healthz");
    REQUIRE(r);
    CHECK(r->status == 200);
}

// Sends `request` on a fresh connection and reads until the server closes it.
std::string answer_then_close(const running_server& srv, const std::string& request)
{
    connection c(srv.where());
    REQUIRE(c.is_open());
    c.send(request); // the server may close before it has read everything
    const auto got = c.read_until_closed();
    REQUIRE_MESSAGE(got, "the server kept the connection open");
    return *got;
}

// A request whose header block (request line to the blank line) is exactly `size` bytes.
std::string request_of_size(std::size_t size, const std::string& extra_headers = {})
{
    const std::string start =
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra_headers + "X-Padding: ";
    const std::string end = "\r\n\r\n";
    REQUIRE(size > start.size() + end.size());
    return start + std::string(size - start.size() - end.size(), 'p') + end;
}

std::string post(const std::string& target, const std::string& body)
{
    return "POST " + target +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n\r\n" + body;
}

std::string percent_encode(const std::string& bytes)
{
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (const char c : bytes)
    {
        const auto u = static_cast<unsigned char>(c);
        out += '%';
        out += digits[u >> 4];
        out += digits[u & 0xF];
    }
    return out;
}

} // namespace

TEST_CASE("a GET of /healthz answers 200 with the health document")
{
    fixture f;
    connection c(f.srv.where());
    REQUIRE(c.send(get_request("/healthz")));
    CHECK(c.read_response() == ok_json(f.health));
}

TEST_CASE("a GET of /api/v1/netns answers 200 with every entry in byte order")
{
    fixture f;
    connection c(f.srv.where());
    REQUIRE(c.send(get_request("/api/v1/netns")));
    CHECK(c.read_response() == ok_json(f.list));
}

TEST_CASE("a GET of /api/v1/netns/{name} answers 200 with the entry")
{
    fixture f;
    connection c(f.srv.where());
    REQUIRE(c.send(get_request("/api/v1/netns/red")));
    CHECK(c.read_response() ==
          ok_json(R"({"first_seen":"2026-11-28T17:40:01.123Z","href":"/api/v1/netns/red",)"
                  R"("inode":4026532002,"name":"red","ns_id":4026533002,"nsid":null,)"
                  R"("path":"/run/netns/red","state":"live"})"));
}

TEST_CASE("a HEAD gives the headers and Content-Length of a GET and no body")
{
    fixture f;
    std::string target;
    SUBCASE("/healthz")
    {
        target = "/healthz";
    }
    SUBCASE("/api/v1/netns")
    {
        target = "/api/v1/netns";
    }
    SUBCASE("/api/v1/netns/blue")
    {
        target = "/api/v1/netns/blue";
    }
    SUBCASE("/openapi.yaml")
    {
        target = "/openapi.yaml";
    }
    SUBCASE("/")
    {
        target = "/";
    }
    SUBCASE("an unknown path")
    {
        target = "/nope";
    }

    connection c(f.srv.where());
    // HEAD then GET on one connection: a body after the HEAD answer would garble the GET's.
    REQUIRE(
        c.send("HEAD " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + get_request(target)));
    const auto head_only = c.read_head();
    const auto full = c.read_response();
    REQUIRE(head_only);
    REQUIRE(full);
    const auto get = test::parse_reply(*full);
    REQUIRE(get);
    CHECK(*head_only == full->substr(0, full->size() - get->body.size()));
    CHECK(get->body.size() != 0);
    CHECK(c.pending().empty());
}

TEST_CASE("two pipelined requests on one connection get two responses in order")
{
    fixture f;
    connection c(f.srv.where());
    REQUIRE(c.send(get_request("/api/v1/netns") + get_request("/healthz")));
    CHECK(c.read_response() == ok_json(f.list));
    CHECK(c.read_response() == ok_json(f.health));

    // The connection stays open for more, and an answer from the router that is an error
    // (here a 404) keeps it open too.
    REQUIRE(c.send(get_request("/nope") + get_request("/healthz")));
    const auto not_found = c.read_response();
    REQUIRE(not_found);
    CHECK(not_found->starts_with("HTTP/1.1 404 Not Found\r\n"));
    CHECK(c.read_response() == ok_json(f.health));
}

TEST_CASE("a request with Connection: close closes the connection after the response")
{
    fixture f;
    // The second request must not be answered.
    const auto got = answer_then_close(f.srv, get_request("/healthz", "Connection: close\r\n") +
                                                  get_request("/healthz"));
    CHECK(got ==
          head("HTTP/1.1 200 OK", "application/json", f.health.size(), "Connection: close\r\n") +
              f.health);
    check_still_serving(f.srv);
}

TEST_CASE("an HTTP/1.0 request closes after the response unless it asks for keep-alive")
{
    fixture f;
    SUBCASE("without keep-alive")
    {
        const auto got = answer_then_close(f.srv, "GET /healthz HTTP/1.0\r\n\r\n");
        CHECK(got == head("HTTP/1.0 200 OK", "application/json", f.health.size()) + f.health);
    }
    SUBCASE("with Connection: keep-alive")
    {
        connection c(f.srv.where());
        const std::string request = "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
        REQUIRE(c.send(request + request));
        const auto expected = head("HTTP/1.0 200 OK", "application/json", f.health.size(),
                                   "Connection: keep-alive\r\n") +
                              f.health;
        CHECK(c.read_response() == expected);
        CHECK(c.read_response() == expected);
    }
}

std::string header_too_large()
{
    return problem(
        "HTTP/1.1 431 Request Header Fields Too Large",
        problem_body(431, "header-too-large", "Request header too large", "header limit exceeded"),
        "Connection: close\r\n");
}

TEST_CASE("a header block of header_limit bytes is read")
{
    static_assert(server::http_session::header_limit == 8 * 1024);
    fixture f;
    connection c(f.srv.where());
    REQUIRE(c.send(request_of_size(server::http_session::header_limit) + get_request("/healthz")));
    CHECK(c.read_response() == ok_json(f.health));
    CHECK(c.read_response() == ok_json(f.health));
}

// Beast counts header_limit from the first byte it has not yet parsed when a read arrives:
// the request line and whole fields parsed from an earlier read (the first read of a session
// is 512 bytes) are not counted, so a block of up to twice the limit can pass. Twice the limit
// and one byte is over whatever the reads were.
TEST_CASE("a header block over the limit is 431 and closes")
{
    fixture f;
    SUBCASE("in many fields")
    {
        std::string fields;
        for (int i = 0; fields.size() <= 2 * server::http_session::header_limit; ++i)
            fields += "X-Field-" + std::to_string(i) + ": " + std::string(100, 'v') + "\r\n";
        CHECK(answer_then_close(f.srv, get_request("/healthz", fields)) == header_too_large());
    }
    SUBCASE("in one field")
    {
        CHECK(answer_then_close(f.srv, request_of_size(2 * server::http_session::header_limit +
                                                       1)) == header_too_large());
    }
    SUBCASE("in the request line")
    {
        CHECK(answer_then_close(
                  f.srv, get_request("/" + std::string(server::http_session::header_limit, 'x'))) ==
              header_too_large());
    }
    check_still_serving(f.srv);
}

// Known to fail: see the comment above. The request line and the Host field arrive in the
// first read and are not counted, so this block of header_limit + 1 bytes is answered 200.
TEST_CASE("a header block one byte over header_limit is 431")
{
    fixture f;
    // Connection: close, so that a 200 ends the exchange at once.
    CHECK(answer_then_close(f.srv, request_of_size(server::http_session::header_limit + 1,
                                                   "Connection: close\r\n")) == header_too_large());
    check_still_serving(f.srv);
}

TEST_CASE("a body of body_limit bytes is read and one byte more is 413")
{
    static_assert(server::http_session::body_limit == 64 * 1024);
    fixture f;
    const auto too_large = problem(
        "HTTP/1.1 413 Payload Too Large",
        problem_body(413, "payload-too-large", "Request body too large", "body limit exceeded"),
        "Connection: close\r\n");
    SUBCASE("exactly body_limit bytes reach the router")
    {
        connection c(f.srv.where());
        REQUIRE(c.send(post("/healthz", std::string(server::http_session::body_limit, 'b')) +
                       get_request("/healthz")));
        const auto first = c.read_response();
        REQUIRE(first);
        CHECK(first->starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        // The body was consumed in full: the next request on the connection is in sync.
        CHECK(c.read_response() == ok_json(f.health));
    }
    SUBCASE("one byte over, with Content-Length")
    {
        CHECK(answer_then_close(
                  f.srv, post("/api/v1/netns", std::string(server::http_session::body_limit + 1,
                                                           'b'))) == too_large);
    }
    SUBCASE("one byte over, chunked")
    {
        std::string chunked = "POST /api/v1/netns HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Transfer-Encoding: chunked\r\n\r\n";
        for (int i = 0; i < 4; ++i)
            chunked += "4000\r\n" + std::string(0x4000, 'b') + "\r\n";
        chunked += "1\r\nb\r\n0\r\n\r\n";
        CHECK(answer_then_close(f.srv, chunked) == too_large);
    }
    check_still_serving(f.srv);
}

TEST_CASE("a GET with a body is 400 unexpected-body")
{
    fixture f;
    const auto expected = problem(
        "HTTP/1.1 400 Bad Request",
        problem_body(400, "unexpected-body", "This request takes no body", "GET takes no body"));
    connection c(f.srv.where());
    SUBCASE("with Content-Length")
    {
        REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5\r\n\r\n"
                       "hello" +
                       get_request("/healthz")));
    }
    SUBCASE("chunked, even when empty")
    {
        REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
                       get_request("/healthz")));
    }
    CHECK(c.read_response() == expected);
    // The body was read, so the connection can go on.
    CHECK(c.read_response() == ok_json(f.health));
    check_still_serving(f.srv);
}

TEST_CASE("a request that cannot be parsed is 400 and closes")
{
    fixture f;
    std::string request;
    std::string detail;
    SUBCASE("garbage")
    {
        request = "GARBAGE\r\n\r\n";
        detail = "bad method";
    }
    SUBCASE("no version")
    {
        request = "GET /healthz\r\n\r\n";
        detail = "bad target";
    }
    SUBCASE("a bad version")
    {
        request = "GET /healthz HTTP/one\r\n\r\n";
        detail = "bad version";
    }
    SUBCASE("a control character in the target")
    {
        request = "GET /heal\x01thz HTTP/1.1\r\n\r\n";
        detail = "bad target";
    }
    SUBCASE("a field without a colon")
    {
        request = "GET /healthz HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n";
        detail = "bad field";
    }
    SUBCASE("a bad Content-Length")
    {
        request = "POST /healthz HTTP/1.1\r\nContent-Length: lots\r\n\r\n";
        detail = "bad Content-Length";
    }
    SUBCASE("a bad chunk")
    {
        request = "POST /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        detail = "bad chunk";
    }
    SUBCASE("bare LF line endings")
    {
        request = "GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n";
        detail = "bad version";
    }
    SUBCASE("both Content-Length and chunked")
    {
        // A request smuggling classic: the two framings disagree.
        request = "POST /healthz HTTP/1.1\r\nContent-Length: 3\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        detail = "bad Transfer-Encoding";
    }
    SUBCASE("two different Content-Lengths")
    {
        request = "POST /healthz HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd";
        detail = "multiple Content-Length";
    }
    SUBCASE("the connection ends inside a request")
    {
        // The client half-closes after a partial head: the parser sees EOF mid-message.
        request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        detail = "partial message";
    }
    CAPTURE(request);

    connection c(f.srv.where());
    REQUIRE(c.is_open());
    c.send(request);
    if (detail == "partial message")
        c.shutdown_send();
    const auto got = c.read_until_closed();
    REQUIRE_MESSAGE(got, "the server kept the connection open");
    CHECK(*got == problem("HTTP/1.1 400 Bad Request",
                          problem_body(400, "bad-request", "Bad request", detail),
                          "Connection: close\r\n"));
    check_still_serving(f.srv);
}

// Known to fail: RFC 9112 §6.3 says a request whose Transfer-Encoding does not end in chunked
// has a body of unknown length, and the server MUST answer 400 and close. Beast reads no body
// (the request answers 405 here) and the session keeps the connection, so the body's bytes
// are parsed as the next request.
TEST_CASE("a request whose Transfer-Encoding does not end in chunked is 400 and closes")
{
    fixture f;
    // The body "abcd" is followed by a request that ends the exchange either way.
    const auto got = answer_then_close(f.srv, "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                              "Transfer-Encoding: gzip\r\n\r\nabcd" +
                                                  get_request("/healthz", "Connection: close\r\n"));
    std::size_t used = 0;
    const auto first = test::parse_reply(got, &used);
    REQUIRE(first);
    CHECK(first->status == 400);
    CHECK(first->header("Connection") == "close");
    CHECK(used == got.size());
    check_still_serving(f.srv);
}

// RFC 9112 §3.2.2: a server MUST accept the absolute form of a request-target.
TEST_CASE("a request-target in absolute form is served like its path")
{
    fixture f;
    connection c(f.srv.where());
    REQUIRE(c.send(get_request("http://127.0.0.1/healthz") +
                   get_request("HTTP://127.0.0.1:9321/api/v1/netns/red?x=1")));
    CHECK(c.read_response() == ok_json(f.health));
    const auto red = c.read_response();
    REQUIRE(red);
    CHECK(red->starts_with("HTTP/1.1 200 OK\r\n"));
}

TEST_CASE("a malformed percent-escape in a name is 400 bad-request")
{
    fixture f;
    std::string escape;
    SUBCASE("not hex")
    {
        escape = "%zz";
    }
    SUBCASE("one digit at the end")
    {
        escape = "a%4";
    }
    SUBCASE("a lone percent")
    {
        escape = "%";
    }
    SUBCASE("one hex digit, one not")
    {
        escape = "%4g";
    }
    CAPTURE(escape);

    connection c(f.srv.where());
    REQUIRE(c.send(get_request("/api/v1/netns/" + escape) + get_request("/healthz")));
    CHECK(c.read_response() == problem("HTTP/1.1 400 Bad Request",
                                       problem_body(400, "bad-request", "Bad request",
                                                    "the name has a malformed percent-escape")));
    // The request itself was well formed, so the connection goes on.
    CHECK(c.read_response() == ok_json(f.health));
    check_still_serving(f.srv);
}

TEST_CASE("an unknown path is 404 no-route")
{
    fixture f;
    std::string target;
    SUBCASE("/nope")
    {
        target = "/nope";
    }
    SUBCASE("/api/v2/netns")
    {
        target = "/api/v2/netns";
    }
    SUBCASE("/api/v1/netns/blue/extra")
    {
        target = "/api/v1/netns/blue/extra";
    }
    SUBCASE("/healthz/")
    {
        target = "/healthz/";
    }
    CAPTURE(target);

    connection c(f.srv.where());
    REQUIRE(c.send(get_request(target)));
    CHECK(c.read_response() ==
          problem("HTTP/1.1 404 Not Found", problem_body(404, "no-route", "No such resource",
                                                         "nothing is served at this path")));
    check_still_serving(f.srv);
}

TEST_CASE("an unknown name is 404 not-found with the entry's href as instance")
{
    fixture f;
    connection c(f.srv.where());
    REQUIRE(c.send(get_request("/api/v1/netns/green")));
    const std::string body =
        R"({"detail":"no entry of that name in /run/netns","instance":"/api/v1/netns/green",)"
        R"("status":404,"title":"No such netns","type":"urn:netnsd:problem:not-found"})";
    CHECK(c.read_response() == problem("HTTP/1.1 404 Not Found", body));
}

TEST_CASE("a method a read-only path does not allow is 405 with Allow")
{
    fixture f;
    std::string request;
    // POST /api/v1/netns becomes the admin "add" endpoint (ARCHITECTURE.md §4); until then
    // it is read-only like the others.
    SUBCASE("POST /api/v1/netns")
    {
        request = post("/api/v1/netns", "");
    }
    SUBCASE("POST /healthz")
    {
        request = post("/healthz", "{}");
    }
    SUBCASE("DELETE /api/v1/nsids")
    {
        request = "DELETE /api/v1/nsids HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    }
    SUBCASE("an unknown method")
    {
        request = "BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    }
    CAPTURE(request);

    connection c(f.srv.where());
    REQUIRE(c.send(request + get_request("/healthz")));
    CHECK(c.read_response() == problem("HTTP/1.1 405 Method Not Allowed",
                                       problem_body(405, "method-not-allowed", "Method not allowed",
                                                    "this resource allows GET, HEAD"),
                                       "Allow: GET, HEAD\r\n"));
    CHECK(c.read_response() == ok_json(f.health));
}

TEST_CASE("odd names are found through their percent-encoding and give valid JSON")
{
    running_server srv;
    const std::vector<std::string> names = {
        "with space", "caf\xC3\xA9", "\xFF",      "half\xC3", "50%",
        "-lead",      "tab\there",   "new\nline", "q\"uote",  "back\\slash",
    };
    for (std::size_t i = 0; i < names.size(); ++i)
        test::add_live(srv.model(), names[i], 4026532100 + i);
    srv.start();

    for (const auto& name : names)
    {
        CAPTURE(name);
        std::vector<std::string> targets = {"/api/v1/netns/" + percent_encode(name)};
        // Raw bytes are allowed in a target too, except controls, spaces and '%'.
        if (name.find_first_of(" \t\n%") == std::string::npos)
            targets.push_back("/api/v1/netns/" + name);
        for (const auto& target : targets)
        {
            CAPTURE(target);
            const auto r = test::http_get(srv.where(), target);
            REQUIRE(r);
            CHECK(r->status == 200);
            const auto j = nlohmann::json::parse(r->body, nullptr, false);
            REQUIRE_FALSE(j.is_discarded());
            // The href always round-trips: it is the name with every byte that needs it encoded.
            const auto href = j["href"].get<std::string>();
            CHECK(href.starts_with("/api/v1/netns/"));
            const auto again = test::http_get(srv.where(), href);
            REQUIRE(again);
            CHECK(again->body == r->body);
        }
    }

    SUBCASE("UTF-8 names show as themselves, other bytes as U+FFFD")
    {
        const auto cafe = test::http_get(srv.where(), "/api/v1/netns/caf%c3%a9");
        REQUIRE(cafe);
        auto j = nlohmann::json::parse(cafe->body, nullptr, false);
        CHECK(j["name"].get<std::string>() == "caf\xC3\xA9");
        CHECK(j["href"].get<std::string>() == "/api/v1/netns/caf%C3%A9");

        const auto ff = test::http_get(srv.where(), "/api/v1/netns/%FF");
        REQUIRE(ff);
        j = nlohmann::json::parse(ff->body, nullptr, false);
        REQUIRE_FALSE(j.is_discarded());
        CHECK(j["name"].get<std::string>() == "\xEF\xBF\xBD");
        CHECK(j["href"].get<std::string>() == "/api/v1/netns/%FF");
        CHECK(j["path"].get<std::string>() == "/run/netns/\xEF\xBF\xBD");
    }
    SUBCASE("the list of all of them is valid JSON")
    {
        const auto r = test::http_get(srv.where(), "/api/v1/netns");
        REQUIRE(r);
        const auto j = nlohmann::json::parse(r->body, nullptr, false);
        REQUIRE_FALSE(j.is_discarded());
        CHECK(j["namespaces"].size() == names.size());
    }
    SUBCASE("a name that is no valid name is 400 invalid-name")
    {
        std::string encoded;
        std::string detail;
        SUBCASE("an encoded slash")
        {
            encoded = "a%2Fb";
            detail = "the name contains '/'";
        }
        SUBCASE("an encoded NUL")
        {
            encoded = "a%00b";
            detail = "the name contains a NUL byte";
        }
        SUBCASE("dot-dot")
        {
            encoded = "%2E%2E";
            detail = "the name is \\\"..\\\"";
        }
        const auto r = test::http_get(srv.where(), "/api/v1/netns/" + encoded);
        REQUIRE(r);
        CHECK(r->status == 400);
        CHECK(r->body == problem_body(400, "invalid-name", "Invalid netns name", detail));
    }
}
