#include "server/tls.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sstream>
#include <sys/inotify.h>
#include <unistd.h>

#include <boost/asio/ssl/error.hpp>

#include "core/log.hpp"

namespace netnsd::server
{

namespace asio = boost::asio;
namespace ssl = asio::ssl;

namespace
{

// TLS 1.2 suites with forward secrecy and AEAD only (TLS 1.3's are all of that already).
constexpr const char* tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// Session ids of one context are only resumed by it; required with client certificates.
constexpr unsigned char session_id_context[] = "netnsd";

// ALPN: HTTP/1.1 when the client offers it; otherwise no protocol is agreed (a client that
// offers only h2 is told nothing and may go on or give up).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*)
{
    static constexpr unsigned char http11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
    for (unsigned int i = 0; i < inlen;)
    {
        const unsigned len = in[i];
        if (i + 1 + len > inlen)
            break;
        if (len == sizeof http11 && std::memcmp(in + i + 1, http11, len) == 0)
        {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

void check(const boost::system::error_code& ec, const std::string& what)
{
    if (ec)
        throw tls_error(what + ": " + ec.message());
}

void check_openssl(long ok, const std::string& what)
{
    if (ok != 1)
        check(boost::system::error_code(static_cast<int>(::ERR_get_error()),
                                        asio::error::get_ssl_category()),
              what);
}

std::string slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return in ? ss.str() : std::string();
}

std::string directory_of(const std::string& path)
{
    const auto slash = path.rfind('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

// "CN=netnsd" and "Nov 29 17:35:04 2027 GMT" of the context's certificate, for the log.
std::pair<std::string, std::string> describe(ssl::context& ctx)
{
    X509* cert = ::SSL_CTX_get0_certificate(ctx.native_handle());
    if (cert == nullptr)
        return {};
    std::pair<std::string, std::string> out;
    if (BIO* bio = ::BIO_new(::BIO_s_mem()))
    {
        char* data = nullptr;
        if (::X509_NAME_print_ex(bio, ::X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0)
            if (const long n = BIO_get_mem_data(bio, &data); n > 0)
                out.first.assign(data, static_cast<std::size_t>(n));
        (void)BIO_reset(bio);
        if (::ASN1_TIME_print(bio, ::X509_get0_notAfter(cert)) == 1)
            if (const long n = BIO_get_mem_data(bio, &data); n > 0)
                out.second.assign(data, static_cast<std::size_t>(n));
        ::BIO_free(bio);
    }
    return out;
}

} // namespace

std::shared_ptr<ssl::context> make_tls_context(const tls_files& files)
{
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    SSL_CTX* native = ctx->native_handle();
    boost::system::error_code ec;
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression |
                         ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                         ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                     ec);
    check(ec, "TLS options");
    check_openssl(::SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION), "TLS 1.2 minimum");
    check_openssl(::SSL_CTX_set_cipher_list(native, tls12_ciphers), "cipher list");
    // No renegotiation: a client could make the server redo handshakes at will.
    ::SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION);
    ::SSL_CTX_set_alpn_select_cb(native, select_alpn, nullptr);
    check_openssl(
        ::SSL_CTX_set_session_id_context(native, session_id_context, sizeof session_id_context - 1),
        "session id context");

    ctx->use_certificate_chain_file(files.cert, ec);
    check(ec, "the certificate " + files.cert);
    ctx->use_private_key_file(files.key, ssl::context::pem, ec);
    check(ec, "the key " + files.key);
    check_openssl(::SSL_CTX_check_private_key(native),
                  "the key " + files.key + " does not match the certificate " + files.cert);
    if (!files.client_ca.empty())
    {
        ctx->load_verify_file(files.client_ca, ec);
        check(ec, "the client CA " + files.client_ca);
        // The CA names sent to clients, so that a client with several certificates picks one.
        STACK_OF(X509_NAME)* names = ::SSL_load_client_CA_file(files.client_ca.c_str());
        if (names == nullptr)
            check_openssl(0, "the client CA " + files.client_ca);
        ::SSL_CTX_set_client_CA_list(native, names);
        ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
        check(ec, "client verification");
    }
    return ctx;
}

tls_contexts::tls_contexts(asio::io_context& ioc, tls_files files)
    : files_(std::move(files)), current_(make_tls_context(files_)), inotify_(ioc)
{
    loaded_bytes_ = file_bytes();
    const auto [subject, not_after] = describe(*current_);
    core::log::info("serving TLS",
                    {{"cert", files_.cert},
                     {"subject", subject},
                     {"not_after", not_after},
                     {"client_ca", files_.client_ca.empty() ? "-" : files_.client_ca}});
    watch_directories();
}

tls_contexts::~tls_contexts()
{
    stop();
}

void tls_contexts::stop()
{
    boost::system::error_code ignored;
    inotify_.close(ignored);
}

std::string tls_contexts::file_bytes() const
{
    return slurp(files_.cert) + '\0' + slurp(files_.key) + '\0' + slurp(files_.client_ca);
}

bool tls_contexts::reload(const char* why)
{
    const auto bytes = file_bytes();
    try
    {
        current_ = make_tls_context(files_);
        loaded_bytes_ = bytes;
    }
    catch (const tls_error& e)
    {
        core::log::warn("TLS reload failed; still serving the previous certificate",
                        {{"reason", why}, {"error", e.what()}});
        return false;
    }
    const auto [subject, not_after] = describe(*current_);
    core::log::info("reloaded the TLS certificate",
                    {{"reason", why}, {"subject", subject}, {"not_after", not_after}});
    return true;
}

void tls_contexts::watch_directories()
{
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
    {
        core::log::warn("cannot watch the TLS files; reload them with SIGHUP",
                        {{"error", std::strerror(errno)}});
        return;
    }
    inotify_.assign(fd);
    for (const auto& file : {files_.cert, files_.key, files_.client_ca})
    {
        if (file.empty())
            continue;
        auto dir = directory_of(file);
        if (std::find(dirs_.begin(), dirs_.end(), dir) != dirs_.end())
            continue;
        // Every way a file can be replaced: written in place, renamed over, a symlink swapped.
        if (::inotify_add_watch(fd, dir.c_str(),
                                IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ONLYDIR) <
            0)
            core::log::warn("cannot watch a TLS directory; reload with SIGHUP",
                            {{"dir", dir}, {"error", std::strerror(errno)}});
        dirs_.push_back(std::move(dir));
    }
    do_wait();
}

void tls_contexts::do_wait()
{
    inotify_.async_wait(asio::posix::stream_descriptor::wait_read,
                        [this](boost::system::error_code ec) { on_ready(ec); });
}

void tls_contexts::on_ready(boost::system::error_code ec)
{
    if (ec || !inotify_.is_open())
        return;
    // What changed does not matter (kubelet swaps a "..data" symlink; cp writes in place): read
    // the queue empty, then load all three again.
    for (;;)
    {
        const auto n = ::read(inotify_.native_handle(), events_.data(), events_.size());
        if (n <= 0)
            break;
    }
    // Files that are half written fail to load and keep the old context; the write that
    // completes them makes another event.
    if (file_bytes() != loaded_bytes_)
        reload("files changed");
    do_wait();
}

} // namespace netnsd::server
