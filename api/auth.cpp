#include "api/auth.hpp"

#include <strings.h>

namespace netnsd::api
{

bool constant_time_equal(std::string_view a, std::string_view b) noexcept
{
    // Fold every byte of the longer one in, so the time does not reveal a common prefix.
    const std::size_t n = a.size() > b.size() ? a.size() : b.size();
    unsigned diff = a.size() == b.size() ? 0u : 1u;
    for (std::size_t i = 0; i < n; ++i)
    {
        const auto x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0u;
        const auto y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0u;
        diff |= x ^ y;
    }
    return diff == 0;
}

bool token_auth::allows(std::string_view authorization) const noexcept
{
    constexpr std::string_view scheme = "bearer ";
    if (token_.empty() || authorization.size() <= scheme.size() ||
        ::strncasecmp(authorization.data(), scheme.data(), scheme.size()) != 0)
        return false;
    auto presented = authorization.substr(scheme.size());
    while (!presented.empty() && presented.front() == ' ')
        presented.remove_prefix(1);
    while (!presented.empty() && presented.back() == ' ')
        presented.remove_suffix(1);
    return constant_time_equal(presented, token_);
}

} // namespace netnsd::api
