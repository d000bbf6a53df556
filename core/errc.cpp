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
