// Prints every route the daemon answers as JSON lines ({"method":..,"path":..}): the router's
// table and the embedded static files, for the contract test to compare with openapi.yaml.
#include <iostream>
#include <set>
#include <string>

#include "api/assets.hpp"
#include "api/router.hpp"

int main()
{
    std::set<std::string> seen;
    auto print = [&](std::string_view method, std::string_view path)
    {
        if (seen.insert(std::string(method) + " " + std::string(path)).second)
            std::cout << "{\"method\":\"" << method << "\",\"path\":\"" << path << "\"}\n";
    };
    for (const auto& r : netnsd::api::route_table())
        print(r.method, r.path);
    for (const auto& a : netnsd::api::embedded_assets())
        print("GET", a.route);
    return 0;
}
