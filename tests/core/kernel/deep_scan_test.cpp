// kernel/deep_scan's decoder: which fd links name a socket (the links of a namespace are
// proc_sweep's parse_netns_link). The scan itself runs on a real kernel in the integration
// tests (host_inventory_test).
#include <doctest/doctest.h>

#include "core/kernel/deep_scan.hpp"

using netnsd::core::kernel::is_socket_link;
using netnsd::core::kernel::parse_netns_link;

TEST_CASE("an fd link names a socket only as socket:[INODE]")
{
    CHECK(is_socket_link("socket:[123456]"));
    CHECK(is_socket_link("socket:[]")); // the kernel always writes digits; the ioctl decides
    CHECK_FALSE(is_socket_link("socket:[12"));
    CHECK_FALSE(is_socket_link("pipe:[123]"));
    CHECK_FALSE(is_socket_link("anon_inode:[eventfd]"));
    CHECK_FALSE(is_socket_link("/run/socket:[1]"));
    CHECK_FALSE(is_socket_link(""));
}

TEST_CASE("an fd link names a network namespace only as net:[INODE]")
{
    CHECK(parse_netns_link("net:[4026531840]") == 4026531840u);
    CHECK_FALSE(parse_netns_link("mnt:[4026531840]"));
    CHECK_FALSE(parse_netns_link("socket:[4026531840]"));
    CHECK_FALSE(parse_netns_link("net:[]"));
    CHECK_FALSE(parse_netns_link("/run/netns/blue"));
}
