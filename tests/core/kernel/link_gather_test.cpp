// nsid_walk_length: where netnsd's own nsid sits in its nsid table, which is what a dump by
// nsid costs the kernel for each veth to netnsd's namespace.
#include <optional>
#include <vector>

#include <doctest/doctest.h>

#include "core/kernel/link_gather.hpp"

using netnsd::core::nsid_t;
using netnsd::core::kernel::nsid_walk_length;

TEST_CASE("with an nsid for itself, the walk passes every smaller nsid")
{
    const std::vector<nsid_t> table{5, 0, 3, 9, 1};
    CHECK(nsid_walk_length(table, 0) == 0);
    CHECK(nsid_walk_length(table, 4) == 3);
    CHECK(nsid_walk_length(table, 10) == 5);
    CHECK(nsid_walk_length({}, 7) == 0);
}

TEST_CASE("without one, the walk is to the lowest free nsid, which the first dump gives it")
{
    CHECK(nsid_walk_length({}, std::nullopt) == 0);
    CHECK(nsid_walk_length(std::vector<nsid_t>{1, 2, 3}, std::nullopt) == 0);
    CHECK(nsid_walk_length(std::vector<nsid_t>{3, 0, 2, 1, 7}, std::nullopt) == 4);
    // A host whose containers got 0..N-1 before netnsd's first dump: after all of them.
    std::vector<nsid_t> full;
    for (nsid_t i = 0; i < 5000; ++i)
        full.push_back(i);
    CHECK(nsid_walk_length(full, std::nullopt) == 5000);
    // Duplicates and negative values (NETNSA_NSID_NOT_ASSIGNED) do not count.
    CHECK(nsid_walk_length(std::vector<nsid_t>{-1, 0, 0, 1}, std::nullopt) == 2);
}
