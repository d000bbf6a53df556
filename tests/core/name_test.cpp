// core/name: the name rules of `ip netns` and their descriptions.
#include <string>
#include <string_view>

#include <doctest/doctest.h>

#include "core/name.hpp"

using netnsd::core::check_name;
using netnsd::core::describe;
using netnsd::core::is_valid_name;
using netnsd::core::max_name_length;
using netnsd::core::name_error;

TEST_CASE("the longest name allowed is NAME_MAX, 255 bytes")
{
    CHECK(max_name_length == 255);
}

TEST_CASE("check_name rejects what ip netns rejects")
{
    SUBCASE("the empty name")
    {
        CHECK(check_name("") == name_error::empty);
    }
    SUBCASE("a name of 256 bytes")
    {
        CHECK(check_name(std::string(256, 'a')) == name_error::too_long);
    }
    SUBCASE("a name of 4096 bytes")
    {
        CHECK(check_name(std::string(4096, 'a')) == name_error::too_long);
    }
    SUBCASE("\".\"")
    {
        CHECK(check_name(".") == name_error::dot);
    }
    SUBCASE("\"..\"")
    {
        CHECK(check_name("..") == name_error::dot_dot);
    }
    SUBCASE("a name containing '/'")
    {
        CHECK(check_name("a/b") == name_error::contains_slash);
        CHECK(check_name("/") == name_error::contains_slash);
        CHECK(check_name("../x") == name_error::contains_slash);
        CHECK(check_name("trailing/") == name_error::contains_slash);
    }
    SUBCASE("a name containing a NUL byte")
    {
        using namespace std::string_view_literals;
        CHECK(check_name("a\0b"sv) == name_error::contains_nul);
        CHECK(check_name("\0"sv) == name_error::contains_nul);
        CHECK(check_name("ab\0"sv) == name_error::contains_nul);
    }
}

TEST_CASE("check_name accepts everything else ip netns accepts")
{
    SUBCASE("a name of exactly 255 bytes")
    {
        CHECK(check_name(std::string(255, 'a')) == name_error::none);
    }
    SUBCASE("a one-byte name")
    {
        CHECK(check_name("a") == name_error::none);
    }
    SUBCASE("a leading '-', as in \"--\"")
    {
        CHECK(check_name("--") == name_error::none);
        CHECK(check_name("-n") == name_error::none);
    }
    SUBCASE("dots that are not exactly \".\" or \"..\"")
    {
        CHECK(check_name("...") == name_error::none);
        CHECK(check_name(".hidden") == name_error::none);
        CHECK(check_name("a..") == name_error::none);
    }
    SUBCASE("spaces, a leading space and shell characters")
    {
        CHECK(check_name("rsx sp*ce$") == name_error::none);
        CHECK(check_name(" lead") == name_error::none);
    }
    SUBCASE("a tab")
    {
        CHECK(check_name("a\tb") == name_error::none);
    }
    SUBCASE("a newline inside the name")
    {
        CHECK(check_name("a\nb") == name_error::none);
    }
    SUBCASE("UTF-8")
    {
        CHECK(check_name("r\xC3\xA9seau-\xE2\x9C\x93") == name_error::none);
    }
    SUBCASE("bytes that are not UTF-8")
    {
        CHECK(check_name("bad\xFF\xFE") == name_error::none);
        CHECK(check_name("\xC3") == name_error::none);
    }
    SUBCASE("255 bytes of multi-byte UTF-8 counted as bytes")
    {
        std::string name;
        for (int i = 0; i < 85; ++i)
            name += "\xE2\x9C\x93"; // 3 bytes each
        REQUIRE(name.size() == 255);
        CHECK(check_name(name) == name_error::none);
        CHECK(check_name(name + "a") == name_error::too_long);
    }
}

TEST_CASE("is_valid_name is check_name with no error")
{
    CHECK(is_valid_name("a"));
    CHECK_FALSE(is_valid_name(""));
    CHECK_FALSE(is_valid_name(".."));
    CHECK_FALSE(is_valid_name("a/b"));
}

TEST_CASE("describe gives a sentence for every name error")
{
    CHECK(describe(name_error::none) == "the name is valid");
    CHECK(describe(name_error::empty) == "the name is empty");
    CHECK(describe(name_error::too_long) == "the name is longer than 255 bytes");
    CHECK(describe(name_error::dot) == "the name is \".\"");
    CHECK(describe(name_error::dot_dot) == "the name is \"..\"");
    CHECK(describe(name_error::contains_slash) == "the name contains '/'");
    CHECK(describe(name_error::contains_nul) == "the name contains a NUL byte");
}

TEST_CASE("describe of a value outside the enum says the name is invalid")
{
    CHECK(describe(static_cast<name_error>(99)) == "the name is invalid");
}
