#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what the pinned clang-format makes of it.
set -u
clang_format=${1:?usage: format.sh CLANG_FORMAT SOURCE_DIR}
root=${2:?usage: format.sh CLANG_FORMAT SOURCE_DIR}
cd "$root" || exit 2
mapfile -t files < <(git ls-files -- '*.cpp' '*.hpp' 2>/dev/null || find core api server tests bench -name '*.[ch]pp')
[ ${#files[@]} -gt 0 ] || { echo "no C++ files found"; exit 1; }
"$clang_format" --dry-run -Werror "${files[@]}"
