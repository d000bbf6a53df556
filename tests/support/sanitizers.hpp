// sanitizers: whether this test binary runs under AddressSanitizer, and so the netnsd it starts
// (the asan preset builds both), for the few checks whose meaning ASan changes: resident
// memory, which its quarantine of freed blocks (256 MB by default) and its redzones inflate.
// Constants; any thread.
#pragma once

namespace netnsd::test
{

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool address_sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool address_sanitized = true;
#else
inline constexpr bool address_sanitized = false;
#endif
#else
inline constexpr bool address_sanitized = false;
#endif

} // namespace netnsd::test
