// What a client of GET /api/v1/events asks for: the framing (websocket, SSE, NDJSON), where to
// start (since=, Last-Event-ID, snapshot=true) and which events (names=, types=), parsed from
// the request; and the wire names of the event types. Pure; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "core/model.hpp"

#include "api/http.hpp"

namespace netnsd::api
{

enum class stream_format
{
    websocket,
    sse,
    ndjson,
};

struct stream_params
{
    stream_format format = stream_format::ndjson;
    std::optional<core::revision_t> since; // ?since= or Last-Event-ID
    bool snapshot = false;                 // ?snapshot=true
    std::optional<std::string> names;      // ?names=GLOB (fnmatch)
    unsigned types = 0;                    // bit per core::event_type; 0: default_types
};

// The wire name of an event type: add, delete, nsid, destroyed, found, holders, link, address.
std::string_view wire_name(core::event_type type) noexcept;

// Parses the query (and, for SSE, Last-Event-ID). A bad value is a 400 problem response.
std::variant<stream_params, response> parse_stream_params(const request& req, stream_format format);

// The format a GET /api/v1/events asks for: websocket on upgrade, SSE for
// Accept: text/event-stream, otherwise NDJSON.
stream_format negotiate_format(const request& req, bool is_upgrade);

// The bit of an event type in stream_params::types.
inline unsigned type_bit(core::event_type t) noexcept
{
    return 1u << static_cast<unsigned>(t);
}

// What a client gets without types=: the entries' events and destroyed, as before the host
// inventory; its found and holders (one per namespace of the host, and per change of what
// holds it) only when asked for by name, so that a client written for the named entries sees
// no new kinds of events. The same goes for link and address (--watch-links).
inline constexpr unsigned default_types =
    (1u << static_cast<unsigned>(core::event_type::added)) |
    (1u << static_cast<unsigned>(core::event_type::deleted)) |
    (1u << static_cast<unsigned>(core::event_type::nsid_set)) |
    (1u << static_cast<unsigned>(core::event_type::destroyed));

} // namespace netnsd::api
