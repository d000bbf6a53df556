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

using netnsd::core::kernel::mount_sighting;

// A statmount answer laid out as the kernel writes it: struct statmount (512 bytes; the
// fields netnsd reads at their uapi offsets), then the strings, each at str + its offset.
std::vector<std::byte> statmount_answer(std::uint64_t id, const std::string& fs_type,
                                        const std::string& root, const std::string& point)
{
    std::vector<std::byte> out(512);
    auto put32 = [&](std::size_t at, std::uint32_t v)
    {
        std::memcpy(out.data() + at, &v, 4);
    };
    auto put64 = [&](std::size_t at, std::uint64_t v)
    {
        std::memcpy(out.data() + at, &v, 8);
    };
    auto add_string = [&](const std::string& text)
    {
        const auto at = static_cast<std::uint32_t>(out.size() - 512);
        append(out, text.c_str(), text.size() + 1);
        return at;
    };
    put32(16, 0); // sb_dev_major
    put32(20, 4); // sb_dev_minor
    put64(40, id);
    put32(36, add_string(fs_type));
    put32(104, add_string(root));
    put32(108, add_string(point));
    put32(0, static_cast<std::uint32_t>(out.size())); // size: the struct and its strings
    return out;
}

mount_sighting sighting(kind what, std::uint64_t id, int stat_errno = 0, unsigned lookups = 0,
                        std::uint32_t answer_at = 0, std::uint32_t answer_size = 0,
                        std::chrono::system_clock::time_point read_at = {})
{
    return {what, id, read_at, stat_errno, lookups, answer_at, answer_size};
}

} // namespace

TEST_CASE("a sighting becomes its change: the answer kept beside it parsed, or the error")
{
    using netnsd::core::kernel::to_change;
    // Two answers back to back, as a reader keeps them; the second is the one asked for.
    auto answers = statmount_answer(5, "tmpfs", "/", "/run");
    const auto at = static_cast<std::uint32_t>(answers.size());
    const auto second = statmount_answer(6, "nsfs", "net:[4026532177]", "/run/netns/a b");
    answers.insert(answers.end(), second.begin(), second.end());
    const auto read_at = std::chrono::system_clock::now();

    const auto seen =
        sighting(kind::attached, 6, 0, 2, at, static_cast<std::uint32_t>(second.size()), read_at);
    const auto change = to_change(seen, answers);
    CHECK(change.what == kind::attached);
    CHECK(change.mount_id == 6);
    CHECK(change.read_at == read_at);
    CHECK(change.lookups == 2);
    CHECK(!change.stat_error);
    REQUIRE(change.facts);
    CHECK(change.facts->mount_id == 6);
    CHECK(change.facts->fs_type == "nsfs");
    CHECK(change.facts->root == "net:[4026532177]");
    CHECK(change.facts->mount_point == "/run/netns/a b");
    CHECK(change.facts->dev_minor == 4);
    CHECK(change.facts->netns_inode() == 4026532177u);

    const auto gone = to_change(sighting(kind::attached, 7, ENOENT, 1), answers);
    CHECK(!gone.facts);
    CHECK(gone.stat_error == std::errc::no_such_file_or_directory);
    const auto detach = to_change(sighting(kind::detached, 6), answers);
    CHECK(!detach.facts);
    CHECK(!detach.stat_error);
    // An answer said to lie past the bytes kept is not read.
    const auto past = to_change(sighting(kind::attached, 8, 0, 1, at, 4096), answers);
    CHECK(!past.facts);
}

TEST_CASE("an attach said gone is looked up again unless its detach came with it")
{
    using netnsd::core::kernel::look_up_again;
    using std::chrono::microseconds;
    // Mount 1: ENOENT at first, there on the second look (as 6.18 answered once, mid-mount(2)).
    // Mount 2: ENOENT, and its detach is in the batch: really gone, not looked at again.
    // Mount 3: resolved at once. Mount 4: ENOENT on every look (its detach not read yet).
    std::vector<mount_sighting> sightings{
        sighting(kind::attached, 1, ENOENT, 1),    sighting(kind::attached, 2, ENOENT, 1),
        sighting(kind::attached, 3, 0, 1, 0, 600), sighting(kind::detached, 2),
        sighting(kind::attached, 4, ENOENT, 1),
    };
    std::vector<std::uint64_t> asked;
    const auto lookup = [&](mount_sighting& seen)
    {
        asked.push_back(seen.mount_id);
        seen.stat_errno = seen.mount_id == 1 ? 0 : ENOENT;
        if (seen.mount_id == 1)
            seen.answer_size = 600;
    };
    const std::array<microseconds, 3> waits{microseconds(0), microseconds(0), microseconds(0)};
    CHECK(look_up_again(sightings, lookup, waits) == 1);
    // Round 1 asks 1 and 4; rounds 2 and 3 ask 4 only.
    CHECK(asked == std::vector<std::uint64_t>{1, 4, 4, 4});
    CHECK(sightings[0].stat_errno == 0);
    CHECK(sightings[0].answer_size == 600);
    CHECK(sightings[0].lookups == 2);
    CHECK(sightings[1].stat_errno == ENOENT);
    CHECK(sightings[1].lookups == 1);
    CHECK(sightings[2].lookups == 1);
    CHECK(sightings[4].stat_errno == ENOENT);
    CHECK(sightings[4].lookups == 4);
    // The order of the batch is kept.
    CHECK(sightings[3].what == kind::detached);
}

TEST_CASE("with every attach resolved, nothing is looked up again")
{
    using netnsd::core::kernel::look_up_again;
    std::vector<mount_sighting> sightings{
        sighting(kind::attached, 7, 0, 1, 0, 600),
        sighting(kind::detached, 9),
    };
    bool asked = false;
    const std::array<std::chrono::microseconds, 1> waits{std::chrono::microseconds(0)};
    CHECK(look_up_again(
              sightings, [&](mount_sighting&) { asked = true; }, waits) == 0);
    CHECK(!asked);
}
