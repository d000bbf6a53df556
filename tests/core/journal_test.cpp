// core/journal: the ring of recent events that lets a client resume with since=R.
#include <vector>

#include <doctest/doctest.h>

#include "core/journal.hpp"

#include "support/builders.hpp"

using netnsd::core::event;
using netnsd::core::event_type;
using netnsd::core::journal;
using netnsd::core::revision_t;

namespace
{

event numbered(revision_t revision)
{
    event e;
    e.type = event_type::added;
    e.revision = revision;
    e.name = "ns" + std::to_string(revision);
    return e;
}

journal filled(std::size_t capacity, revision_t last)
{
    journal j(capacity);
    for (revision_t r = 1; r <= last; ++r)
        j.append(numbered(r));
    return j;
}

std::vector<revision_t> since(const journal& j, revision_t from)
{
    std::vector<revision_t> out;
    j.for_each_since(from, [&](const event& e) { out.push_back(e.revision); });
    return out;
}

using revisions = std::vector<revision_t>;

} // namespace

TEST_CASE("an empty journal covers only its base and yields nothing")
{
    const journal j(4);
    CHECK(j.size() == 0);
    CHECK(j.capacity() == 4);
    CHECK(j.covers(0));
    CHECK_FALSE(j.covers(7)); // a revision this journal never had
    CHECK(since(j, 0) == revisions{});
}

TEST_CASE("a journal with a base refuses revisions from before it")
{
    const journal j(4, 100);
    CHECK(j.covers(100));
    CHECK_FALSE(j.covers(99));
    CHECK_FALSE(j.covers(0));
    CHECK_FALSE(j.covers(101));
}

TEST_CASE("a journal under capacity keeps every event in order")
{
    const auto j = filled(4, 3);
    CHECK(j.size() == 3);
    CHECK(since(j, 0) == revisions{1, 2, 3});
    CHECK(j.covers(0));
}

TEST_CASE("a journal at capacity drops the oldest event for each new one")
{
    SUBCASE("one over")
    {
        const auto j = filled(3, 4);
        CHECK(j.size() == 3);
        CHECK(since(j, 0) == revisions{2, 3, 4});
    }
    SUBCASE("many over")
    {
        const auto j = filled(3, 1000);
        CHECK(j.size() == 3);
        CHECK(since(j, 0) == revisions{998, 999, 1000});
    }
    SUBCASE("the events themselves are kept intact")
    {
        const auto j = filled(2, 5);
        std::vector<std::string> names;
        j.for_each_since(0, [&](const event& e) { names.push_back(*e.name); });
        CHECK(names == std::vector<std::string>{"ns4", "ns5"});
    }
}

TEST_CASE("covers is exact after trimming")
{
    // Kept: 3, 4, 5. Dropped: 1, 2. A client at 2 has seen everything dropped.
    const auto j = filled(3, 5);
    CHECK_FALSE(j.covers(0));
    CHECK_FALSE(j.covers(1));
    CHECK(j.covers(2));
    CHECK(j.covers(3));
    CHECK(j.covers(5));
    // Ahead of the newest: not something this journal can continue from.
    CHECK_FALSE(j.covers(6));
    CHECK_FALSE(j.covers(1000));
}

TEST_CASE("for_each_since yields the events after since, oldest first")
{
    SUBCASE("since 0 on an untrimmed journal yields everything")
    {
        CHECK(since(filled(8, 5), 0) == revisions{1, 2, 3, 4, 5});
    }
    SUBCASE("since just before the oldest kept yields everything kept")
    {
        CHECK(since(filled(3, 5), 2) == revisions{3, 4, 5});
    }
    SUBCASE("since the oldest kept yields the ones after it")
    {
        CHECK(since(filled(3, 5), 3) == revisions{4, 5});
    }
    SUBCASE("since a revision in the middle")
    {
        CHECK(since(filled(8, 5), 2) == revisions{3, 4, 5});
    }
    SUBCASE("since the one before the newest yields the newest")
    {
        CHECK(since(filled(3, 5), 4) == revisions{5});
    }
    SUBCASE("since the newest yields nothing")
    {
        CHECK(since(filled(3, 5), 5) == revisions{});
    }
    SUBCASE("since beyond the newest yields nothing")
    {
        CHECK(since(filled(3, 5), 6) == revisions{});
        CHECK(since(filled(3, 5), 1000000) == revisions{});
    }
}

TEST_CASE("a journal asked for capacity zero keeps the newest event")
{
    const auto j = filled(0, 3);
    CHECK(j.capacity() == 1);
    CHECK(j.size() == 1);
    CHECK(j.newest().revision == 3);
    CHECK_FALSE(j.covers(1));
    CHECK(j.covers(2));
    CHECK(since(j, 2) == revisions{3});
}

TEST_CASE("newest is the event appended last")
{
    journal j(3);
    j.append(numbered(1));
    CHECK(j.newest().revision == 1);
    j.append(numbered(2));
    CHECK(j.newest().revision == 2);
    CHECK(*j.newest().name == "ns2");
    for (revision_t r = 3; r <= 7; ++r)
        j.append(numbered(r));
    CHECK(j.newest().revision == 7);
}
