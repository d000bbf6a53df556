// tls: the TLS settings of the TCP listeners (--tls-cert, --tls-key, --tls-client-ca), as one
// OpenSSL context per load. A reload builds a new context; new handshakes take the newest, and
// open connections keep the one they started with (each holds it by shared_ptr), so rotating a
// certificate drops nothing. Reloads happen when a file in the directory of one of the three
// changes (inotify on the directories: cert-manager and the kubelet replace the files by
// renaming a symlink or a file over the old one, which a watch on the file itself would miss)
// and on SIGHUP (main). A reload that fails (a bad file, a key that does not match) keeps the
// current context and logs a warning; a failure at start-up is a start-up error.
// TLS 1.2 and 1.3 only; ECDHE with AES-GCM or ChaCha20-Poly1305 for 1.2 (OpenSSL's defaults
// for 1.3); ALPN http/1.1. Owned by main; loop thread only.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/ssl/context.hpp>

namespace netnsd::server
{

struct tls_files
{
    std::string cert;      // the certificate chain, PEM: leaf first
    std::string key;       // its private key, PEM
    std::string client_ca; // CA certificates a client's certificate must chain to; empty: none
};

// Why the files cannot be used: "the key does not match the certificate".
class tls_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

// A server context from the files. Throws tls_error.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const tls_files& files);

class tls_contexts
{
public:
    // Loads the files (throws tls_error: a start-up error) and watches their directories.
    tls_contexts(boost::asio::io_context& ioc, tls_files files);
    ~tls_contexts();
    tls_contexts(const tls_contexts&) = delete;
    tls_contexts& operator=(const tls_contexts&) = delete;

    // The context new handshakes use.
    std::shared_ptr<boost::asio::ssl::context> current() const noexcept { return current_; }

    // Loads the files again; on success new handshakes use them. False (and a warning logged)
    // when they cannot be used: the current context stays.
    bool reload(const char* why);

    // Stops watching (shutdown).
    void stop();

private:
    void watch_directories();
    void do_wait();
    void on_ready(boost::system::error_code ec);
    std::string file_bytes() const;

    tls_files files_;
    std::shared_ptr<boost::asio::ssl::context> current_;
    boost::asio::posix::stream_descriptor inotify_;
    std::vector<std::string> dirs_;
    std::string loaded_bytes_; // of the three files, as last loaded: unchanged files are skipped
    std::array<char, 4096> events_{};
};

} // namespace netnsd::server
