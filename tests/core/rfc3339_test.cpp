// core/rfc3339: the one formatter of times, for the API, the events and the log.
#include <chrono>
#include <string>

#include <doctest/doctest.h>

#include "core/model.hpp"
#include "core/rfc3339.hpp"

#include "support/builders.hpp"

using netnsd::core::rfc3339;
using netnsd::test::at_ms;
using namespace std::chrono;

TEST_CASE("rfc3339 writes UTC with milliseconds")
{
    SUBCASE("the epoch")
    {
        CHECK(rfc3339(at_ms(0)) == "1970-01-01T00:00:00.000Z");
    }
    SUBCASE("the epoch plus 1234 ms")
    {
        CHECK(rfc3339(at_ms(1234)) == "1970-01-01T00:00:01.234Z");
    }
    SUBCASE("a date and time with every field set")
    {
        const auto t = sys_days{year{2026} / 11 / 29} + hours{17} + minutes{40} + seconds{1} +
                       milliseconds{123};
        CHECK(rfc3339(t) == "2026-11-29T17:40:01.123Z");
    }
    SUBCASE("a leap day")
    {
        CHECK(rfc3339(sys_days{year{2024} / 2 / 29}) == "2024-02-29T00:00:00.000Z");
    }
    SUBCASE("the last millisecond of a year")
    {
        CHECK(rfc3339(sys_days{year{2027} / 1 / 1} - milliseconds{1}) ==
              "2026-12-31T23:59:59.999Z");
    }
    SUBCASE("sub-millisecond parts are cut, not rounded")
    {
        CHECK(rfc3339(netnsd::core::time_point{} + microseconds{1999}) ==
              "1970-01-01T00:00:00.001Z");
        CHECK(rfc3339(netnsd::core::time_point{} + nanoseconds{999999999}) ==
              "1970-01-01T00:00:00.999Z");
    }
    SUBCASE("a time before the epoch")
    {
        CHECK(rfc3339(at_ms(-1)) == "1969-12-31T23:59:59.999Z");
        CHECK(rfc3339(at_ms(-1500)) == "1969-12-31T23:59:58.500Z");
    }
}
