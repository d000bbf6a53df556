#include "api/stream_encoding.hpp"

#include "core/rfc3339.hpp"

#include "api/json.hpp"
#include "api/link_json.hpp"
#include "api/stream_query.hpp"
#include "api/ws_frame.hpp"

namespace netnsd::api
{

namespace
{

std::shared_ptr<const encoded_event> finish(std::shared_ptr<encoded_event> out, const json& j,
                                            const core::event& e)
{
    out->json = dump(j);
    out->ws = ws::server_frame(ws::opcode::text, out->json);
    out->ndjson = out->json + "\n";
    out->sse = "id: " + std::to_string(e.revision) + "\nevent: " + std::string(wire_name(e.type)) +
               "\ndata: " + out->json + "\n\n";
    return out;
}

} // namespace

std::shared_ptr<const encoded_event> encode(const core::event& e, std::string_view netns_dir)
{
    auto out = std::make_shared<encoded_event>();
    out->revision = e.revision;
    out->type = e.type;
    out->name = e.name;
    json j = json::object();
    j["type"] = wire_name(e.type);
    j["revision"] = e.revision;
    j["time"] = core::rfc3339(e.time);
    if (e.link)
    {
        // link, address: their own shape (type, action, revision, time, ns_id, name, and the
        // link or the address), not an entry's.
        link_change_json(*e.link, j);
        return finish(std::move(out), j, e);
    }
    j["name"] = e.name ? json(*e.name) : json(nullptr);
    j["nsid"] = e.nsid ? json(*e.nsid) : json(nullptr);
    j["namespace"] = e.subject ? to_json(*e.subject, netns_dir) : json(nullptr);
    // found, holders, and the destroyed of a namespace the inventory knew: the inventory's row.
    if (e.host)
    {
        j["ns_id"] = e.host->identity.ns_id;
        j["host"] = to_json(*e.host);
    }
    return finish(std::move(out), j, e);
}

} // namespace netnsd::api
