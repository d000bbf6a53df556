// The parser of libcni's cache files (core/cni_cache.hpp reads them; core has no JSON library,
// so the JSON is read here and core gets plain data). A file is
//   {"kind":"cniCacheV1","containerId":"...","config":"<base64>","ifName":"eth0",
//    "networkName":"...","netns":"/var/run/netns/cni-...",
//    "cniArgs":[["K8S_POD_NAMESPACE","default"],["K8S_POD_NAME","web-0"],
//               ["K8S_POD_UID","..."],...],"capabilityArgs":{...},"result":{...}}
// (`netns` only from newer libcni versions; `cniArgs` only when the runtime passed arguments).
// Any thread.
#pragma once

#include <optional>
#include <string_view>

#include "core/cni_cache.hpp"

namespace netnsd::api
{

// What the file says; nullopt when it is not valid JSON (UTF-8 included), not an object of
// kind cniCacheV1, or a field netnsd reads has the wrong type. The pod is set when the
// arguments have K8S_POD_NAMESPACE and K8S_POD_NAME (and a name, namespace or UID longer than
// Kubernetes allows is refused).
std::optional<core::cni_record> parse_cni_cache_entry(std::string_view bytes);

} // namespace netnsd::api
