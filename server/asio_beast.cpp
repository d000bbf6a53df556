// The one translation unit that compiles Asio and Beast (BOOST_ASIO_SEPARATE_COMPILATION,
// BOOST_BEAST_SEPARATE_COMPILATION): every other server file includes only their headers.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
