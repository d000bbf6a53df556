#!/usr/bin/env bash
# doctest_discover_tests makes one ctest test per TEST_CASE, named after it; CMake splits a name
# at ';' into two tests whose doctest filters match nothing, and doctest exits 0 when nothing
# matches: a test that cannot fail. Fails when a test case name contains ';'.
set -u
root=${1:?usage: test_names.sh SOURCE_DIR}
cd "$root" || exit 2
if hits=$(git grep -nE 'TEST_CASE[A-Z_]*\(([A-Za-z_:]+, *)?"[^"]*;' -- 'tests/*.cpp' 2>/dev/null) && [ -n "$hits" ]; then
    echo "test case names with ';' (CMake splits them into tests that run nothing):"
    echo "$hits"
    exit 1
fi
exit 0
