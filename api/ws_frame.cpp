#include "api/ws_frame.hpp"

namespace netnsd::api::ws
{

std::string server_frame(opcode op, std::string_view payload)
{
    std::string out;
    out.reserve(payload.size() + 10);
    out.push_back(static_cast<char>(0x80 | static_cast<std::uint8_t>(op)));
    const auto n = payload.size();
    if (n < 126)
    {
        out.push_back(static_cast<char>(n));
    }
    else if (n <= 0xFFFF)
    {
        out.push_back(static_cast<char>(126));
        out.push_back(static_cast<char>((n >> 8) & 0xFF));
        out.push_back(static_cast<char>(n & 0xFF));
    }
    else
    {
        out.push_back(static_cast<char>(127));
        for (int shift = 56; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF));
    }
    out.append(payload);
    return out;
}

std::string close_frame(close_code code)
{
    const auto c = static_cast<std::uint16_t>(code);
    const char payload[2] = {static_cast<char>(c >> 8), static_cast<char>(c & 0xFF)};
    return server_frame(opcode::close, std::string_view(payload, 2));
}

parse_result parse_client_frame(std::string_view bytes, std::size_t max_payload, client_frame& out)
{
    if (bytes.size() < 2)
        return parse_result::need_more;
    const auto b0 = static_cast<std::uint8_t>(bytes[0]);
    const auto b1 = static_cast<std::uint8_t>(bytes[1]);
    if ((b0 & 0x70) != 0)
        return parse_result::protocol_error; // no extension was negotiated: RSV bits are 0
    const auto op = static_cast<std::uint8_t>(b0 & 0x0F);
    const bool control = (op & 0x08) != 0;
    const bool known = op <= 0x2 || (op >= 0x8 && op <= 0xA);
    if (!known)
        return parse_result::protocol_error;
    if ((b1 & 0x80) == 0)
        return parse_result::protocol_error; // client frames are masked (§5.1)
    std::uint64_t length = b1 & 0x7F;
    std::size_t at = 2;
    if (length == 126 || length == 127)
    {
        const std::size_t bytes_of_length = length == 126 ? 2 : 8;
        if (bytes.size() < at + bytes_of_length)
            return parse_result::need_more;
        length = 0;
        for (std::size_t i = 0; i < bytes_of_length; ++i)
            length = (length << 8) | static_cast<std::uint8_t>(bytes[at + i]);
        at += bytes_of_length;
    }
    if (control && ((b0 & 0x80) == 0 || length > 125))
        return parse_result::protocol_error;
    if (length > max_payload)
        return parse_result::too_big;
    if (bytes.size() < at + 4 + length)
        return parse_result::need_more;
    const auto* mask = bytes.data() + at;
    at += 4;
    out.fin = (b0 & 0x80) != 0;
    out.op = static_cast<opcode>(op);
    out.payload.assign(bytes.data() + at, static_cast<std::size_t>(length));
    for (std::size_t i = 0; i < out.payload.size(); ++i)
        out.payload[i] = static_cast<char>(out.payload[i] ^ mask[i % 4]);
    out.wire_size = at + static_cast<std::size_t>(length);
    return parse_result::frame;
}

} // namespace netnsd::api::ws
