#include "api/uri.hpp"

#include <algorithm>

namespace netnsd::api
{
namespace
{

int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

std::optional<std::string> decode(std::string_view text, bool plus_is_space)
{
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i)
    {
        const char c = text[i];
        if (c == '%')
        {
            if (i + 2 >= text.size())
                return std::nullopt;
            const int hi = hex_value(text[i + 1]);
            const int lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0)
                return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        }
        else if (c == '+' && plus_is_space)
            out.push_back(' ');
        else
            out.push_back(c);
    }
    return out;
}

} // namespace

target_parts split_target(std::string_view target) noexcept
{
    // absolute-form (RFC 9112 §3.2.2), as proxies send it: drop scheme and authority.
    for (std::string_view scheme : {"http://", "https://"})
    {
        if (target.size() >= scheme.size() &&
            std::equal(scheme.begin(), scheme.end(), target.begin(),
                       [](char a, char b) { return a == (b | 0x20); }))
        {
            target.remove_prefix(scheme.size());
            const auto path = target.find_first_of("/?");
            target = path == std::string_view::npos ? std::string_view("/") : target.substr(path);
            if (!target.empty() && target.front() == '?')
                return {"/", target.substr(1)};
            break;
        }
    }
    const auto q = target.find('?');
    if (q == std::string_view::npos)
        return {target, {}};
    return {target.substr(0, q), target.substr(q + 1)};
}

std::vector<std::string_view> split_path(std::string_view path)
{
    std::vector<std::string_view> out;
    if (path.empty() || path.front() != '/')
        return out;
    path.remove_prefix(1);
    for (;;)
    {
        const auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos)
            break;
        path.remove_prefix(slash + 1);
    }
    return out;
}

std::optional<std::string> percent_decode(std::string_view text)
{
    return decode(text, false);
}

std::optional<std::string> query_decode(std::string_view text)
{
    return decode(text, true);
}

std::string percent_encode(std::string_view bytes)
{
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(bytes.size());
    for (const char c : bytes)
    {
        const auto u = static_cast<unsigned char>(c);
        const bool unreserved = (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') ||
                                (u >= '0' && u <= '9') || u == '-' || u == '.' || u == '_' ||
                                u == '~';
        if (unreserved)
        {
            out.push_back(c);
            continue;
        }
        out.push_back('%');
        out.push_back(digits[u >> 4]);
        out.push_back(digits[u & 0xF]);
    }
    return out;
}

std::optional<std::vector<query_param>> parse_query(std::string_view query)
{
    std::vector<query_param> out;
    while (!query.empty())
    {
        const auto amp = query.find('&');
        const auto pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty())
            continue;
        const auto eq = pair.find('=');
        auto key = query_decode(pair.substr(0, eq));
        auto value =
            query_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
        if (!key || !value)
            return std::nullopt;
        out.push_back({std::move(*key), std::move(*value)});
    }
    return out;
}

} // namespace netnsd::api
