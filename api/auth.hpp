// Bearer-token authentication for the admin endpoints (and for reads with --auth-reads). The
// comparison takes the same time whatever the input, so the token cannot be guessed byte by
// byte. Immutable after construction; any thread.
#pragma once

#include <string>
#include <string_view>

namespace netnsd::api
{

class token_auth
{
public:
    explicit token_auth(std::string token) : token_(std::move(token)) {}

    // True when `authorization` is "Bearer <token>" (scheme case-insensitive, RFC 9110 §11.1).
    bool allows(std::string_view authorization) const noexcept;

private:
    std::string token_;
};

// Constant-time equality of two byte strings (the time depends only on their lengths).
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

} // namespace netnsd::api
