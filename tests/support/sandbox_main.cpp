// main() of the integration tests: enter the sandbox, then run doctest. Listing test cases (as
// doctest_discover_tests does at build time) needs no sandbox.
#define DOCTEST_CONFIG_IMPLEMENT
#include <cstdio>
#include <cstring>

#include <doctest/doctest.h>

#include "support/sandbox.hpp"

int main(int argc, char** argv)
{
    bool listing = false;
    for (int i = 1; i < argc; ++i)
        listing = listing || std::strncmp(argv[i], "--list", 6) == 0 ||
                  std::strncmp(argv[i], "-ltc", 4) == 0 || std::strcmp(argv[i], "--help") == 0;
    if (!listing)
    {
        if (const auto why = netnsd::test::enter_sandbox(); !why.empty())
        {
            std::fprintf(stderr, "SKIPPED: %s\n", why.c_str());
            return netnsd::test::skip_exit_code;
        }
    }
    doctest::Context context(argc, argv);
    return context.run();
}
