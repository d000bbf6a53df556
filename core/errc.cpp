#include "core/errc.hpp"

#include <string>

namespace netnsd::core
{
namespace
{

class category final : public std::error_category
{
public:
    const char* name() const noexcept override { return "netnsd"; }

    std::string message(int value) const override
    {
        switch (static_cast<errc>(value))
        {
        case errc::invalid_name:
            return "invalid netns name";
        case errc::not_found:
            return "no such netns";
        case errc::not_a_namespace:
            return "not a network namespace";
        case errc::dir_unavailable:
            return "netns directory unavailable";
        case errc::protocol:
            return "unexpected netlink answer";
        case errc::already_exists:
            return "netns already exists";
        case errc::no_such_process:
            return "no such process";
        case errc::busy:
            return "netns entry is busy";
        case errc::nsid_assigned:
            return "netns already has an nsid";
        case errc::nsid_in_use:
            return "nsid already in use";
        case errc::thread_netns_lost:
            return "worker thread left in a foreign network namespace";
        case errc::command_not_found:
            return "command not found";
        }
        return "unknown netnsd error";
    }
};

} // namespace

const std::error_category& error_category() noexcept
{
    static const category instance;
    return instance;
}

} // namespace netnsd::core
