"""bench/run's `ifmetrics` section (issue 15): the per-interface metrics.

N namespaces (1000, 5000), each with a veth pair to the sandbox's namespace (netnsd's) and an
address inside (bench/links.py's wiring: lo and eth0 in each, the lhI ends in netnsd's):

1. A full GET /metrics with --metrics-interfaces (and a cap above the series there are), cold
   (no gathering in the last second, so every namespace is dumped) and warm (within the
   second: the kept text), against the exporter's ways of reading the same counters: a loop of
   `ip -n NAME -s -j link`, one process per namespace, and bench/setns_links (C++: setns into
   each namespace, dump its links on a socket made there, setns back).
2. RSS per link: netnsd's RSS with the N namespaces' 2 links each, minus its RSS with none,
   divided by 2N; both after scrapes. It includes what the inventory keeps per namespace.
"""
import http.client
import json
import subprocess
import time

import links
from benchlib import HOST, BenchError, Daemon, now

CACHE_S = 1.0  # api/interface_metrics.hpp: interface_metrics::max_age
NO_CAP = "--metrics-max-series=10000000"


def scrape(port):
    """One GET /metrics: (seconds, body)."""
    c = http.client.HTTPConnection(HOST, port, timeout=60)
    t = time.perf_counter()
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read()
    dt = time.perf_counter() - t
    c.close()
    if r.status != 200:
        raise BenchError(f"ifmetrics: GET /metrics: {r.status} {body[:200]}")
    return dt, body.decode("utf-8")


def gauge(text, series):
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line[len(series) + 1:])
    return None


def interfaces_of(text, prefix):
    start = f'netnsd_network_up{{netns="{prefix}'
    return sum(1 for line in text.splitlines() if line.startswith(start))


def wait_covered(d, n, timeout_s=120):
    """Until a scrape has both links of every namespace (each gets its nsid from its veth)."""
    deadline = now() + timeout_s
    while True:
        d.check_alive()
        _, text = scrape(d.port)
        got = interfaces_of(text, links.PREFIX)
        if got >= 2 * n:
            return
        if now() > deadline:
            raise BenchError(f"ifmetrics: /metrics had {got} of {2 * n} interfaces after "
                             f"{timeout_s} s")
        time.sleep(CACHE_S)


def baseline_rss(a, log):
    d = Daemon(a.netnsd, a.logdir, "ifmetrics-empty", [], ["--metrics-interfaces", NO_CAP])
    try:
        d.wait_watching()
        for _ in range(3):
            scrape(d.port)
            time.sleep(CACHE_S + 0.1)
        return d.rss_bytes()
    finally:
        d.stop()


def one_size(a, n, port_note, log, rounds):
    res = {"n": n}
    log(f"ifmetrics: wiring {n} namespaces")
    t = now()
    links.wire(n)
    res["wire_s"] = now() - t
    d = Daemon(a.netnsd, a.logdir, f"ifmetrics-{n}", port_note, ["--metrics-interfaces", NO_CAP])
    try:
        d.wait_watching()
        links.wait_listed(d, n)
        wait_covered(d, n)
        res["cold_s"], res["warm_s"], res["gather_s"] = [], [], []
        for r in range(rounds):
            time.sleep(CACHE_S + 0.1)
            dt, text = scrape(d.port)
            res["cold_s"].append(dt)
            res["gather_s"].append(gauge(text, "netnsd_network_gather_duration_seconds"))
            dt, _ = scrape(d.port)
            res["warm_s"].append(dt)
        res["bytes"] = len(text.encode("utf-8"))
        res["series"] = sum(1 for line in text.splitlines()
                            if line.startswith("netnsd_network_") and "{netns=" in line)
        res["interfaces"] = interfaces_of(text, "")
        res["skipped_unreachable"] = gauge(
            text, 'netnsd_network_namespaces_skipped{reason="unreachable"}')
        res["read_by_nsid"] = gauge(text, 'netnsd_network_namespaces_read{way="nsid"}')
        res["read_entered"] = gauge(text, 'netnsd_network_namespaces_read{way="entered"}')
        res["nsid_walk"] = gauge(text, "netnsd_network_nsid_walk")
        res["rss_bytes"] = d.rss_bytes()
        res["cpu_s"] = d.cpu_seconds()
        log(f"ifmetrics: {n}: cold scrapes {[round(x * 1000, 1) for x in res['cold_s']]} ms, "
            f"warm {[round(x * 1000, 1) for x in res['warm_s']]} ms, gather "
            f"{[round(x * 1000, 1) for x in res['gather_s'] if x is not None]} ms, "
            f"{res['interfaces']} interfaces, {res['series']} series, {res['bytes']} B, "
            f"RSS {res['rss_bytes']} B")
    finally:
        d.stop()
    names = [f"{links.PREFIX}{i}" for i in range(n)]
    log(f"ifmetrics: bench/setns_links over {n} namespaces")
    res["setns_s"] = []
    for _ in range(rounds):
        out = subprocess.run([a.setns_links], input="\n".join(names) + "\n", text=True,
                             check=True, stdout=subprocess.PIPE).stdout
        got = json.loads(out)
        if got["links"] != 2 * n:
            raise BenchError(f"ifmetrics: setns_links read {got['links']} links of {2 * n}")
        res["setns_s"].append(got["seconds"])
    log(f"ifmetrics: {n}: setns_links {[round(x * 1000, 1) for x in res['setns_s']]} ms")
    log(f"ifmetrics: ip -n NAME -s -j link over {n} namespaces")
    t = now()
    for name in names:
        subprocess.run(["ip", "-n", name, "-s", "-j", "link"], check=True,
                       stdout=subprocess.DEVNULL)
    res["ip_s"] = now() - t
    log(f"ifmetrics: {n}: the ip loop {res['ip_s']:.2f} s")
    links.unwire(n)
    return res


def wait_freed(R, what, timeout_s=180):
    """After deleting the namespaces: until the kernel has freed them, so the next size does not
    pay for their teardown. The sandbox's own namespace keeps the nsid for itself that the
    dumps gave it (nsids cannot be removed), so one entry stays."""
    deadline = now() + timeout_s
    while True:
        out = subprocess.run(["ip", "netns", "list-id"], check=True, stdout=subprocess.PIPE,
                             text=True).stdout
        if len(out.strip().splitlines()) <= 1:
            return
        if now() > deadline:
            R["notes"].append(f"{what}: the kernel had not freed the deleted namespaces after "
                              f"{timeout_s} s")
            return
        time.sleep(0.1)


def section(a, R, log):
    res = {"sizes": []}
    R["ifmetrics"] = res
    res["rss_empty_bytes"] = baseline_rss(a, log)
    log(f"ifmetrics: RSS with no namespaces {res['rss_empty_bytes']} B")
    for n in [int(x) for x in str(a.ifm_sizes).split(",") if x]:
        res["sizes"].append(one_size(a, n, R["notes"], log, a.ifm_rounds))
        wait_freed(R, f"ifmetrics at {n}")
    R["commands"]["ifmetrics"] = [
        f"netnsd --metrics-interfaces {NO_CAP}",
        "ip -batch: netns add lkI; link add lhI type veth peer name eth0 netns lkI; "
        "ip -n lkI -batch: addr add 10.x.y.z/8 dev eth0, link set eth0 up, link set lo up",
        f"GET /metrics, cold (more than {CACHE_S} s after the last) then warm (at once); "
        f"{a.ifm_rounds} rounds",
        "bench/setns_links < names: setns, socket, RTM_GETLINK dump, close, setns back, per "
        "namespace",
        "ip -n lkI -s -j link for each namespace, one process each",
    ]
