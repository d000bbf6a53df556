// The wire encoding of events: each event once, in every framing (its JSON, a websocket text
// frame, an SSE event, an NDJSON line), shared by every client that sends it. Pure; any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/model.hpp"

namespace netnsd::api
{

// An event as sent, in every framing, built once when the event happens.
struct encoded_event
{
    core::revision_t revision = 0;
    core::event_type type = core::event_type::added;
    std::optional<std::string> name;
    std::string json;   // the event itself
    std::string ws;     // a websocket text frame holding it
    std::string sse;    // "id: R\nevent: T\ndata: JSON\n\n"
    std::string ndjson; // "JSON\n"
};

std::shared_ptr<const encoded_event> encode(const core::event& e, std::string_view netns_dir);

} // namespace netnsd::api
