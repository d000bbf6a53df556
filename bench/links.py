"""bench/run's `links` section (issue 15): what is inside the namespaces.

1. N namespaces, each with a veth pair to the sandbox's namespace (netnsd's) and an address
   inside: `GET /api/v1/netns/NAME/links` for every namespace, one keep-alive connection, each
   namespace asked once (so each answer is a fresh dump, not the 1 s cache), against
   `ip -n NAME -j addr` for every namespace, one process each, as a script's loop runs it.
2. The host-wide tax of a NETLINK_LISTEN_ALL_NSID listener (bench/linktax.py): the kernel
   time of a link change in an unrelated namespace with and without one, at each nsid count.
"""
import http.client
import json
import os
import subprocess
import time

import linkevents
import linktax
from benchlib import HOST, BenchError, Daemon, now

PREFIX = "lk"
CACHE_S = 1.0  # api/links.hpp: link_views::max_age


def wire(n):
    """lk0..lk{n-1}, each with a veth lhI (here) - eth0 (inside) and 10.I/16 on eth0."""
    lines = []
    for i in range(n):
        lines.append(f"netns add {PREFIX}{i}\n")
        lines.append(f"link add lh{i} type veth peer name eth0 netns {PREFIX}{i}\n")
        lines.append(f"link set lh{i} up\n")
    subprocess.run(["ip", "-batch", "-"], input="".join(lines), text=True, check=True)
    for i in range(n):
        addr = f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}/8"
        subprocess.run(["ip", "-n", f"{PREFIX}{i}", "-batch", "-"], text=True, check=True,
                       input=f"addr add {addr} dev eth0\nlink set eth0 up\nlink set lo up\n")


def unwire(n):
    # Deleting the namespaces deletes their veths, and the host ends with them.
    subprocess.run(["ip", "-batch", "-"], text=True, check=False, stderr=subprocess.DEVNULL,
                   input="".join(f"netns del {PREFIX}{i}\n" for i in range(n)))


def wait_listed(d, n, timeout_s=60):
    deadline = now() + timeout_s
    while True:
        d.check_alive()
        c = http.client.HTTPConnection(HOST, d.port, timeout=10)
        c.request("GET", "/api/v1/netns")
        body = json.loads(c.getresponse().read())
        c.close()
        live = sum(1 for e in body["namespaces"] if e["state"] == "live")
        if live >= n:
            return
        if now() > deadline:
            raise BenchError(f"links: netnsd listed {live} of {n} namespaces after {timeout_s} s")
        time.sleep(0.05)


def api_loop(port, n):
    """Each namespace's links once; the time of each request, in seconds."""
    c = http.client.HTTPConnection(HOST, port, timeout=30)
    times = []
    for i in range(n):
        t = time.perf_counter()
        c.request("GET", f"/api/v1/netns/{PREFIX}{i}/links")
        r = c.getresponse()
        body = r.read()
        times.append(time.perf_counter() - t)
        if r.status != 200:
            raise BenchError(f"links: GET /api/v1/netns/{PREFIX}{i}/links: {r.status} {body[:200]}")
        if i == 0 and b'"eth0"' not in body:
            raise BenchError(f"links: {PREFIX}0's answer has no eth0: {body[:300]}")
    c.close()
    return times


def ip_loop(n):
    times = []
    for i in range(n):
        t = time.perf_counter()
        subprocess.run(["ip", "-n", f"{PREFIX}{i}", "-j", "addr"], check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return times


def section(a, R, port, log):
    res = {"n": a.links_n, "tax": []}
    R["links"] = res
    log(f"links: wiring {a.links_n} namespaces")
    t = now()
    wire(a.links_n)
    res["wire_s"] = now() - t
    d = Daemon(a.netnsd, a.logdir, "links", R["notes"])
    R["commands"]["links"] = [" ".join(d.cmd)]
    try:
        d.wait_watching()
        wait_listed(d, a.links_n)
        # Interleaved: netnsd's loop, ip's loop, twice. netnsd's cold loop asks each namespace
        # once, none read in the last second (its dumps answer for 1 s: the wait below makes
        # sure they expired), so each answer is a fresh dump; the warm loop right after it is
        # answered from those dumps.
        for k in ("api_s", "warm_s", "ip_s", "api_total_s", "warm_total_s", "ip_total_s"):
            res[k] = []
        last = None
        for r in range(2):
            if last is not None and now() - last < CACHE_S + 0.1:
                time.sleep(CACHE_S + 0.1 - (now() - last))
            log(f"links: GET .../links and ip -j addr over {a.links_n} namespaces, round {r + 1}")
            t = now()
            res["api_s"] += api_loop(d.port, a.links_n)
            res["api_total_s"].append(now() - t)
            t = now()
            res["warm_s"] += api_loop(d.port, a.links_n)
            res["warm_total_s"].append(now() - t)
            last = now()
            t = now()
            res["ip_s"] += ip_loop(a.links_n)
            res["ip_total_s"].append(now() - t)
        res["cpu_s"] = d.cpu_seconds()
    finally:
        d.stop()
        unwire(a.links_n)
    R["commands"]["links"] += [
        f"ip -batch: netns add lkI; link add lhI type veth peer name eth0 netns lkI (× {a.links_n});"
        " ip -n lkI -batch: addr add 10.x.y.z/8 dev eth0, link set eth0 up",
        f"GET /api/v1/netns/lkI/links for I in 0..{a.links_n - 1}, one keep-alive connection "
        "(cold: none read in the last second), the same again at once (warm: the 1 s cache), "
        "then `ip -n lkI -j addr` for each, one process each; two rounds",
    ]
    for n in [int(x) for x in str(a.tax_nsids).split(",") if x]:
        log(f"links: the LISTEN_ALL_NSID tax at {n} nsids")
        res["tax"].append(linktax.measure(n, a.tax_changes, a.tax_blocks, a.mkns, log,
                                          netnsd=a.netnsd, logdir=a.logdir, notes=R["notes"]))
    R["commands"]["links"].append(
        f"bench/linktax.py: N namespaces ({a.mkns} add) with `ip netns set NAME auto`; in an "
        f"unrelated namespace (no nsid), {a.tax_changes} × RTM_NEWLINK up/down of a veth with "
        f"NLM_F_ACK, timed send→ack; {a.tax_blocks} interleaved blocks without and with a "
        "python listener (NETLINK_LISTEN_ALL_NSID, RTMGRP_LINK) in the sandbox's namespace, and "
        "with netnsd --watch-links running there instead")
    log("links: link event latency")
    res["events"] = linkevents.measure(a.netnsd, a.logdir, R["notes"], a.link_changes, log)
    R["commands"]["links"].append(
        f"bench/linkevents.py: a namespace with an nsid and a veth; {a.link_changes} × "
        "RTM_NEWLINK up/down (NLM_F_ACK) from a socket in it, 270 ms apart (each the first of "
        "its 250 ms window), timed to the `link` event on a websocket of "
        f"{res['events']['command']}")
