#include "api/cni_json.hpp"

#include <string>
#include <utility>
#include <vector>

#include "api/json.hpp"

namespace netnsd::api
{
namespace
{

// Longest accepted: a DNS subdomain (pod names, RFC 1123), a UID (a UUID, with room), a path.
constexpr std::size_t max_k8s_name = 253;
constexpr std::size_t max_uid = 128;
constexpr std::size_t max_path = 4096;
constexpr std::size_t max_container_id = 1024;

// A SAX reader of the few fields netnsd needs: no tree is built, the rest of the file (the
// result, the base64 config, capabilityArgs) is skipped as it streams past, and nesting costs
// no stack (nlohmann's SAX parser keeps its own), so a hostile file of a million '[' is refused
// like any other malformed one.
class cache_reader final : public nlohmann::json_sax<json>
{
public:
    bool null() override { return check(value::null); }
    bool boolean(bool) override { return check(value::other); }
    bool number_integer(number_integer_t) override { return check(value::other); }
    bool number_unsigned(number_unsigned_t) override { return check(value::other); }
    bool number_float(number_float_t, const string_t&) override { return check(value::other); }
    bool binary(binary_t&) override { return check(value::other); }
    bool string(string_t& s) override
    {
        if (!check(value::string))
            return false;
        if (depth_ == 1)
        {
            if (key_ == "kind")
                kind_ = std::move(s);
            else if (key_ == "containerId")
                container_id_ = std::move(s);
            else if (key_ == "netns")
                netns_ = std::move(s);
        }
        else if (depth_ == 3 && pair_open_)
            pair_.push_back(std::move(s));
        return true;
    }
    bool start_object(std::size_t) override
    {
        if (!check(value::object))
            return false;
        ++depth_;
        return true;
    }
    bool end_object() override
    {
        --depth_;
        return true;
    }
    bool start_array(std::size_t) override
    {
        if (!check(value::array))
            return false;
        if (depth_ == 1 && key_ == "cniArgs")
            args_open_ = true;
        else if (depth_ == 2 && args_open_)
        {
            pair_open_ = true;
            pair_.clear();
        }
        ++depth_;
        return true;
    }
    bool end_array() override
    {
        --depth_;
        if (depth_ == 2 && pair_open_)
        {
            pair_open_ = false;
            if (pair_.size() != 2)
                return false; // libcni writes pairs
            args_.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
        }
        else if (depth_ == 1 && args_open_)
            args_open_ = false;
        return true;
    }
    bool key(string_t& k) override
    {
        if (depth_ == 1)
            key_ = std::move(k);
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override
    {
        return false;
    }

    std::optional<core::cni_record> result()
    {
        if (kind_ != "cniCacheV1" || container_id_.size() > max_container_id ||
            netns_.size() > max_path)
            return std::nullopt;
        core::cni_record r;
        r.container_id = std::move(container_id_);
        r.netns = std::move(netns_);
        std::optional<std::string> ns, name, uid;
        for (auto& [k, v] : args_)
        {
            if (k == "K8S_POD_NAMESPACE")
                ns = std::move(v);
            else if (k == "K8S_POD_NAME")
                name = std::move(v);
            else if (k == "K8S_POD_UID")
                uid = std::move(v);
        }
        if (ns && name && !ns->empty() && !name->empty())
        {
            if (ns->size() > max_k8s_name || name->size() > max_k8s_name ||
                (uid && uid->size() > max_uid))
                return std::nullopt;
            core::ns_pod pod;
            pod.namespace_ = std::move(*ns);
            pod.name = std::move(*name);
            pod.uid = uid.value_or("");
            pod.container_id = r.container_id;
            r.pod = std::move(pod);
        }
        return r;
    }

private:
    enum class value
    {
        null,
        string,
        array,
        object,
        other, // a number or a boolean
    };
    // A value starts: whether it has a type the field it is for may have.
    bool check(value v) const
    {
        if (depth_ == 0)
            return v == value::object; // the file is one object
        if (depth_ == 1)
        {
            if (key_ == "kind" || key_ == "containerId" || key_ == "netns")
                return v == value::string;
            if (key_ == "cniArgs")
                return v == value::array || v == value::null;
            return true;
        }
        if (depth_ == 2 && args_open_)
            return v == value::array; // each argument is a [name, value] pair
        if (depth_ == 3 && pair_open_)
            return v == value::string;
        return true;
    }

    int depth_ = 0;
    std::string key_; // the top-level key whose value is being read
    std::string kind_;
    std::string container_id_;
    std::string netns_;
    bool args_open_ = false;
    bool pair_open_ = false;
    std::vector<std::string> pair_;
    std::vector<std::pair<std::string, std::string>> args_;
};

} // namespace

std::optional<core::cni_record> parse_cni_cache_entry(std::string_view bytes)
{
    cache_reader reader;
    if (!json::sax_parse(bytes.begin(), bytes.end(), &reader))
        return std::nullopt;
    return reader.result();
}

} // namespace netnsd::api
