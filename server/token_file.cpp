#include "server/token_file.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <stdexcept>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.hpp"

namespace netnsd::server
{
namespace
{

[[noreturn]] void fail(const std::string& what, const std::string& path)
{
    throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
}

std::string random_hex(std::size_t bytes)
{
    std::array<unsigned char, 64> raw{};
    std::size_t got = 0;
    while (got < bytes)
    {
        const auto n = ::getrandom(raw.data() + got, bytes - got, 0);
        if (n < 0)
        {
            if (errno == EINTR)
                continue;
            throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
        }
        got += static_cast<std::size_t>(n);
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes; ++i)
    {
        out.push_back(digits[raw[i] >> 4]);
        out.push_back(digits[raw[i] & 0xF]);
    }
    return out;
}

void make_parent(const std::string& path)
{
    const auto slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0)
        return;
    const auto dir = path.substr(0, slash);
    make_parent(dir);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
        fail("cannot create the token directory", dir);
}

// The file's bytes (at most 64 KiB), or nullopt with errno set.
std::optional<std::string> read_all(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return std::nullopt;
    std::string text;
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 64 * 1024)
        text.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return text;
}

} // namespace

bool token_file::version::operator==(const version& o) const noexcept
{
    return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec &&
           ctime.tv_nsec == o.ctime.tv_nsec;
}

token_file::token_file(std::string path) : path_(std::move(path))
{
    created_ = load_or_create_token(path_).created;
    current();
    if (size() == 0)
        throw std::runtime_error("the token file " + path_ + " holds no token");
}

std::shared_ptr<const api::token_auth::token_set> token_file::current()
{
    struct stat st = {};
    version now;
    if (::stat(path_.c_str(), &st) == 0)
        now = {st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
    if (tokens_ && now == seen_)
        return tokens_;
    const bool first = !tokens_;
    seen_ = now;
    const auto text = now.size < 0 ? std::nullopt : read_all(path_);
    auto tokens = std::make_shared<api::token_auth::token_set>(text ? api::parse_tokens(*text)
                                                                    : api::token_auth::token_set{});
    if (!first)
    {
        if (!text)
            core::log::warn("cannot read the token file; no token is valid until it is back",
                            {{"token_file", path_}, {"error", std::strerror(errno)}});
        else
            core::log::info("re-read the token file",
                            {{"token_file", path_}, {"tokens", std::to_string(tokens->size())}});
    }
    tokens_ = std::move(tokens);
    return tokens_;
}

loaded_token load_or_create_token(const std::string& path)
{
    // Followed if a symlink: a Kubernetes Secret's files are symlinks into its "..data".
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0)
    {
        std::string token;
        char buf[512];
        ssize_t n = 0;
        while ((n = ::read(fd, buf, sizeof buf)) > 0 && token.size() < 4096)
            token.append(buf, static_cast<std::size_t>(n));
        ::close(fd);
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r' ||
                                  token.back() == ' ' || token.back() == '\t'))
            token.pop_back();
        if (token.empty())
            throw std::runtime_error("the token file " + path + " is empty");
        return {token, false};
    }
    if (errno != ENOENT)
        fail("cannot read the token file", path);

    make_parent(path);
    const auto token = random_hex(32);
    const int out =
        ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0)
        fail("cannot create the token file", path);
    const std::string line = token + "\n";
    const bool ok = ::write(out, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    ::close(out);
    if (!ok)
        fail("cannot write the token file", path);
    return {token, true};
}

} // namespace netnsd::server
