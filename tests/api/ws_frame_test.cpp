// Websocket framing: server frames byte for byte, client frames parsed from real layouts.
#include <string>

#include <doctest/doctest.h>

#include "api/ws_frame.hpp"

namespace
{

using namespace netnsd::api::ws;

// A client frame as a browser sends it: masked with `key`.
std::string client(std::uint8_t first, const std::string& payload, std::string key = "abcd")
{
    std::string out(1, static_cast<char>(first));
    const auto n = payload.size();
    if (n < 126)
        out.push_back(static_cast<char>(0x80 | n));
    else if (n <= 0xFFFF)
    {
        out.push_back(static_cast<char>(0x80 | 126));
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n & 0xFF));
    }
    else
    {
        out.push_back(static_cast<char>(0x80 | 127));
        for (int shift = 56; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF));
    }
    out += key;
    for (std::size_t i = 0; i < n; ++i)
        out.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
    return out;
}

} // namespace

TEST_CASE("server frames use the shortest length encoding")
{
    CHECK(server_frame(opcode::text, "hi") == std::string("\x81\x02hi", 4));
    CHECK(server_frame(opcode::text, std::string(125, 'x')).substr(0, 2) == "\x81\x7d");
    const auto medium = server_frame(opcode::text, std::string(126, 'x'));
    CHECK(medium.substr(0, 4) == std::string("\x81\x7e\x00\x7e", 4));
    CHECK(medium.size() == 4 + 126);
    const auto large = server_frame(opcode::text, std::string(65536, 'x'));
    CHECK(large.substr(0, 10) == std::string("\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10));
    CHECK(large.size() == 10 + 65536);
}

TEST_CASE("a close frame carries its code in network order")
{
    CHECK(close_frame(close_code::try_again_later) == std::string("\x88\x02\x03\xf5", 4));
    CHECK(close_frame(close_code::going_away) == std::string("\x88\x02\x03\xe9", 4));
}

TEST_CASE("a masked client frame is unmasked, and its size on the wire is reported")
{
    const auto bytes = client(0x81, "hello") + "trailing";
    client_frame f;
    REQUIRE(parse_client_frame(bytes, 1024, f) == parse_result::frame);
    CHECK(f.fin);
    CHECK(f.op == opcode::text);
    CHECK(f.payload == "hello");
    CHECK(f.wire_size == 2 + 4 + 5);
}

TEST_CASE("16-bit and 64-bit lengths parse")
{
    client_frame f;
    REQUIRE(parse_client_frame(client(0x82, std::string(300, 'b')), 1 << 20, f) ==
            parse_result::frame);
    CHECK(f.op == opcode::binary);
    CHECK(f.payload == std::string(300, 'b'));
    REQUIRE(parse_client_frame(client(0x81, std::string(70000, 't')), 1 << 20, f) ==
            parse_result::frame);
    CHECK(f.payload.size() == 70000);
}

TEST_CASE("a partial frame needs more bytes, at every cut")
{
    const auto bytes = client(0x81, std::string(200, 'z'));
    client_frame f;
    for (std::size_t cut = 0; cut < bytes.size(); ++cut)
    {
        CAPTURE(cut);
        CHECK(parse_client_frame(std::string_view(bytes).substr(0, cut), 1024, f) ==
              parse_result::need_more);
    }
}

TEST_CASE("a payload over the limit is refused from its header alone")
{
    const auto bytes = client(0x81, std::string(70000, 'x')).substr(0, 20);
    client_frame f;
    CHECK(parse_client_frame(bytes, 64 * 1024, f) == parse_result::too_big);
}

TEST_CASE("protocol errors: unmasked, reserved bits, unknown opcode, bad control frames")
{
    client_frame f;
    CHECK(parse_client_frame(std::string("\x81\x02hi", 4), 1024, f) ==
          parse_result::protocol_error);
    CHECK(parse_client_frame(client(0xC1, "x"), 1024, f) == parse_result::protocol_error);
    CHECK(parse_client_frame(client(0x83, "x"), 1024, f) == parse_result::protocol_error);
    CHECK(parse_client_frame(client(0x09, "x"), 1024, f) == parse_result::protocol_error);
    CHECK(parse_client_frame(client(0x89, std::string(126, 'p')), 1024, f) ==
          parse_result::protocol_error);
}

TEST_CASE("pings, pongs, closes and continuations are recognised")
{
    client_frame f;
    REQUIRE(parse_client_frame(client(0x89, "ping"), 1024, f) == parse_result::frame);
    CHECK(f.op == opcode::ping);
    REQUIRE(parse_client_frame(client(0x8A, ""), 1024, f) == parse_result::frame);
    CHECK(f.op == opcode::pong);
    REQUIRE(parse_client_frame(client(0x88, std::string("\x03\xe8", 2)), 1024, f) ==
            parse_result::frame);
    CHECK(f.op == opcode::close);
    CHECK(f.payload == std::string("\x03\xe8", 2));
    REQUIRE(parse_client_frame(client(0x01, "part"), 1024, f) == parse_result::frame);
    CHECK_FALSE(f.fin);
    CHECK(f.op == opcode::text);
    REQUIRE(parse_client_frame(client(0x80, "rest"), 1024, f) == parse_result::frame);
    CHECK(f.fin);
    CHECK(f.op == opcode::continuation);
}
