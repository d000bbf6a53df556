// A directory of its own under the system's temp dir for one test, removed with everything in
// it when the test ends.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

#include <doctest/doctest.h>

namespace netnsd::test
{

class temp_dir
{
public:
    temp_dir()
    {
        std::string pattern = std::filesystem::temp_directory_path() / "netnsd-test-XXXXXX";
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path = pattern;
    }
    ~temp_dir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    std::filesystem::path path;
};

} // namespace netnsd::test
