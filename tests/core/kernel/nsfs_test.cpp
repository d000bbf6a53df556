// core/kernel/nsfs: identify_netns on the namespaces every process can open without root.
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "core/kernel/nsfs.hpp"
#include "core/kernel/unique_fd.hpp"

using netnsd::core::kernel::identify_netns;
using netnsd::core::kernel::unique_fd;

namespace
{

unique_fd open_read(const char* path)
{
    unique_fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    REQUIRE(fd);
    return fd;
}

} // namespace

TEST_CASE("identify_netns names the network namespace behind /proc/self/ns/net")
{
    const auto fd = open_read("/proc/self/ns/net");
    struct stat st
    {
    };
    REQUIRE(::fstat(fd.get(), &st) == 0);

    const auto id = identify_netns(fd.get());

    REQUIRE(id.has_value());
    CHECK(id->dev == st.st_dev);
    CHECK(id->ino == st.st_ino);
    // Asking again gives the same identity: it names the namespace, not the fd.
    const auto again = open_read("/proc/thread-self/ns/net");
    CHECK(identify_netns(again.get()) == id);
}

TEST_CASE("identify_netns refuses anything that is not a network namespace")
{
    SUBCASE("another namespace type")
    {
        CHECK(identify_netns(open_read("/proc/self/ns/uts").get()) == std::nullopt);
    }
    SUBCASE("a regular file, like the placeholder before its bind mount")
    {
        CHECK(identify_netns(open_read("/proc/self/stat").get()) == std::nullopt);
    }
    SUBCASE("a directory")
    {
        CHECK(identify_netns(open_read("/").get()) == std::nullopt);
    }
    SUBCASE("a closed fd")
    {
        CHECK(identify_netns(-1) == std::nullopt);
    }
}
