// Prints the router's route table as JSON lines ({"method":..,"path":..}), for the contract
// test to compare with openapi.yaml.
#include <iostream>

#include "api/router.hpp"

int main()
{
    for (const auto& r : netnsd::api::route_table())
        std::cout << "{\"method\":\"" << r.method << "\",\"path\":\"" << r.path << "\"}\n";
    return 0;
}
