// link_watch: live link and address events (--watch-links). It owns the NETLINK_LISTEN_ALL_NSID
// listener and a table of the links and addresses of every namespace it can hear (those with an
// nsid in netnsd's namespace, and netnsd's own), seeded by one dump per namespace by nsid
// (core/kernel/link_dump) when the namespace gets an nsid and at start. Each notification is
// compared with the table, so it becomes exactly one `added`, `changed` or `removed` event in the
// registry (which records it for the replica like every other change), or nothing (a link's
// counters, an address's flags). A `changed` of one link is sent at most once per change_window:
// the first at once, the ones after it coalesced into one at the end of the window with the
// last state. When the listener overruns (ENOBUFS), every namespace is dumped again and the
// differences are the events: nothing is lost silently.
//
// With assign_nsids it also gives every namespace the model knows an nsid (the `auto` of
// `ip netns set NAME auto`), so that its changes are heard; without it, a namespace without an
// nsid is not heard (and gets none from netnsd).
//
// Owned by the model thread, used only there (the dumps are by nsid from netnsd's namespace,
// ~20 us each: no setns, no blocking beyond a netlink round trip).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <vector>

#include "core/kernel/link_dump.hpp"
#include "core/kernel/link_listener.hpp"
#include "core/link_change.hpp"
#include "core/registry.hpp"

namespace netnsd::core
{

// Where a namespace of the model can be opened (to enter it, or to ask its nsid): netnsd's own,
// its netns-dir entries (under `netns_dir`), its nsfs mounts in netnsd's mount namespace (one in
// another leads elsewhere, or nowhere, here), its processes.
kernel::netns_locator locate(const registry& model, const host_namespace& h,
                             std::string_view netns_dir);

class link_watch
{
public:
    // At most one `changed` per link per window; the last state wins.
    static constexpr std::chrono::milliseconds change_window{250};
    // Notifications read per turn of the model thread's loop: a burst is spread over turns so
    // that mount events never wait long behind it.
    static constexpr std::size_t notifications_per_turn = 256;
    // Namespaces seeded per turn (each a dump of its links and addresses, ~20-50 us).
    static constexpr std::size_t namespaces_per_turn = 64;

    using steady = std::chrono::steady_clock;

    // receive_buffer: the listener's (0: its default); tests make it small to make it overrun.
    link_watch(registry& model, std::string netns_dir, bool assign_nsids, int receive_buffer = 0);

    // Opens the listener (before the dumps: nothing between the two is lost) and the dumper.
    std::error_code open();
    int fd() const noexcept { return listener_.fd(); }
    // Seeds the tables of every namespace the model knows, without events (they are the state
    // at start, not news). Also installs the registry's destroying hook.
    void start();

    // The registry's listener calls this with every event (it only notes what to look at).
    void note(const event& e);
    // Looks at the namespaces noted since the last call (new ones, new nsids), at most
    // namespaces_per_turn of them: seeds them, with `added` events for the links they had (they
    // are news: the namespace is). Call after every handler of the model thread, before
    // publishing; true when some are left for another turn (the caller posts one).
    bool sync();
    // The listener is readable: reads up to notifications_per_turn; true when there may be more.
    bool on_readable();
    // When flush() has coalesced changes to send (nullopt: none pending).
    std::optional<steady::time_point> next_flush() const noexcept;
    // Sends the coalesced changes whose window has passed.
    void flush(steady::time_point now);

    std::uint64_t overruns() const noexcept { return overruns_; }
    // How many namespaces are heard (seeded), and links kept, for the log and tests.
    std::size_t namespaces_heard() const noexcept;

private:
    struct link_state
    {
        kernel::link_record current;            // without counters, peer numbered here
        kernel::link_record sent;               // as the last event showed it
        steady::time_point last_changed_sent{}; // epoch: never
        bool pending = false;                   // a change waits for its window
    };
    using address_key = std::tuple<int, std::uint8_t, std::string, std::uint8_t>;
    struct ns_table
    {
        ns_identity identity{};
        bool is_self = false;
        std::optional<nsid_t> nsid;
        bool seeded = false;
        std::optional<std::string> last_name; // the last name an event of it carried
        std::map<int, link_state> links;      // by ifindex
        std::map<address_key, kernel::address_record> addresses; // ifindex, family, addr, len
    };

    kernel::netns_locator locator_of(std::uint64_t ns_id) const;
    // Starts following a namespace the model knows (once), and seeds it if it has an nsid.
    void track(std::uint64_t ns_id, bool emit);
    // Asks the kernel for the nsids of the namespaces followed without one; seeds those found.
    void resolve_unmapped(bool emit);
    // Dumps a namespace and makes its table equal to the dump (events when `emit`).
    void seed(ns_table& t, std::uint64_t ns_id, bool emit);
    ns_table* table_of(std::optional<nsid_t> source, std::uint64_t& ns_id);
    void apply(const kernel::link_notification& n, steady::time_point now);
    void link_seen(ns_table& t, std::uint64_t ns_id, kernel::link_record rec, bool emit,
                   steady::time_point now);
    void link_gone(ns_table& t, std::uint64_t ns_id, int ifindex, bool emit);
    void address_seen(ns_table& t, std::uint64_t ns_id, const kernel::address_record& a, bool emit);
    void address_gone(ns_table& t, std::uint64_t ns_id, const address_key& key, bool emit);
    void forget(std::uint64_t ns_id, std::optional<nsid_t> nsid);
    // The event's link object: names of master and peer, the link's addresses.
    link_view view_of(const ns_table& t, std::uint64_t ns_id, const kernel::link_record& l);
    void emit_link(ns_table& t, std::uint64_t ns_id, link_action action,
                   const kernel::link_record& l);
    void emit_address(ns_table& t, std::uint64_t ns_id, link_action action,
                      const kernel::address_record& a);
    std::optional<std::string> first_name(const ns_table& t) const;
    std::optional<std::string> event_name(ns_table& t);

    registry& model_;
    std::string netns_dir_;
    bool assign_nsids_;
    int receive_buffer_;
    kernel::link_listener listener_;
    kernel::link_dumper dumper_;
    std::map<std::uint64_t, ns_table> tables_; // by ns_id
    std::map<nsid_t, std::uint64_t> by_nsid_;  // nsids netnsd's namespace has, to ns_id
    std::optional<std::uint64_t> self_;        // netnsd's own ns_id
    std::optional<nsid_t> self_nsid_;          // netnsd's nsid for itself, if it has one
    std::set<std::uint64_t> noted_;            // namespaces to look at in sync()
    bool resolve_ = false;                     // an nsid appeared whose namespace is unknown
    bool forgetting_ = false;                  // forget() runs: names may be gone
    bool resolving_ = false;                   // resolve_unmapped() runs (it emits events)
    std::set<nsid_t> unknown_;                 // nsids asked about in vain, until news comes
    std::size_t pending_ = 0;                  // links with a coalesced change waiting
    bool started_ = false;
    std::uint64_t overruns_ = 0;
};

} // namespace netnsd::core
