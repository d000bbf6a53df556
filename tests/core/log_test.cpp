// core/log: the text and json line formats, and the hand-written JSON string escaping (core has
// no JSON library; names are bytes, so what is not UTF-8 must still come out as valid JSON).
#include <chrono>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "core/log.hpp"

namespace logging = netnsd::core::log;

namespace
{

std::string escaped(std::string_view text)
{
    std::string out;
    logging::append_json_string(out, text);
    return out;
}

// 2024-05-06T07:08:09.123Z
const auto when = std::chrono::system_clock::time_point(std::chrono::milliseconds(1714979289123));

} // namespace

TEST_CASE("plain ASCII is quoted as it is")
{
    CHECK(escaped("") == R"("")");
    CHECK(escaped("ns-1 is live") == R"("ns-1 is live")");
}

TEST_CASE("quote and backslash are escaped")
{
    CHECK(escaped(R"(a"b\c)") == R"("a\"b\\c")");
}

TEST_CASE("control characters become \\u00XX")
{
    CHECK(escaped(std::string("a\nb\tc\x01\x1f\x7f", 8)) ==
          R"("a\u000ab\u0009c\u0001\u001f\u007f")");
    CHECK(escaped(std::string("\0", 1)) == R"("\u0000")");
}

TEST_CASE("valid UTF-8 passes through")
{
    CHECK(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") ==
          "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
}

TEST_CASE("bytes that are not UTF-8 become U+FFFD, one per byte")
{
    const std::string fffd = "\xef\xbf\xbd";
    CHECK(escaped("a\xff"
                  "b") == "\"a" + fffd + "b\"");
    CHECK(escaped("\xc3") == "\"" + fffd + "\"");                                  // truncated
    CHECK(escaped("\xc0\xaf") == "\"" + fffd + fffd + "\"");                       // overlong
    CHECK(escaped("\xed\xa0\x80") == "\"" + fffd + fffd + fffd + "\"");            // surrogate
    CHECK(escaped("\xf4\x90\x80\x80") == "\"" + fffd + fffd + fffd + fffd + "\""); // > U+10FFFF
}

TEST_CASE("every byte string escapes to JSON that parses back")
{
    std::string all;
    for (int b = 0; b < 256; ++b)
        all.push_back(static_cast<char>(b));
    const auto j = nlohmann::json::parse(escaped(all), nullptr, false);
    REQUIRE(j.is_string());
    CHECK(j.get<std::string>().substr(0, 3) == std::string("\0\x01\x02", 3));
}

TEST_CASE("a json line has time, level, msg and the fields")
{
    const auto line = logging::format_line(logging::format::json, logging::level::warn, when,
                                           "audit", {{"peer", "127.0.0.1:5"}, {"name", "a\"b"}});
    CHECK(line == R"({"time":"2024-05-06T07:08:09.123Z","level":"warn","msg":"audit",)"
                  R"("peer":"127.0.0.1:5","name":"a\"b"})"
                  "\n");
    const auto j = nlohmann::json::parse(line, nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j["name"].get<std::string>() == "a\"b");
}

TEST_CASE("a text line is level: message, then the fields as key=value")
{
    CHECK(logging::format_line(logging::format::text, logging::level::info, when, "stopped") ==
          "info: stopped\n");
    CHECK(logging::format_line(logging::format::text, logging::level::info, when, "audit",
                               {{"peer", "127.0.0.1:5"}, {"name", "a b"}, {"status", "201"}}) ==
          "info: audit: peer=127.0.0.1:5 name=\"a b\" status=201\n");
}

TEST_CASE("the log format parses from text or json only")
{
    logging::format f = logging::format::json;
    CHECK(logging::parse_format("text", f));
    CHECK(f == logging::format::text);
    CHECK(logging::parse_format("json", f));
    CHECK(f == logging::format::json);
    CHECK_FALSE(logging::parse_format("Json", f));
    CHECK(f == logging::format::json);
}
