// core/errc: the error category of the namespace domain.
#include <ostream> // doctest prints std::error_code through operator<<
#include <string>
#include <system_error>

#include <doctest/doctest.h>

#include "core/errc.hpp"

using netnsd::core::errc;

TEST_CASE("errc values convert to error codes of the netnsd category")
{
    const std::error_code ec = errc::not_found;
    CHECK(ec.value() == 2);
    CHECK(std::string(ec.category().name()) == "netnsd");
    CHECK(ec == errc::not_found);
    CHECK(ec != errc::invalid_name);
    CHECK(&ec.category() == &netnsd::core::error_category());
}

TEST_CASE("every errc has its own message")
{
    CHECK(std::error_code(errc::invalid_name).message() == "invalid netns name");
    CHECK(std::error_code(errc::not_found).message() == "no such netns");
    CHECK(std::error_code(errc::not_a_namespace).message() == "not a network namespace");
    CHECK(std::error_code(errc::dir_unavailable).message() == "netns directory unavailable");
    CHECK(std::error_code(errc::protocol).message() == "unexpected netlink answer");
    CHECK(std::error_code(99, netnsd::core::error_category()).message() == "unknown netnsd error");
}

TEST_CASE("an errc is not mistaken for the errno of the same value")
{
    const std::error_code ec = errc::invalid_name; // 1, like EPERM
    CHECK(ec != std::errc::operation_not_permitted);
    CHECK_FALSE(ec == std::error_code(1, std::system_category()));
}
