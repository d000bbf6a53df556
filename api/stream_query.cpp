#include "api/stream_query.hpp"

#include <charconv>

#include "api/problem.hpp"
#include "api/uri.hpp"

namespace netnsd::api
{
namespace
{

constexpr core::event_type all_types[] = {core::event_type::added,    core::event_type::deleted,
                                          core::event_type::nsid_set, core::event_type::destroyed,
                                          core::event_type::found,    core::event_type::holders,
                                          core::event_type::link,     core::event_type::address};

bool parse_revision(std::string_view text, core::revision_t& out)
{
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return !text.empty() && ec == std::errc{} && ptr == end;
}

response bad_param(std::string detail)
{
    return problem(problem_type::bad_request, std::move(detail));
}

bool contains_token(std::string_view header, std::string_view token)
{
    // Accept: a, b;q=0.5 -- a token match on media ranges is enough here.
    while (!header.empty())
    {
        const auto comma = header.find(',');
        auto item = header.substr(0, comma);
        if (const auto semi = item.find(';'); semi != std::string_view::npos)
            item = item.substr(0, semi);
        while (!item.empty() && item.front() == ' ')
            item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
            item.remove_suffix(1);
        if (item == token)
            return true;
        if (comma == std::string_view::npos)
            break;
        header.remove_prefix(comma + 1);
    }
    return false;
}

} // namespace

std::string_view wire_name(core::event_type type) noexcept
{
    switch (type)
    {
    case core::event_type::added:
        return "add";
    case core::event_type::deleted:
        return "delete";
    case core::event_type::nsid_set:
        return "nsid";
    case core::event_type::destroyed:
        return "destroyed";
    case core::event_type::found:
        return "found";
    case core::event_type::holders:
        return "holders";
    case core::event_type::link:
        return "link";
    case core::event_type::address:
        return "address";
    }
    return "add";
}

stream_format negotiate_format(const request& req, bool is_upgrade)
{
    if (is_upgrade)
        return stream_format::websocket;
    const auto accept = req.header("Accept");
    if (contains_token(accept, "text/event-stream"))
        return stream_format::sse;
    return stream_format::ndjson;
}

namespace
{

// types=add,delete: the bits of the listed types; or the problem to answer.
std::optional<response> parse_types(std::string_view list, unsigned& types)
{
    while (true)
    {
        const auto comma = list.find(',');
        const auto item = list.substr(0, comma);
        bool known = false;
        for (auto t : all_types)
        {
            if (item == wire_name(t))
            {
                types |= type_bit(t);
                known = true;
            }
        }
        if (!known)
            return bad_param(
                "unknown event type '" + std::string(item) +
                "'; expected add, delete, nsid, destroyed, found, holders, link or address");
        if (comma == std::string_view::npos)
            return std::nullopt;
        list.remove_prefix(comma + 1);
    }
}

// One query parameter into the params; or the problem to answer.
std::optional<response> apply_param(stream_params& p, const std::string& key,
                                    const std::string& value, stream_format format)
{
    if (key == "since")
    {
        core::revision_t r = 0;
        if (!parse_revision(value, r))
            return bad_param("since must be a revision: a whole number >= 0");
        p.since = r;
    }
    else if (key == "snapshot")
    {
        if (value != "true" && value != "false")
            return bad_param("snapshot must be true or false");
        p.snapshot = value == "true";
    }
    else if (key == "names")
    {
        if (value.empty())
            return bad_param("names must be a non-empty glob");
        p.names = value;
    }
    else if (key == "types")
        return parse_types(value, p.types);
    else if (key == "format")
    {
        if (value != "ndjson" && value != "sse")
            return bad_param("format must be ndjson or sse");
        if (format != stream_format::websocket)
            p.format = value == "sse" ? stream_format::sse : stream_format::ndjson;
    }
    else
        return bad_param("unknown query parameter '" + key +
                         "'; expected since, snapshot, names, types or format");
    return std::nullopt;
}

} // namespace

std::variant<stream_params, response> parse_stream_params(const request& req, stream_format format)
{
    stream_params p;
    p.format = format;
    const auto query = parse_query(split_target(req.target).query);
    if (!query)
        return bad_param("the query string has a malformed percent-escape");
    for (const auto& [key, value] : *query)
        if (auto bad = apply_param(p, key, value, format))
            return std::move(*bad);
    // A browser's EventSource reconnects to the same URL with Last-Event-ID: that says where
    // it really is, so it wins over a since= in the URL.
    if (p.format == stream_format::sse)
    {
        if (const auto last = req.header("Last-Event-ID"); !last.empty())
        {
            core::revision_t r = 0;
            if (!parse_revision(last, r))
                return bad_param("Last-Event-ID must be a revision");
            p.since = r;
        }
    }
    if (p.since && p.snapshot && req.header("Last-Event-ID").empty())
        return bad_param("since and snapshot=true exclude each other");
    if (p.since)
        p.snapshot = false; // resuming: the snapshot was had
    return p;
}

} // namespace netnsd::api
