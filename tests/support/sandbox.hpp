// The in-process sandbox for integration tests: before any test runs (single-threaded), the
// test process moves into new mount and network namespaces, makes every mount private, and
// mounts tmpfs on /run and /run/netns (and /etc/netns on request), then brings lo up. netnsd
// and `ip` started by the tests inherit it, so they never touch the host and tests run in
// parallel. Without root it reports why, and the caller exits 77 (ctest: skipped).
#pragma once

#include <string>

namespace netnsd::test
{

// Returns an empty string on success, or why the sandbox cannot be made.
std::string enter_sandbox();

// The exit code ctest maps to "skipped" (SKIP_RETURN_CODE).
inline constexpr int skip_exit_code = 77;

} // namespace netnsd::test
