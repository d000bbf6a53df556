// utf8: where text must be UTF-8 (log lines, metric label values) and names are bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace netnsd::core
{

// The length of the well-formed UTF-8 sequence at the front of `s`, or 0 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
inline std::size_t utf8_length(std::string_view s) noexcept
{
    const auto byte = [&](std::size_t i)
    {
        return static_cast<unsigned char>(s[i]);
    };
    const unsigned char b0 = byte(0);
    std::size_t n = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xbf;
    if (b0 >= 0xc2 && b0 <= 0xdf)
        n = 2;
    else if (b0 >= 0xe0 && b0 <= 0xef)
    {
        n = 3;
        lo = b0 == 0xe0 ? 0xa0 : 0x80;
        hi = b0 == 0xed ? 0x9f : 0xbf;
    }
    else if (b0 >= 0xf0 && b0 <= 0xf4)
    {
        n = 4;
        lo = b0 == 0xf0 ? 0x90 : 0x80;
        hi = b0 == 0xf4 ? 0x8f : 0xbf;
    }
    else
        return 0;
    if (s.size() < n || byte(1) < lo || byte(1) > hi)
        return 0;
    for (std::size_t i = 2; i < n; ++i)
        if (byte(i) < 0x80 || byte(i) > 0xbf)
            return 0;
    return n;
}

// `bytes` as valid UTF-8: each byte that starts no well-formed sequence becomes U+FFFD.
inline std::string valid_utf8(std::string_view bytes)
{
    std::string out;
    out.reserve(bytes.size());
    for (std::size_t i = 0; i < bytes.size();)
    {
        if (static_cast<unsigned char>(bytes[i]) < 0x80)
        {
            out.push_back(bytes[i++]);
            continue;
        }
        const auto n = utf8_length(bytes.substr(i));
        if (n == 0)
        {
            out.append("\xef\xbf\xbd");
            ++i;
            continue;
        }
        out.append(bytes.substr(i, n));
        i += n;
    }
    return out;
}

} // namespace netnsd::core
