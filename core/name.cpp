#include "core/name.hpp"

namespace netnsd::core
{

name_error check_name(std::string_view name) noexcept
{
    if (name.empty())
        return name_error::empty;
    if (name.size() > max_name_length)
        return name_error::too_long;
    if (name == ".")
        return name_error::dot;
    if (name == "..")
        return name_error::dot_dot;
    // NUL cannot reach the kernel in a path; '/' would escape the netns dir.
    if (name.find('\0') != std::string_view::npos)
        return name_error::contains_nul;
    if (name.find('/') != std::string_view::npos)
        return name_error::contains_slash;
    return name_error::none;
}

std::string_view describe(name_error error) noexcept
{
    switch (error)
    {
    case name_error::none:
        return "the name is valid";
    case name_error::empty:
        return "the name is empty";
    case name_error::too_long:
        return "the name is longer than 255 bytes";
    case name_error::dot:
        return "the name is \".\"";
    case name_error::dot_dot:
        return "the name is \"..\"";
    case name_error::contains_slash:
        return "the name contains '/'";
    case name_error::contains_nul:
        return "the name contains a NUL byte";
    }
    return "the name is invalid";
}

} // namespace netnsd::core
