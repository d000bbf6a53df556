// core/mount_stacks: which mount an entry shows when mounts are stacked on it and go in any
// order.
#include <doctest/doctest.h>

#include "core/mount_stacks.hpp"

#include "support/builders.hpp"

using netnsd::core::mount_stacks;
using netnsd::test::live;

TEST_CASE("an entry shows its newest mount, and the one below once that goes")
{
    mount_stacks stacks;
    CHECK(stacks.top("a") == nullptr);
    stacks.push("a", 10, live(1));
    stacks.push("a", 11, live(2));
    stacks.push("b", 12, live(3));
    REQUIRE(stacks.top("a") != nullptr);
    CHECK(stacks.top("a")->mount_id == 11);
    CHECK(stacks.top("a")->shows == live(2));
    CHECK(stacks.mounts() == 3);

    CHECK(stacks.pop(11) == "a");
    CHECK(stacks.top("a")->shows == live(1));
    CHECK(stacks.pop(10) == "a");
    CHECK(stacks.top("a") == nullptr);
    CHECK(stacks.top("b")->mount_id == 12);
}

TEST_CASE("a lower mount can go first, and an unknown one is none of the entries'")
{
    mount_stacks stacks;
    stacks.push("a", 1, live(1));
    stacks.push("a", 2, live(2));
    CHECK(stacks.pop(1) == "a");
    CHECK(stacks.top("a")->mount_id == 2);
    CHECK_FALSE(stacks.pop(99));
    CHECK_FALSE(stacks.pop(1));
}

TEST_CASE("a mount reported twice is kept once, and a look at the top updates what it shows")
{
    mount_stacks stacks;
    stacks.push("a", 5, live(1));
    stacks.push("a", 5, live(7));
    CHECK(stacks.mounts() == 1);
    CHECK(stacks.top("a")->shows == live(1));
    stacks.update_top("a", live(1, 3));
    CHECK(stacks.top("a")->shows == live(1, 3));
    CHECK(stacks.has(5));
    stacks.clear();
    CHECK_FALSE(stacks.has(5));
    CHECK(stacks.top("a") == nullptr);
}
