#include "core/log.hpp"

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <unistd.h>

#include "core/rfc3339.hpp"
#include "core/utf8.hpp"

namespace netnsd::core::log
{
namespace
{

level threshold = default_level;
format style = default_format;

std::string_view label(level l) noexcept
{
    switch (l)
    {
    case level::debug:
        return "debug";
    case level::info:
        return "info";
    case level::warn:
        return "warn";
    case level::error:
        return "error";
    }
    return "info";
}

// A text-format value goes bare unless it would be ambiguous on the line.
bool needs_quotes(std::string_view value) noexcept
{
    if (value.empty())
        return true;
    for (const char c : value)
    {
        const auto b = static_cast<unsigned char>(c);
        if (b <= 0x20 || b == 0x7f || b >= 0x80 || c == '"' || c == '\\' || c == '=')
            return true;
    }
    return false;
}

} // namespace

void set_level(level l) noexcept
{
    threshold = l;
}

level current_level() noexcept
{
    return threshold;
}

bool parse_level(std::string_view text, level& out) noexcept
{
    for (auto l : {level::debug, level::info, level::warn, level::error})
    {
        if (text == label(l))
        {
            out = l;
            return true;
        }
    }
    return false;
}

void set_format(format f) noexcept
{
    style = f;
}

format current_format() noexcept
{
    return style;
}

bool parse_format(std::string_view text, format& out) noexcept
{
    if (text == "text")
        out = format::text;
    else if (text == "json")
        out = format::json;
    else
        return false;
    return true;
}

void append_json_string(std::string& out, std::string_view text)
{
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    std::size_t i = 0;
    while (i < text.size())
    {
        const auto b = static_cast<unsigned char>(text[i]);
        if (b >= 0x80)
        {
            const auto n = utf8_length(text.substr(i));
            if (n == 0)
            {
                out.append("\xef\xbf\xbd"); // U+FFFD for a byte that is not UTF-8
                ++i;
            }
            else
            {
                out.append(text.substr(i, n));
                i += n;
            }
            continue;
        }
        if (b == '"' || b == '\\')
        {
            out.push_back('\\');
            out.push_back(static_cast<char>(b));
        }
        else if (b < 0x20 || b == 0x7f)
        {
            out.append("\\u00");
            out.push_back(hex[b >> 4]);
            out.push_back(hex[b & 0xf]);
        }
        else
            out.push_back(static_cast<char>(b));
        ++i;
    }
    out.push_back('"');
}

std::string format_line(format f, level l, std::chrono::system_clock::time_point when,
                        std::string_view message, fields extra)
{
    std::string line;
    line.reserve(message.size() + 64);
    if (f == format::json)
    {
        line.append("{\"time\":\"");
        append_rfc3339(line, when);
        line.append("\",\"level\":\"").append(label(l)).append("\",\"msg\":");
        append_json_string(line, message);
        for (const auto& [key, value] : extra)
        {
            line.push_back(',');
            append_json_string(line, key);
            line.push_back(':');
            append_json_string(line, value);
        }
        line.append("}\n");
        return line;
    }
    line.append(label(l)).append(": ").append(message);
    const char* separator = ": ";
    for (const auto& [key, value] : extra)
    {
        line.append(separator).append(key).push_back('=');
        if (needs_quotes(value))
            append_json_string(line, value);
        else
            line.append(value);
        separator = " ";
    }
    line.push_back('\n');
    return line;
}

void write(level l, std::string_view message, fields extra)
{
    if (l < threshold)
        return;
    const auto line = format_line(style, l, std::chrono::system_clock::now(), message, extra);
    // One write(2) per line: lines from different threads never interleave.
    [[maybe_unused]] const auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

} // namespace netnsd::core::log
