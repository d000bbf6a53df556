#include "server/listener.hpp"

#include <memory>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include "core/log.hpp"

namespace netnsd::server
{

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace
{

tcp::endpoint resolve(asio::io_context& ioc, const listen_address& where)
{
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(where.host, ec);
    if (!ec)
        return {address, where.port};
    // A host name such as "localhost": the first address it resolves to.
    tcp::resolver resolver(ioc);
    const auto results = resolver.resolve(where.host, std::to_string(where.port));
    return results.begin()->endpoint();
}

} // namespace

listener::listener(asio::io_context& ioc, const listen_address& where, api::router& router,
                   api::stream_hub& hub, worker_pools& workers)
    : acceptor_(ioc), retry_(ioc), router_(router), hub_(hub), workers_(workers)
{
    const auto endpoint = resolve(ioc, where);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    if (endpoint.address().is_v6())
        acceptor_.set_option(asio::ip::v6_only(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
}

void listener::start()
{
    do_accept();
}

void listener::stop()
{
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    sessions_.close_all();
}

void listener::abort()
{
    stop();
    sessions_.abort_all();
}

void listener::do_accept()
{
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket)
                           { on_accept(ec, std::move(socket)); });
}

void listener::on_accept(boost::system::error_code ec, tcp::socket socket)
{
    if (ec == asio::error::operation_aborted || !acceptor_.is_open())
        return;
    if (ec)
    {
        // EMFILE and friends: keep serving the connections we have; try again a little later
        // (at once would spin: the pending connection stays pending).
        if (!failing_)
            core::log::warn("accept: " + ec.message() + "; retrying every " +
                            std::to_string(accept_backoff.count()) + " ms");
        failing_ = true;
        retry_.expires_after(accept_backoff);
        retry_.async_wait(
            [this](boost::system::error_code timer_ec)
            {
                if (!timer_ec && acceptor_.is_open())
                    do_accept();
            });
        return;
    }
    if (failing_)
        core::log::info("accept: working again");
    failing_ = false;
    if (sessions_.size() >= max_connections)
    {
        core::log::warn("connection limit reached; closing a new connection");
        boost::system::error_code ignored;
        socket.close(ignored);
        return do_accept();
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<http_session>(std::move(socket), router_, hub_, sessions_, workers_)->run();
    do_accept();
}

} // namespace netnsd::server
