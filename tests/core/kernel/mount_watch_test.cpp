// core/kernel/mount_watch's decoder, on fanotify records laid out as the kernel writes them
// (struct fanotify_event_metadata, then a struct fanotify_event_info_mnt), and what a mount's
// root says about it. No root needed; the kernel itself is exercised by the integration tests.
#include <cstdint>
#include <cstring>
#include <sys/fanotify.h>
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
