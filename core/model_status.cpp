#include "core/model_status.hpp"

namespace netnsd::core
{

std::string_view to_string(divergence_kind kind) noexcept
{
    switch (kind)
    {
    case divergence_kind::entry_missing:
        return "entry_missing";
    case divergence_kind::entry_extra:
        return "entry_extra";
    case divergence_kind::entry_changed:
        return "entry_changed";
    case divergence_kind::nsid:
        return "nsid";
    }
    return "unknown";
}

bool parse_mount_choice(std::string_view text, mount_choice& out) noexcept
{
    if (text == "auto")
        out = mount_choice::automatic;
    else if (text == "fanotify")
        out = mount_choice::fanotify;
    else if (text == "mountinfo")
        out = mount_choice::mountinfo;
    else
        return false;
    return true;
}

std::string_view to_string(model_status::mount_source source) noexcept
{
    return source == model_status::mount_source::fanotify ? "fanotify" : "mountinfo";
}

} // namespace netnsd::core
