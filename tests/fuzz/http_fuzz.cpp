// Fuzz target: the HTTP request path end to end. The input is written, as a client would, to
// one end of a Unix socketpair whose other end is a real server::http_session (Beast's parser
// with the session's limits, keep-alive and pipelining, the api router with metrics and admin
// enabled, every handler, and the websocket and SSE/NDJSON sessions a stream request becomes),
// then the client shuts down writing and reads every answer. The loop runs until nothing is
// left to do; then the sessions are closed as shutdown closes them, politely and then not.
// Admin requests that pass validation become jobs for worker pools of no threads, which are
// dropped unrun: nothing reaches the kernel. Checked: no crash, leak, UB, exception escaping a
// handler, and no session or subscription left behind.
// Every input runs twice more over TLS: raw, into a TLS listener's first steps (tls_accept: the
// detection of a ClientHello, the "this port speaks HTTPS" answer, OpenSSL's handshake parser),
// and as the plaintext of a real TLS connection (a client does the handshake with the server's
// context, made by server::make_tls_context from a certificate generated at start, then writes
// the input), so that tls_http_session and the TLS websocket and stream sessions see every
// request the plain ones see.
#include <array>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <optional>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "core/log.hpp"

#include "api/stream.hpp"

#include "server/connection.hpp"
#include "server/http_session.hpp"
#include "server/session_set.hpp"
#include "server/tls.hpp"
#include "server/tls_accept.hpp"
#include "server/worker_pools.hpp"

#include "wired_router.hpp"

namespace
{

using namespace netnsd;
namespace asio = boost::asio;

// A self-signed ECDSA P-256 certificate and its key, written as PEM files for
// server::make_tls_context (so the daemon's own context code is what serves).
server::tls_files make_certificate()
{
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    if (key == nullptr || cert == nullptr)
        __builtin_trap();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 7 * 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("netnsd-fuzz"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    if (X509_sign(cert, key, EVP_sha256()) == 0)
        __builtin_trap();
    char dir[] = "/tmp/netnsd-fuzz-tls-XXXXXX";
    if (::mkdtemp(dir) == nullptr)
        __builtin_trap();
    server::tls_files files{std::string(dir) + "/cert.pem", std::string(dir) + "/key.pem", {}};
    FILE* c = std::fopen(files.cert.c_str(), "w");
    FILE* k = std::fopen(files.key.c_str(), "w");
    if (c == nullptr || k == nullptr || PEM_write_X509(c, cert) != 1 ||
        PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        __builtin_trap();
    std::fclose(c);
    std::fclose(k);
    X509_free(cert);
    EVP_PKEY_free(key);
    return files;
}

// The loop objects main wires, over the fixture's model; they outlive every input.
struct fixture : fuzz::wired_router
{
    fixture()
    {
        // A peer that has gone makes writes fail with EPIPE, as in the daemon, not a signal.
        std::signal(SIGPIPE, SIG_IGN);
        // Audit lines carry the request's target: JSON escapes it. The test closes stderr
        // (-close_fd_mask=2; libFuzzer's and the sanitizers' reports still show).
        core::log::set_format(core::log::format::json);
        const auto files = make_certificate();
        tls = server::make_tls_context(files);
        client.set_verify_mode(asio::ssl::verify_none);
        std::remove(files.cert.c_str());
        std::remove(files.key.c_str());
        ::rmdir(files.cert.substr(0, files.cert.rfind('/')).c_str());
    }

    std::shared_ptr<asio::ssl::context> tls;
    asio::ssl::context client{asio::ssl::context::tls_client};
};

// The TLS client: the handshake, then the input as plaintext, then FIN (no close_notify: the
// server must take that too), then reads until the server closes.
class tls_client
{
public:
    tls_client(server::client_socket&& socket, asio::ssl::context& ctx, std::string_view input)
        : stream_(std::move(socket), ctx), input_(input)
    {
    }

    void start()
    {
        stream_.async_handshake(asio::ssl::stream_base::client,
                                [this](boost::system::error_code ec)
                                {
                                    if (ec)
                                        return;
                                    do_read();
                                    asio::async_write(
                                        stream_, asio::buffer(input_.data(), input_.size()),
                                        [this](boost::system::error_code, std::size_t)
                                        {
                                            boost::system::error_code ignored;
                                            stream_.next_layer().shutdown(
                                                server::client_socket::shutdown_send, ignored);
                                        });
                                });
    }

private:
    void do_read()
    {
        stream_.async_read_some(asio::buffer(sink_),
                                [this](boost::system::error_code ec, std::size_t)
                                {
                                    if (!ec)
                                        do_read();
                                });
    }

    asio::ssl::stream<server::client_socket> stream_;
    std::string_view input_;
    std::array<char, 16 * 1024> sink_;
};

// The client: writes the input, shuts down writing, reads until the server closes.
class client
{
public:
    client(server::client_socket&& socket, std::string_view input)
        : socket_(std::move(socket)), input_(input)
    {
    }

    void start()
    {
        asio::async_write(socket_, asio::buffer(input_.data(), input_.size()),
                          [this](boost::system::error_code, std::size_t)
                          {
                              boost::system::error_code ignored;
                              socket_.shutdown(server::client_socket::shutdown_send, ignored);
                          });
        do_read();
    }

private:
    void do_read()
    {
        socket_.async_read_some(asio::buffer(sink_),
                                [this](boost::system::error_code ec, std::size_t)
                                {
                                    if (!ec)
                                        do_read();
                                });
    }

    server::client_socket socket_;
    std::string_view input_;
    std::array<char, 16 * 1024> sink_;
};

server::client_socket adopt(asio::io_context& ioc, int fd)
{
    return server::client_socket(ioc, server::stream_protocol(AF_UNIX, 0), fd);
}

enum class mode
{
    plain,      // the bytes into an http_session
    tls_raw,    // the bytes into a TLS listener's tls_accept
    tls_inside, // the bytes as the plaintext of a TLS connection
};

void run_one(fixture& f, std::string_view input, mode how)
{
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        __builtin_trap();

    server::session_set sessions(&f.stats);
    asio::io_context ioc{1};
    std::optional<server::worker_pools> workers(std::in_place, 0, 0);
    // Runs every handler that can run now; the loop is idle when none can (all is local: a
    // socketpair, and timers of 10 s and more that never fire here).
    auto settle = [&]
    {
        ioc.restart();
        while (ioc.poll() != 0)
        {
        }
    };

    if (how == mode::plain)
        std::make_shared<server::http_session>(adopt(ioc, fds[0]), f.router, f.hub, sessions,
                                               *workers)
            ->run();
    else
        std::make_shared<server::tls_accept>(adopt(ioc, fds[0]), f.tls, f.router, f.hub, sessions,
                                             *workers)
            ->run();
    std::optional<client> peer;
    std::optional<tls_client> tls_peer;
    if (how == mode::tls_inside)
        tls_peer.emplace(adopt(ioc, fds[1]), f.client, input).start();
    else
        peer.emplace(adopt(ioc, fds[1]), input).start();
    settle();
    // What is left waits for events, a worker, or a client that sends nothing more: shut down
    // as the daemon does, politely (close frames, last chunks), then by closing the sockets.
    sessions.close_all_gracefully();
    settle();
    sessions.close_all_now();
    settle();
    workers.reset(); // the sessions whose admin jobs were never run go with them
    settle();
    if (sessions.size() != 0 || f.hub.size() != 0)
        __builtin_trap(); // a session or a subscription outlived its connection
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static fixture f;
    const std::string_view input{reinterpret_cast<const char*>(data), size};
    run_one(f, input, mode::plain);
    run_one(f, input, mode::tls_raw);
    run_one(f, input, mode::tls_inside);
    return 0;
}
