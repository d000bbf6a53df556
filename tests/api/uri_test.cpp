// api/uri: request-target splitting, percent-decoding and -encoding, query parsing. Names are
// bytes: every byte must survive an encode/decode round trip.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "api/uri.hpp"

#include "support/builders.hpp"

using netnsd::api::parse_query;
using netnsd::api::percent_decode;
using netnsd::api::percent_encode;
using netnsd::api::query_decode;
using netnsd::api::split_path;
using netnsd::api::split_target;
using namespace std::string_literals;

namespace
{

using segments = std::vector<std::string_view>;

std::vector<std::string> pairs(const std::vector<netnsd::api::query_param>& params)
{
    std::vector<std::string> out;
    for (const auto& p : params)
        out.push_back(p.key + "=" + p.value);
    return out;
}

} // namespace

TEST_CASE("split_target separates the path from the query")
{
    SUBCASE("no query")
    {
        const auto parts = split_target("/api/v1/netns");
        CHECK(parts.path == "/api/v1/netns");
        CHECK(parts.query == "");
    }
    SUBCASE("a query")
    {
        const auto parts = split_target("/api/v1/events?since=5&names=a*");
        CHECK(parts.path == "/api/v1/events");
        CHECK(parts.query == "since=5&names=a*");
    }
    SUBCASE("an empty query")
    {
        const auto parts = split_target("/healthz?");
        CHECK(parts.path == "/healthz");
        CHECK(parts.query == "");
    }
    SUBCASE("a second '?' belongs to the query")
    {
        const auto parts = split_target("/a?b?c");
        CHECK(parts.path == "/a");
        CHECK(parts.query == "b?c");
    }
    SUBCASE("an encoded '?' stays in the path")
    {
        const auto parts = split_target("/api/v1/netns/a%3Fb");
        CHECK(parts.path == "/api/v1/netns/a%3Fb");
        CHECK(parts.query == "");
    }
    SUBCASE("nothing but a query")
    {
        const auto parts = split_target("?x=1");
        CHECK(parts.path == "");
        CHECK(parts.query == "x=1");
    }
}

TEST_CASE("split_path returns the raw segments of an absolute path")
{
    CHECK(split_path("/api/v1/netns") == segments{"api", "v1", "netns"});
    CHECK(split_path("/a/b%20c/") == segments{"a", "b%20c", ""});
    CHECK(split_path("/api/v1/netns/a%2Fb") == segments{"api", "v1", "netns", "a%2Fb"});
    CHECK(split_path("/") == segments{""});
    CHECK(split_path("//") == segments{"", ""});
    CHECK(split_path("/a//b") == segments{"a", "", "b"});
}

TEST_CASE("split_path returns nothing for a path that is not absolute")
{
    CHECK(split_path("") == segments{});
    CHECK(split_path("api/v1") == segments{});
    CHECK(split_path("*") == segments{});
    CHECK(split_path("http://host/") == segments{});
}

TEST_CASE("percent_decode decodes escapes into bytes")
{
    CHECK(percent_decode("plain") == "plain");
    CHECK(percent_decode("") == "");
    CHECK(percent_decode("a%20b") == "a b");
    CHECK(percent_decode("%41%42%43") == "ABC");
    CHECK(percent_decode("%2F") == "/");
    CHECK(percent_decode("%2f") == "/");
    CHECK(percent_decode("%2E%2E") == "..");
    CHECK(percent_decode("%00") == "\0"s);
    CHECK(percent_decode("a%00b") == "a\0b"s);
    CHECK(percent_decode("%FF") == "\xFF");
    CHECK(percent_decode("%C3%A9") == "\xC3\xA9");
    CHECK(percent_decode("%25") == "%");
    CHECK(percent_decode("%2525") == "%25");
}

TEST_CASE("percent_decode leaves '+' and raw bytes as they are")
{
    CHECK(percent_decode("a+b") == "a+b");
    CHECK(percent_decode("\xC3\xA9 \t") == "\xC3\xA9 \t");
}

TEST_CASE("percent_decode refuses a malformed escape")
{
    SUBCASE("a lone '%'")
    {
        CHECK(percent_decode("%") == std::nullopt);
    }
    SUBCASE("one hex digit at the end")
    {
        CHECK(percent_decode("%4") == std::nullopt);
        CHECK(percent_decode("ab%4") == std::nullopt);
    }
    SUBCASE("'%' at the end")
    {
        CHECK(percent_decode("abc%") == std::nullopt);
    }
    SUBCASE("digits that are not hex")
    {
        CHECK(percent_decode("%zz") == std::nullopt);
        CHECK(percent_decode("%g0") == std::nullopt);
        CHECK(percent_decode("%0g") == std::nullopt);
        CHECK(percent_decode("%-1") == std::nullopt);
        CHECK(percent_decode("% 1") == std::nullopt);
    }
    SUBCASE("a malformed escape after a good one")
    {
        CHECK(percent_decode("%41%4") == std::nullopt);
    }
}

TEST_CASE("query_decode reads '+' as a space")
{
    CHECK(query_decode("a+b") == "a b");
    CHECK(query_decode("++") == "  ");
    CHECK(query_decode("%2B") == "+");
    CHECK(query_decode("a%20b+c") == "a b c");
    CHECK(query_decode("%zz") == std::nullopt);
}

TEST_CASE("percent_encode keeps the unreserved characters and encodes every other byte")
{
    CHECK(percent_encode("") == "");
    CHECK(percent_encode("AZaz09-._~") == "AZaz09-._~");
    CHECK(percent_encode("a b") == "a%20b");
    CHECK(percent_encode("a/b") == "a%2Fb");
    CHECK(percent_encode("50%") == "50%25");
    CHECK(percent_encode("a+b") == "a%2Bb");
    CHECK(percent_encode("\xC3\xA9") == "%C3%A9");
    CHECK(percent_encode("\xFF") == "%FF");
    CHECK(percent_encode("\0"s) == "%00");
    CHECK(percent_encode("a\nb\t") == "a%0Ab%09");
    CHECK(percent_encode("?#[]@!$&'()*,;=:") == "%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2C%3B%3D%3A");
}

TEST_CASE("every byte 0..255 round-trips through percent_encode and percent_decode")
{
    int unreserved = 0;
    std::string all;
    for (int b = 0; b < 256; ++b)
    {
        const std::string one(1, static_cast<char>(b));
        all += one;
        const auto encoded = percent_encode(one);
        CAPTURE(b);
        const bool keep = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ||
                          (b >= '0' && b <= '9') || b == '-' || b == '.' || b == '_' || b == '~';
        if (keep)
        {
            ++unreserved;
            CHECK(encoded == one);
        }
        else
        {
            static constexpr char hex[] = "0123456789ABCDEF";
            CHECK(encoded == std::string{'%', hex[b >> 4], hex[b & 0xF]});
        }
        CHECK(percent_decode(encoded) == one);
    }
    CHECK(unreserved == 66);
    CHECK(percent_encode(all).size() == 66 + 3 * (256 - 66));
    CHECK(percent_decode(percent_encode(all)) == all);
}

TEST_CASE("parse_query returns every parameter in order, decoded")
{
    const auto params = parse_query("since=5&names=a%2A+b&snapshot=true");
    REQUIRE(params.has_value());
    CHECK(pairs(*params) == std::vector<std::string>{"since=5", "names=a* b", "snapshot=true"});
}

TEST_CASE("parse_query handles empty and odd pieces")
{
    SUBCASE("an empty query has no parameters")
    {
        const auto params = parse_query("");
        REQUIRE(params.has_value());
        CHECK(params->empty());
    }
    SUBCASE("a key without '=' has an empty value")
    {
        const auto params = parse_query("snapshot");
        REQUIRE(params.has_value());
        CHECK(pairs(*params) == std::vector<std::string>{"snapshot="});
    }
    SUBCASE("empty pairs are skipped")
    {
        const auto params = parse_query("&a=1&&b=&");
        REQUIRE(params.has_value());
        CHECK(pairs(*params) == std::vector<std::string>{"a=1", "b="});
    }
    SUBCASE("the value runs to the next '&', '=' included")
    {
        const auto params = parse_query("a=1=2");
        REQUIRE(params.has_value());
        REQUIRE(params->size() == 1);
        CHECK((*params)[0].key == "a");
        CHECK((*params)[0].value == "1=2");
    }
    SUBCASE("encoded '=' and '&' stay inside keys and values")
    {
        const auto params = parse_query("k%3D=v%26w");
        REQUIRE(params.has_value());
        REQUIRE(params->size() == 1);
        CHECK((*params)[0].key == "k=");
        CHECK((*params)[0].value == "v&w");
    }
    SUBCASE("repeated keys are all kept")
    {
        const auto params = parse_query("a=1&a=2");
        REQUIRE(params.has_value());
        CHECK(pairs(*params) == std::vector<std::string>{"a=1", "a=2"});
    }
}

TEST_CASE("parse_query refuses a malformed escape in a key or a value")
{
    CHECK(parse_query("a=%zz") == std::nullopt);
    CHECK(parse_query("%zz=1") == std::nullopt);
    CHECK(parse_query("ok=1&bad=%4") == std::nullopt);
}
