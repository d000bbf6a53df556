// Websocket framing (RFC 6455 §5) for the event stream, without a transport: server frames are
// built once per event and shared by every client; client frames are parsed from the bytes a
// session read. Pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace netnsd::api::ws
{

enum class opcode : std::uint8_t
{
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

// Close codes used by the stream (RFC 6455 §7.4.1).
enum class close_code : std::uint16_t
{
    normal = 1000,
    going_away = 1001,
    protocol_error = 1002,
    unsupported_data = 1003,
    too_big = 1009,
    try_again_later = 1013,
};

// One unmasked, unfragmented server frame.
std::string server_frame(opcode op, std::string_view payload);
std::string close_frame(close_code code);

struct client_frame
{
    bool fin = true;
    opcode op = opcode::text;
    std::string payload; // unmasked
    std::size_t wire_size = 0;
};

enum class parse_result
{
    need_more, // not a whole frame yet
    frame,     // `out` holds one frame; `wire_size` bytes of the input were used
    protocol_error,
    too_big, // the payload is over max_payload (checked from the header, before reading it)
};

// Parses the first frame of `bytes`. Client frames must be masked; control frames must be
// final and at most 125 bytes.
parse_result parse_client_frame(std::string_view bytes, std::size_t max_payload, client_frame& out);

} // namespace netnsd::api::ws
