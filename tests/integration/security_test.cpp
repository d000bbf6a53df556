// netnsd on a network, against the real daemon in the sandbox: the Host and Origin checks on
// every kind of route over TCP and the Unix socket; HTTPS with a test CA made here with openssl
// (curl as the client: the right CA works, another fails; TLS 1.0 and 1.1 refused; plain HTTP
// gets a clean 400); mutual TLS; a certificate rotated under wrk and open websockets; admin on
// the Unix socket by peer credentials (--admin-group; other uids through setpriv); and a token
// file with several scoped tokens rotated while a client runs.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

#include "support/oracle.hpp"
#include "support/process.hpp"
#include "support/stream_client.hpp"

namespace
{

using namespace netnsd::test;
using namespace std::chrono_literals;

const std::string run_dir = "/run/netnsd-security-test";
const std::string token_path = run_dir + "/token";
const std::string socket_path = "/run/netnsd/netnsd.sock";

void write_file(const std::string& path, const std::string& text)
{
    std::ofstream(path, std::ios::trunc) << text;
}

// Writes `text` next to `path` and renames it over: how a rotation replaces a file at once.
void replace_file(const std::string& path, const std::string& text)
{
    write_file(path + ".new", text);
    REQUIRE(::rename((path + ".new").c_str(), path.c_str()) == 0);
}

std::string read_token()
{
    std::string token;
    std::ifstream(token_path) >> token;
    return token;
}

// The status line's code of the first response on a connection given `bytes`: works for 101
// and for streams, which never end by themselves. 0 when nothing (or no head) came in 5 s.
unsigned first_status(const endpoint& to, const std::string& bytes)
{
    const int fd = connect_to(to);
    if (fd < 0)
        return 0;
    ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    std::string in;
    const auto until = std::chrono::steady_clock::now() + 5s;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < until)
    {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0)
            continue;
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        in.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    if (in.size() < 12 || !in.starts_with("HTTP/1."))
        return 0;
    return static_cast<unsigned>(std::stoul(in.substr(9, 3)));
}

// --- the Host and Origin tables ----------------------------------------------------------

struct route_kind
{
    const char* what;
    bool checks_origin; // a write or an event stream
    std::string (*request)(const std::string& head, const std::string& token, int n);
};

const route_kind kinds[] = {
    {"read", false,
     [](const std::string& head, const std::string&, int)
     {
         return "GET /api/v1/netns HTTP/1.1\r\n" + head + "Connection: close\r\n\r\n";
     }},
    {"static file", false,
     [](const std::string& head, const std::string&, int)
     {
         return "GET /app.js HTTP/1.1\r\n" + head + "Connection: close\r\n\r\n";
     }},
    {"admin", true,
     [](const std::string& head, const std::string& token, int n)
     {
         const std::string body = R"({"name":"hostcheck-)" + std::to_string(n) + R"("})";
         return "POST /api/v1/netns HTTP/1.1\r\n" + head + "Authorization: Bearer " + token +
                "\r\nContent-Type: application/json\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
     }},
    {"websocket", true,
     [](const std::string& head, const std::string&, int)
     {
         return "GET /api/v1/events?snapshot=true HTTP/1.1\r\n" + head +
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
     }},
    {"SSE", true,
     [](const std::string& head, const std::string&, int)
     {
         return "GET /api/v1/events HTTP/1.1\r\n" + head +
                "Accept: text/event-stream\r\nConnection: close\r\n\r\n";
     }},
};

unsigned success_of(const route_kind& k)
{
    const std::string w = k.what;
    return w == "admin" ? 201u : w == "websocket" ? 101u : 200u;
}

} // namespace

TEST_CASE("Host and Origin tables: every kind of route, allowed, refused and absent, on TCP and "
          "on the Unix socket")
{
    ::mkdir("/run/netnsd", 0755);
    netnsd_process d({"--listen=unix:" + socket_path, "--token-file=" + token_path});
    INFO(d.log());
    REQUIRE(d.ready());
    const auto token = read_token();
    const auto port = std::to_string(d.where().port);
    endpoint unix_socket;
    unix_socket.unix_path = socket_path;

    struct host_row
    {
        std::string host; // empty: no Host (HTTP/1.1 needs one: sent as HTTP/1.0 then)
        bool allowed;
    };
    const std::vector<host_row> hosts = {
        {"127.0.0.1:" + port, true},
        {"localhost:" + port, true},
        {"[::1]:" + port, true},
        {"localhost:19321", true}, // an SSH tunnel's local port
        {"evil.example.com:" + port, false},
        {"attacker.example", false},
        {"127.0.0.2:" + port, false},
    };
    struct origin_row
    {
        std::string origin; // empty: none
        bool allowed;       // for a request whose Host is 127.0.0.1:port
    };
    const std::vector<origin_row> origins = {
        {"", true},
        {"http://127.0.0.1:" + port, true},
        {"http://evil.example.com", false},
        {"http://127.0.0.1:1", false},
        {"null", false},
    };
    int n = 0;
    for (const bool over_unix : {false, true})
    {
        const auto& to = over_unix ? unix_socket : d.where();
        for (const auto& k : kinds)
        {
            for (const auto& h : hosts)
            {
                CAPTURE(over_unix);
                CAPTURE(k.what);
                CAPTURE(h.host);
                const auto head = "Host: " + h.host + "\r\n";
                const unsigned want = h.allowed || over_unix ? success_of(k) : 421u;
                CHECK(first_status(to, k.request(head, token, ++n)) == want);
            }
            for (const auto& o : origins)
            {
                CAPTURE(over_unix);
                CAPTURE(k.what);
                CAPTURE(o.origin);
                auto head = "Host: 127.0.0.1:" + port + "\r\n";
                if (!o.origin.empty())
                    head += "Origin: " + o.origin + "\r\n";
                const unsigned want = o.allowed || !k.checks_origin ? success_of(k) : 403u;
                CHECK(first_status(to, k.request(head, token, ++n)) == want);
            }
        }
    }
    // No Host at all: an HTTP/1.0 health check (the Dockerfile's) is served.
    CHECK(first_status(d.where(), "GET /healthz HTTP/1.0\r\n\r\n") == 200u);
    // What the issue found: a cross-site websocket and a rebound Host both refused.
    CHECK(first_status(d.where(), kinds[3].request("Host: evil.example.com:" + port +
                                                       "\r\nOrigin: http://evil.example.com\r\n",
                                                   token, ++n)) == 421u);
    const auto rebound = parse_reply(exchange_raw(d.where(), "GET /api/v1/netns HTTP/1.1\r\n"
                                                             "Host: attacker.example\r\n"
                                                             "Connection: close\r\n\r\n"));
    REQUIRE(rebound);
    CHECK(rebound->status == 421u);
    CHECK(rebound->header("Content-Type") == "application/problem+json");
    // Two Host lines (one of them its own) are a bad request (RFC 9112 §3.2), not a way around.
    CHECK(first_status(d.where(), "GET /api/v1/netns HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Host: attacker.example\r\n\r\n") == 400u);
}

TEST_CASE("--allowed-host and --allowed-origin add names and origins, --allowed-host * turns the "
          "Host check off")
{
    netnsd_process d({"--token-file=" + token_path, "--allowed-host=netns.example.com",
                      "--allowed-origin=https://dash.example.com"});
    INFO(d.log());
    REQUIRE(d.ready());
    const auto port = std::to_string(d.where().port);
    const auto token = read_token();
    CHECK(first_status(d.where(), kinds[0].request("Host: netns.example.com\r\n", token, 0)) ==
          200u);
    CHECK(first_status(d.where(), kinds[0].request("Host: other.example.com\r\n", token, 0)) ==
          421u);
    CHECK(first_status(d.where(), kinds[3].request("Host: netns.example.com\r\nOrigin: "
                                                   "https://dash.example.com\r\n",
                                                   token, 0)) == 101u);
    CHECK(first_status(d.where(), kinds[3].request("Host: netns.example.com\r\nOrigin: "
                                                   "https://evil.example.com\r\n",
                                                   token, 0)) == 403u);
    CHECK(d.stop() == 0);

    netnsd_process any({"--token-file=" + token_path, "--allowed-host=*"});
    REQUIRE(any.ready());
    CHECK(first_status(any.where(), kinds[0].request("Host: whatever.example\r\n", token, 0)) ==
          200u);
}

// --- TLS ---------------------------------------------------------------------------------

namespace
{

const std::string pki = run_dir + "/pki";

// A CA, made with openssl at test time: NAME.crt and NAME.key.
void make_ca(const std::string& name)
{
    run_ok({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", pki + "/" + name + ".key", "-out", pki + "/" + name + ".crt",
            "-days", "2", "-subj", "/CN=" + name});
}

// A certificate signed by `ca`: a server one for localhost and 127.0.0.1, or a client one.
void make_cert(const std::string& name, const std::string& ca, const std::string& cn, bool server)
{
    const auto base = pki + "/" + name;
    run_ok({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", base + ".key", "-out", base + ".csr", "-subj", "/CN=" + cn + "/O=netnsd"});
    write_file(base + ".ext", server ? "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                       "extendedKeyUsage=serverAuth\n"
                                     : "extendedKeyUsage=clientAuth\n");
    run_ok({"openssl", "x509", "-req", "-in", base + ".csr", "-CA", pki + "/" + ca + ".crt",
            "-CAkey", pki + "/" + ca + ".key", "-CAcreateserial", "-out", base + ".crt", "-days",
            "2", "-extfile", base + ".ext"});
}

void make_pki()
{
    ::mkdir(run_dir.c_str(), 0700);
    ::mkdir(pki.c_str(), 0700);
    make_ca("ca");
    make_ca("other-ca");
    make_cert("server", "ca", "netnsd-one", true);
    make_cert("server-two", "ca", "netnsd-two", true);
    make_cert("alice", "ca", "alice", false);
    make_cert("mallory", "other-ca", "mallory", false);
}

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// curl's status code for a URL ("000" when the connection or the handshake failed), with the
// body in `body`.
std::string curl(std::vector<std::string> args, std::string* body = nullptr)
{
    std::vector<std::string> argv{"curl", "-s", "-w", "\n%{http_code}", "--max-time", "10"};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run(argv);
    const auto nl = r.out.rfind('\n');
    if (body != nullptr)
        *body = nl == std::string::npos ? r.out : r.out.substr(0, nl);
    return nl == std::string::npos ? r.out : r.out.substr(nl + 1);
}

std::string https_url(const netnsd_process& d, const std::string& target,
                      const std::string& host = "127.0.0.1")
{
    return "https://" + host + ":" + std::to_string(d.where().port) + target;
}

// The subject of the certificate a new handshake gets ("CN = netnsd-one, O = netnsd").
std::string served_subject(const netnsd_process& d)
{
    const auto r =
        run({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(d.where().port),
             "-CAfile", pki + "/ca.crt", "-verify_return_error", "-brief"});
    // -brief prints "Peer certificate: CN = ..." on stderr.
    const auto at = r.err.find("Peer certificate: ");
    if (at == std::string::npos)
        return {};
    return r.err.substr(at + 18, r.err.find('\n', at) - at - 18);
}

// A daemon on HTTPS; ready() cannot be used (it speaks plain HTTP), so wait for curl.
bool https_ready(const netnsd_process& d)
{
    return eventually(
        [&] {
            return curl({"--cacert", pki + "/ca.crt", https_url(d, "/healthz")}) == "200";
        },
        10s);
}

std::vector<std::string> tls_args(const std::string& cert = "server")
{
    return {"--token-file=" + token_path, "--tls-cert=" + pki + "/" + cert + ".crt",
            "--tls-key=" + pki + "/" + cert + ".key"};
}

} // namespace

TEST_CASE("HTTPS: curl with the CA works, with another CA fails, TLS 1.0 and 1.1 are refused, "
          "plain HTTP gets a 400 that says so")
{
    make_pki();
    netnsd_process d(tls_args());
    INFO(d.log());
    REQUIRE(https_ready(d));
    std::string body;
    CHECK(curl({"--cacert", pki + "/ca.crt", https_url(d, "/api/v1/netns")}, &body) == "200");
    CHECK(body.find("\"namespaces\":[") != std::string::npos);
    CHECK(curl({"--cacert", pki + "/ca.crt", https_url(d, "/healthz", "localhost")}) == "200");
    // ALPN: curl offers h2 and http/1.1; HTTP/1.1 is agreed.
    const auto verbose = run(
        {"curl", "-sv", "--cacert", pki + "/ca.crt", "-o", "/dev/null", https_url(d, "/healthz")});
    CHECK(verbose.err.find("ALPN: server accepted http/1.1") != std::string::npos);
    CHECK(verbose.err.find("TLSv1.3") != std::string::npos);
    // The wrong CA: the handshake fails, nothing is served.
    CHECK(curl({"--cacert", pki + "/other-ca.crt", https_url(d, "/healthz")}) == "000");
    // TLS 1.2 is served; 1.1 and 1.0 are refused.
    CHECK(curl({"--cacert", pki + "/ca.crt", "--tlsv1.2", "--tls-max", "1.2",
                https_url(d, "/healthz")}) == "200");
    const auto port = "127.0.0.1:" + std::to_string(d.where().port);
    for (const char* old : {"-tls1_1", "-tls1"})
    {
        CAPTURE(old);
        const auto r =
            run({"openssl", "s_client", "-connect", port, old, "-cipher", "DEFAULT:@SECLEVEL=0"});
        CHECK(r.exit_code != 0);
        // The server's alert: the client offered the old version (SECLEVEL=0 lets it), and
        // netnsd said no.
        CHECK(r.err.find("alert protocol version") != std::string::npos);
    }
    // Plain HTTP on the TLS port: one clean 400 problem, then the connection closes.
    const auto plain =
        exchange_raw(d.where(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 5000ms);
    const auto reply = parse_reply(plain);
    REQUIRE(reply);
    CHECK(reply->status == 400u);
    CHECK(reply->header("Content-Type") == "application/problem+json");
    CHECK(reply->body.find("urn:netnsd:problem:https-required") != std::string::npos);
    CHECK(curl({"http://127.0.0.1:" + std::to_string(d.where().port) + "/healthz"}) == "400");
    // Still serving.
    CHECK(curl({"--cacert", pki + "/ca.crt", https_url(d, "/healthz")}) == "200");
    CHECK(d.log().find("listen=https://127.0.0.1:") != std::string::npos);
    CHECK(d.stop() == 0);
}

TEST_CASE("HTTPS: a client that never answers close_notify is closed at the TLS close deadline, "
          "and netnsd serves on")
{
    make_pki();
    netnsd_process d(tls_args());
    INFO(d.log());
    REQUIRE(https_ready(d));
    // The session's deadline after the last answer is 2 s (tls_shutdown_timeout), shorter than
    // the 30 s its timer was armed for while reading: without it the connection stays open.
    const auto closed =
        tls_peer_ignoring_close_notify(d.where(), "/healthz", pki + "/ca.crt", 30000ms);
    REQUIRE(closed);
    CHECK(*closed);
    CHECK(curl({"--cacert", pki + "/ca.crt", https_url(d, "/healthz")}) == "200");
    CHECK(d.stop() == 0);
}

TEST_CASE("HTTPS: a bad certificate or key is a start-up error, the Unix socket stays plain")
{
    make_pki();
    {
        auto args = tls_args();
        args[2] = "--tls-key=" + pki + "/server-two.key"; // not server.crt's key
        netnsd_process d(args);
        CHECK_FALSE(https_ready(d));
        CHECK(d.stop() != 0);
        CHECK(d.log().find("cannot serve TLS") != std::string::npos);
    }
    ::mkdir("/run/netnsd", 0755);
    auto args = tls_args();
    args.push_back("--listen=unix:" + socket_path);
    netnsd_process d(args);
    INFO(d.log());
    REQUIRE(https_ready(d));
    CHECK(curl({"--unix-socket", socket_path, "http://localhost/healthz"}) == "200");
}

TEST_CASE("mutual TLS: no client certificate or one of another CA is refused, the audit line "
          "names the client's subject")
{
    make_pki();
    auto args = tls_args();
    args.push_back("--tls-client-ca=" + pki + "/ca.crt");
    netnsd_process d(args);
    INFO(d.log());
    const auto with_alice = std::vector<std::string>{
        "--cacert", pki + "/ca.crt", "--cert", pki + "/alice.crt", "--key", pki + "/alice.key"};
    REQUIRE(eventually(
        [&]
        {
            auto a = with_alice;
            a.push_back(https_url(d, "/healthz"));
            return curl(a) == "200";
        },
        10s));
    CHECK(curl({"--cacert", pki + "/ca.crt", https_url(d, "/healthz")}) == "000");
    CHECK(curl({"--cacert", pki + "/ca.crt", "--cert", pki + "/mallory.crt", "--key",
                pki + "/mallory.key", https_url(d, "/healthz")}) == "000");
    auto create = with_alice;
    create.insert(create.end(), {"-H", "Authorization: Bearer " + read_token(), "-d",
                                 R"({"name":"via-mtls"})", https_url(d, "/api/v1/netns")});
    CHECK(curl(create) == "201");
    CHECK(ip_list().count("via-mtls") == 1u);
    CHECK(d.log().find("client=\"O=netnsd,CN=alice\"") != std::string::npos);
}

TEST_CASE("rotating the certificate under wrk and open websockets loses no connection, and a new "
          "handshake gets the new certificate")
{
    make_pki();
    // The files the daemon serves, replaced by rename as cert-manager does.
    const auto cert = pki + "/live.crt";
    const auto key = pki + "/live.key";
    write_file(cert, slurp(pki + "/server.crt"));
    write_file(key, slurp(pki + "/server.key"));
    netnsd_process d({"--token-file=" + token_path, "--tls-cert=" + cert, "--tls-key=" + key});
    INFO(d.log());
    REQUIRE(https_ready(d));
    CHECK(served_subject(d) == "CN = netnsd-one, O = netnsd");

    std::vector<std::unique_ptr<wss_client>> sockets;
    for (int i = 0; i < 4; ++i)
    {
        sockets.push_back(
            std::make_unique<wss_client>(d.where(), "/api/v1/events", pki + "/ca.crt"));
        REQUIRE(sockets.back()->ok());
        const auto hello = sockets.back()->read();
        REQUIRE(hello);
        CHECK((*hello)["type"] == "hello");
    }
    // wrk keeps its 16 connections for the whole run; every request must succeed.
    auto load = std::async(
        std::launch::async,
        [&] {
            return run({"wrk", "-t1", "-c16", "-d4s", "--timeout", "3s", https_url(d, "/healthz")});
        });
    // Once wrk is connected (the gauge counts its connections besides the websockets').
    REQUIRE(eventually(
        [&]
        {
            std::string metrics;
            curl({"--cacert", pki + "/ca.crt", https_url(d, "/metrics")}, &metrics);
            const auto at = metrics.find("\nnetnsd_connections ");
            return at != std::string::npos && std::stoul(metrics.substr(at + 20)) >= 20;
        },
        10s));
    // The rotation, as a Secret update: new key, then new certificate, each renamed over.
    replace_file(key, slurp(pki + "/server-two.key"));
    replace_file(cert, slurp(pki + "/server-two.crt"));
    CHECK(eventually([&] { return served_subject(d) == "CN = netnsd-two, O = netnsd"; }, 10s));
    const auto wrk = load.get();
    INFO(wrk.out);
    CHECK(wrk.exit_code == 0);
    CHECK(wrk.out.find("Socket errors") == std::string::npos);
    CHECK(wrk.out.find("Non-2xx") == std::string::npos);
    CHECK(wrk.out.find("requests in") != std::string::npos);
    // The websockets opened before the rotation are still there, and still get events.
    run_ok({"ip", "netns", "add", "after-rotation"});
    for (auto& ws : sockets)
    {
        const auto e = ws->read(10s);
        REQUIRE(e);
        CHECK((*e)["type"] == "add");
        CHECK((*e)["name"] == "after-rotation");
    }
    CHECK(d.log().find("reloaded the TLS certificate") != std::string::npos);
    // A bad file keeps the current certificate (and says so); SIGHUP reloads too.
    replace_file(key, "not a key\n");
    CHECK(eventually([&] { return d.log().find("TLS reload failed") != std::string::npos; }));
    CHECK(served_subject(d) == "CN = netnsd-two, O = netnsd");
    write_file(key, slurp(pki + "/server.key"));
    write_file(cert, slurp(pki + "/server.crt"));
    d.signal(SIGHUP);
    CHECK(eventually([&] { return served_subject(d) == "CN = netnsd-one, O = netnsd"; }, 10s));
    CHECK(d.stop() == 0);
}

// --- the Unix socket's peers -------------------------------------------------------------

namespace
{

constexpr const char* outsider_uid = "64201";
constexpr const char* admin_gid = "64202";

// curl over the Unix socket as another uid (and groups), through setpriv: no user or group
// needs to exist for that, so the host's /etc/passwd and /etc/group are never touched.
std::string curl_as(const std::vector<std::string>& ids, std::vector<std::string> args,
                    std::string* body = nullptr)
{
    std::vector<std::string> argv{"setpriv"};
    argv.insert(argv.end(), ids.begin(), ids.end());
    argv.insert(argv.end(), {"curl", "-s", "-w", "\n%{http_code}", "--max-time", "10",
                             "--unix-socket", socket_path});
    argv.insert(argv.end(), args.begin(), args.end());
    const auto r = run(argv);
    const auto nl = r.out.rfind('\n');
    if (body != nullptr)
        *body = nl == std::string::npos ? r.out : r.out.substr(0, nl);
    return nl == std::string::npos ? r.out + r.err : r.out.substr(nl + 1);
}

std::vector<std::string> create(const std::string& name)
{
    return {"-H", "Content-Type: application/json", "-d", R"({"name":")" + name + R"("})",
            "http://localhost/api/v1/netns"};
}

} // namespace

TEST_CASE("--admin-group: root and the group's members use admin on the Unix socket without a "
          "token, others get 401, the socket file has the group, the audit line names the uid")
{
    ::mkdir("/run/netnsd", 0755);
    netnsd_process d({"--listen=unix:" + socket_path, "--token-file=" + token_path,
                      std::string("--admin-group=") + admin_gid});
    INFO(d.log());
    REQUIRE(d.ready());
    struct stat st = {};
    REQUIRE(::stat(socket_path.c_str(), &st) == 0);
    CHECK(st.st_gid == std::stoul(admin_gid));
    CHECK((st.st_mode & 07777) == 0660);

    // Root: no token.
    std::vector<std::string> root{
        "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--unix-socket", socket_path};
    auto as_root = root;
    as_root.insert(as_root.end(), {"-d", R"({"name":"by-root"})", "http://localhost/api/v1/netns"});
    CHECK(run(as_root).out == "201");
    // A member by a supplementary group, and one by its primary group.
    const std::vector<std::string> member{"--reuid=" + std::string(outsider_uid),
                                          "--regid=" + std::string(outsider_uid),
                                          "--groups=" + std::string(admin_gid)};
    CHECK(curl_as(member, create("by-member")) == "201");
    const std::vector<std::string> primary{"--reuid=" + std::string(outsider_uid),
                                           "--regid=" + std::string(admin_gid), "--clear-groups"};
    CHECK(curl_as(primary, create("by-primary")) == "201");
    CHECK(ip_list().count("by-member") == 1u);
    CHECK(d.log().find("uid=" + std::string(outsider_uid)) != std::string::npos);
    // Outside the group: the socket's mode keeps it out; with the mode opened (as an admin
    // might), it gets in, and is asked for the token.
    const std::vector<std::string> outsider{"--reuid=" + std::string(outsider_uid),
                                            "--regid=" + std::string(outsider_uid),
                                            "--clear-groups"};
    CHECK(curl_as(outsider, create("by-outsider")) == "000");
    REQUIRE(::chmod(socket_path.c_str(), 0666) == 0);
    std::string body;
    CHECK(curl_as(outsider, create("by-outsider"), &body) == "401");
    CHECK(body.find("urn:netnsd:problem:unauthorized") != std::string::npos);
    auto with_token = create("by-outsider");
    with_token.insert(with_token.begin(), {"-H", "Authorization: Bearer " + read_token()});
    CHECK(curl_as(outsider, with_token) == "201");
    CHECK(ip_list().count("by-outsider") == 1u);
    // Reads are open to anyone who can connect, as before.
    CHECK(curl_as(outsider, {"http://localhost/api/v1/netns"}) == "200");
    // Over TCP, being root is no credential.
    const auto tcp = http(d.where(), "POST", "/api/v1/netns", R"({"name":"by-tcp"})",
                          {{"Content-Type", "application/json"}});
    REQUIRE(tcp);
    CHECK(tcp->status == 401u);
}

TEST_CASE("without --admin-group even root needs the token on the Unix socket")
{
    ::mkdir("/run/netnsd", 0755);
    netnsd_process d({"--listen=unix:" + socket_path, "--token-file=" + token_path});
    REQUIRE(d.ready());
    endpoint local;
    local.unix_path = socket_path;
    const auto r = http(local, "POST", "/api/v1/netns", R"({"name":"x"})",
                        {{"Content-Type", "application/json"}});
    REQUIRE(r);
    CHECK(r->status == 401u);
}

// --- the token file ----------------------------------------------------------------------

TEST_CASE("the token file: several tokens and scopes, a rotation while a client runs needs no "
          "restart, and a removed token fails at once")
{
    ::mkdir(run_dir.c_str(), 0700);
    write_file(token_path, "# two admins and a reader\nadmin-one\nadmin:admin-two\nread:reader\n");
    netnsd_process d({"--token-file=" + token_path, "--auth-reads"});
    INFO(d.log());
    REQUIRE(d.ready());
    CHECK(d.log().find("tokens=3") != std::string::npos);
    auto status = [&](const std::string& method, const std::string& target,
                      const std::string& token, const std::string& body = {})
    {
        std::vector<std::pair<std::string, std::string>> headers{
            {"Authorization", "Bearer " + token}};
        if (!body.empty())
            headers.emplace_back("Content-Type", "application/json");
        const auto r = http(d.where(), method, target, body, headers);
        return r ? r->status : 0u;
    };
    CHECK(status("GET", "/api/v1/netns", "reader") == 200u);
    CHECK(status("GET", "/api/v1/netns", "admin-one") == 200u);
    CHECK(status("GET", "/api/v1/netns", "nobody") == 401u);
    CHECK(status("POST", "/api/v1/netns", "admin-two", R"({"name":"by-two"})") == 201u);
    CHECK(status("POST", "/api/v1/netns", "reader", R"({"name":"by-reader"})") == 403u);
    CHECK(ip_list().count("by-reader") == 0u);

    // A client reads with "reader" all along; the file is rotated under it.
    // An edit in place truncates the file first: a request answered while it is empty fails
    // closed, as it should, so the client does not count requests that overlap such an edit.
    std::atomic<bool> done{false};
    std::atomic<bool> editing{false};
    std::atomic<int> failed{0};
    std::atomic<int> served{0};
    auto client = std::async(std::launch::async,
                             [&]
                             {
                                 while (!done)
                                 {
                                     const bool quiet = !editing;
                                     const bool ok =
                                         status("GET", "/api/v1/netns", "reader") == 200u;
                                     if (ok)
                                         ++served;
                                     else if (quiet && !editing)
                                         ++failed;
                                 }
                             });
    REQUIRE(eventually([&] { return served > 20; }));
    // Add a new reader and a new admin; drop admin-one.
    replace_file(token_path, "admin:admin-two\nread:reader\nread:reader-two\nadmin-three\n");
    CHECK(status("GET", "/api/v1/netns", "reader-two") == 200u);
    CHECK(status("POST", "/api/v1/netns", "admin-three", R"({"name":"by-three"})") == 201u);
    CHECK(status("GET", "/api/v1/netns", "admin-one") == 401u);
    CHECK(status("POST", "/api/v1/netns", "admin-one", R"({"name":"by-one"})") == 401u);
    // Edited in place too (no rename): the next request sees it.
    editing = true;
    write_file(token_path, "read:reader\nadmin-three\n");
    CHECK(status("GET", "/api/v1/netns", "reader-two") == 401u);
    // An empty file also refuses reader-two: the edit is over once "reader" works again.
    REQUIRE(eventually([&] { return status("GET", "/api/v1/netns", "reader") == 200u; }));
    editing = false;
    const int before = served;
    REQUIRE(eventually([&] { return served > before + 20; }));
    done = true;
    client.get();
    CHECK(failed == 0);
    CHECK(d.log().find("re-read the token file") != std::string::npos);
    // An empty file: no token works (fail closed), until one is back.
    write_file(token_path, "");
    CHECK(status("GET", "/api/v1/netns", "reader") == 401u);
    write_file(token_path, "read:reader\n");
    CHECK(status("GET", "/api/v1/netns", "reader") == 200u);
    // /healthz never needs one.
    CHECK(http_get(d.where(), "/healthz")->status == 200u);
}
