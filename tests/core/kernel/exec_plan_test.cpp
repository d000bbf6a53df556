// core/kernel/exec: what is computed before forking (command lookup, environment, /etc binds).
// Needs no root: it reads PATH directories and a temporary /etc/netns.
#include <algorithm>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <ostream> // doctest prints std::error_code through operator<<
#include <set>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "core/errc.hpp"
#include "core/kernel/exec.hpp"

using netnsd::core::errc;
using netnsd::core::kernel::exec_plan;
using netnsd::core::kernel::exec_request;
using netnsd::core::kernel::make_exec_plan;

namespace
{

// A temporary directory, removed (with what the test put in it) at the end.
struct temp_dir
{
    std::string path;
    temp_dir()
    {
        char tmpl[] = "/tmp/netnsd-exec-plan-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~temp_dir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    void make_file(const std::string& name, mode_t mode) const
    {
        const int fd = ::open((path + "/" + name).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, mode);
        REQUIRE(fd >= 0);
        ::close(fd);
        REQUIRE(::chmod((path + "/" + name).c_str(), mode) == 0);
    }
    void make_dir(const std::string& name) const
    {
        REQUIRE(::mkdir((path + "/" + name).c_str(), 0755) == 0);
    }
};

exec_request request(std::vector<std::string> argv)
{
    exec_request req;
    req.netns_path = "/run/netns/blue";
    req.name = "blue";
    req.etc_netns_dir = "/nonexistent/etc/netns";
    req.argv = std::move(argv);
    return req;
}

} // namespace

TEST_CASE("argv[0] is looked up in the default PATH before forking")
{
    exec_plan plan;
    std::string detail;
    REQUIRE_FALSE(make_exec_plan(request({"sh", "-c", "true"}), plan, detail));
    CHECK(plan.program.front() == '/');
    CHECK(plan.program.size() > 3);
    CHECK(plan.program.substr(plan.program.size() - 3) == "/sh");
    CHECK(::access(plan.program.c_str(), X_OK) == 0);
    CHECK(plan.argv == std::vector<std::string>{"sh", "-c", "true"});
    CHECK(plan.envp ==
          std::vector<std::string>{std::string("PATH=") + netnsd::core::kernel::exec_default_path});
    CHECK(plan.binds.empty());
}

TEST_CASE("a command that is missing or not executable is refused before forking")
{
    temp_dir dir;
    dir.make_file("plain", 0644);
    dir.make_file("tool", 0755);
    dir.make_dir("subdir");
    exec_plan plan;
    std::string detail;

    auto req = request({"netnsd-no-such-command"});
    CHECK(make_exec_plan(req, plan, detail) == errc::command_not_found);
    CHECK(detail.find("netnsd-no-such-command") != std::string::npos);

    req.env = {{"PATH", dir.path}};
    req.argv = {"plain"};
    CHECK(make_exec_plan(req, plan, detail) == std::errc::permission_denied);
    req.argv = {"subdir"};
    CHECK(make_exec_plan(req, plan, detail) == errc::command_not_found);
    req.argv = {"tool"};
    REQUIRE_FALSE(make_exec_plan(req, plan, detail));
    CHECK(plan.program == dir.path + "/tool");

    // With a slash, argv[0] is a path and PATH is not searched.
    req.argv = {dir.path + "/tool"};
    REQUIRE_FALSE(make_exec_plan(req, plan, detail));
    CHECK(plan.program == dir.path + "/tool");
    req.argv = {dir.path + "/missing"};
    CHECK(make_exec_plan(req, plan, detail) == errc::command_not_found);
}

TEST_CASE("the request's environment goes over the minimal one")
{
    temp_dir dir;
    dir.make_file("tool", 0755);
    auto req = request({"tool"});
    req.env = {{"FOO", "1"}, {"PATH", dir.path}, {"FOO", "2"}, {"EMPTY", ""}};
    exec_plan plan;
    std::string detail;
    REQUIRE_FALSE(make_exec_plan(req, plan, detail));
    CHECK(plan.envp == std::vector<std::string>{"PATH=" + dir.path, "FOO=2", "EMPTY="});
}

TEST_CASE("requests a C string cannot carry are invalid")
{
    exec_plan plan;
    std::string detail;
    CHECK(make_exec_plan(request({}), plan, detail) == std::errc::invalid_argument);
    CHECK(make_exec_plan(request({""}), plan, detail) == std::errc::invalid_argument);
    CHECK(make_exec_plan(request({"sh", std::string("a\0b", 3)}), plan, detail) ==
          std::errc::invalid_argument);
    CHECK(detail == "argv[1] contains a NUL byte");
    for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
             {"", "x"}, {"A=B", "x"}, {std::string("A\0", 2), "x"}, {"A", std::string("\0", 1)}})
    {
        auto req = request({"sh"});
        req.env = {{key, value}};
        CHECK(make_exec_plan(req, plan, detail) == std::errc::invalid_argument);
    }
    auto req = request({"sh"});
    req.name = "../etc";
    CHECK(make_exec_plan(req, plan, detail) == std::errc::invalid_argument);
}

TEST_CASE("every entry of /etc/netns/NAME becomes a bind onto /etc/ENTRY")
{
    temp_dir etc;
    etc.make_dir("blue");
    etc.make_file("blue/resolv.conf", 0644);
    etc.make_file("blue/hosts", 0644);
    etc.make_dir("blue/ssl");
    auto req = request({"sh"});
    req.etc_netns_dir = etc.path;
    exec_plan plan;
    std::string detail;
    REQUIRE_FALSE(make_exec_plan(req, plan, detail));
    std::set<std::pair<std::string, std::string>> binds;
    for (const auto& b : plan.binds)
        binds.emplace(b.source, b.target);
    const auto base = etc.path + "/blue/";
    CHECK(binds ==
          std::set<std::pair<std::string, std::string>>{{base + "hosts", "/etc/hosts"},
                                                        {base + "resolv.conf", "/etc/resolv.conf"},
                                                        {base + "ssl", "/etc/ssl"}});
    CHECK(plan.warnings.empty());
}

TEST_CASE("a 255-byte name gets no /etc binds, like ip")
{
    temp_dir etc;
    const std::string name(255, 'n');
    etc.make_dir(name);
    etc.make_file(name + "/resolv.conf", 0644);
    auto req = request({"sh"});
    req.name = name;
    req.etc_netns_dir = etc.path;
    exec_plan plan;
    std::string detail;
    REQUIRE_FALSE(make_exec_plan(req, plan, detail));
    CHECK(plan.binds.empty());

    req.name = std::string(254, 'n');
    etc.make_dir(req.name);
    etc.make_file(req.name + "/resolv.conf", 0644);
    REQUIRE_FALSE(make_exec_plan(req, plan, detail));
    CHECK(plan.binds.size() == 1);
}
