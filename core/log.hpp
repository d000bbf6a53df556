// A minimal leveled logger to stderr, one line per message. Two formats: text ("level: message
// key=value ...") and json (one object per line: time, level, msg and the fields). Set up once
// by main before the loop starts; then used from the loop thread (and workers, whose lines are
// single write(2) calls and so never interleave mid-line).
#pragma once

#include <chrono>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace netnsd::core::log
{

enum class level
{
    debug,
    info,
    warn,
    error,
};

enum class format
{
    text,
    json,
};

// Until main sets them from --log-level and --log-format.
inline constexpr level default_level = level::info;
inline constexpr format default_format = format::text;

// A named value a line carries besides its message ("peer", "status", ...).
using field = std::pair<std::string_view, std::string_view>;
using fields = std::initializer_list<field>;

void set_level(level l) noexcept;
level current_level() noexcept;
bool parse_level(std::string_view text, level& out) noexcept;

void set_format(format f) noexcept;
format current_format() noexcept;
bool parse_format(std::string_view text, format& out) noexcept;

// Appends `text` as a JSON string (quotes included): quote, backslash and control characters
// escaped (\u00XX), bytes that are not UTF-8 replaced by U+FFFD. Names are bytes, not text.
void append_json_string(std::string& out, std::string_view text);

// The line write() would send, newline included.
std::string format_line(format f, level l, std::chrono::system_clock::time_point when,
                        std::string_view message, fields extra = {});

void write(level l, std::string_view message, fields extra = {});

inline void debug(std::string_view m, fields extra = {})
{
    write(level::debug, m, extra);
}
inline void info(std::string_view m, fields extra = {})
{
    write(level::info, m, extra);
}
inline void warn(std::string_view m, fields extra = {})
{
    write(level::warn, m, extra);
}
inline void error(std::string_view m, fields extra = {})
{
    write(level::error, m, extra);
}

} // namespace netnsd::core::log
