// The one translation unit that compiles Asio's SSL support (BOOST_ASIO_SEPARATE_COMPILATION):
// every other server file includes only its headers. Links with OpenSSL (libssl, libcrypto).
#include <boost/asio/ssl/impl/src.hpp>
