// listener on a Unix socket (--listen unix:PATH): it serves like a TCP one, its file has mode
// 0660, a stale socket left by a dead process is replaced but a live one or another file is
// never touched, and stop() removes the file. The peer's credentials name it in the audit log.
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <doctest/doctest.h>

#include "server/connection.hpp"
#include "server/listener.hpp"

#include "running_server.hpp"
#include "support/http_client.hpp"

namespace
{

using namespace netnsd;
using test::running_server;

// A fresh directory under /tmp, removed with everything in it.
class scratch_dir
{
public:
    scratch_dir()
    {
        char pattern[] = "/tmp/netnsd-unix-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        path_ = pattern;
    }
    ~scratch_dir() { std::filesystem::remove_all(path_); }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

server::listen_address unix_address(const std::string& path)
{
    server::listen_address where;
    where.path = path;
    return where;
}

// A Unix socket bound at `path`, listening when `listening`; -1 on failure.
int bind_socket(const std::string& path, bool listening)
{
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path.copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        (listening && ::listen(fd, 1) != 0))
    {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool is_socket(const std::string& path, mode_t* mode = nullptr)
{
    struct stat st = {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    if (mode != nullptr)
        *mode = st.st_mode & 07777;
    return true;
}

} // namespace

TEST_CASE("a Unix socket listener serves requests, with mode 0660, and stop() removes it")
{
    scratch_dir dir;
    const auto path = dir / "netnsd.sock";
    {
        running_server srv(unix_address(path));
        srv.start();
        mode_t mode = 0;
        REQUIRE(is_socket(path, &mode));
        CHECK(mode == 0660);

        const auto reply = test::http_get(srv.where(), "/healthz");
        REQUIRE(reply);
        CHECK(reply->status == 200u);
        const auto list = test::http_get(srv.where(), "/api/v1/netns");
        REQUIRE(list);
        CHECK(list->status == 200u);
        CHECK(srv.stop());
        CHECK_FALSE(std::filesystem::exists(path));
    }
}

TEST_CASE("a stale Unix socket left by a dead process is replaced")
{
    scratch_dir dir;
    const auto path = dir / "netnsd.sock";
    const int old = bind_socket(path, true);
    REQUIRE(old >= 0);
    ::close(old); // the file stays; nobody listens any more
    REQUIRE(is_socket(path));

    running_server srv(unix_address(path));
    srv.start();
    const auto reply = test::http_get(srv.where(), "/healthz");
    REQUIRE(reply);
    CHECK(reply->status == 200u);
    CHECK(srv.stop());
}

TEST_CASE("a live Unix socket or another kind of file at the path is left alone")
{
    scratch_dir dir;
    SUBCASE("another process serves on it")
    {
        const auto path = dir / "live.sock";
        const int live = bind_socket(path, true);
        REQUIRE(live >= 0);
        CHECK_THROWS_AS(running_server(unix_address(path)), server::listen_error);
        CHECK(is_socket(path));
        // Still the other process's: a connect reaches its backlog.
        server::listen_address where = unix_address(path);
        CHECK(test::connect_to({"", 0, where.path}) >= 0);
        ::close(live);
    }
    SUBCASE("a regular file")
    {
        const auto path = dir / "file";
        std::ofstream(path) << "keep me";
        CHECK_THROWS_AS(running_server(unix_address(path)), server::listen_error);
        std::ifstream in(path);
        std::string text;
        std::getline(in, text);
        CHECK(text == "keep me");
    }
    SUBCASE("a directory that does not exist")
    {
        CHECK_THROWS_AS(running_server(unix_address(dir / "missing/netnsd.sock")),
                        server::listen_error);
    }
}

TEST_CASE("describe_peer names a Unix peer by its credentials")
{
    boost::asio::io_context ioc;
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    server::client_socket end(ioc);
    end.assign(server::stream_protocol(AF_UNIX, 0), pair[0]);
    CHECK(server::describe_peer(end) == "unix:pid=" + std::to_string(::getpid()) +
                                            ",uid=" + std::to_string(::getuid()) +
                                            ",gid=" + std::to_string(::getgid()));
    ::close(pair[1]);
}
