// core/kernel/dir_watch: decoding inotify's byte layout, translating records into changes, and
// the watch itself on a private temporary directory (inotify needs no root).
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <doctest/doctest.h>

#include "core/kernel/dir_watch.hpp"

#include "support/builders.hpp"

using netnsd::core::kernel::decode_inotify;
using netnsd::core::kernel::dir_change;
using netnsd::core::kernel::dir_watch;
using netnsd::core::kernel::inotify_record;
using netnsd::core::kernel::translate;
using netnsd::core::kernel::watch_ids;
using kind = dir_change::kind;
using changes = std::vector<dir_change>;

namespace doctest
{

template <>
struct StringMaker<dir_change>
{
    static String convert(const dir_change& c)
    {
        const char* what = "?";
        switch (c.what)
        {
        case kind::entry_created:
            what = "entry_created";
            break;
        case kind::entry_deleted:
            what = "entry_deleted";
            break;
        case kind::dir_lost:
            what = "dir_lost";
            break;
        case kind::dir_changed:
            what = "dir_changed";
            break;
        case kind::overflow:
            what = "overflow";
            break;
        }
        return String(what) + "(\"" + c.name.c_str() + "\")";
    }
};

} // namespace doctest

namespace
{

// inotify_event records exactly as the kernel lays them out: the 16-byte header, then the name
// with at least one NUL, padded with NULs to a multiple of 16; `len` counts the padding.
class inotify_bytes
{
public:
    inotify_bytes& add(int wd, std::uint32_t mask, std::uint32_t cookie = 0,
                       std::string_view name = {})
    {
        std::size_t len = 0;
        if (!name.empty())
            len = (name.size() + 1 + sizeof(inotify_event) - 1) / sizeof(inotify_event) *
                  sizeof(inotify_event);
        inotify_event head{};
        head.wd = wd;
        head.mask = mask;
        head.cookie = cookie;
        head.len = static_cast<std::uint32_t>(len);
        const auto* raw = reinterpret_cast<const std::byte*>(&head);
        bytes.insert(bytes.end(), raw, raw + sizeof head);
        for (std::size_t i = 0; i < len; ++i)
            bytes.push_back(i < name.size() ? static_cast<std::byte>(name[i]) : std::byte{0});
        return *this;
    }

    std::span<const std::byte> span() const { return bytes; }

    std::vector<std::byte> bytes;
};

std::vector<inotify_record> decoded(std::span<const std::byte> bytes)
{
    std::vector<inotify_record> out;
    REQUIRE(decode_inotify(bytes, out));
    return out;
}

inotify_record rec(int wd, std::uint32_t mask, std::string name = {})
{
    return inotify_record{wd, mask, 0, std::move(name)};
}

// The dir is watched (its parent is not): the steady state.
const watch_ids watched{1, -1, "netns"};
// The dir is missing: only its parent is watched, waiting for it to appear.
const watch_ids waiting{-1, 1, "netns"};

} // namespace

TEST_CASE("an inotify_event header is 16 bytes, the unit names are padded to")
{
    CHECK(sizeof(inotify_event) == 16);
}

TEST_CASE("decode_inotify reads one record with a NUL-padded name")
{
    inotify_bytes buf;
    buf.add(3, IN_CREATE, 0, "blue");
    REQUIRE(buf.bytes.size() == 32); // 16 header + "blue" + 12 NULs

    const auto out = decoded(buf.span());
    REQUIRE(out.size() == 1);
    CHECK(out[0].wd == 3);
    CHECK(out[0].mask == IN_CREATE);
    CHECK(out[0].cookie == 0);
    CHECK(out[0].name == "blue");
}

TEST_CASE("decode_inotify handles names at the padding boundaries")
{
    SUBCASE("15 bytes: the NUL fills the 16-byte unit")
    {
        inotify_bytes buf;
        buf.add(1, IN_DELETE, 0, std::string(15, 'x'));
        REQUIRE(buf.bytes.size() == 32);
        CHECK(decoded(buf.span())[0].name == std::string(15, 'x'));
    }
    SUBCASE("16 bytes: the NUL needs a second unit")
    {
        inotify_bytes buf;
        buf.add(1, IN_DELETE, 0, std::string(16, 'y'));
        REQUIRE(buf.bytes.size() == 48);
        CHECK(decoded(buf.span())[0].name == std::string(16, 'y'));
    }
    SUBCASE("255 bytes, the longest name")
    {
        inotify_bytes buf;
        buf.add(1, IN_CREATE, 0, std::string(255, 'z'));
        REQUIRE(buf.bytes.size() == 16 + 256);
        CHECK(decoded(buf.span())[0].name == std::string(255, 'z'));
    }
}

TEST_CASE("decode_inotify keeps the name's bytes exactly")
{
    const std::string name = "a b\tc\nd\xC3\xA9\xFF";
    inotify_bytes buf;
    buf.add(2, IN_MOVED_TO, 77, name);
    const auto out = decoded(buf.span());
    REQUIRE(out.size() == 1);
    CHECK(out[0].name == name);
    CHECK(out[0].cookie == 77);
}

TEST_CASE("decode_inotify reads a record without a name")
{
    inotify_bytes buf;
    buf.add(-1, IN_Q_OVERFLOW);
    REQUIRE(buf.bytes.size() == 16);
    const auto out = decoded(buf.span());
    REQUIRE(out.size() == 1);
    CHECK(out[0].wd == -1);
    CHECK(out[0].mask == IN_Q_OVERFLOW);
    CHECK(out[0].name.empty());
}

TEST_CASE("decode_inotify reads several records from one buffer in order")
{
    inotify_bytes buf;
    buf.add(1, IN_MOVED_FROM, 9, "old-name-longer-than-16")
        .add(1, IN_MOVED_TO, 9, "new")
        .add(1, IN_DELETE_SELF)
        .add(1, IN_IGNORED);
    REQUIRE(buf.bytes.size() == (16 + 32) + (16 + 16) + 16 + 16);

    const auto out = decoded(buf.span());
    REQUIRE(out.size() == 4);
    CHECK(out[0].mask == IN_MOVED_FROM);
    CHECK(out[0].cookie == 9);
    CHECK(out[0].name == "old-name-longer-than-16");
    CHECK(out[1].mask == IN_MOVED_TO);
    CHECK(out[1].cookie == 9);
    CHECK(out[1].name == "new");
    CHECK(out[2].mask == IN_DELETE_SELF);
    CHECK(out[2].name.empty());
    CHECK(out[3].mask == IN_IGNORED);
}

TEST_CASE("decode_inotify appends to the records it is given")
{
    inotify_bytes first;
    first.add(1, IN_CREATE, 0, "a");
    inotify_bytes second;
    second.add(1, IN_CREATE, 0, "b");
    std::vector<inotify_record> out;
    REQUIRE(decode_inotify(first.span(), out));
    REQUIRE(decode_inotify(second.span(), out));
    REQUIRE(out.size() == 2);
    CHECK(out[0].name == "a");
    CHECK(out[1].name == "b");
}

TEST_CASE("decode_inotify of an empty buffer reads nothing")
{
    std::vector<inotify_record> out;
    CHECK(decode_inotify({}, out));
    CHECK(out.empty());
}

TEST_CASE("decode_inotify refuses a buffer that ends inside a record")
{
    inotify_bytes buf;
    buf.add(1, IN_CREATE, 0, "first").add(1, IN_CREATE, 0, "second");
    REQUIRE(buf.bytes.size() == 64);
    std::vector<inotify_record> out;

    SUBCASE("inside the first header")
    {
        CHECK_FALSE(decode_inotify(buf.span().first(10), out));
    }
    SUBCASE("inside the first name")
    {
        CHECK_FALSE(decode_inotify(buf.span().first(20), out));
    }
    SUBCASE("inside the second header")
    {
        CHECK_FALSE(decode_inotify(buf.span().first(40), out));
    }
    SUBCASE("one byte short of the end")
    {
        CHECK_FALSE(decode_inotify(buf.span().first(63), out));
    }
    SUBCASE("the whole buffer is fine")
    {
        CHECK(decode_inotify(buf.span(), out));
        CHECK(out.size() == 2);
    }
}

TEST_CASE("translate turns events in the watched dir into entry changes")
{
    SUBCASE("IN_CREATE is an entry created")
    {
        CHECK(translate({rec(1, IN_CREATE, "a")}, watched) == changes{{kind::entry_created, "a"}});
    }
    SUBCASE("IN_MOVED_TO is an entry created")
    {
        CHECK(translate({rec(1, IN_MOVED_TO, "a")}, watched) ==
              changes{{kind::entry_created, "a"}});
    }
    SUBCASE("IN_CREATE|IN_ISDIR of a subdirectory is an entry created (it will probe stale)")
    {
        CHECK(translate({rec(1, IN_CREATE | IN_ISDIR, "sub")}, watched) ==
              changes{{kind::entry_created, "sub"}});
    }
    SUBCASE("IN_DELETE is an entry deleted")
    {
        CHECK(translate({rec(1, IN_DELETE, "a")}, watched) == changes{{kind::entry_deleted, "a"}});
    }
    SUBCASE("IN_MOVED_FROM is an entry deleted")
    {
        CHECK(translate({rec(1, IN_MOVED_FROM, "a")}, watched) ==
              changes{{kind::entry_deleted, "a"}});
    }
}

TEST_CASE("translate reports the watched dir itself going away as dir_lost")
{
    SUBCASE("IN_DELETE_SELF")
    {
        CHECK(translate({rec(1, IN_DELETE_SELF)}, watched) == changes{{kind::dir_lost, ""}});
    }
    SUBCASE("IN_MOVE_SELF")
    {
        CHECK(translate({rec(1, IN_MOVE_SELF)}, watched) == changes{{kind::dir_lost, ""}});
    }
    SUBCASE("IN_UNMOUNT")
    {
        CHECK(translate({rec(1, IN_UNMOUNT)}, watched) == changes{{kind::dir_lost, ""}});
    }
    SUBCASE("rmdir: IN_DELETE_SELF then IN_IGNORED")
    {
        CHECK(translate({rec(1, IN_DELETE_SELF), rec(1, IN_IGNORED)}, watched) ==
              changes{{kind::dir_lost, ""}, {kind::dir_changed, ""}});
    }
}

TEST_CASE("translate asks for a new watch when the kernel ends one (IN_IGNORED)")
{
    CHECK(translate({rec(1, IN_IGNORED)}, watched) == changes{{kind::dir_changed, ""}});
    CHECK(translate({rec(1, IN_IGNORED)}, waiting) == changes{{kind::dir_changed, ""}});
}

TEST_CASE("translate reports IN_Q_OVERFLOW as an overflow, whatever is watched")
{
    CHECK(translate({rec(-1, IN_Q_OVERFLOW)}, watched) == changes{{kind::overflow, ""}});
    CHECK(translate({rec(-1, IN_Q_OVERFLOW)}, waiting) == changes{{kind::overflow, ""}});
    CHECK(translate({rec(-1, IN_Q_OVERFLOW)}, watch_ids{}) == changes{{kind::overflow, ""}});
}

TEST_CASE("translate reports the dir's name changing in the parent as dir_changed")
{
    SUBCASE("created: the first `ip netns add` makes the dir")
    {
        CHECK(translate({rec(1, IN_CREATE | IN_ISDIR, "netns")}, waiting) ==
              changes{{kind::dir_changed, ""}});
    }
    SUBCASE("moved in")
    {
        CHECK(translate({rec(1, IN_MOVED_TO | IN_ISDIR, "netns")}, waiting) ==
              changes{{kind::dir_changed, ""}});
    }
    SUBCASE("created as a file")
    {
        CHECK(translate({rec(1, IN_CREATE, "netns")}, waiting) == changes{{kind::dir_changed, ""}});
    }
    SUBCASE("mode changed (it may have become readable)")
    {
        CHECK(translate({rec(1, IN_ATTRIB | IN_ISDIR, "netns")}, waiting) ==
              changes{{kind::dir_changed, ""}});
    }
    SUBCASE("deleted")
    {
        CHECK(translate({rec(1, IN_DELETE, "netns")}, waiting) == changes{{kind::dir_changed, ""}});
    }
}

TEST_CASE("translate ignores the parent's other entries")
{
    CHECK(translate({rec(1, IN_CREATE, "netns2")}, waiting) == changes{});
    CHECK(translate({rec(1, IN_CREATE | IN_ISDIR, "user")}, waiting) == changes{});
    CHECK(translate({rec(1, IN_DELETE, "net")}, waiting) == changes{});
}

TEST_CASE("translate ignores directory noise")
{
    SUBCASE("open, access and close of the dir itself")
    {
        CHECK(translate({rec(1, IN_OPEN | IN_ISDIR), rec(1, IN_ACCESS | IN_ISDIR),
                         rec(1, IN_CLOSE_NOWRITE | IN_ISDIR)},
                        watched) == changes{});
    }
    SUBCASE("attribute and modify events of entries")
    {
        CHECK(translate({rec(1, IN_ATTRIB, "a"), rec(1, IN_MODIFY, "a")}, watched) == changes{});
    }
}

TEST_CASE("translate ignores records of watches it does not hold")
{
    CHECK(translate({rec(7, IN_CREATE, "a"), rec(7, IN_DELETE_SELF)}, watched) == changes{});
    // Nothing watched: a record with wd -1 that is not an overflow matches nothing.
    CHECK(translate({rec(-1, IN_CREATE, "a")}, watch_ids{}) == changes{});
}

TEST_CASE("translate keeps the order of a mixed batch")
{
    inotify_bytes buf;
    buf.add(1, IN_CREATE, 0, "a")
        .add(1, IN_OPEN | IN_ISDIR)
        .add(1, IN_MOVED_FROM, 4, "a")
        .add(1, IN_MOVED_TO, 4, "b")
        .add(1, IN_DELETE, 0, "b");
    CHECK(translate(decoded(buf.span()), watched) == changes{{kind::entry_created, "a"},
                                                             {kind::entry_deleted, "a"},
                                                             {kind::entry_created, "b"},
                                                             {kind::entry_deleted, "b"}});
}

TEST_CASE("dir_watch's masks are the ones the netns dir needs")
{
    CHECK(dir_watch::dir_mask == (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO |
                                  IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT | IN_ONLYDIR));
    CHECK(dir_watch::parent_mask ==
          (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB));
}

TEST_CASE("dir_watch drops trailing slashes from its path and watches nothing before arm")
{
    const dir_watch w("/run/netns//");
    CHECK(w.path() == "/run/netns");
    CHECK_FALSE(w.watching_dir());
    CHECK_FALSE(w.moved());
    CHECK(w.fd() == -1);
}

// ---- The real kernel, on a private temporary directory -------------------------------------

namespace
{

struct temp_dir
{
    temp_dir()
    {
        std::string pattern = (std::filesystem::temp_directory_path() / "netnsd-XXXXXX").string();
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~temp_dir()
    {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    std::string path;
};

void touch(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    ::close(fd);
}

} // namespace

TEST_CASE("decode_inotify reads what the kernel writes")
{
    temp_dir tmp;
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    REQUIRE(fd >= 0);
    const int wd = ::inotify_add_watch(fd, tmp.path.c_str(), IN_CREATE | IN_DELETE);
    REQUIRE(wd >= 0);
    touch(tmp.path + "/a b");
    touch(tmp.path + "/" + std::string(16, 'n'));
    REQUIRE(::unlink((tmp.path + "/a b").c_str()) == 0);

    alignas(inotify_event) std::array<std::byte, 4096> buf;
    const auto n = ::read(fd, buf.data(), buf.size());
    ::close(fd);
    REQUIRE(n > 0);
    // Each record is padded to 16-byte units: (16 + 16) + (16 + 32) + (16 + 16).
    CHECK(n == 112);

    std::vector<inotify_record> out;
    REQUIRE(decode_inotify({buf.data(), static_cast<std::size_t>(n)}, out));
    REQUIRE(out.size() == 3);
    CHECK(out[0].wd == wd);
    CHECK(out[0].mask == IN_CREATE);
    CHECK(out[0].name == "a b");
    CHECK(out[1].mask == IN_CREATE);
    CHECK(out[1].name == std::string(16, 'n'));
    CHECK(out[2].mask == IN_DELETE);
    CHECK(out[2].name == "a b");
}

TEST_CASE("dir_watch reports creates, renames and deletes in the watched dir")
{
    temp_dir tmp;
    const std::string dir = tmp.path + "/netns";
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    dir_watch w(dir);
    REQUIRE_FALSE(w.open());
    std::error_code problem;
    REQUIRE(w.arm(problem));
    CHECK_FALSE(problem);
    CHECK(w.watching_dir());
    CHECK_FALSE(w.moved());

    touch(dir + "/a");
    REQUIRE(::rename((dir + "/a").c_str(), (dir + "/b").c_str()) == 0);
    REQUIRE(::unlink((dir + "/b").c_str()) == 0);

    CHECK(w.drain() == changes{{kind::entry_created, "a"},
                               {kind::entry_deleted, "a"},
                               {kind::entry_created, "b"},
                               {kind::entry_deleted, "b"}});
    CHECK(w.drain() == changes{});
}

TEST_CASE("dir_watch on a missing dir watches the parent until the dir appears")
{
    temp_dir tmp;
    const std::string dir = tmp.path + "/netns";
    dir_watch w(dir);
    REQUIRE_FALSE(w.open());
    std::error_code problem;

    CHECK_FALSE(w.arm(problem));
    CHECK(problem == std::errc::no_such_file_or_directory);
    CHECK_FALSE(w.watching_dir());

    touch(tmp.path + "/other");
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    CHECK(w.drain() == changes{{kind::dir_changed, ""}});

    CHECK(w.arm(problem));
    CHECK_FALSE(problem);
    CHECK(w.watching_dir());
    touch(dir + "/x");
    // The parent's watch was dropped: only the dir's own events arrive.
    touch(tmp.path + "/noise");
    CHECK(w.drain() == changes{{kind::entry_created, "x"}});
}

TEST_CASE("dir_watch refuses a path that is not a directory")
{
    temp_dir tmp;
    const std::string file = tmp.path + "/netns";
    touch(file);
    dir_watch w(file);
    REQUIRE_FALSE(w.open());
    std::error_code problem;
    CHECK_FALSE(w.arm(problem));
    CHECK(problem == std::errc::not_a_directory);
}

TEST_CASE("dir_watch reports the dir being removed as dir_lost, then a watch to renew")
{
    temp_dir tmp;
    const std::string dir = tmp.path + "/netns";
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    dir_watch w(dir);
    REQUIRE_FALSE(w.open());
    std::error_code problem;
    REQUIRE(w.arm(problem));

    REQUIRE(::rmdir(dir.c_str()) == 0);

    CHECK(w.drain() == changes{{kind::dir_lost, ""}, {kind::dir_changed, ""}});
    CHECK(w.moved());
    CHECK_FALSE(w.arm(problem));
    CHECK(problem == std::errc::no_such_file_or_directory);
}

TEST_CASE("dir_watch notices the path resolving to another directory")
{
    temp_dir tmp;
    const std::string dir = tmp.path + "/netns";
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);
    dir_watch w(dir);
    REQUIRE_FALSE(w.open());
    std::error_code problem;
    REQUIRE(w.arm(problem));

    REQUIRE(::rename(dir.c_str(), (tmp.path + "/old").c_str()) == 0);
    REQUIRE(::mkdir(dir.c_str(), 0755) == 0);

    CHECK(w.moved());
    CHECK(w.drain() == changes{{kind::dir_lost, ""}});
    REQUIRE(w.arm(problem));
    CHECK_FALSE(w.moved());
}
