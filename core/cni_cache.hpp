// cni_cache: the Kubernetes pods of the host's namespaces, from the CNI cache. libcni (used by
// containerd's CRI, CRI-O and podman with CNI) writes one JSON file per attachment of a
// sandbox to a network, under /var/lib/cni/results/<network>-<containerID>-<ifname>, when the
// runtime wires it, and removes it when the runtime tears it down. The file says the path of
// the sandbox's network namespace (`netns`; current libcni; older ones leave it out) and the
// arguments the runtime passed the plugins, among them K8S_POD_NAMESPACE, K8S_POD_NAME and
// K8S_POD_UID: the one place on a node that ties a namespace to its pod's namespace/name (no
// cgroup says it).
//
// This watches the directory with inotify (a file written in full, moved in, removed, moved
// out) and reads each file that changed: bounded (max_file_size; a larger one is skipped and
// counted, as is an unreadable, non-regular or malformed one), opened non-blocking and without
// following a symlink, so no file can stall or crash the model thread. A file is matched to a
// namespace by identity: stat(2) of its `netns` path (an nsfs bind mount, or /proc/PID/ns/net)
// gives the namespace's inode, which the model's namespaces are looked up by. Stat only: no fd
// is kept on a namespace, which would hold it. The path is stat'ed as netnsd sees it (so
// /var/run/netns/x is /run/netns/x on hosts where /var/run is a symlink to /run): a netnsd in
// a container needs the host's netns dirs at the same paths, and the cache dir. An entry
// without `netns` (older libcni) is matched by its K8S_POD_UID instead, to the namespace whose
// kubepods cgroup (core/owner.hpp) says the same UID; without either, it matches nothing.
//
// JSON is parsed by the parser it is given (api/cni_json.hpp, nlohmann): core has no JSON
// library. What the parser hands back is plain data (cni_record).
//
// It tells the registry with set_pod (recorded and replayed like every other mutator). Owned
// by the model thread; model thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

#include "core/kernel/unique_fd.hpp"
#include "core/model.hpp"
#include "core/registry.hpp"

namespace netnsd::core
{

// What one cache file says, as far as netnsd cares.
struct cni_record
{
    std::string container_id; // containerId: the sandbox
    std::string netns;        // the namespace's path; empty when the file has none
    // K8S_POD_NAMESPACE and K8S_POD_NAME were both there (and K8S_POD_UID, when it was): a
    // Kubernetes pod. Without them (podman, a bare `cnitool`) no owner is told from it.
    std::optional<ns_pod> pod;
};

// Parses a cache file's bytes; nullopt when it is not a libcni cache entry (malformed JSON,
// another `kind`, fields of the wrong type).
using cni_parser = std::function<std::optional<cni_record>(std::string_view bytes)>;

class cni_cache
{
public:
    // A cache file is a few KiB (the result and the base64 of the network's config list).
    static constexpr std::size_t max_file_size = 1024 * 1024;
    // Files kept at most (a node runs a few hundred pods, each with a file per network).
    static constexpr std::size_t max_files = 16384;
    static constexpr std::string_view default_dir = "/var/lib/cni/results";

    struct counters
    {
        std::size_t files = 0;     // files read and understood
        std::size_t pods = 0;      // namespaces that have a pod from the cache now
        std::size_t skipped = 0;   // reads skipped: too large, not regular, unreadable, too many
        std::size_t malformed = 0; // reads the parser refused
    };

    cni_cache(registry& model, std::string dir, cni_parser parse);
    cni_cache(const cni_cache&) = delete;
    cni_cache& operator=(const cni_cache&) = delete;

    // Makes the inotify instance (its fd stays the same for the watch's life) and, when the
    // directory exists, watches and reads it. An absent directory is not an error: libcni
    // makes it with the first pod; retry() looks again.
    std::error_code open(time_point now);
    int fd() const noexcept { return inotify_.get(); }
    bool watching() const noexcept { return watch_ >= 0; }
    // Looks for the directory again when it is not watched (it was absent, or removed).
    void retry(time_point now);
    // The inotify fd is readable: the files that changed are read again (all of them after an
    // overflow). Then sync().
    void on_readable(time_point now);
    // Matches the files not matched yet to the namespaces the model has now (one of them may
    // be new), and tells the registry what changed. Cheap when nothing is unmatched: call it
    // after every change of the model.
    void sync(time_point now);

    const counters& stats() const noexcept { return counters_; }
    const std::string& dir() const noexcept { return dir_; }

private:
    struct file
    {
        cni_record record;
        std::uint64_t ns_id = 0; // the namespace it matched (0: none yet)
    };
    void add_watch();
    void read_all();
    // Reads one file again (or drops it, when it is gone); marks the matching dirty.
    void reread(const std::string& name);
    void forget(const std::string& name);

    registry& model_;
    std::string dir_;
    cni_parser parse_;
    kernel::unique_fd inotify_;
    int watch_ = -1;
    std::map<std::string, file> files_;    // by file name
    std::map<std::uint64_t, ns_pod> told_; // ns_id -> the pod set on it
    std::uint64_t matched_generation_ = 0; // the model's host generation at the last match
    bool dirty_ = true;
    bool warned_ = false;               // a refused file was logged at warn
    std::set<std::uint64_t> disagreed_; // ns_ids whose cgroup's pod UID is another (logged)
    counters counters_;
};

} // namespace netnsd::core
