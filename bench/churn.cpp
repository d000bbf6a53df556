// churn: the create+delete client of the admin benchmark. COUNT namespaces are created through
// netnsd's API (POST /api/v1/netns), then deleted (DELETE /api/v1/netns/NAME), from CLIENTS
// threads with one keep-alive connection each, names dealt round-robin. Compiled, like mkns, so
// that the figure set beside mkns's is netnsd's work and not the client's: a Python client
// spends ~65 µs of CPU per request here, on the two cores netnsd and the kernel share with it.
//
//   churn PORT TOKEN_FILE PREFIX COUNT CLIENTS
//
// Names are PREFIX00000 .. Prints one JSON object on stdout: the wall time of each half (s),
// each request's time (s) per half, and the failed requests ([method, name, status]; status 0
// when the connection failed). Exit code 1 when anything failed.
#include <arpa/inet.h>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <thread>
#include <tuple>
#include <unistd.h>
#include <vector>

namespace
{

using steady = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what)
{
    std::fprintf(stderr, "churn: %s\n", what.c_str());
    std::exit(1);
}

// One keep-alive HTTP/1.1 connection; answers are read by their Content-Length (netnsd sends
// one with every answer outside the event streams).
class connection
{
public:
    connection(int port, const std::string& token)
        : fixed_("Host: 127.0.0.1:" + std::to_string(port) + "\r\nAuthorization: Bearer " + token +
                 "\r\n")
    {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0)
            die(std::string("socket: ") + std::strerror(errno));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
            die(std::string("connect: ") + std::strerror(errno));
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection() { ::close(fd_); }

    // The status of the answer; 0 when the connection failed.
    int call(std::string_view method, const std::string& path, const std::string& body)
    {
        std::string req;
        req.reserve(256);
        req.append(method).append(" ").append(path).append(" HTTP/1.1\r\n").append(fixed_);
        if (!body.empty())
            req.append("Content-Type: application/json\r\n");
        req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
        req.append(body);
        for (std::size_t sent = 0; sent < req.size();)
        {
            const auto n = ::send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
            if (n <= 0)
                return 0;
            sent += static_cast<std::size_t>(n);
        }
        for (;;)
        {
            if (const auto status = take_answer(); status != 0)
                return status;
            char buf[8192];
            const auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0)
                return 0;
            pending_.append(buf, static_cast<std::size_t>(n));
        }
    }

private:
    // A whole answer from the bytes read so far: its status, and it is consumed; else 0.
    int take_answer()
    {
        const auto end = pending_.find("\r\n\r\n");
        if (end == std::string::npos)
            return 0;
        std::string head = pending_.substr(0, end);
        for (auto& c : head)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        const auto at = head.find("\r\ncontent-length:");
        if (at == std::string::npos || head.size() < 12)
            die("an answer without Content-Length: " + head.substr(0, 200));
        const auto size = std::strtoull(head.c_str() + at + 17, nullptr, 10);
        if (pending_.size() < end + 4 + size)
            return 0;
        const int status = std::atoi(head.c_str() + 9);
        pending_.erase(0, end + 4 + size);
        return status;
    }

    int fd_ = -1;
    std::string fixed_;
    std::string pending_;
};

std::string read_token(const std::string& path)
{
    std::ifstream in(path);
    std::string token;
    if (!(in >> token))
        die("cannot read a token from " + path);
    return token;
}

std::string name_of(const std::string& prefix, unsigned i)
{
    char digits[16];
    std::snprintf(digits, sizeof digits, "%05u", i);
    return prefix + digits;
}

struct half
{
    double wall = 0;
    std::vector<double> latency;
};

using failure = std::tuple<std::string, std::string, int>;

// Every name through `method` from `clients` threads; failures are added to `failed`.
half run_half(std::string_view method, int want, const std::vector<std::string>& names,
              unsigned clients, int port, const std::string& token, std::vector<failure>& failed)
{
    std::vector<std::vector<double>> each(clients);
    std::mutex lock;
    std::vector<std::unique_ptr<connection>> conns;
    for (unsigned c = 0; c < clients; ++c)
        conns.push_back(std::make_unique<connection>(port, token));
    std::atomic<unsigned> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (unsigned c = 0; c < clients; ++c)
        threads.emplace_back(
            [&, c]
            {
                ++ready;
                while (!go.load())
                    std::this_thread::yield();
                for (std::size_t i = c; i < names.size(); i += clients)
                {
                    const auto& name = names[i];
                    const auto t0 = steady::now();
                    const int status =
                        method == "POST"
                            ? conns[c]->call(method, "/api/v1/netns", "{\"name\":\"" + name + "\"}")
                            : conns[c]->call(method, "/api/v1/netns/" + name, "");
                    each[c].push_back(std::chrono::duration<double>(steady::now() - t0).count());
                    if (status != want)
                    {
                        const std::lock_guard hold(lock);
                        failed.emplace_back(std::string(method), name, status);
                    }
                }
            });
    while (ready.load() < clients)
        std::this_thread::yield();
    const auto start = steady::now();
    go.store(true);
    for (auto& t : threads)
        t.join();
    half out;
    out.wall = std::chrono::duration<double>(steady::now() - start).count();
    for (auto& e : each)
        out.latency.insert(out.latency.end(), e.begin(), e.end());
    return out;
}

void print_list(const std::vector<double>& values)
{
    std::printf("[");
    for (std::size_t i = 0; i < values.size(); ++i)
        std::printf("%s%.9f", i ? "," : "", values[i]);
    std::printf("]");
}

} // namespace

int main(int argc, char** argv)
{
    if (argc != 6)
        die("usage: churn PORT TOKEN_FILE PREFIX COUNT CLIENTS");
    const int port = std::atoi(argv[1]);
    const auto token = read_token(argv[2]);
    const std::string prefix = argv[3];
    const auto count = static_cast<unsigned>(std::strtoul(argv[4], nullptr, 10));
    const auto clients = static_cast<unsigned>(std::strtoul(argv[5], nullptr, 10));
    if (port <= 0 || clients == 0)
        die("PORT and CLIENTS must be positive");
    std::vector<std::string> names;
    for (unsigned i = 0; i < count; ++i)
        names.push_back(name_of(prefix, i));
    std::vector<failure> failed;
    const auto create = run_half("POST", 201, names, clients, port, token, failed);
    const auto remove = run_half("DELETE", 200, names, clients, port, token, failed);
    std::printf("{\"create_s\":%.9f,\"delete_s\":%.9f,\"create_lat\":", create.wall, remove.wall);
    print_list(create.latency);
    std::printf(",\"delete_lat\":");
    print_list(remove.latency);
    std::printf(",\"errors\":[");
    for (std::size_t i = 0; i < failed.size(); ++i)
        std::printf("%s[\"%s\",\"%s\",%d]", i ? "," : "", std::get<0>(failed[i]).c_str(),
                    std::get<1>(failed[i]).c_str(), std::get<2>(failed[i]));
    std::printf("]}\n");
    return failed.empty() ? 0 : 1;
}
