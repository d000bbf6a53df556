// evlat: the measuring tool of bench/events. One process holds the websocket client(s) of
// netnsd's GET /api/v1/events AND creates the namespaces, so both sides read the same clock
// (CLOCK_MONOTONIC). Namespaces are made with the system calls of `ip netns add` / `ip netns
// del`, exactly as bench/mkns.cpp does (open O_CREAT|O_EXCL, unshare(CLONE_NEWNET), bind mount
// of the creating thread's /proc/thread-self/ns/net, setns back; umount2(MNT_DETACH) + unlink).
//
//   evlat seq    --port P [--dir D] [--count N] [--prefix X]
//       create one, wait for its `add` on the websocket, next; then delete one, wait for its
//       `delete`, next.
//   evlat burst  --port P [--dir D] [--count N] [--prefix X] [--monitor]
//       create N back to back, match each `add` to its creation by name; then delete N back to
//       back. --monitor also runs `stdbuf -oL ip netns monitor` and timestamps its lines.
//   evlat fanout --port P --subs S [--dir D] [--count N] [--prefix X] [--netnsd-pid PID]
//                [--entries-only] [--hold]
//       S websocket subscribers on one epoll loop (this thread; a minimal RFC 6455 client, so
//       the subscribers cost little CPU next to netnsd); once every one has its hello, a
//       creator thread makes N namespaces and deletes them as fast as it can (2N events).
//       Measures until the last subscriber has the last event; checks every revision arrived.
//       --pace-us U starts operation k no earlier than k*U us after the burst's start (default
//       0: as fast as the creator can).
//       --lifetime-ms L: each namespace is deleted L ms after its mount returned, while the next
//       ones are created (every --pace-us): short lives that overlap. The creator notes its own
//       order of adds and deletes (one thread: the kernel's order), and every subscriber must
//       get exactly that sequence of its names, in order ("exact", checked in every fanout run;
//       the report says where the first difference of a subscriber that did not is). --slow K makes
//       K of the subscribers slow readers (a small receive buffer, at most 16 KiB read per
//       --slow-pause-ms, 20 by default), still well within netnsd's queue limits.
//       --hold keeps an fd on every namespace until the run ends: deleting a name then destroys
//       nothing, so the kernel's teardown worker (cleanup_net) does not run meanwhile.
//   Every mode also takes --timeout S (how long to wait for the events; default 60).
//
// Prints one JSON object on stdout (times in microseconds); the report is built from it by
// bench/events.py. Errors go to stderr with exit status 1. Only ever connects to 127.0.0.1.
// Build: g++ -O2 -std=c++20 -pthread bench/evlat.cpp -o bench/out/evlat
#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fcntl.h>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <sched.h>
#include <signal.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

namespace
{

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

constexpr long nsfs_magic = 0x6e736673;
constexpr const char* host = "127.0.0.1";

std::int64_t now_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// CLOCK_REALTIME in microseconds: netnsd's clock for the times it logs.
std::int64_t realtime_us()
{
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

double us(std::int64_t ns)
{
    return static_cast<double>(ns) / 1000.0;
}

[[noreturn]] void die(const std::string& what)
{
    std::fprintf(stderr, "evlat: %s\n", what.c_str());
    std::exit(1);
}

[[noreturn]] void die_errno(const std::string& what, int err)
{
    die(what + ": " + std::strerror(err));
}

std::string entry_name(const std::string& prefix, unsigned i)
{
    char digits[16];
    std::snprintf(digits, sizeof digits, "%05u", i);
    return prefix + digits;
}

bool is_namespace(const std::string& path)
{
    struct statfs sf
    {
    };
    return ::statfs(path.c_str(), &sf) == 0 && sf.f_type == nsfs_magic;
}

// --- the creator ------------------------------------------------------------------------------

// The run dir preparation of `ip netns add` (as bench/mkns.cpp): make DIR a shared mount point.
void prepare_dir(const std::string& dir)
{
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        die_errno("mkdir " + dir, errno);
    const int lock = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (lock < 0)
        die_errno("open " + dir, errno);
    ::flock(lock, LOCK_EX);
    bool converted = false;
    while (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0)
    {
        if (errno != EINVAL || converted)
            die_errno("mount --make-shared " + dir, errno);
        if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0)
            die_errno("mount --bind " + dir, errno);
        if (::mount(dir.c_str(), dir.c_str(), "none", MS_PRIVATE | MS_REC, nullptr) != 0)
            die_errno("mount --make-private " + dir, errno);
        converted = true;
    }
    ::flock(lock, LOCK_UN);
    ::close(lock);
}

// Makes and removes namespaces from the thread that calls it. unshare(CLONE_NEWNET) moves only
// the calling thread, so the bind source is /proc/thread-self/ns/net, and setns puts that
// thread back where it started.
class creator
{
public:
    explicit creator(std::string dir) : dir_(std::move(dir))
    {
        prepare_dir(dir_);
        saved_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (saved_ < 0)
            die_errno("open /proc/thread-self/ns/net", errno);
    }
    creator(const creator&) = delete;
    creator& operator=(const creator&) = delete;
    ~creator() { ::close(saved_); }

    std::string path(const std::string& name) const { return dir_ + "/" + name; }

    // When mount() was called and when it returned: the namespace is usable from then on.
    struct created
    {
        std::int64_t call = 0, mounted = 0;
        std::int64_t call_rt_us = 0;   // the mount(2) call on CLOCK_REALTIME (netnsd's clock)
        std::int64_t return_rt_us = 0; // and its return
    };
    created create(const std::string& name)
    {
        const std::string p = path(name);
        const int fd = ::open(p.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
        if (fd < 0)
            die_errno("cannot create namespace file \"" + p + "\"", errno);
        ::close(fd);
        if (::unshare(CLONE_NEWNET) != 0)
        {
            const int err = errno;
            ::unlink(p.c_str());
            die_errno("unshare(CLONE_NEWNET) for " + p, err);
        }
        const std::int64_t call = now_ns();
        const std::int64_t call_rt_us = realtime_us();
        if (::mount("/proc/thread-self/ns/net", p.c_str(), "none", MS_BIND, nullptr) != 0)
        {
            const int err = errno;
            if (::setns(saved_, CLONE_NEWNET) != 0)
                die_errno("setns back", errno);
            ::unlink(p.c_str());
            die_errno("bind /proc/thread-self/ns/net -> " + p, err);
        }
        const std::int64_t mounted = now_ns();
        const std::int64_t return_rt_us = realtime_us();
        if (keep_ != nullptr)
        {
            const int held = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
            if (held < 0)
                die_errno("open /proc/thread-self/ns/net", errno);
            keep_->push_back(held);
        }
        if (::setns(saved_, CLONE_NEWNET) != 0)
            die_errno("setns back", errno);
        return {call, mounted, call_rt_us, return_rt_us};
    }

    // `ip netns del`: when umount2 was called, when it returned, when unlink returned. A lazy
    // umount2 detaches the mount first and returns only after an RCU grace period, so a watcher
    // can see the namespace gone well before umount2 returns.
    struct removed
    {
        std::int64_t call = 0, unmounted = 0, unlinked = 0;
        std::int64_t call_rt_us = 0;   // the umount2(2) call on CLOCK_REALTIME
        std::int64_t return_rt_us = 0; // and its return
    };
    removed remove(const std::string& name)
    {
        const std::string p = path(name);
        removed r;
        r.call = now_ns();
        r.call_rt_us = realtime_us();
        ::umount2(p.c_str(), MNT_DETACH);
        r.unmounted = now_ns();
        r.return_rt_us = realtime_us();
        if (::unlink(p.c_str()) != 0)
            die_errno("cannot remove namespace file \"" + p + "\"", errno);
        r.unlinked = now_ns();
        return r;
    }

    // --hold: an fd on every namespace made, appended to `fds`, so that deleting its name does
    // not destroy it (the caller closes them when the measuring is over).
    void hold_in(std::vector<int>* fds) { keep_ = fds; }

private:
    std::string dir_;
    int saved_ = -1;
    std::vector<int>* keep_ = nullptr;
};

// --- a small JSON reader for the top level of one event --------------------------------------

// netnsd's messages are JSON objects; only three top-level members matter here. Nested values
// are skipped (the `namespace` object has a `name` of its own).
struct fields
{
    std::string type;
    std::optional<std::uint64_t> revision;
    std::optional<std::string> name;
};

class scanner
{
public:
    explicit scanner(std::string_view s) : s_(s) {}

    bool top_level(fields& out)
    {
        ws();
        if (!eat('{'))
            return false;
        ws();
        if (eat('}'))
            return true;
        while (true)
        {
            ws();
            std::string key;
            if (!string(key))
                return false;
            ws();
            if (!eat(':'))
                return false;
            ws();
            if (key == "type")
            {
                if (!string(out.type))
                    return false;
            }
            else if (key == "revision")
            {
                std::uint64_t r = 0;
                const auto [p, ec] = std::from_chars(s_.data() + i_, s_.data() + s_.size(), r);
                if (ec != std::errc{})
                    return false;
                i_ = static_cast<std::size_t>(p - s_.data());
                out.revision = r;
            }
            else if (key == "name" && peek() == '"')
            {
                std::string n;
                if (!string(n))
                    return false;
                out.name = std::move(n);
            }
            else if (!skip())
                return false;
            ws();
            if (eat(','))
                continue;
            return eat('}');
        }
    }

private:
    char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
    bool eat(char c)
    {
        if (peek() != c)
            return false;
        ++i_;
        return true;
    }
    void ws()
    {
        while (i_ < s_.size() &&
               (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
            ++i_;
    }
    bool string(std::string& out)
    {
        if (!eat('"'))
            return false;
        while (i_ < s_.size())
        {
            const char c = s_[i_++];
            if (c == '"')
                return true;
            if (c != '\\')
            {
                out.push_back(c);
                continue;
            }
            if (i_ >= s_.size())
                return false;
            const char e = s_[i_++];
            switch (e)
            {
            case 'n':
                out.push_back('\n');
                break;
            case 't':
                out.push_back('\t');
                break;
            case 'r':
                out.push_back('\r');
                break;
            case 'b':
                out.push_back('\b');
                break;
            case 'f':
                out.push_back('\f');
                break;
            case 'u':
            {
                // Enough for this benchmark's ASCII names; anything else keeps its escape.
                if (i_ + 4 > s_.size())
                    return false;
                unsigned v = 0;
                std::from_chars(s_.data() + i_, s_.data() + i_ + 4, v, 16);
                if (v < 0x80)
                    out.push_back(static_cast<char>(v));
                else
                    out.append("\\u").append(s_.substr(i_, 4));
                i_ += 4;
                break;
            }
            default:
                out.push_back(e);
            }
        }
        return false;
    }
    bool skip()
    {
        const char c = peek();
        if (c == '"')
        {
            std::string ignored;
            return string(ignored);
        }
        if (c == '{' || c == '[')
        {
            int depth = 0;
            while (i_ < s_.size())
            {
                const char d = s_[i_];
                if (d == '"')
                {
                    std::string ignored;
                    if (!string(ignored))
                        return false;
                    continue;
                }
                ++i_;
                if (d == '{' || d == '[')
                    ++depth;
                else if ((d == '}' || d == ']') && --depth == 0)
                    return true;
            }
            return false;
        }
        while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}')
            ++i_;
        return true;
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

std::optional<fields> parse(std::string_view text)
{
    fields f;
    scanner sc(text);
    if (!sc.top_level(f))
        return std::nullopt;
    return f;
}

// --- JSON output ------------------------------------------------------------------------------

class json_out
{
public:
    void num(const std::string& key, double v)
    {
        char b[64];
        std::snprintf(b, sizeof b, "%.3f", v);
        raw(key, b);
    }
    void integer(const std::string& key, long long v) { raw(key, std::to_string(v)); }
    void str(const std::string& key, const std::string& v) { raw(key, quote(v)); }
    void array(const std::string& key, const std::vector<double>& v)
    {
        std::string s = "[";
        char b[64];
        for (std::size_t i = 0; i < v.size(); ++i)
        {
            std::snprintf(b, sizeof b, "%s%.3f", i ? "," : "", v[i]);
            s += b;
        }
        raw(key, s + "]");
    }
    void strings(const std::string& key, const std::vector<std::string>& v)
    {
        std::string s = "[";
        for (std::size_t i = 0; i < v.size(); ++i)
            s += (i ? "," : "") + quote(v[i]);
        raw(key, s + "]");
    }
    void raw(const std::string& key, const std::string& v)
    {
        body_ += (body_.empty() ? "{" : ",\n ") + quote(key) + ":" + v;
    }
    void print() const { std::printf("%s}\n", body_.c_str()); }

    static std::string quote(const std::string& s)
    {
        std::string o = "\"";
        for (const unsigned char c : s)
        {
            if (c == '"' || c == '\\')
                o += '\\', o += static_cast<char>(c);
            else if (c < 0x20)
            {
                char b[8];
                std::snprintf(b, sizeof b, "\\u%04x", c);
                o += b;
            }
            else
                o += static_cast<char>(c);
        }
        return o + "\"";
    }

private:
    std::string body_;
};

// --- one websocket reader on its own thread (seq and burst) ----------------------------------

struct record
{
    std::int64_t t = 0; // when read() returned with this message
    fields f;
    bool parsed = false;
    int probe = -1;  // add events: 1 if the path was an nsfs mount when it arrived
    std::string raw; // kept only for messages that failed to parse
};

// Everything a stream showed, checked against what was made.
struct stream_check
{
    unsigned events = 0, gaps = 0, backwards = 0, unparsed = 0, other_types = 0;
    unsigned dup_add = 0, dup_delete = 0, delete_before_add = 0, foreign = 0;
    std::vector<std::string> notes; // the first few oddities, verbatim
};

class ws_reader
{
public:
    ws_reader(unsigned short port, std::string dir, const std::string& target)
        : ws_(ioc_), dir_(std::move(dir))
    {
        beast::error_code ec;
        ws_.next_layer().connect(tcp::endpoint(net::ip::make_address(host), port), ec);
        if (ec)
            die("connect to " + std::string(host) + ":" + std::to_string(port) + ": " +
                ec.message());
        ws_.next_layer().set_option(tcp::no_delay(true));
        ws_.read_message_max(64 << 20);
        websocket::response_type res;
        ws_.handshake(res, std::string(host) + ":" + std::to_string(port), target, ec);
        if (ec)
            die("websocket handshake for " + target + ": " + ec.message() + " (HTTP " +
                std::to_string(res.result_int()) + ")");
        beast::flat_buffer b;
        ws_.read(b, ec);
        if (ec)
            die("reading the hello: " + ec.message());
        const auto text = beast::buffers_to_string(b.data());
        const auto f = parse(text);
        if (!f || f->type != "hello" || !f->revision)
            die("the first message is not a hello: " + text);
        hello_revision_ = *f->revision;
        thread_ = std::thread([this] { loop(); });
    }
    ws_reader(const ws_reader&) = delete;
    ws_reader& operator=(const ws_reader&) = delete;
    ~ws_reader() { stop(); }

    std::uint64_t hello_revision() const { return hello_revision_; }

    void stop()
    {
        if (!thread_.joinable())
            return;
        ::shutdown(ws_.next_layer().native_handle(), SHUT_RDWR);
        thread_.join();
    }

    // Waits until pred(records, ended) holds; false after `timeout`.
    bool wait(const std::function<bool(const std::vector<record>&)>& pred,
              std::chrono::milliseconds timeout)
    {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, timeout, [&] { return ended_ || pred(records_); }) &&
               (!ended_ || pred(records_));
    }

    std::vector<record> records() const
    {
        std::lock_guard lock(mutex_);
        return records_;
    }
    std::string end_reason() const
    {
        std::lock_guard lock(mutex_);
        return ended_ ? end_reason_ : "";
    }

private:
    void loop()
    {
        beast::flat_buffer b;
        while (true)
        {
            beast::error_code ec;
            ws_.read(b, ec);
            const std::int64_t t = now_ns();
            if (ec)
            {
                std::lock_guard lock(mutex_);
                ended_ = true;
                end_reason_ = ec.message();
                if (ws_.reason().code != websocket::close_code::none)
                    end_reason_ += " (close code " + std::to_string(ws_.reason().code) + ")";
                cv_.notify_all();
                return;
            }
            record r;
            r.t = t;
            const auto text = beast::buffers_to_string(b.data());
            b.consume(b.size());
            if (auto f = parse(text))
            {
                r.f = std::move(*f);
                r.parsed = true;
                if (r.f.type == "add" && r.f.name)
                    r.probe = is_namespace(dir_ + "/" + *r.f.name) ? 1 : 0;
            }
            else
                r.raw = text;
            std::lock_guard lock(mutex_);
            records_.push_back(std::move(r));
            cv_.notify_all();
        }
    }

    net::io_context ioc_;
    websocket::stream<tcp::socket> ws_;
    std::string dir_;
    std::uint64_t hello_revision_ = 0;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<record> records_;
    bool ended_ = false;
    std::string end_reason_;
};

// The host inventory's events: they take revisions between the entries', and are otherwise
// left alone here.
bool is_inventory_event(std::string_view type)
{
    return type == "found" || type == "holders" || type == "destroyed";
}

// Checks one stream: contiguous revisions from the hello on, one add then one delete per name.
stream_check check_stream(const std::vector<record>& recs, std::uint64_t hello,
                          const std::vector<std::string>& names)
{
    stream_check c;
    std::unordered_map<std::string, std::pair<unsigned, unsigned>> seen; // adds, deletes
    for (const auto& n : names)
        seen[n] = {0, 0};
    std::uint64_t last = hello;
    auto note = [&](const std::string& s)
    {
        if (c.notes.size() < 8)
            c.notes.push_back(s);
    };
    for (const auto& r : recs)
    {
        if (!r.parsed || !r.f.revision)
        {
            ++c.unparsed;
            note("unparsed message: " + r.raw.substr(0, 200));
            continue;
        }
        ++c.events;
        const auto rev = *r.f.revision;
        if (rev <= last)
        {
            ++c.backwards;
            note("revision " + std::to_string(rev) + " after " + std::to_string(last));
        }
        else if (rev != last + 1)
        {
            ++c.gaps;
            note("revision " + std::to_string(rev) + " follows " + std::to_string(last) +
                 " (gap of " + std::to_string(rev - last - 1) + ")");
        }
        last = std::max(last, rev);
        if (is_inventory_event(r.f.type))
            continue;
        if (r.f.type != "add" && r.f.type != "delete")
        {
            ++c.other_types;
            note("a '" + r.f.type + "' event (revision " + std::to_string(rev) + ")");
            continue;
        }
        const auto it = r.f.name ? seen.find(*r.f.name) : seen.end();
        if (it == seen.end())
        {
            ++c.foreign;
            note("'" + r.f.type +
                 "' for a name this run did not make: " + r.f.name.value_or("null"));
            continue;
        }
        auto& [adds, dels] = it->second;
        if (r.f.type == "add")
        {
            if (++adds > 1)
            {
                ++c.dup_add;
                note("second add for " + it->first);
            }
        }
        else
        {
            if (adds == 0)
            {
                ++c.delete_before_add;
                note("delete before add for " + it->first);
            }
            if (++dels > 1)
            {
                ++c.dup_delete;
                note("second delete for " + it->first);
            }
        }
    }
    return c;
}

void put_check(json_out& o, const std::string& p, const stream_check& c)
{
    o.integer(p + "events", c.events);
    o.integer(p + "gaps", c.gaps);
    o.integer(p + "backwards", c.backwards);
    o.integer(p + "unparsed", c.unparsed);
    o.integer(p + "other_types", c.other_types);
    o.integer(p + "dup_add", c.dup_add);
    o.integer(p + "dup_delete", c.dup_delete);
    o.integer(p + "delete_before_add", c.delete_before_add);
    o.integer(p + "foreign", c.foreign);
    o.strings(p + "notes", c.notes);
}

// The first record of `type` for `name` at or after index `from`; -1 if none.
long find_record(const std::vector<record>& recs, std::size_t from, std::string_view type,
                 const std::string& name)
{
    for (std::size_t i = from; i < recs.size(); ++i)
        if (recs[i].parsed && recs[i].f.type == type && recs[i].f.name == name)
            return static_cast<long>(i);
    return -1;
}

// --- `ip netns monitor` under stdbuf -oL, read line by line -----------------------------------

struct mon_line
{
    std::int64_t t = 0;
    std::string verb, name;
    int probe = -1; // add lines: 1 if the path was an nsfs mount when the line was read
};

class monitor_reader
{
public:
    explicit monitor_reader(std::string dir) : dir_(std::move(dir))
    {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0)
            die_errno("pipe2", errno);
        pid_ = ::fork();
        if (pid_ < 0)
            die_errno("fork", errno);
        if (pid_ == 0)
        {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            ::dup2(fds[1], 1);
            ::execlp("stdbuf", "stdbuf", "-oL", "ip", "netns", "monitor", nullptr);
            ::_exit(127);
        }
        ::close(fds[1]);
        fd_ = fds[0];
        thread_ = std::thread([this] { loop(); });
    }
    monitor_reader(const monitor_reader&) = delete;
    monitor_reader& operator=(const monitor_reader&) = delete;
    ~monitor_reader() { stop(); }

    void stop()
    {
        if (pid_ > 0)
        {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
        if (thread_.joinable())
            thread_.join();
        if (fd_ >= 0)
            ::close(fd_);
        fd_ = -1;
    }

    bool wait(const std::function<bool(const std::vector<mon_line>&)>& pred,
              std::chrono::milliseconds timeout)
    {
        std::unique_lock lock(mutex_);
        return cv_.wait_for(lock, timeout, [&] { return ended_ || pred(lines_); }) && pred(lines_);
    }
    std::vector<mon_line> lines() const
    {
        std::lock_guard lock(mutex_);
        return lines_;
    }

private:
    void loop()
    {
        std::string pending;
        std::vector<char> buf(1 << 16);
        while (true)
        {
            const ssize_t n = ::read(fd_, buf.data(), buf.size());
            const std::int64_t t = now_ns();
            if (n <= 0)
            {
                if (n < 0 && errno == EINTR)
                    continue;
                std::lock_guard lock(mutex_);
                ended_ = true;
                cv_.notify_all();
                return;
            }
            pending.append(buf.data(), static_cast<std::size_t>(n));
            std::vector<mon_line> got;
            std::size_t nl;
            while ((nl = pending.find('\n')) != std::string::npos)
            {
                std::string line = pending.substr(0, nl);
                pending.erase(0, nl + 1);
                mon_line m;
                m.t = t;
                const auto sp = line.find(' ');
                m.verb = line.substr(0, sp);
                m.name = sp == std::string::npos ? "" : line.substr(sp + 1);
                if (m.verb == "add")
                    m.probe = is_namespace(dir_ + "/" + m.name) ? 1 : 0;
                got.push_back(std::move(m));
            }
            std::lock_guard lock(mutex_);
            for (auto& m : got)
                lines_.push_back(std::move(m));
            cv_.notify_all();
        }
    }

    std::string dir_;
    pid_t pid_ = -1;
    int fd_ = -1;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<mon_line> lines_;
    bool ended_ = false;
};

// --- options ----------------------------------------------------------------------------------

struct options
{
    std::string mode;
    unsigned short port = 0;
    std::string dir = "/run/netns";
    unsigned count = 1000;
    std::string prefix;
    bool monitor = false;
    unsigned subs = 1;
    int netnsd_pid = 0;
    unsigned connect_parallel = 64;
    unsigned pace_us = 0; // fanout: 0 = the creator runs as fast as it can
    unsigned timeout_s = 60;
    unsigned lifetime_ms = 0; // fanout: delete each namespace this long after it was made
    // fanout --entries-only: subscribe with types=add,delete (a third of the events of every
    // type, for a netnsd with a small --stream-queue-messages); revisions then skip the host
    // inventory's events, so gaps are not counted, and loss shows in the exact sequence.
    bool entries_only = false;
    // fanout --hold: keep every namespace alive with an fd until the run ends, so that the
    // kernel tears none down (cleanup_net) while the deletes are measured.
    bool hold = false;
    unsigned slow = 0; // fanout: subscribers that read slowly
    unsigned slow_pause_ms = 20;
};

unsigned to_uint(std::string_view s, const char* what)
{
    unsigned v = 0;
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size())
        die(std::string("bad ") + what + ": " + std::string(s));
    return v;
}

options parse_options(int argc, char** argv)
{
    if (argc < 2)
        die("usage: evlat seq|burst|fanout --port P [--dir D] [--count N] [--prefix X] "
            "[--monitor] [--subs S] [--netnsd-pid PID] [--pace-us U] [--timeout S] "
            "[--lifetime-ms L] [--slow K] [--slow-pause-ms M]");
    options o;
    o.mode = argv[1];
    for (int i = 2; i < argc; ++i)
    {
        const std::string_view a = argv[i];
        auto value = [&]() -> std::string_view
        {
            if (i + 1 >= argc)
                die("missing value after " + std::string(a));
            return argv[++i];
        };
        if (a == "--port")
            o.port = static_cast<unsigned short>(to_uint(value(), "port"));
        else if (a == "--dir")
            o.dir = value();
        else if (a == "--count")
            o.count = to_uint(value(), "count");
        else if (a == "--prefix")
            o.prefix = value();
        else if (a == "--monitor")
            o.monitor = true;
        else if (a == "--subs")
            o.subs = to_uint(value(), "subs");
        else if (a == "--netnsd-pid")
            o.netnsd_pid = static_cast<int>(to_uint(value(), "pid"));
        else if (a == "--pace-us")
            o.pace_us = to_uint(value(), "pace");
        else if (a == "--timeout")
            o.timeout_s = to_uint(value(), "timeout");
        else if (a == "--lifetime-ms")
            o.lifetime_ms = to_uint(value(), "lifetime");
        else if (a == "--slow")
            o.slow = to_uint(value(), "slow");
        else if (a == "--entries-only")
            o.entries_only = true;
        else if (a == "--hold")
            o.hold = true;
        else if (a == "--slow-pause-ms")
            o.slow_pause_ms = to_uint(value(), "slow pause");
        else
            die("unknown option " + std::string(a));
    }
    if (o.port == 0)
        die("--port is required");
    if (o.prefix.empty())
        o.prefix = o.mode.substr(0, 3) + "_";
    if (o.prefix.find('/') != std::string::npos)
        die("the prefix must not contain '/'");
    return o;
}

std::vector<std::string> make_names(const options& o)
{
    std::vector<std::string> v;
    v.reserve(o.count);
    for (unsigned i = 0; i < o.count; ++i)
        v.push_back(entry_name(o.prefix, i));
    return v;
}

double cpu_ms_of(int pid)
{
    if (pid <= 0)
        return -1;
    FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (!f)
        return -1;
    char buf[2048];
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    const char* p = std::strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long utime = 0, stime = 0;
    // Fields after ')': state(3) ... utime(14) stime(15).
    if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                    &stime) != 2)
        return -1;
    return static_cast<double>(utime + stime) * 1000.0 /
           static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double thread_cpu_ms()
{
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Every type, so that every revision arrives (the host inventory's found and holders are not
// sent without types=) and a gap means a lost event.
constexpr const char* events_target =
    "/api/v1/events?types=add,delete,nsid,destroyed,found,holders";

// --- seq and burst: what one websocket stream showed for each name -------------------------

// Matches the stream's first add and first delete of each name to its creation and removal,
// and writes the latencies (microseconds, in name order) and the counts.
void latency_report(json_out& out, const std::vector<std::string>& names,
                    const std::vector<creator::created>& made,
                    const std::vector<creator::removed>& gone, const std::vector<record>& recs,
                    std::uint64_t hello)
{
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < names.size(); ++i)
        index[names[i]] = i;
    std::vector<std::int64_t> add_t(names.size(), 0), del_t(names.size(), 0);
    std::vector<int> add_probe(names.size(), -1);
    unsigned order_inversions = 0; // adds arriving in another order than the creations
    long last_add = -1;
    for (const auto& r : recs)
    {
        if (!r.parsed || !r.f.name)
            continue;
        const auto it = index.find(*r.f.name);
        if (it == index.end())
            continue;
        const auto i = it->second;
        if (r.f.type == "add" && add_t[i] == 0)
        {
            add_t[i] = r.t;
            add_probe[i] = r.probe;
            order_inversions += static_cast<long>(i) < last_add;
            last_add = std::max(last_add, static_cast<long>(i));
        }
        else if (r.f.type == "delete" && del_t[i] == 0)
            del_t[i] = r.t;
    }
    std::vector<double> add_us, add_from_call_us, mount_us, del_us, del_umount_us, del_unlink_us,
        umount_us;
    unsigned adds = 0, dels = 0, add_before_call = 0, add_before_mount = 0, add_probe_not_ns = 0,
             del_before_call = 0, del_before_umount = 0, del_before_unlink = 0;
    for (std::size_t i = 0; i < names.size(); ++i)
    {
        if (i < made.size() && made[i].mounted)
        {
            mount_us.push_back(us(made[i].mounted - made[i].call));
            if (add_t[i])
            {
                ++adds;
                add_us.push_back(us(add_t[i] - made[i].mounted));
                add_from_call_us.push_back(us(add_t[i] - made[i].call));
                add_before_call += add_t[i] < made[i].call;
                add_before_mount += add_t[i] < made[i].mounted;
                add_probe_not_ns += add_probe[i] == 0;
            }
        }
        if (i < gone.size() && gone[i].unlinked)
        {
            umount_us.push_back(us(gone[i].unmounted - gone[i].call));
            if (del_t[i])
            {
                ++dels;
                del_us.push_back(us(del_t[i] - gone[i].call));
                del_umount_us.push_back(us(del_t[i] - gone[i].unmounted));
                del_unlink_us.push_back(us(del_t[i] - gone[i].unlinked));
                del_before_call += del_t[i] < gone[i].call;
                del_before_umount += del_t[i] < gone[i].unmounted;
                del_before_unlink += del_t[i] < gone[i].unlinked;
            }
        }
    }
    out.integer("hello_revision", static_cast<long long>(hello));
    out.integer("adds_matched", adds);
    out.integer("deletes_matched", dels);
    out.array("add_us", add_us);
    out.array("add_from_call_us", add_from_call_us);
    out.array("mount_us", mount_us);
    out.array("del_us", del_us);
    out.array("del_umount_us", del_umount_us);
    out.array("del_unlink_us", del_unlink_us);
    out.array("umount_us", umount_us);
    out.integer("add_before_call", add_before_call);
    out.integer("add_before_mount", add_before_mount);
    out.integer("add_probe_not_ns", add_probe_not_ns);
    out.integer("del_before_call", del_before_call);
    out.integer("del_before_umount", del_before_umount);
    out.integer("del_before_unlink", del_before_unlink);
    out.integer("add_order_inversions", order_inversions);
    put_check(out, "ws_", check_stream(recs, hello, names));
}

std::string stream_failure(const ws_reader& ws, const std::string& what)
{
    const auto why = ws.end_reason();
    return what + (why.empty() ? "" : "; the stream ended: " + why);
}

// Removes whatever a failed run left, so the next phase starts from an empty dir.
void clean_up(creator& cr, const std::vector<std::string>& names)
{
    for (const auto& n : names)
    {
        ::umount2(cr.path(n).c_str(), MNT_DETACH);
        ::unlink(cr.path(n).c_str());
    }
}

// --- seq --------------------------------------------------------------------------------------

int run_seq(const options& o)
{
    const auto names = make_names(o);
    creator cr(o.dir);
    ws_reader ws(o.port, o.dir, events_target);
    const auto timeout = std::chrono::seconds(10);
    std::vector<creator::created> made;
    std::vector<creator::removed> gone;
    std::string failure;
    std::size_t cursor = 0;
    // Waits for the next `type` event of `name`; the stream's order is checked afterwards.
    const auto await = [&](std::string_view type, const std::string& name)
    {
        long at = -1;
        ws.wait(
            [&](const std::vector<record>& r)
            {
                at = find_record(r, cursor, type, name);
                return at >= 0;
            },
            timeout);
        if (at < 0)
        {
            failure = stream_failure(ws, "no " + std::string(type) + " event for " + name +
                                             " within 10 s");
            return false;
        }
        cursor = static_cast<std::size_t>(at) + 1;
        return true;
    };
    for (const auto& n : names)
    {
        made.push_back(cr.create(n));
        if (!await("add", n))
            break;
    }
    if (failure.empty())
        for (const auto& n : names)
        {
            gone.push_back(cr.remove(n));
            if (!await("delete", n))
                break;
        }
    if (!failure.empty())
        clean_up(cr, names);
    // A moment for anything late (a duplicate) to show up before the check.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ws.stop();

    json_out out;
    out.str("mode", "seq");
    out.integer("count", o.count);
    out.str("failure", failure);
    latency_report(out, names, made, gone, ws.records(), ws.hello_revision());
    out.print();
    return failure.empty() ? 0 : 1;
}

// --- burst ------------------------------------------------------------------------------------

int run_burst(const options& o)
{
    const auto names = make_names(o);
    creator cr(o.dir);
    ws_reader ws(o.port, o.dir, events_target);
    std::unique_ptr<monitor_reader> mon;
    std::string failure;
    const std::string sentinel = o.prefix + "ready";
    if (o.monitor)
    {
        mon = std::make_unique<monitor_reader>(o.dir);
        // The monitor is ready once its watch reports a new file: a plain file, which netnsd
        // classifies as stale and sends no event for.
        const std::string p = cr.path(sentinel);
        bool ready = false;
        for (int attempt = 0; attempt < 50 && !ready; ++attempt)
        {
            const int fd = ::open(p.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
            if (fd < 0)
                die_errno("create " + p, errno);
            ::close(fd);
            ready = mon->wait(
                [&](const std::vector<mon_line>& l)
                {
                    return std::any_of(l.begin(), l.end(),
                                       [&](const mon_line& m)
                                       { return m.verb == "add" && m.name == sentinel; });
                },
                std::chrono::milliseconds(100));
            ::unlink(p.c_str());
        }
        if (!ready)
            die("`stdbuf -oL ip netns monitor` printed nothing for a new file within 5 s");
        mon->wait(
            [&](const std::vector<mon_line>& l)
            {
                return std::any_of(l.begin(), l.end(),
                                   [&](const mon_line& m)
                                   { return m.verb == "delete" && m.name == sentinel; });
            },
            std::chrono::seconds(2));
    }

    const auto ws_count = [&](const std::vector<record>& r, std::string_view type)
    {
        std::size_t k = 0;
        for (const auto& x : r)
            k += x.parsed && x.f.type == type && x.f.name && x.f.name->starts_with(o.prefix);
        return k;
    };
    const auto mon_count = [&](const std::vector<mon_line>& l, std::string_view verb)
    {
        std::size_t k = 0;
        for (const auto& m : l)
            k += m.verb == verb && m.name.starts_with(o.prefix) && m.name != sentinel;
        return k;
    };

    std::vector<creator::created> made;
    std::vector<creator::removed> gone;
    std::vector<std::int64_t> opened;
    made.reserve(names.size());
    gone.reserve(names.size());
    opened.reserve(names.size());
    const auto t_start = now_ns();
    for (const auto& n : names)
    {
        opened.push_back(now_ns());
        made.push_back(cr.create(n));
    }
    const auto t_created = now_ns();
    if (!ws.wait([&](const std::vector<record>& r) { return ws_count(r, "add") >= names.size(); },
                 std::chrono::seconds(o.timeout_s)))
        failure = stream_failure(ws, "not every add arrived within " + std::to_string(o.timeout_s) +
                                         " s");
    if (mon)
        mon->wait([&](const std::vector<mon_line>& l)
                  { return mon_count(l, "add") >= names.size(); },
                  std::chrono::seconds(5));

    const auto t_del_start = now_ns();
    for (const auto& n : names)
        gone.push_back(cr.remove(n));
    const auto t_deleted = now_ns();
    if (failure.empty() && !ws.wait([&](const std::vector<record>& r)
                                    { return ws_count(r, "delete") >= names.size(); },
                                    std::chrono::seconds(o.timeout_s)))
        failure = stream_failure(ws, "not every delete arrived within " +
                                         std::to_string(o.timeout_s) + " s");
    if (mon)
        mon->wait([&](const std::vector<mon_line>& l)
                  { return mon_count(l, "delete") >= names.size(); },
                  std::chrono::seconds(5));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ws.stop();
    if (mon)
        mon->stop();

    json_out out;
    out.str("mode", "burst");
    out.integer("count", o.count);
    out.str("failure", failure);
    out.num("create_burst_ms", us(t_created - t_start) / 1000.0);
    out.num("delete_burst_ms", us(t_deleted - t_del_start) / 1000.0);
    const auto recs = ws.records();
    latency_report(out, names, made, gone, recs, ws.hello_revision());
    {
        // When each event arrived, from the start of its half of the burst, in arrival order:
        // shows whether netnsd kept pace or caught up at the end.
        std::vector<double> add_at, del_at;
        for (const auto& r : recs)
            if (r.parsed && r.f.name && r.f.name->starts_with(o.prefix))
            {
                if (r.f.type == "add")
                    add_at.push_back(us(r.t - t_start) / 1000.0);
                else if (r.f.type == "delete")
                    del_at.push_back(us(r.t - t_del_start) / 1000.0);
            }
        out.array("add_arrival_ms", add_at);
        out.array("delete_arrival_ms", del_at);
    }
    {
        std::int64_t last_add = 0, last_del = 0;
        for (const auto& r : recs)
            if (r.parsed && r.f.name && r.f.name->starts_with(o.prefix))
                (r.f.type == "add" ? last_add : last_del) = r.t;
        out.num("last_add_after_last_mount_us", last_add ? us(last_add - made.back().mounted) : -1);
        out.num("last_delete_after_last_unlink_us",
                last_del ? us(last_del - gone.back().unlinked) : -1);
    }

    if (mon)
    {
        std::unordered_map<std::string, std::size_t> index;
        for (std::size_t i = 0; i < names.size(); ++i)
            index[names[i]] = i;
        const auto lines = mon->lines();
        std::vector<double> mon_add_rel_us, mon_add_after_open_us, mon_del_rel_us;
        unsigned mon_adds = 0, mon_before_mount = 0, mon_probe_not_ns = 0, mon_dels = 0,
                 mon_other = 0, mon_dup = 0;
        std::vector<char> seen_add(names.size(), 0), seen_del(names.size(), 0);
        for (const auto& m : lines)
        {
            const auto it = index.find(m.name);
            if (it == index.end())
            {
                mon_other += m.name != sentinel;
                continue;
            }
            const auto i = it->second;
            if (m.verb == "add")
            {
                if (seen_add[i]++)
                {
                    ++mon_dup;
                    continue;
                }
                ++mon_adds;
                mon_add_rel_us.push_back(us(m.t - made[i].mounted));
                mon_add_after_open_us.push_back(us(m.t - opened[i]));
                mon_before_mount += m.t < made[i].mounted;
                mon_probe_not_ns += m.probe == 0;
            }
            else if (m.verb == "delete")
            {
                if (seen_del[i]++)
                {
                    ++mon_dup;
                    continue;
                }
                ++mon_dels;
                mon_del_rel_us.push_back(us(m.t - gone[i].unlinked));
            }
            else
                ++mon_other;
        }
        out.integer("mon_lines", static_cast<long long>(lines.size()));
        out.integer("mon_adds", mon_adds);
        out.integer("mon_dels", mon_dels);
        out.integer("mon_other", mon_other);
        out.integer("mon_dup", mon_dup);
        out.integer("mon_add_before_mount", mon_before_mount);
        out.integer("mon_add_probe_not_ns", mon_probe_not_ns);
        out.array("mon_add_rel_us", mon_add_rel_us);
        out.array("mon_add_after_open_us", mon_add_after_open_us);
        out.array("mon_del_rel_us", mon_del_rel_us);
    }
    out.print();
    return failure.empty() ? 0 : 1;
}

// --- fanout -----------------------------------------------------------------------------------

// S websocket subscribers on one epoll loop, written against RFC 6455 directly so that the
// client costs as little CPU as possible next to netnsd on a 2-core machine: each wake-up reads
// up to 64 KiB of one socket and walks every complete frame in it (a full websocket library
// read loop cost about as much CPU as netnsd itself). Server frames are unmasked; pings are
// answered; a close frame ends that subscriber.
struct subscriber
{
    int fd = -1;
    enum class state
    {
        connecting,
        upgrading,
        open,
        closed,
    } st = state::connecting;
    std::string in;      // bytes received, not yet consumed
    std::size_t at = 0;  // first unconsumed byte of `in`
    std::string message; // a fragmented message being put together
    bool hello = false, done = false, ended = false;
    std::uint64_t hello_rev = 0, last = 0;
    unsigned adds = 0, dels = 0, others = 0, gaps = 0, backwards = 0, unparsed = 0, foreign = 0;
    std::int64_t done_t = 0;
    std::string end_reason;
    // --lifetime-ms: this subscriber's adds (+i+1) and deletes (-(i+1)) of name i, in order.
    std::vector<std::int32_t> seq;
    bool slow = false;
    std::int64_t resume_at = 0; // a slow one paused until then (CLOCK_MONOTONIC ns)
};

class fanout
{
public:
    explicit fanout(const options& o) : o_(o), names_(make_names(o)), subs_(o.subs)
    {
        for (std::size_t i = 0; i < names_.size(); ++i)
            index_of_[names_[i]] = static_cast<std::int32_t>(i);
        // Slow subscribers spread over the set: every (subs / slow)-th.
        if (o_.slow > 0)
            for (unsigned k = 0; k < std::min(o_.slow, o_.subs); ++k)
                subs_[k * (o_.subs / std::min(o_.slow, o_.subs))].slow = true;
    }
    fanout(const fanout&) = delete;
    fanout& operator=(const fanout&) = delete;
    ~fanout()
    {
        for (auto& s : subs_)
            if (s.fd >= 0)
                ::close(s.fd);
        if (ep_ >= 0)
            ::close(ep_);
        if (creator_.joinable())
            creator_.join();
        for (const int fd : held_)
            ::close(fd);
    }

    int run()
    {
        // S sockets and a few more; root may raise the hard limit too.
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        const rlim_t want = o_.subs + 256;
        if (rl.rlim_cur < want)
        {
            rlimit up{want, std::max(want, rl.rlim_max)};
            if (::setrlimit(RLIMIT_NOFILE, &up) != 0)
            {
                up = {rl.rlim_max, rl.rlim_max};
                ::setrlimit(RLIMIT_NOFILE, &up);
            }
        }
        ep_ = ::epoll_create1(EPOLL_CLOEXEC);
        if (ep_ < 0)
            die_errno("epoll_create1", errno);
        const std::string target =
            o_.entries_only ? "/api/v1/events?types=add,delete" : std::string(events_target);
        request_ = "GET " + target + " HTTP/1.1\r\nHost: " + std::string(host) + ":" +
                   std::to_string(o_.port) +
                   "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n";
        cr_ = std::make_unique<creator>(o_.dir);
        const auto t_connect = now_ns();
        for (unsigned i = 0; i < std::min<unsigned>(o_.connect_parallel, o_.subs); ++i)
            start_next();
        loop(now_ns() + static_cast<std::int64_t>(o_.timeout_s) * 1'000'000'000);
        const double io_cpu_end = thread_cpu_ms();
        const double netnsd_cpu_end = cpu_ms_of(o_.netnsd_pid);
        if (creator_.joinable())
            creator_.join();
        if (!creator_done_)
            clean_up(*cr_, names_);
        return report(t_connect, io_cpu_end, netnsd_cpu_end);
    }

private:
    void loop(std::int64_t deadline)
    {
        std::vector<epoll_event> events(256);
        std::vector<char> buf(1 << 16);
        while (finished_ < subs_.size() && error_.empty())
        {
            if (now_ns() > deadline)
            {
                timed_out_ = true;
                return;
            }
            // Short lives: a subscriber that lost events never completes; once the creator is
            // done and nothing has arrived for a while, nothing more will.
            if (o_.lifetime_ms > 0 && creator_done_ && last_event_t_ != 0 &&
                now_ns() - last_event_t_ > 3'000'000'000LL)
                return;
            resume_due();
            const int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()),
                                       paused_.empty() ? 100 : 2);
            if (n < 0)
            {
                if (errno == EINTR)
                    continue;
                die_errno("epoll_wait", errno);
            }
            for (int k = 0; k < n && error_.empty(); ++k)
            {
                auto& s = subs_[events[k].data.u32];
                if (s.st == subscriber::state::connecting)
                    on_connected(s, events[k].events);
                else if (s.st != subscriber::state::closed)
                    on_readable(s, buf);
            }
        }
    }

    void fail(const std::string& what)
    {
        if (error_.empty())
            error_ = what;
    }

    // Slow subscribers read a little, then stop reading for a while: out of epoll until then.
    void pause(subscriber& s)
    {
        s.resume_at = now_ns() + std::int64_t{o_.slow_pause_ms} * 1'000'000;
        ::epoll_ctl(ep_, EPOLL_CTL_DEL, s.fd, nullptr);
        paused_.push_back(static_cast<std::uint32_t>(&s - subs_.data()));
    }

    void resume_due()
    {
        if (paused_.empty())
            return;
        const auto t = now_ns();
        std::erase_if(paused_,
                      [&](std::uint32_t i)
                      {
                          auto& s = subs_[i];
                          if (s.resume_at > t)
                              return false;
                          if (s.st != subscriber::state::closed)
                          {
                              epoll_event ev{};
                              ev.events = EPOLLIN;
                              ev.data.u32 = i;
                              ::epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev);
                          }
                          return true;
                      });
    }

    void start_next()
    {
        if (next_ >= subs_.size())
            return;
        const auto i = static_cast<std::uint32_t>(next_++);
        auto& s = subs_[i];
        s.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s.fd < 0)
            return fail(std::string("socket: ") + std::strerror(errno));
        const int one = 1;
        ::setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (s.slow)
        {
            const int small = 32 * 1024;
            ::setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        }
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(o_.port);
        ::inet_pton(AF_INET, host, &sa.sin_addr);
        if (::connect(s.fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0 &&
            errno != EINPROGRESS)
            return fail(std::string("connect: ") + std::strerror(errno));
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u32 = i;
        if (::epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev) != 0)
            die_errno("epoll_ctl", errno);
    }

    void on_connected(subscriber& s, std::uint32_t)
    {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0)
            return fail(std::string("connect: ") + std::strerror(err));
        // The request is small enough for an empty send buffer.
        if (::send(s.fd, request_.data(), request_.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request_.size()))
            return fail(std::string("sending the upgrade request: ") + std::strerror(errno));
        s.st = subscriber::state::upgrading;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u32 = static_cast<std::uint32_t>(&s - subs_.data());
        ::epoll_ctl(ep_, EPOLL_CTL_MOD, s.fd, &ev);
    }

    void end(subscriber& s, const std::string& why)
    {
        s.ended = true;
        s.end_reason = why;
        s.st = subscriber::state::closed;
        ::epoll_ctl(ep_, EPOLL_CTL_DEL, s.fd, nullptr);
        if (!s.hello)
            return fail("a subscriber's stream ended before its hello: " + why);
        if (!s.done)
            ++finished_; // it will never complete
    }

    void on_readable(subscriber& s, std::vector<char>& buf)
    {
        const bool slow_read = s.slow && s.hello && s.st == subscriber::state::open;
        const ssize_t n = ::recv(
            s.fd, buf.data(), slow_read ? std::min<std::size_t>(buf.size(), 16384) : buf.size(), 0);
        const auto t = now_ns();
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0)
            return end(s, n == 0 ? "the server closed the connection"
                                 : std::string("recv: ") + std::strerror(errno));
        if (s.at > 0 && s.at == s.in.size())
        {
            s.in.clear();
            s.at = 0;
        }
        s.in.append(buf.data(), static_cast<std::size_t>(n));
        if (s.st == subscriber::state::upgrading)
        {
            const auto eoh = s.in.find("\r\n\r\n");
            if (eoh == std::string::npos)
                return;
            const std::string_view head(s.in.data(), eoh);
            if (!head.starts_with("HTTP/1.1 101") ||
                head.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == std::string_view::npos)
                return fail("the upgrade was refused: " +
                            std::string(head.substr(0, head.find('\r'))));
            s.at = eoh + 4;
            s.st = subscriber::state::open;
        }
        frames(s, t);
        if (s.at > (1 << 16) && s.at * 2 > s.in.size())
        {
            s.in.erase(0, s.at);
            s.at = 0;
        }
        if (slow_read && s.st == subscriber::state::open && !s.done)
            pause(s);
    }

    // Walks the complete frames in s.in from s.at.
    void frames(subscriber& s, std::int64_t t)
    {
        while (s.st == subscriber::state::open)
        {
            const std::size_t avail = s.in.size() - s.at;
            if (avail < 2)
                return;
            const auto* p = reinterpret_cast<const unsigned char*>(s.in.data() + s.at);
            const bool fin = p[0] & 0x80;
            const unsigned opcode = p[0] & 0x0f;
            if (p[1] & 0x80)
                return fail("the server sent a masked frame");
            std::uint64_t len = p[1] & 0x7f;
            std::size_t hdr = 2;
            if (len == 126)
            {
                if (avail < 4)
                    return;
                len = (std::uint64_t{p[2]} << 8) | p[3];
                hdr = 4;
            }
            else if (len == 127)
            {
                if (avail < 10)
                    return;
                len = 0;
                for (int b = 0; b < 8; ++b)
                    len = (len << 8) | p[2 + b];
                hdr = 10;
            }
            if (avail < hdr + len)
                return;
            const std::string_view payload(s.in.data() + s.at + hdr, len);
            s.at += hdr + len;
            switch (opcode)
            {
            case 0x0: // continuation
            case 0x1: // text
            case 0x2: // binary
                if (!fin)
                {
                    s.message.append(payload);
                    break;
                }
                if (!s.message.empty())
                {
                    s.message.append(payload);
                    on_message(s, s.message, t);
                    s.message.clear();
                }
                else
                    on_message(s, payload, t);
                break;
            case 0x8:
            {
                const unsigned code =
                    len >= 2 ? (unsigned{static_cast<unsigned char>(payload[0])} << 8) |
                                   static_cast<unsigned char>(payload[1])
                             : 0;
                return end(s, "close frame, code " + std::to_string(code));
            }
            case 0x9:
                pong(s, payload);
                break;
            default:
                break;
            }
        }
    }

    void pong(subscriber& s, std::string_view payload)
    {
        // Client frames are masked; a zero mask keeps the payload as is.
        std::string f;
        f.push_back(static_cast<char>(0x8a));
        f.push_back(static_cast<char>(0x80 | payload.size())); // control frames are < 126 bytes
        f.append(4, '\0');
        f.append(payload);
        ::send(s.fd, f.data(), f.size(), MSG_NOSIGNAL);
    }

    void on_message(subscriber& s, std::string_view text, std::int64_t t)
    {
        const auto f = parse(text);
        if (!f || !f->revision)
        {
            ++s.unparsed;
            return;
        }
        if (!s.hello)
        {
            if (f->type != "hello")
                return fail("the first message is not a hello: " +
                            std::string(text.substr(0, 200)));
            s.hello = true;
            s.hello_rev = s.last = *f->revision;
            if (++ready_ == subs_.size())
                start_creator();
            else
                start_next();
            return;
        }
        last_event_t_ = t;
        const auto rev = *f->revision;
        if (rev <= s.last)
            ++s.backwards;
        else if (!o_.entries_only && rev != s.last + 1)
            ++s.gaps;
        s.last = std::max(s.last, rev);
        if (is_inventory_event(f->type))
            return;
        // Events of names this run did not make (another writer on the same netnsd, as in
        // bench/soak) are counted apart and otherwise left alone.
        const auto found = f->name ? index_of_.find(*f->name) : index_of_.end();
        if (found == index_of_.end())
            ++s.foreign;
        else if (f->type == "add")
        {
            ++s.adds;
            s.seq.push_back(found->second + 1);
        }
        else if (f->type == "delete")
        {
            ++s.dels;
            s.seq.push_back(-(found->second + 1));
        }
        else
            ++s.others;
        if (!s.done && s.adds >= names_.size() && s.dels >= names_.size())
        {
            s.done = true;
            s.done_t = t;
            ++finished_;
        }
    }

    void start_creator()
    {
        t_ready_ = now_ns();
        io_cpu_start_ = thread_cpu_ms();
        netnsd_cpu_start_ = cpu_ms_of(o_.netnsd_pid);
        creator_ = std::thread(
            [this]
            {
                // The creator's own thread: /proc/thread-self/ns/net is this thread's netns.
                creator cr(o_.dir);
                if (o_.hold)
                    cr.hold_in(&held_);
                const double c0 = thread_cpu_ms();
                t_start_ = now_ns();
                // --pace-us: operation k starts no earlier than k * pace after the start.
                std::int64_t k = 0;
                const auto pace = [&]
                {
                    if (o_.pace_us == 0)
                        return;
                    const std::int64_t at = t_start_ + k++ * std::int64_t{o_.pace_us} * 1000;
                    timespec ts{static_cast<time_t>(at / 1'000'000'000),
                                static_cast<long>(at % 1'000'000'000)};
                    while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR)
                    {
                    }
                };
                if (o_.lifetime_ms > 0)
                    short_lives(cr);
                else
                {
                    for (std::size_t i = 0; i < names_.size(); ++i)
                    {
                        pace();
                        {
                            const auto c = cr.create(names_[i]);
                            note(static_cast<std::int32_t>(i) + 1, c.call_rt_us, c.return_rt_us);
                        }
                    }
                    t_mid_ = now_ns();
                    for (std::size_t i = 0; i < names_.size(); ++i)
                    {
                        pace();
                        {
                            const auto r = cr.remove(names_[i]);
                            note(-(static_cast<std::int32_t>(i) + 1), r.call_rt_us, r.return_rt_us);
                        }
                    }
                }
                t_end_ = now_ns();
                creator_cpu_ms_ = thread_cpu_ms() - c0;
                creator_done_ = true;
            });
    }

    static void sleep_until(std::int64_t at)
    {
        timespec ts{static_cast<time_t>(at / 1'000'000'000), static_cast<long>(at % 1'000'000'000)};
        while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR)
        {
        }
    }

    // The creator's own record: what it did, in its order (one thread: the kernel's), and when
    // it made the system call and when the call returned, on CLOCK_REALTIME.
    void note(std::int32_t what, std::int64_t call_us, std::int64_t return_us)
    {
        record_.push_back(what);
        record_us_.push_back(call_us);
        record_return_us_.push_back(return_us);
    }

    // --lifetime-ms: namespace k is made at start + k * pace and deleted lifetime after its
    // mount returned, whichever is due first next. One thread does both, so the order noted
    // here is the kernel's. Each entry: when it returned, on CLOCK_REALTIME (netnsd's clock).
    void short_lives(creator& cr)
    {
        struct due
        {
            std::int32_t index;
            std::int64_t at;
        };
        std::deque<due> deletes; // in creation order, which is their due order
        const std::int64_t life = std::int64_t{o_.lifetime_ms} * 1'000'000;
        const std::int64_t pace = std::int64_t{o_.pace_us} * 1000;
        std::int32_t k = 0;
        const auto count = static_cast<std::int32_t>(names_.size());
        while (k < count || !deletes.empty())
        {
            // A creation due in the past (as fast as it can: pace 0) waits behind a due delete.
            const std::int64_t create_at =
                k < count ? std::max(t_start_ + k * pace, now_ns()) : INT64_MAX;
            const std::int64_t delete_at = deletes.empty() ? INT64_MAX : deletes.front().at;
            if (create_at <= delete_at)
            {
                sleep_until(create_at);
                const auto made = cr.create(names_[static_cast<std::size_t>(k)]);
                note(k + 1, made.call_rt_us, made.return_rt_us);
                deletes.push_back({k, made.mounted + life});
                ++k;
                if (k == count)
                    t_mid_ = now_ns();
            }
            else
            {
                sleep_until(delete_at);
                const auto i = deletes.front().index;
                deletes.pop_front();
                const auto r = cr.remove(names_[static_cast<std::size_t>(i)]);
                note(-(i + 1), r.call_rt_us, r.return_rt_us);
            }
        }
    }

    int report(std::int64_t t_connect, double io_cpu_end, double netnsd_cpu_end)
    {
        unsigned complete = 0, ended = 0, gaps = 0, backwards = 0, others = 0, unparsed = 0,
                 dups = 0, hellos = 0;
        long long lost = 0;
        std::vector<double> done_ms;
        std::vector<std::string> notes;
        const long long expect = 2LL * static_cast<long long>(names_.size());
        for (std::size_t i = 0; i < subs_.size(); ++i)
        {
            const auto& s = subs_[i];
            hellos += s.hello;
            complete += s.done;
            ended += s.ended;
            gaps += s.gaps;
            backwards += s.backwards;
            others += s.others;
            unparsed += s.unparsed;
            const long long got = static_cast<long long>(s.adds) + s.dels;
            if (got < expect)
                lost += expect - got;
            if (s.adds > names_.size())
                dups += s.adds - static_cast<unsigned>(names_.size());
            if (s.dels > names_.size())
                dups += s.dels - static_cast<unsigned>(names_.size());
            if (s.done)
                done_ms.push_back(us(s.done_t - t_start_) / 1000.0);
            if ((!s.done || s.gaps || s.backwards || s.others) && notes.size() < 8)
                notes.push_back("subscriber " + std::to_string(i) + ": " + std::to_string(s.adds) +
                                " adds, " + std::to_string(s.dels) + " deletes, " +
                                std::to_string(s.gaps) + " gaps, last revision " +
                                std::to_string(s.last) + " (hello " + std::to_string(s.hello_rev) +
                                ")" + (s.ended ? "; the stream ended: " + s.end_reason : ""));
        }
        std::sort(done_ms.begin(), done_ms.end());
        // Each subscriber's sequence against the creator's own record.
        unsigned exact = 0;
        std::vector<std::string> differences;
        if (creator_done_)
        {
            for (std::size_t i = 0; i < subs_.size(); ++i)
            {
                const auto& seq = subs_[i].seq;
                if (seq == record_)
                {
                    ++exact;
                    continue;
                }
                std::size_t at = 0;
                while (at < seq.size() && at < record_.size() && seq[at] == record_[at])
                    ++at;
                const auto describe = [&](const std::vector<std::int32_t>& v)
                {
                    if (at >= v.size())
                        return std::string("nothing");
                    const auto e = v[at];
                    return std::string(e > 0 ? "add " : "delete ") +
                           names_[static_cast<std::size_t>(std::abs(e) - 1)];
                };
                if (differences.size() < 8)
                    differences.push_back(
                        "subscriber " + std::to_string(i) + (subs_[i].slow ? " (slow)" : "") +
                        ": " + std::to_string(seq.size()) + " of " +
                        std::to_string(record_.size()) + " events; first difference at " +
                        std::to_string(at) + ": got " + describe(seq) + ", the creator did " +
                        describe(record_));
            }
        }
        std::string failure = error_;
        if (failure.empty() && timed_out_)
            failure = "timed out after " + std::to_string(o_.timeout_s) + " s with " +
                      std::to_string(hellos) + " of " + std::to_string(o_.subs) +
                      " subscribers connected and " + std::to_string(complete) + " complete";

        json_out out;
        out.str("mode", "fanout");
        out.integer("subs", o_.subs);
        out.integer("count", o_.count);
        out.integer("events_expected", expect);
        out.str("failure", failure);
        out.num("connect_ms", t_ready_ ? us(t_ready_ - t_connect) / 1000.0 : -1);
        out.integer("hellos", hellos);
        out.integer("complete", complete);
        out.integer("ended_early", ended);
        out.integer("lost", lost);
        out.integer("duplicates", dups);
        out.integer("gaps", gaps);
        out.integer("backwards", backwards);
        out.integer("other_types", others);
        out.integer("unparsed", unparsed);
        out.strings("notes", notes);
        {
            out.integer("lifetime_ms", o_.lifetime_ms);
            out.integer("slow", o_.slow);
            out.integer("exact", exact);
            out.strings("differences", differences);
            // The creator's record with the CLOCK_REALTIME microseconds of each system call, for
            // the model-lag figures (bench/events.py matches them with netnsd's debug log).
            std::vector<std::string> rec;
            rec.reserve(record_.size());
            for (std::size_t i = 0; i < record_.size(); ++i)
                rec.push_back(std::string(record_[i] > 0 ? "add " : "delete ") +
                              names_[static_cast<std::size_t>(std::abs(record_[i]) - 1)] + " " +
                              std::to_string(record_us_[i]) + " " +
                              std::to_string(record_return_us_[i]));
            out.strings("record", rec);
        }
        if (creator_done_)
        {
            out.num("creator_add_ms", us(t_mid_ - t_start_) / 1000.0);
            out.num("creator_ms", us(t_end_ - t_start_) / 1000.0);
            out.num("creator_cpu_ms", creator_cpu_ms_);
        }
        if (complete == subs_.size() && !done_ms.empty())
        {
            out.num("total_ms", done_ms.back());
            out.num("first_done_ms", done_ms.front());
            out.num("median_done_ms", done_ms[done_ms.size() / 2]);
            out.num("tail_after_creator_ms", done_ms.back() - us(t_end_ - t_start_) / 1000.0);
        }
        if (t_ready_)
            out.num("client_io_cpu_ms", io_cpu_end - io_cpu_start_);
        if (netnsd_cpu_start_ >= 0 && netnsd_cpu_end >= 0)
            out.num("netnsd_cpu_ms", netnsd_cpu_end - netnsd_cpu_start_);
        out.print();
        const bool exact_ok = exact == subs_.size();
        return failure.empty() && complete == subs_.size() && exact_ok ? 0 : 1;
    }

    const options& o_;
    std::vector<std::string> names_;
    std::vector<subscriber> subs_;
    int ep_ = -1;
    std::string request_;
    std::unique_ptr<creator> cr_;
    std::unordered_map<std::string, std::int32_t> index_of_;
    std::vector<std::uint32_t> paused_;
    std::vector<std::int32_t> record_;           // the creator's adds and deletes, in its order
    std::vector<std::int64_t> record_us_;        // when each call was made (CLOCK_REALTIME, us)
    std::vector<std::int64_t> record_return_us_; // when it returned
    std::int64_t last_event_t_ = 0;              // when any subscriber last got an event
    std::size_t next_ = 0, ready_ = 0, finished_ = 0;
    std::thread creator_;
    std::vector<int> held_; // --hold: the creator's fds on its namespaces (joined before read)
    std::atomic<std::int64_t> t_start_{0}, t_mid_{0}, t_end_{0};
    std::atomic<bool> creator_done_{false};
    double creator_cpu_ms_ = 0;
    std::int64_t t_ready_ = 0;
    double io_cpu_start_ = 0, netnsd_cpu_start_ = -1;
    bool timed_out_ = false;
    std::string error_;
};

} // namespace

int main(int argc, char** argv)
{
    ::signal(SIGPIPE, SIG_IGN);
    const options o = parse_options(argc, argv);
    if (o.mode == "seq")
        return run_seq(o);
    if (o.mode == "burst")
        return run_burst(o);
    if (o.mode == "fanout")
        return fanout(o).run();
    die("unknown mode " + o.mode + "; expected seq, burst or fanout");
}
