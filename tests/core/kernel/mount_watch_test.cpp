// core/kernel/mount_watch's decoder, on fanotify records laid out as the kernel writes them
// (struct fanotify_event_metadata, then a struct fanotify_event_info_mnt), and what a mount's
// root says about it, and the second look at an attach said gone. No root needed; the kernel
// itself is exercised by the integration tests.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <sys/fanotify.h>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>

#include "core/kernel/mount_watch.hpp"

using netnsd::core::kernel::decode_mount_events;
using netnsd::core::kernel::mount_facts;
using netnsd::core::kernel::mount_record;
using kind = mount_record::kind;

namespace
{

constexpr std::uint64_t attach_mask = 0x01000000; // FAN_MNT_ATTACH
constexpr std::uint64_t detach_mask = 0x02000000; // FAN_MNT_DETACH
constexpr std::uint8_t info_mnt = 7;              // FAN_EVENT_INFO_TYPE_MNT

void append(std::vector<std::byte>& out, const void* p, std::size_t n)
{
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
}

// One event as read(2) returns it: metadata, then the mount's info record (header, 4 bytes of
// padding, the u64 id), with event_len covering both.
void event(std::vector<std::byte>& out, std::uint64_t mask, std::uint64_t mount_id,
           std::uint8_t info_type = info_mnt)
{
    fanotify_event_metadata meta{};
    meta.event_len = sizeof meta + 16;
    meta.vers = FANOTIFY_METADATA_VERSION;
    meta.metadata_len = sizeof meta;
    meta.mask = mask;
    meta.fd = FAN_NOFD;
    meta.pid = 4242;
    append(out, &meta, sizeof meta);
    fanotify_event_info_header head{};
    head.info_type = info_type;
    head.len = 16;
    append(out, &head, sizeof head);
    const std::uint32_t pad = 0;
    append(out, &pad, sizeof pad);
    append(out, &mount_id, sizeof mount_id);
}

} // namespace

TEST_CASE("attach and detach records decode to the mount ids, in order")
{
    std::vector<std::byte> buf;
    event(buf, attach_mask, 2147483741);
    event(buf, attach_mask, 2147483742);
    event(buf, detach_mask, 2147483741);
    std::vector<mount_record> out;
    REQUIRE(decode_mount_events(buf, out));
    CHECK(out == std::vector<mount_record>{{kind::attached, 2147483741},
                                           {kind::attached, 2147483742},
                                           {kind::detached, 2147483741}});
}

TEST_CASE("an overflow record says events were lost")
{
    std::vector<std::byte> buf;
    event(buf, attach_mask, 7);
    fanotify_event_metadata overflow{};
    overflow.event_len = sizeof overflow;
    overflow.vers = FANOTIFY_METADATA_VERSION;
    overflow.metadata_len = sizeof overflow;
    overflow.mask = FAN_Q_OVERFLOW;
    overflow.fd = FAN_NOFD;
    append(buf, &overflow, sizeof overflow);
    std::vector<mount_record> out;
    REQUIRE(decode_mount_events(buf, out));
    CHECK(out == std::vector<mount_record>{{kind::attached, 7}, {kind::overflow, 0}});
}

TEST_CASE("records of other kinds, and other info types, are skipped")
{
    std::vector<std::byte> buf;
    event(buf, FAN_CREATE, 1);
    event(buf, attach_mask, 2, 1 /* FAN_EVENT_INFO_TYPE_FID */);
    event(buf, detach_mask, 3);
    std::vector<mount_record> out;
    REQUIRE(decode_mount_events(buf, out));
    CHECK(out == std::vector<mount_record>{{kind::detached, 3}});
}

TEST_CASE("a truncated or inconsistent buffer is refused, never read past")
{
    std::vector<std::byte> whole;
    event(whole, attach_mask, 9);
    for (std::size_t cut = 1; cut < whole.size(); ++cut)
    {
        CAPTURE(cut);
        std::vector<mount_record> out;
        const std::vector<std::byte> part(whole.begin(),
                                          whole.begin() + static_cast<std::ptrdiff_t>(cut));
        CHECK_FALSE(decode_mount_events(part, out));
    }
    // An info record claiming more than its event holds.
    auto bad = whole;
    fanotify_event_info_header head{};
    std::memcpy(&head, bad.data() + sizeof(fanotify_event_metadata), sizeof head);
    head.len = 64;
    std::memcpy(bad.data() + sizeof(fanotify_event_metadata), &head, sizeof head);
    std::vector<mount_record> out;
    CHECK_FALSE(decode_mount_events(bad, out));
    // An event shorter than its own metadata.
    auto shorter = whole;
    fanotify_event_metadata meta{};
    std::memcpy(&meta, shorter.data(), sizeof meta);
    meta.event_len = 4;
    std::memcpy(shorter.data(), &meta, sizeof meta);
    CHECK_FALSE(decode_mount_events(shorter, out));
}

TEST_CASE("an nsfs mount of a network namespace names its inode, anything else none")
{
    mount_facts f;
    f.fs_type = "nsfs";
    f.root = "net:[4026532177]";
    CHECK(f.netns_inode() == 4026532177u);
    f.root = "mnt:[4026531841]";
    CHECK_FALSE(f.netns_inode());
    f.root = "net:[]";
    CHECK_FALSE(f.netns_inode());
    f.root = "net:[12x]";
    CHECK_FALSE(f.netns_inode());
    f.root = "net:[4026532177]";
    f.fs_type = "tmpfs";
    CHECK_FALSE(f.netns_inode());
}

namespace
{

mount_facts facts_of(std::uint64_t id, std::string point)
{
    mount_facts f;
    f.mount_id = id;
    f.mount_point = std::move(point);
    f.fs_type = "nsfs";
    return f;
}

} // namespace

TEST_CASE("an attach said gone is looked up again unless its detach came with it")
{
    using netnsd::core::kernel::look_up_again;
    using netnsd::core::kernel::mount_change;
    using std::chrono::microseconds;
    const auto gone = std::make_error_code(std::errc::no_such_file_or_directory);
    // Mount 1: ENOENT at first, there on the second look (as 6.18 answered once, mid-mount(2)).
    // Mount 2: ENOENT, and its detach is in the batch: really gone, not looked at again.
    // Mount 3: resolved at once. Mount 4: ENOENT on every look (its detach not read yet).
    std::vector<mount_change> changes{
        {kind::attached, 1, std::nullopt, gone, {}, 1},
        {kind::attached, 2, std::nullopt, gone, {}, 1},
        {kind::attached, 3, facts_of(3, "/run/netns/c"), {}, {}, 1},
        {kind::detached, 2, std::nullopt, {}, {}, 0},
        {kind::attached, 4, std::nullopt, gone, {}, 1},
    };
    std::vector<std::uint64_t> asked;
    const auto lookup = [&](std::uint64_t id, std::error_code& ec) -> std::optional<mount_facts>
    {
        asked.push_back(id);
        if (id == 1)
        {
            ec.clear();
            return facts_of(1, "/run/netns/a");
        }
        ec = gone;
        return std::nullopt;
    };
    const std::array<microseconds, 3> waits{microseconds(0), microseconds(0), microseconds(0)};
    CHECK(look_up_again(changes, lookup, waits) == 1);
    // Round 1 asks 1 and 4; rounds 2 and 3 ask 4 only.
    CHECK(asked == std::vector<std::uint64_t>{1, 4, 4, 4});
    REQUIRE(changes[0].facts);
    CHECK(changes[0].facts->mount_point == "/run/netns/a");
    CHECK(!changes[0].stat_error);
    CHECK(changes[0].lookups == 2);
    CHECK(!changes[1].facts);
    CHECK(changes[1].lookups == 1);
    CHECK(changes[2].lookups == 1);
    CHECK(!changes[4].facts);
    CHECK(changes[4].stat_error == std::errc::no_such_file_or_directory);
    CHECK(changes[4].lookups == 4);
    // The order of the batch is kept.
    CHECK(changes[3].what == kind::detached);
}

TEST_CASE("with every attach resolved, nothing is looked up again")
{
    using netnsd::core::kernel::look_up_again;
    using netnsd::core::kernel::mount_change;
    std::vector<mount_change> changes{
        {kind::attached, 7, facts_of(7, "/run/netns/g"), {}, {}, 1},
        {kind::detached, 9, std::nullopt, {}, {}, 0},
    };
    bool asked = false;
    const std::array<std::chrono::microseconds, 1> waits{std::chrono::microseconds(0)};
    CHECK(look_up_again(
              changes,
              [&](std::uint64_t, std::error_code&) -> std::optional<mount_facts>
              {
                  asked = true;
                  return std::nullopt;
              },
              waits) == 0);
    CHECK(!asked);
}
