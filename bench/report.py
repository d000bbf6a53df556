#!/usr/bin/env python3
"""The measuring and writing half of bench/run. It runs inside tests/support/sandbox (private
mount and network namespaces, tmpfs on /run and /run/netns), so every namespace, mount, nsid,
process and socket it makes stays in there; all traffic goes to the sandbox's own 127.0.0.1.
Run bench/run rather than this file.

It calls the phases of the other drivers (foundation.py, events.py, admin.py, httpbench.py),
adds the scaling runs (100 ... 10000 namespaces, with and without nsids), and writes
RESULTS.md with PNG charts (gnuplot) beside it. Sections, in the order they run:
  events  add/delete latency vs `ip netns monitor`, fan-out to 1/100/1000 subscribers
  admin   create+delete through the API vs `ip netns add/del` loops vs mkns; exec vs ip/nsenter
  http    wrk at 1 and 64 connections, netnsd vs nginx serving the same bytes
  nsid    the nsid race of bench/foundation (`ip netns set NAME auto` loops)
  list, lookup, memory
          one pass over N = 100, 1000, 5000, 10000 namespaces with nsids, then without:
          GET /api/v1/netns vs `ip -j netns list`; GET /api/v1/netns/{name} and
          GET /api/v1/processes/{pid}/netns vs `ip netns identify PID`; cold starts and RSS
  links   GET /api/v1/netns/{name}/links over 1000 namespaces with a veth each vs `ip -n NAME -j
          addr`; the host-wide tax of a NETLINK_LISTEN_ALL_NSID listener (bench/linktax.py)
  ifmetrics
          GET /metrics with --metrics-interfaces over 1000 and 5000 namespaces with a veth each
          vs `ip -n NAME -s -j link` per namespace and vs setns + dump per namespace
          (bench/setns_links); RSS per link
  inventory
          the host inventory (bench/inventory.py): 1000 and 5000 namespaces held by processes
          plus 20000 idle ones; GET /api/v1/namespaces vs `lsns -t net -J`, the /proc sweep's
          duration and CPU share, the deep scan, found/destroyed latency
and, only when asked for (--only websocket-ab; not part of a full run):
  websocket-ab  the fan-out runs against netnsd as shipped (the hub's shared websocket frames,
          many per write) and against a build with NETNSD_BENCH_BEAST_WEBSOCKET (Beast's
          websocket::stream, one write per event), interleaved
"""

import argparse
import http.client
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import time
import traceback

import admin
import events
import foundation
import httpbench
import inventory
import ifmetrics
import links
from benchlib import TOKEN_FILE, BenchError, Daemon, die_with_parent, median, now, percentile, quiesce

SECTIONS = ("events", "admin", "http", "nsid", "list", "lookup", "memory", "links", "ifmetrics",
            "inventory",
            "websocket-ab")
# Sections that run only when --only names them.
OPT_IN = ("websocket-ab",)
SCALING = ("list", "lookup", "memory")
NETNS_DIR = "/run/netns"

# Ports on the sandbox's loopback, one range per part so no two daemons ever share one.
FOUNDATION_PORT = 9321
EVENTS_PORT = 9500
WEBSOCKET_AB_PORT = 9600
ADMIN_PORT = 9700
LINKS_PORT = 9800
INVENTORY_PORT = 9850
IFMETRICS_PORT = 9870
NGINX_PORT = 9900  # and 9901 for its TLS server
TLS_DIR = "/run/netnsd-bench-tls"  # the sandbox's tmpfs
HANDSHAKE_CONNS = 16
TLS_GOAL_X = 0.8  # issue 12: HTTPS at least 0.8x nginx

# The goals, as the issues state them.
LIST_GOAL_X = 50          # issue 2: list >= 50x faster than `ip -j netns list` at 5000
START_GOAL_MS = 300       # issue 2: cold start < 300 ms at 5000
RSS_GOAL_B = 1024         # issue 2: RSS growth < 1 KiB per namespace
RACE_GOAL_MS = 100        # issue 2: nsid resolution keeps up with the loop (lag < ~100 ms)
EVENT_P99_GOAL_MS = 5.0   # issue 3: p99 < 5 ms
FANOUT_GOAL_X = 2.0       # issue 3: 1000 subscribers within 2x of one
CHURN_GOAL_X = 10         # issue 4: create+delete throughput >= 10x the ip loop
EXEC_GOAL_X = 1.5         # issue 4: exec no worse than 1.5x `ip netns exec`
SHORT_LIFETIME_MS = 10    # issue 11: namespaces mounted this long are never missed
FLOOR_GOAL = 0.8          # issue 11: create+delete at least 0.8x the mkns floor
INVENTORY_GOAL_X = 100    # issue 14: GET /api/v1/namespaces >= 100x `lsns -t net -J` at 1000
SWEEP_CPU_GOAL = 0.02     # issue 14: the sweep under 2% of one core at the default interval
DETECT_GOAL_MS = 100      # issue 14: detection p99 < 100 ms (with the process connector)
INVENTORY_RSS_GOAL_B = 2048  # issue 14: RSS per namespace of the inventory < 2 KiB
LINK_EVENT_GOAL_MS = 10   # issue 15: link event p99 < 10 ms, `ip link set up` to a websocket
IFMETRICS_GOAL_X = 100    # issue 15: a /metrics scrape >= 100x the per-namespace exporter way
IFMETRICS_GOAL_MS = 250   # issue 15: a full scrape under 250 ms at 5000 namespaces

QUICK = dict(sizes="100,500", starts=2, requests=30, warmup=3, ip_runs=3, ip_warmup=1,
             race_n=100, ev_count=200, fan_subs="1,100", fan_repeats=1, held_repeats=1,
             pause_s=0.3,
             admin_n=100, admin_rounds=1, exec_runs=20, http_n=100, http_seconds=1,
             http_repeats=1, short_subs=100, short_repeats=1, audit_runs=2, links_n=50,
             tax_nsids="200", tax_changes=500, tax_blocks=1,
             inv_sizes="100", inv_idle=1000, inv_samples=4, inv_pe_samples=10, inv_lsns_runs=3,
             inv_window_s=11.0, inv_scans=1, inv_walks=5, ifm_sizes="50",
             ifm_rounds=2)
FULL = dict(sizes="100,1000,5000,10000", starts=7, requests=200, warmup=5, ip_runs=15,
            ip_warmup=2, race_n=1000, ev_count=1000, fan_subs="1,100,1000", fan_repeats=5,
            held_repeats=3,
            pause_s=1.0, admin_n=1000, admin_rounds=5, exec_runs=200, http_n=1000,
            http_seconds=5, http_repeats=3, short_subs=1000, short_repeats=3, audit_runs=5,
            links_n=1000, tax_nsids="1000,5000", tax_changes=2000, tax_blocks=3,
            inv_sizes="1000,5000", inv_idle=20000, inv_samples=20, inv_pe_samples=200,
            inv_lsns_runs=5,
            inv_window_s=31.0, inv_scans=3, inv_walks=20,
            ifm_sizes="1000,5000", ifm_rounds=5)
# Issue 15: link changes timed to their `link` event (bench/linkevents.py), 270 ms apart.
QUICK["link_changes"] = 40
FULL["link_changes"] = 400


def log(msg):
    print(f"run: {msg}", file=sys.stderr, flush=True)


def loadavg():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def ms(s):
    return s * 1000.0


def p99(xs):
    return percentile(xs, 99)


def run_out(cmd):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


def wait_nsids_gone(R, what, deadline_s=180):
    """After deleting namespaces that had nsids: wait until the kernel has freed them (its nsid
    table is empty), so the next measurement does not pay for their teardown."""
    t = now()
    try:
        foundation.wait_until("the kernel to free the deleted namespaces",
                              lambda: run_out(["ip", "netns", "list-id"]).strip() == "",
                              deadline_s, 0.05)
    except BenchError as e:
        R["notes"].append(f"{what}: {e}")
    R["drains"][what] = now() - t
    time.sleep(1.0)  # the rest of the kernel's teardown of that batch


# ---------------------------------------------------------------------------------------------
# Sections


def section_events(a, R):
    ea = argparse.Namespace(
        netnsd=a.netnsd, evlat=a.evlat, logdir=a.logdir, count=a.ev_count,
        max_stream_clients=1100, pause_s=a.pause_s, fan_subs=a.fan_subs,
        fan_repeats=a.fan_repeats, fan_pace_us=0, short_subs=a.short_subs,
        short_lifetime_ms=10, short_repeats=a.short_repeats, held_repeats=a.held_repeats,
    )
    ER = {"notes": [], "commands": [], "invocation": a.invocation + " (events section)",
          "facts": dict(R["facts"]), "load_start": loadavg().split()}
    Daemon.next_port = EVENTS_PORT
    ER["commands"].append(f"{a.netnsd} --listen 127.0.0.1:PORT --netns-dir /run/netns "
                          f"--token-file {TOKEN_FILE} --max-stream-clients 1100")
    ER["commands"].append("stdbuf -oL ip netns monitor   # run by evlat burst --monitor")
    t = now()
    try:
        events.phase_latency(ea, ER)
        time.sleep(ea.pause_s)
        events.phase_fanout(ea, ER, now() + a.fanout_budget_s)
        time.sleep(ea.pause_s)
        events.phase_shortlived(ea, ER)
    finally:
        ER["total_s"] = now() - t
        ER["load_end"] = loadavg().split()
        R["events"] = {k: v for k, v in ER.items() if k != "facts"}
        R["notes"].extend(f"events: {n}" for n in ER["notes"])
        R["commands"]["events"] = ER["commands"]
        try:
            with open(os.path.join(a.outdir, "events.md"), "w") as f:
                f.write(events.report(ea, ER))
        except Exception as e:  # the details file is a bonus; the figures are in R
            R["notes"].append(f"events: could not write bench/out/events.md: {e!r}")


def section_websocket_ab(a, R):
    if not a.netnsd_beast_ws or not os.access(a.netnsd_beast_ws, os.X_OK):
        raise BenchError("no netnsd built with NETNSD_BENCH_BEAST_WEBSOCKET (bench/run builds "
                         "it, with the bench-beast-ws preset, when this section is asked for)")
    ea = argparse.Namespace(
        netnsd=a.netnsd, evlat=a.evlat, logdir=a.logdir, count=a.ev_count,
        max_stream_clients=1100, pause_s=a.pause_s, fan_subs=a.fan_subs,
        fan_repeats=a.fan_repeats,
    )
    ER = {"notes": [], "commands": []}
    Daemon.next_port = WEBSOCKET_AB_PORT
    for exe in (a.netnsd, a.netnsd_beast_ws):
        ER["commands"].append(f"{exe} --listen 127.0.0.1:PORT --netns-dir /run/netns "
                              f"--token-file {TOKEN_FILE} --max-stream-clients 1100   "
                              "# a fresh one for every run")
    try:
        events.phase_websocket_ab(ea, ER, {"frames": a.netnsd, "beast": a.netnsd_beast_ws},
                                  now() + a.websocket_ab_budget_s)
    finally:
        R["websocket_ab"] = ER.get("websocket_ab", {})
        R["notes"].extend(f"websocket-ab: {n}" for n in ER["notes"])
        R["commands"]["websocket-ab"] = ER["commands"]


def section_admin(a, R):
    res = {"n": a.admin_n, "clients": 4, "rounds": []}
    R["admin"] = res
    logf = open(os.path.join(a.logdir, "netnsd-admin.log"), "wb")
    proc = admin.start_netnsd(a.netnsd, ADMIN_PORT, logf)
    R["commands"]["admin"] = [" ".join(admin.netnsd_command(a.netnsd, ADMIN_PORT))]
    try:
        token = open(admin.TOKEN_FILE).read().strip()
        for r in range(a.admin_rounds):
            log(f"admin: round {r + 1} of {a.admin_rounds}")
            one = {}
            # Each phase starts on a quiet machine (benchlib.quiesce): the kernel's cleanup of
            # the namespaces the phase before deleted must not be billed to the next one.
            quiesce()
            c, d, errors, clat, dlat = admin.api_churn(token, a.admin_n, 4, ADMIN_PORT, f"api{r}_",
                                                      a.churn)
            one["api"] = {"create_s": c, "delete_s": d, "errors": [list(e) for e in errors],
                          "create_lat": clat, "delete_lat": dlat}
            if errors:
                R["notes"].append(f"admin round {r + 1}: {len(errors)} API errors, first {errors[0]}")
            time.sleep(a.pause_s)
            quiesce()
            c, d, alat, dlat = admin.ip_churn(a.admin_n, f"ip{r}_")
            one["ip"] = {"create_s": c, "delete_s": d, "create_lat": alat, "delete_lat": dlat}
            time.sleep(a.pause_s)
            quiesce()
            c, d, add_op, del_op = admin.floor_churn(a.mkns, a.admin_n, f"fl{r}_")
            one["floor"] = {"create_s": c, "delete_s": d, "add_op": add_op, "del_op": del_op}
            time.sleep(a.pause_s)
            res["rounds"].append(one)
        log("admin: exec")
        api, ip, ns = admin.exec_latency(token, a.exec_runs, ADMIN_PORT)
        res["exec"] = {"api": api, "ip": ip, "nsenter": ns}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logf.close()
        if proc.returncode != 0:
            R["notes"].append(f"admin: netnsd exited with status {proc.returncode}")
    n = a.admin_n
    R["commands"]["admin"] += [
        f"POST /api/v1/netns {{\"name\": NAME}} × {n}, then DELETE /api/v1/netns/NAME × {n}, "
        f"from 4 threads with one keep-alive connection each ("
        + (f"{a.churn} PORT TOKEN_FILE PREFIX {n} 4, compiled like mkns"
           if a.churn else "Python threads")
        + f"); {a.admin_rounds} round(s)",
        f"bash -e -c 's=$EPOCHREALTIME; ip netns add NAME; echo \"$s $EPOCHREALTIME\"' × {n} "
        "(one script), then the same with `ip netns del`",
        f"{a.mkns} add /run/netns PREFIX {n}; {a.mkns} del /run/netns PREFIX {n}",
        f"POST /api/v1/netns/execbox/exec {{\"argv\": [\"true\"]}}, `ip netns exec execbox true`, "
        f"`nsenter --net=/run/netns/execbox true`, interleaved, × {a.exec_runs} after 5 warm-ups",
    ]


def section_links(a, R):
    Daemon.next_port = LINKS_PORT
    links.section(a, R, LINKS_PORT, log)


def section_ifmetrics(a, R):
    Daemon.next_port = IFMETRICS_PORT
    ifmetrics.section(a, R, log)


def section_http(a, R, fa):
    res = {"n": a.http_n}
    R["http"] = res
    cmds = R["commands"].setdefault("http", [])
    foundation.make_namespaces(fa, "h_", a.http_n, 0, nsid=True)
    cmds.append(f"{a.mkns} add /run/netns h_ {a.http_n} --nsid")
    d = Daemon(a.netnsd, a.logdir, "http", R["notes"])
    cmds.append(" ".join(d.cmd))
    try:
        _, client, _ = foundation.first_answer(d, a.http_n)
        client.close()
        targets = {"healthz": "/healthz", "entry": f"/api/v1/netns/h_{a.http_n // 2:05d}"}
        res["runs"], res["facts"] = httpbench.run(
            d.port, NGINX_PORT, targets, [1, 64], a.http_seconds, a.http_repeats, a.logdir,
            R["notes"], cmds)
        res["cpu_s"] = d.cpu_seconds()
        d.stop()
        d = None
        # The same over HTTPS: netnsd with --tls-cert, nginx with ssl, one certificate.
        cert, key = httpbench.make_cert(TLS_DIR)
        cmds.append(f"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 ... "
                    f"-subj /CN=127.0.0.1   # {cert}, {key}")
        t = Daemon(a.netnsd, a.logdir, "https", R["notes"],
                   extra_args=("--tls-cert", cert, "--tls-key", key))
        cmds.append(" ".join(t.cmd))
        try:
            httpbench.wait_tls(t.port, cert)
            res["tls_runs"], res["tls_facts"] = httpbench.run_tls(
                t.port, NGINX_PORT, NGINX_PORT + 1, cert, key, targets, [1, 64], a.http_seconds,
                a.http_repeats, HANDSHAKE_CONNS, a.logdir, R["notes"], cmds)
        finally:
            t.stop()
    finally:
        if d is not None:
            d.stop()
        foundation.mkns(fa, "del", "h_", a.http_n)
        wait_nsids_gone(R, "http")


def section_nsid(a, R, fa):
    race = {}
    RR = {"notes": R["notes"], "race": race}
    for order in ("name", "reverse", "random"):
        log(f"nsid race, {order} order")
        foundation.phase_nsid_race(fa, RR, order)
    R["race"] = race
    R["commands"]["nsid"] = [
        f"{a.mkns} add /run/netns PREFIX {a.race_n}   (no nsids), then netnsd started",
        f"bash -c 'for n in $(cat FILE); do ip netns set \"$n\" auto; done' over the "
        f"{a.race_n} names in name, reverse and random order, while GET /api/v1/nsids is polled",
    ]


def audit_costs(daemon, runs):
    """POST /api/v1/audit `runs` times: each audit's own duration (ms, as netnsd reports it: the
    scan on a worker and the comparison on the model thread), and the divergences found."""
    token = open(TOKEN_FILE).read().strip()
    took, found = [], 0
    for _ in range(runs):
        c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
        c.request("POST", "/api/v1/audit", headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        doc = json.loads(r.read())
        c.close()
        if r.status != 200:
            raise BenchError(f"POST /api/v1/audit answered {r.status}")
        took.append(doc["duration_ms"])
        found += len(doc["divergences"])
    return took, found


def phase_scaling(a, R, fa, nsid):
    mode = "nsid" if nsid else "plain"
    out = R["scaling"].setdefault(mode, {})
    want = set(a.sections)
    cmds = R["commands"].setdefault("scaling", [])
    present, made, names = 0, [], []
    rng = random.Random(1)
    try:
        for i, n in enumerate(a.size_list):
            prefix = f"{'s' if nsid else 'p'}{i}_"
            log(f"{'with' if nsid else 'without'} nsids: N={n}")
            res = {"n": n, "load": loadavg()}
            res["mkns"] = foundation.make_namespaces(fa, prefix, n - present, present, nsid)
            made.append((prefix, n - present))
            names += foundation.names_of(prefix, n - present)
            cmds.append(f"{a.mkns} add /run/netns {prefix} {n - present}{' --nsid' if nsid else ''}"
                        f"   (N={n})")
            present = n
            label = f"{mode}-n{n}"
            if "memory" in want:
                res["start_ms"], res["rss"] = foundation.cold_starts(fa, R, n, label, a.starts)
            daemon, client, model = foundation.start_model_only(fa, R, n, label, nsid)
            res.update(model)
            sleeper = None
            try:
                if "list" in want or "lookup" in want:
                    res["list_ms"], res["list_reconnects"] = foundation.timed_gets(
                        client, ["/api/v1/netns"] * a.requests, a.warmup)
                if "lookup" in want:
                    picks = [rng.choice(names) for _ in range(a.requests)]
                    res["get_ms"], _ = foundation.timed_gets(
                        client, [f"/api/v1/netns/{x}" for x in picks], a.warmup)
                    target = names[len(names) // 2]
                    sleeper = subprocess.Popen(
                        ["nsenter", f"--net={NETNS_DIR}/{target}", "sleep", "3600"],
                        preexec_fn=die_with_parent)
                    path = f"/api/v1/processes/{sleeper.pid}/netns"

                    def named():
                        st, body = client.get(path)
                        return st == 200 and any(n.get("name") == target
                                                 for n in json.loads(body).get("names", []))

                    foundation.wait_until(f"GET {path} to name {target}", named, 20)  # the next sweep
                    res["identify_ms"], _ = foundation.timed_gets(client, [path] * a.requests,
                                                                  a.warmup)
                res["rss_after_list"] = daemon.rss_bytes()
                res["cpu_s"] = daemon.cpu_seconds()
                if "memory" in want:
                    res["audit_ms"], res["audit_divergences"] = audit_costs(daemon, a.audit_runs)
            finally:
                client.close()
                daemon.stop()
            if "list" in want or "lookup" in want:
                res["ip_ms"] = foundation.ip_list_samples(n, a.ip_warmup, a.ip_runs)
            if sleeper is not None:
                def check(stdout, target=target):
                    if target not in stdout.decode(errors="replace").split("\n"):
                        raise BenchError(f"ip netns identify did not name {target}")

                res["ip_identify_ms"] = foundation.timed_runs(
                    ["ip", "netns", "identify", str(sleeper.pid)], a.ip_warmup, a.ip_runs, check)
                sleeper.kill()
                sleeper.wait()
            out[str(n)] = res
    finally:
        for prefix, count in made:
            foundation.mkns(fa, "del", prefix, count)
        if nsid and made:
            wait_nsids_gone(R, "scaling with nsids")


def section_inventory(a, R):
    R["inventory"] = {}
    for i, n in enumerate(int(x) for x in a.inv_sizes.split(",")):
        quiesce()
        log(f"inventory: {n} namespaces held by processes, {a.inv_idle} idle processes")
        R["inventory"][str(n)] = inventory.phase_inventory(a, R, n, a.inv_idle,
                                                           INVENTORY_PORT + 10 * i)
    if a.forktax:
        try:
            R["inventory_forktax"] = inventory.forktax(a.forktax, 5000 if a.quick else 20000,
                                                       3 if a.quick else 6)
        except BenchError as e:
            R["notes"].append(f"inventory: {e}")
    quiesce()
    log("inventory: 100 mount namespaces held by bind mounts, 10 network namespaces bound in each")
    R["mount_walk"] = inventory.phase_mount_namespaces(a, R, INVENTORY_PORT + 90)
    R["commands"]["inventory"] = [
        f"{a.procs} N unshare   # N children: unshare(CLONE_NEWNET), pause()",
        f"{a.procs} IDLE idle   # IDLE children in pause()",
        f"{a.netnsd} --listen 127.0.0.1:PORT --netns-dir /run/netns --token-file TOKEN "
        "--deep-scan-interval 0",
        f"GET /api/v1/namespaces × {a.requests} after {a.warmup} warm-ups; "
        f"lsns -t net -J × {a.inv_lsns_runs} after 1",
        f"POST /api/v1/namespaces/scan × {a.inv_scans}",
        f"unshare -n sleep 600 × {a.inv_samples}, started then killed at random within "
        f"{inventory.SWEEP_INTERVAL_S / 2:.1f} s of each other, timed to found / destroyed on "
        "GET /api/v1/events?types=found,destroyed (NDJSON)",
        f"{a.netnsd} ... --deep-scan-interval 0 --proc-events --proc-events-netns "
        f"/proc/ANCESTOR/ns/net   # the same host, then {a.inv_pe_samples} unshare -n sleeps, "
        f"at most {inventory.PROC_EVENTS_SPREAD_S} s apart; netnsd_proc_event_lag_seconds after",
        f"nsenter --net=/proc/ANCESTOR/ns/net {a.forktax} FORKS ROUNDS   # fork+exit rounds "
        "without and with a process-connector listener",
        "100 × unshare --mount=HOLDER sh -c 'mount -t tmpfs; 10 × unshare --net=FILE true'",
        "nsenter --mount=HOLDER sh -c 'touch F && unshare --net=F true', then "
        "nsenter --mount=HOLDER umount F   # timed to found / destroyed, no sweep due",
        f"{a.mounttax} DIR PAIRS   # bind mount + unmount pairs in a mount namespace of its own, "
        "followed by netnsd or not",
        f"{a.netnsd} ... --sweep-interval 600 (the start's walk), then --sweep-interval 1 "
        f"(netnsd_mount_namespace_walk_seconds after each of {a.inv_walks} sweeps)",
        f"nsenter --mount=HOLDER findmnt -t nsfs -n -o TARGET for each of the 100 × "
        f"{a.inv_lsns_runs}",
    ]


def section_scaling(a, R, fa):
    if "memory" in a.sections:
        log("memory: a start on the empty dir")
        foundation.phase_rss_empty(fa, R)
    R["commands"].setdefault("scaling", []).append(
        f"{a.netnsd} --listen 127.0.0.1:PORT --netns-dir /run/netns --token-file "
        f"{TOKEN_FILE}   (a fresh one for every start)")
    phase_scaling(a, R, fa, nsid=True)
    phase_scaling(a, R, fa, nsid=False)
    c = R["commands"]["scaling"]
    if "list" in a.sections or "lookup" in a.sections:
        c.append(f"GET /api/v1/netns on one keep-alive connection, {a.warmup} warm-ups then "
                 f"{a.requests} timed; `ip -j netns list`, {a.ip_warmup} warm-ups then "
                 f"{a.ip_runs} timed runs")
    if "lookup" in a.sections:
        c.append(f"GET /api/v1/netns/NAME for {a.requests} random names; nsenter "
                 f"--net=/run/netns/NAME sleep 3600, then GET /api/v1/processes/PID/netns × "
                 f"{a.requests} and `ip netns identify PID` × {a.ip_runs} "
                 f"(after {a.ip_warmup} warm-ups)")
    if "memory" in a.sections:
        c.append(f"{a.starts} cold starts per N: spawn → first GET /api/v1/netns listing all N "
                 "(polled), VmRSS from /proc/PID/status right after it")


# ---------------------------------------------------------------------------------------------
# Figures: each row is (figure, netnsd, reference tool, reference, ratio, goal, met)


def fmt_ms(x):
    if x is None:
        return "n/a"
    ax = abs(x)
    if ax < 1:
        return f"{x:.3f} ms"
    if ax < 10:
        return f"{x:.2f} ms"
    return f"{x:.1f} ms" if ax < 100 else f"{x:.0f} ms"


def pair(xs, scale=1.0):
    if not xs:
        return "n/a"
    return f"{fmt_ms(median(xs) * scale)} / {fmt_ms(p99(xs) * scale)}"


def triple(xs):
    if not xs:
        return "n/a"
    return f"{fmt_ms(median(xs))} / {fmt_ms(p99(xs))} / {fmt_ms(max(xs))}"


def times_faster(ref, ours):
    if not ref or not ours:
        return ""
    r = median(ref) / median(ours)
    return f"{r:.0f}x" if r >= 20 else f"{r:.1f}x" if r >= 2 else f"{r:.2f}x"


def met(ok):
    return "met" if ok else "**not met**"


def rate(x):
    return f"{x:,.0f}"


# The two kinds of runs of the scaling sections, in the order the report shows them.
MODES = (("nsid", "with nsids"), ("plain", "without nsids"))


def measured(a, R, mode, key):
    """(N, figures) for every size whose `mode` run measured `key`, smallest first."""
    for n in a.size_list:
        s = R["scaling"].get(mode, {}).get(str(n))
        if s and key in s:
            yield n, s


def rows_list(a, R):
    rows = []
    for mode, what in MODES:
        for n, s in measured(a, R, mode, "list_ms"):
            goal, ok = "", ""
            if mode == "nsid" and n == 5000:
                goal = f"≥ {LIST_GOAL_X}x faster (issue 2)"
                ok = met(median(s["ip_ms"]) / median(s["list_ms"]) >= LIST_GOAL_X)
            rows.append((f"list, N={n}, {what}", pair(s["list_ms"]), "`ip -j netns list`",
                         pair(s["ip_ms"]), times_faster(s["ip_ms"], s["list_ms"]), goal, ok))
    return rows


def rows_lookup(a, R):
    rows = []
    for mode, what in MODES:
        for n, s in measured(a, R, mode, "identify_ms"):
            rows.append((f"which names has PID's netns, N={n}, {what}: "
                         "`GET /api/v1/processes/PID/netns`", pair(s["identify_ms"]),
                         "`ip netns identify PID`", pair(s["ip_identify_ms"]),
                         times_faster(s["ip_identify_ms"], s["identify_ms"]), "", ""))
        for n, s in measured(a, R, mode, "get_ms"):
            rows.append((f"one namespace by name, N={n}, {what}: `GET /api/v1/netns/NAME`",
                         pair(s["get_ms"]), "`ip -j netns list` (ip has no per-name query)",
                         pair(s["ip_ms"]), times_faster(s["ip_ms"], s["get_ms"]), "", ""))
    return rows


def rows_memory(a, R):
    rows = []
    if "rss_empty" in R:
        rows.append(("RSS, 0 namespaces", f"{R['rss_empty'] / 1024:.0f} KiB", "", "", "", "",
                     ""))
    big = max(a.size_list)
    for mode, what in MODES:
        for n, s in measured(a, R, mode, "start_ms"):
            goal, ok = "", ""
            if n == 5000 and mode == "nsid":  # issue 2 states it with an nsid on every one
                goal = f"< {START_GOAL_MS} ms at 5000 (issue 2)"
                ok = met(median(s["start_ms"]) < START_GOAL_MS)
            rows.append((f"cold start to a full list, N={n}, {what} ({len(s['start_ms'])} starts)",
                         pair(s["start_ms"]), "one `ip -j netns list`",
                         pair(s.get("ip_ms", [])),
                         times_faster(s.get("ip_ms"), s["start_ms"]), goal, ok))
        if "rss_empty" not in R:
            continue
        for n, s in measured(a, R, mode, "audit_ms"):
            per = median(s["audit_ms"]) * 1000 / n
            rows.append((f"audit of the model against a full scan, N={n}, {what} "
                         f"({len(s['audit_ms'])} runs; {s['audit_divergences']} divergences)",
                         pair(s["audit_ms"]), "", "", f"{per:.1f} µs per entry", "", ""))
        for n, s in measured(a, R, mode, "rss"):
            rss = median(s["rss"])
            growth = (rss - R["rss_empty"]) / n
            goal, ok = "", ""
            if n >= 5000 or n == big:
                goal, ok = "< 1 KiB per namespace (issue 2)", met(growth < RSS_GOAL_B)
            rows.append((f"RSS growth per namespace, N={n}, {what} (RSS {rss / 1048576:.1f} MiB "
                         "after the first full list)", f"{growth:.0f} B", "", "", "", goal, ok))
    return rows


def rows_links(a, R):
    res = R.get("links")
    if not res:
        return []
    rows = []
    n = res["n"]
    api = [x * 1000 for x in res.get("api_s", [])]
    ip = [x * 1000 for x in res.get("ip_s", [])]
    if api and ip:
        rows.append((f"one namespace's links, each of {n} namespaces with a veth and an address "
                     f"({len(api)} requests, each a fresh dump)", pair(api),
                     "`ip -n NAME -j addr` (a process each)", pair(ip), times_faster(ip, api),
                     "", ""))
        warm = [x * 1000 for x in res.get("warm_s", [])]
        if warm:
            rows.append((f"the same, asked again at once (answered from the 1 s cache)",
                         pair(warm), "`ip -n NAME -j addr`", pair(ip), times_faster(ip, warm),
                         "", ""))
        at, it = res["api_total_s"], res["ip_total_s"]
        rows.append((f"all {n} namespaces, one after the other (median of {len(at)} rounds)",
                     fmt_ms(median(at) * 1000), f"the `ip -n NAME -j addr` loop",
                     fmt_ms(median(it) * 1000), times_faster(it, at), "", ""))
    for t in res.get("tax", []):
        w, wo = t["with"], t["without"]
        rows.append((f"a link change in an unrelated namespace at {t['nsids']} nsids, with a "
                     "NETLINK_LISTEN_ALL_NSID listener: send→ack (system time)",
                     f"{w['wall_median_us']:.0f} µs ({w['sys_median_us']:.0f} µs)",
                     "no such listener",
                     f"{wo['wall_median_us']:.0f} µs ({wo['sys_median_us']:.0f} µs)",
                     f"{w['wall_median_us'] / wo['wall_median_us']:.1f}x the time (the tax)",
                     "decides whether live link events are opt-in (issue 15)", "—"))
        nd = t.get("netnsd")
        if nd:
            rows.append((f"the same at {t['nsids']} nsids with netnsd --watch-links running: "
                         "send→ack (system time)",
                         f"{nd['wall_median_us']:.0f} µs ({nd['sys_median_us']:.0f} µs)",
                         "netnsd not running",
                         f"{wo['wall_median_us']:.0f} µs ({wo['sys_median_us']:.0f} µs)",
                         f"{nd['wall_median_us'] / wo['wall_median_us']:.1f}x the time, "
                         f"{nd['sys_median_us'] / wo['sys_median_us']:.1f}x the system time",
                         "the price of --watch-links (stated beside it in the README)", "—"))
    ev = res.get("events")
    if ev:
        ok = ev["p99_ms"] < LINK_EVENT_GOAL_MS
        rows.append((f"link event latency: `link set up` → the `link` event on a websocket "
                     f"({len(ev['latency_ms'])} changes), p50 / p99",
                     f"{fmt_ms(ev['p50_ms'])} / {fmt_ms(ev['p99_ms'])}",
                     "down (its ack waits for the device to close), p50 / p99",
                     f"{fmt_ms(ev['down_p50_ms'])} / {fmt_ms(ev['down_p99_ms'])}",
                     f"after the ack: {fmt_ms(ev['after_ack_p50_ms'])} / "
                     f"{fmt_ms(ev['after_ack_p99_ms'])}",
                     f"p99 < {LINK_EVENT_GOAL_MS} ms (issue 15)", "met" if ok else "not met"))
    return rows


def rows_ifmetrics(a, R):
    res = R.get("ifmetrics")
    if not res:
        return []
    rows = []
    biggest = max((x["n"] for x in res["sizes"]), default=0)
    for x in res["sizes"]:
        n = x["n"]
        cold = [t * 1000 for t in x["cold_s"]]
        setns = [t * 1000 for t in x["setns_s"]]
        ip_ms = x["ip_s"] * 1000
        rows.append((f"a full GET /metrics with --metrics-interfaces, {n} namespaces with a veth "
                     f"each: {x['interfaces']} interfaces, {x['series']} series, "
                     f"{x['bytes'] / 1e6:.1f} MB (cold: median / worst of {len(cold)})",
                     f"{fmt_ms(median(cold))} / {fmt_ms(max(cold))}",
                     "`ip -n NAME -s -j link` per namespace (one loop): the exporter way",
                     fmt_ms(ip_ms), times_faster([ip_ms], cold),
                     f">= {IFMETRICS_GOAL_X}x the exporter way (issue 15)",
                     met(ip_ms / median(cold) >= IFMETRICS_GOAL_X)))
        if n >= 5000:
            rows.append((f"the same, {n} namespaces, the worst of {len(cold)} cold scrapes",
                         fmt_ms(max(cold)), "", "", "",
                         f"< {IFMETRICS_GOAL_MS} ms at 5000 (issue 15)",
                         met(max(cold) < IFMETRICS_GOAL_MS)))
        # Not the exporter way but its floor: one process entering each namespace for one dump,
        # the kernel work a cold scrape shares (no goal: a ratio near 1 is the best there is).
        rows.append((f"the same, {n} namespaces", f"{fmt_ms(median(cold))}",
                     "bench/setns_links: setns + RTM_GETLINK dump per namespace, one thread "
                     "(median): the kernel's floor for entering each", fmt_ms(median(setns)),
                     times_faster(setns, cold), "", ""))
        gather = [t * 1000 for t in x["gather_s"] if t is not None]
        rows.append((f"of which the link dumps (netnsd_network_gather_duration_seconds), {n} "
                     "namespaces", fmt_ms(median(gather)) if gather else "n/a", "", "", "", "",
                     ""))
        warm = [t * 1000 for t in x["warm_s"]]
        rows.append((f"GET /metrics again at once (the text kept 1 s), {n} namespaces",
                     fmt_ms(median(warm)), "", "", "", "", ""))
        if n == biggest:
            links_n = 2 * n
            per = (x["rss_bytes"] - res["rss_empty_bytes"]) / links_n
            rows.append((f"RSS per link: (RSS at {n} namespaces × 2 links, after scrapes − RSS "
                         f"with none) ÷ {links_n}; includes the inventory's own per-namespace "
                         "cost", f"{per:.0f} B", "", "", "", "", ""))
    return rows


def rows_nsid(a, R):
    rows = []
    for order in ("name", "reverse", "random"):
        r = R.get("race", {}).get(order)
        if not r:
            continue
        lag = r.get("lag_ms")
        text = ("never (see notes)" if lag is None else fmt_ms(lag) if lag > 0
                else "0 (all there before the loop's exit was seen)")
        rows.append((f"{r['n']} × `ip netns set NAME auto` in {order} order: the API has all "
                     "nsids this long after the loop ended", text,
                     "the loop itself", fmt_ms(r["loop_ms"]), "",
                     f"keeps up, lag < ~{RACE_GOAL_MS} ms (issue 2)",
                     met(lag is not None and lag < RACE_GOAL_MS)))
    return rows


def rows_events(a, R):
    E = R.get("events") or {}
    seq, burst, fan = E.get("seq"), E.get("burst"), E.get("fanout", {})
    rows = []
    us = 1 / 1000.0
    n = a.ev_count

    def lat(label, doc, key, ref_doc=None, ref_key=None, goal=True):
        xs = (doc or {}).get(key) or []
        ref = (ref_doc or {}).get(ref_key) or [] if ref_key else []
        g, ok = "", ""
        if goal:
            g = f"p99 < {EVENT_P99_GOAL_MS:.0f} ms (issue 3)"
            ok = met(bool(xs) and len(xs) == n and p99(xs) * us < EVENT_P99_GOAL_MS)
        rows.append((f"{label} ({len(xs)} of {n})", pair(xs, us),
                     "`ip netns monitor`" if ref_key else "", pair(ref, us) if ref_key else "",
                     "", g, ok))

    lat("add, one at a time: creator's mount() returned → websocket client has the `add`",
        seq, "add_us")
    lat("add, burst of back-to-back creations (same clocks)", burst, "add_us", burst,
        "mon_add_rel_us")
    if burst and "mon_adds" in burst:
        ws_bad = burst["add_probe_not_ns"] + burst["add_before_call"]
        rows.append(("burst: `add` reported before the namespace was usable",
                     f"{ws_bad} of {burst['adds_matched']}", "`ip netns monitor`",
                     f"{burst['mon_add_before_mount']} of {burst['mon_adds']}", "",
                     "netnsd: 0", met(ws_bad == 0 and burst["adds_matched"] == n)))
    lat("delete, one at a time: umount2() called → `delete` received", seq, "del_us", goal=False)
    lat("delete, burst: umount2() called → `delete` received", burst, "del_us", goal=False)
    lat("delete, burst: unlink() returned → `delete` received", burst, "del_unlink_us", burst,
        "mon_del_rel_us", goal=False)
    meds = {}
    for s in sorted(fan, key=int):
        totals = [r["total_ms"] for r in fan[s] if "total_ms" in r]
        if not totals:
            continue
        meds[s] = median(totals)
        g, ok, ratio = "", "", ""
        if s != "1" and "1" in meds:
            ratio = f"{meds[s] / meds['1']:.1f}x the 1-subscriber time"
            if s == "1000":
                g = f"≤ {FANOUT_GOAL_X:.0f}x the time of 1 (issue 3)"
                ok = met(meds[s] / meds["1"] <= FANOUT_GOAL_X)
        rows.append((f"fan-out, {s} subscriber{'s' if s != '1' else ''}: burst start → the last "
                     f"has the last of {2 * n} events ({len(totals)} runs)", pair(totals),
                     "1 subscriber" if s != "1" else "", "", ratio, g, ok))
    def lags_of(runs):
        """The runs' model lags (ms), how many changes the log did not have, and what the
        figure's label says of them."""
        lags = [x * us for r in runs for x in r.get("model_lag_us", [])]
        missing = sum(r.get("model_missing", 0) for r in runs)
        return lags, missing, (f"{len(lags)} changes, {len(runs)} runs"
                               f"{f'; {missing} not found' if missing else ''}")

    for s in sorted(fan, key=int):
        lags, _, counted = lags_of(fan[s])
        if lags:
            rows.append((f"model lag, fan-out {s}: creator's system call → the model has the "
                         f"change ({counted}), p50 / p99 / max; "
                         "includes the kernel tearing the deleted namespaces down",
                         triple(lags), "", "", "", "reported (issue 11)", ""))
            for t, call in (("add", "mount()"), ("delete", "umount2()")):
                part = [x * us for r in fan[s]
                        for x in r.get("model_lag_by_type_us", {}).get(t, [])]
                if part:
                    rows.append((f"model lag, fan-out {s}, {t}s only: from the {call} call, "
                                 "p50 / p99 / max", triple(part), "", "", "", "", ""))
    held = E.get("fanout_held", {})
    for s in sorted(held, key=int):
        lags, missing, counted = lags_of(held[s])
        if lags:
            rows.append((f"model lag, fan-out {s}, namespaces held by an fd (no kernel teardown "
                         f"meanwhile): creator's system call → the model has the change "
                         f"({counted}), p50 / p99 / max",
                         triple(lags), "", "", "", f"max < {SHORT_LIFETIME_MS} ms (issue 11)",
                         met(not missing and max(lags) < SHORT_LIFETIME_MS)))
    short = E.get("shortlived", [])
    if short:
        exact = [r.get("exact", 0) for r in short]
        ok = all(r.get("exact") == r["subs"] and not r["lost"] and not r["gaps"] for r in short)
        rows.append((f"short lives: {n} namespaces each mounted {SHORT_LIFETIME_MS} ms, "
                     f"{short[0]['subs']} subscribers ({short[0].get('slow', 0)} slow), "
                     f"{len(short)} runs: subscribers with exactly the creator's adds and "
                     "deletes, in its order", ", ".join(f"{x}/{r['subs']}" for x, r in
                                                        zip(exact, short)),
                     "", "", "", "all, zero missed (issue 11)", met(ok)))
        lags = [x * us for r in short for x in r.get("model_lag_us", [])]
        if lags:
            rows.append(("short lives: model lag, creator's system call → the model has the "
                         "change, p50 / p99 / max; includes the kernel tearing the deleted "
                         "namespaces down", triple(lags), "", "", "", "reported (issue 11)", ""))
    lost, parts = 0, []
    for s, runs in fan.items():
        x = fanout_faults(runs)
        if x:
            lost += x
            parts.append(f"fan-out {s}: {x}")
    for s, runs in held.items():
        x = fanout_faults(runs)
        if x:
            lost += x
            parts.append(f"fan-out {s}, held: {x}")
    for r in short:
        x = r["lost"] + r["gaps"] + len(events.exact_problems(r))
        if x:
            lost += x
            parts.append(f"short lives: {x}")
    for name, doc in (("one at a time", seq), ("burst", burst)):
        if doc:
            p = events.stream_problems(doc)
            if p:
                lost += 1
                parts.append(f"{name}: " + ", ".join(p))
    if E:
        rows.append(("lost, duplicated or out-of-order events, every phase and subscriber",
                     "0" if not lost else "; ".join(parts), "", "", "", "0 (issue 3)",
                     met(lost == 0 and bool(seq) and bool(burst) and bool(fan))))
    return rows


def fanout_faults(runs):
    """Events lost, skipped, out of order or duplicated in fan-out runs, plus the subscribers
    whose sequence was not exactly the creator's."""
    return sum(r["lost"] + r["gaps"] + r["backwards"] + r["duplicates"] +
               len(events.exact_problems(r)) for r in runs)


def rows_websocket_ab(a, R):
    AB = R.get("websocket_ab") or {}
    frames, beast = AB.get("frames", {}), AB.get("beast", {})
    rows = []
    n = a.ev_count

    def per_event_us(r):
        return r["netnsd_cpu_ms"] * 1000.0 / (2 * r["count"]) if "netnsd_cpu_ms" in r else None

    for s in sorted(frames, key=int):
        f = [r["total_ms"] for r in frames[s] if "total_ms" in r]
        b = [r["total_ms"] for r in beast.get(s, []) if "total_ms" in r]
        ratio = f"{median(b) / median(f):.2f}x the time of the frames" if f and b else ""
        rows.append((f"fan-out, {s} subscriber{'s' if s != '1' else ''}: burst start → the last "
                     f"has the last of {2 * n} events ({len(f)} + {len(b)} runs)", pair(f),
                     "Beast `websocket::stream`", pair(b), ratio, "", ""))
    for s in sorted(frames, key=int):
        f = [x for x in map(per_event_us, frames[s]) if x is not None]
        b = [x for x in map(per_event_us, beast.get(s, [])) if x is not None]
        ratio = f"{median(b) / median(f):.2f}x the CPU of the frames" if f and b else ""
        rows.append((f"netnsd CPU per event, {s} subscriber{'s' if s != '1' else ''} "
                     "(user + system, whole process), median / max",
                     f"{median(f):.1f} µs / {max(f):.1f} µs" if f else "n/a",
                     "Beast `websocket::stream`",
                     f"{median(b):.1f} µs / {max(b):.1f} µs" if b else "n/a", ratio, "", ""))
    lost, parts = 0, []
    for label, runs in AB.items():
        for s, rs in runs.items():
            x = fanout_faults(rs)
            if x:
                lost += x
                parts.append(f"{label} {s}: {x}")
    if AB:
        rows.append(("lost, duplicated or out-of-order events, every run of both",
                     "0" if not lost else "; ".join(parts), "", "", "", "", ""))
    return rows


def admin_summary(res):
    rounds = res.get("rounds", [])
    out = {}
    for who in ("api", "ip", "floor"):
        rs = [r[who] for r in rounds if who in r]
        if not rs:
            continue
        n = res["n"]
        out[who] = {
            "rate": median([2 * n / (r["create_s"] + r["delete_s"]) for r in rs]),
            "create_wall": [r["create_s"] / n * 1000 for r in rs],
            "delete_wall": [r["delete_s"] / n * 1000 for r in rs],
        }
        if who != "floor":
            out[who]["create_lat"] = [x * 1000 for r in rs for x in r["create_lat"]]
            out[who]["delete_lat"] = [x * 1000 for r in rs for x in r["delete_lat"]]
        else:
            out[who]["add_op"] = [r["add_op"] for r in rs]
            out[who]["del_op"] = [r["del_op"] for r in rs]
    return out


def rows_inventory(a, R):
    rows = []
    for key, res in sorted(R.get("inventory", {}).items(), key=lambda kv: int(kv[0])):
        n = int(key)
        S = inventory.summary(res)
        where = f"N={n} + {res['idle']} idle ({res['processes']} processes)"
        goal, ok = "", ""
        if n == 1000:
            goal = f"≥ {INVENTORY_GOAL_X}x (issue 14)"
            ok = met(S["lsns_med"] / S["list_med"] >= INVENTORY_GOAL_X)
        rows.append((f"every namespace, {where}: `GET /api/v1/namespaces` "
                     f"({res['list_bytes'] // 1024} KiB)", pair(res["list_ms"]),
                     "`lsns -t net -J`", pair(res["lsns_ms"]),
                     times_faster(res["lsns_ms"], res["list_ms"]), goal, ok))
        rows.append((f"/proc sweep, {int(res['sweep_processes'])} processes: mean of "
                     f"{int(res['sweeps'])} sweeps", fmt_ms(S["sweep_mean_s"] * 1000), "", "",
                     "", "", ""))
        rows.append((f"netnsd's CPU over {res['window_s']:.0f} quiet seconds at the default "
                     f"--sweep-interval ({inventory.SWEEP_INTERVAL_S} s), {where}",
                     f"{S['cpu_share'] * 100:.2f}% of one core", "", "", "",
                     f"< {SWEEP_CPU_GOAL * 100:.0f}% of one core (issue 14)",
                     met(S["cpu_share"] < SWEEP_CPU_GOAL)))
        for scan in res.get("deep_scans", [])[:1]:
            rows.append((f"deep scan (`POST /api/v1/namespaces/scan`), {scan['processes']} fd "
                         f"tables, {scan['fds']} fds, {scan['sockets']} sockets",
                         fmt_ms(median([x["duration_ms"] for x in res["deep_scans"]])),
                         "", "", "", "", ""))
        detect = [x * 1000 for x in res.get("found_s", [])]
        gone = [x * 1000 for x in res.get("destroyed_s", [])]
        rows.append((f"detection: `unshare -n sleep` started → `found` ({len(detect)} runs), "
                     f"{where}", pair(detect), "", "", "",
                     "without `--proc-events` the sweep bounds it", ""))
        rows.append((f"destroyed: the sleep killed → `destroyed` ({len(gone)} runs), {where}",
                     pair(gone), "", "", "", "", ""))
        detect = [x * 1000 for x in res.get("found_pe_s", [])]
        exists = [x * 1000 for x in res.get("found_exists_pe_s", [])]
        gone = [x * 1000 for x in res.get("destroyed_pe_s", [])]
        if detect or gone:
            rows.append((f"detection with `--proc-events`: the namespace exists (unshare(2) "
                         f"returned) → `found` ({len(exists)} runs), {where}",
                         pair(exists), "from the start of `unshare -n sleep` (the kernel's "
                         "making of the namespace included)", pair(detect), "",
                         f"p99 < {DETECT_GOAL_MS} ms with the process connector (issue 14)",
                         met(bool(exists) and p99(exists) < DETECT_GOAL_MS)))
            lag = res.get("proc_event_lag") or {}
            if lag.get("+Inf"):
                q50, q99 = (inventory.lag_quantile(lag, q) for q in (0.5, 0.99))
                bound = lambda q: f"≤ {fmt_ms(q * 1000)}" if q is not None else "> 1 s"
                rows.append((f"netnsd's own lag (`netnsd_proc_event_lag_seconds`: the kernel's "
                             f"time of a batch's oldest event → applied), {lag['+Inf']} "
                             f"batches, p50 / p99 bucket", f"{bound(q50)} / {bound(q99)}",
                             "", "", "", "", ""))
            rows.append((f"destroyed with `--proc-events` ({len(gone)} runs), {where}",
                         pair(gone), "", "", "", "", ""))
        if res.get("rss_proc_events") and res.get("rss"):
            rows.append((f"RSS, {n} namespaces known, {where}",
                         f"{res['rss'] / 2**20:.1f} MiB", "with `--proc-events`",
                         f"{res['rss_proc_events'] / 2**20:.1f} MiB", "", "", ""))
    sizes = sorted(R.get("inventory", {}).items(), key=lambda kv: int(kv[0]))
    if len(sizes) >= 2:
        (n0, r0), (n1, r1) = sizes[0], sizes[-1]
        span = int(n1) - int(n0)
        for key, who in (("rss", "the sweep's daemon, after its 200 lists and lsns"),
                         ("rss_proc_events", "the `--proc-events` daemon, no list served")):
            if r0.get(key) and r1.get(key):
                per = (r1[key] - r0[key]) / span
                rows.append((f"RSS per namespace of the inventory: (RSS at {n1} − RSS at {n0}) ÷ "
                             f"{span}, {who}", f"{per:.0f} B", "", "", "",
                             "< 2 KiB (issue 14)", met(per < INVENTORY_RSS_GOAL_B)))
    tax = R.get("inventory_forktax")
    if tax:
        off, on = median(tax["off_sys_us"]), median(tax["on_sys_us"])
        rows.append((f"kernel CPU per fork + exit with a process-connector listener "
                     f"(bench/forktax, {len(tax['on_sys_us'])} rounds of {tax['forks']})",
                     f"{on:.1f} µs", "without a listener", f"{off:.1f} µs",
                     f"+{(on / off - 1) * 100:.0f}%", "", ""))
        if tax["listener_us_per_event"]:
            rows.append(("the listener's CPU per event (bench/forktax: one recv per event)",
                         f"{median(tax['listener_us_per_event']):.1f} µs", "", "", "", "", ""))
    w = R.get("mount_walk")
    if w:
        walks = [x * 1000 for x in w.get("walk_s", [])]
        tool = [x * 1000 for x in w.get("findmnt_s", [])]
        what = (f"{w['count']} mount namespaces × {w['per']} nsfs mounts "
                f"({int(w['seen'])} other mount namespaces seen)")
        rows.append((f"walk of the mount namespaces with each sweep, {what}", pair(walks),
                     f"`nsenter --mount=H findmnt -t nsfs` for each", pair(tool),
                     times_faster(tool, walks) if walks and tool else "", "", ""))
        rows.append((f"the start's walk, entering each to identify the {w['found']} new "
                     f"namespaces found, {what}", fmt_ms(w["first_walk_s"] * 1000), "", "", "",
                     "", ""))
        found = [x * 1000 for x in w.get("follow_found_s", [])]
        gone = [x * 1000 for x in w.get("follow_destroyed_s", [])]
        if found or gone:
            rows.append((f"between walks (no sweep due): a namespace bound in a followed mount "
                         f"namespace, found (attach event, then a walk), p50 / max of {len(found)}",
                         f"{fmt_ms(median(found))} / {fmt_ms(max(found))}" if found else "n/a",
                         "without the mount events: the next sweep's walk",
                         f"≤ {inventory.SWEEP_INTERVAL_S:g} s", "", "", ""))
            rows.append((f"unmounted there, destroyed (detach event), p50 / max of {len(gone)}",
                         f"{fmt_ms(median(gone))} / {fmt_ms(max(gone))}" if gone else "n/a",
                         "", "", "", "", ""))
        tax = w.get("mounttax")
        if tax and tax["on_wall_us"] and tax["off_wall_us"]:
            off, on = median(tax["off_wall_us"]), median(tax["on_wall_us"])
            rows.append((f"a bind mount + unmount in a mount namespace netnsd follows (bench/"
                         f"mounttax, {len(tax['on_wall_us'])} rounds of {tax['pairs']})",
                         f"{on:.1f} µs", "in one it does not follow", f"{off:.1f} µs",
                         f"{(on / off - 1) * 100:+.0f}%", "", ""))
            if tax["netnsd_us_per_event"]:
                rows.append(("netnsd's CPU per followed mount event (read in batches, one "
                             f"wakeup per {20} ms at most; walks after attaches spaced)",
                             f"{median(tax['netnsd_us_per_event']):.2f} µs", "", "", "", "", ""))
    return rows


def rows_admin(a, R):
    res = R.get("admin")
    if not res:
        return []
    S = admin_summary(res)
    rows = []
    if "api" in S and "ip" in S:
        api, ip = S["api"], S["ip"]
        rows.append(("create, one request (4 clients at once) vs one `ip netns add`",
                     pair(api["create_lat"]), "`ip netns add`", pair(ip["create_lat"]),
                     times_faster(ip["create_lat"], api["create_lat"]), "", ""))
        rows.append(("delete, one request (4 clients at once) vs one `ip netns del`",
                     pair(api["delete_lat"]), "`ip netns del`", pair(ip["delete_lat"]),
                     times_faster(ip["delete_lat"], api["delete_lat"]), "", ""))
        rows.append((f"create+delete throughput, {res['n']} namespaces (median of "
                     f"{len(res['rounds'])} rounds)", f"{rate(api['rate'])} ops/s",
                     "`ip netns add/del` loop", f"{rate(ip['rate'])} ops/s",
                     f"{api['rate'] / ip['rate']:.1f}x",
                     f"≥ {CHURN_GOAL_X}x the ip loop (issue 4)",
                     met(api["rate"] >= CHURN_GOAL_X * ip["rate"])))
    if "api" in S and "floor" in S:
        fl = S["floor"]
        add_med = median([x[0] for x in fl["add_op"] if x[0] is not None] or [0])
        add_p99 = median([x[1] for x in fl["add_op"] if x[1] is not None] or [0])
        del_med = median([x[0] for x in fl["del_op"] if x[0] is not None] or [0])
        del_p99 = median([x[1] for x in fl["del_op"] if x[1] is not None] or [0])
        rows.append(("create+delete throughput vs the kernel floor", f"{rate(S['api']['rate'])} ops/s",
                     "mkns (one process: open+unshare+bind / umount+unlink)",
                     f"{rate(fl['rate'])} ops/s (add {fmt_ms(add_med)} / {fmt_ms(add_p99)}, "
                     f"del {fmt_ms(del_med)} / {fmt_ms(del_p99)})",
                     f"{S['api']['rate'] / fl['rate']:.2f}x (share of the floor)",
                     f"≥ {FLOOR_GOAL}x the floor (issue 11)",
                     met(S["api"]["rate"] >= FLOOR_GOAL * fl["rate"])))
    ex = res.get("exec")
    if ex:
        api = [x * 1000 for x in ex["api"]]
        ip = [x * 1000 for x in ex["ip"]]
        ns = [x * 1000 for x in ex["nsenter"]]
        r = median(api) / median(ip)
        rows.append((f"exec `true` ({len(api)} runs): `POST .../exec`", pair(api),
                     "`ip netns exec NAME true`", pair(ip), f"{r:.2f}x the time of ip",
                     f"≤ {EXEC_GOAL_X}x `ip netns exec` (issue 4)", met(r <= EXEC_GOAL_X)))
        rows.append(("exec `true`, the same runs", pair(api), "`nsenter --net=PATH true`",
                     pair(ns), f"{median(api) / median(ns):.2f}x the time of nsenter", "", ""))
    return rows


def rows_http(a, R):
    res = R.get("http")
    if not res or "runs" not in res:
        return []
    rows = []
    labels = {"healthz": "`GET /healthz`", "entry": "`GET /api/v1/netns/NAME`"}
    if "runs" not in res:
        return []
    for label, by_conns in res["runs"].items():
        for conns, runs in by_conns.items():
            ours = httpbench.summary(runs["netnsd"])
            ref = httpbench.summary(runs["nginx"])
            rows.append((f"{labels[label]}, wrk -c{conns}: requests/s", rate(ours["rps"]),
                         "nginx, same bytes as a static file", rate(ref["rps"]),
                         f"{ours['rps'] / ref['rps']:.2f}x nginx", "none (nginx is the ceiling)",
                         ""))
            rows.append((f"{labels[label]}, wrk -c{conns}: latency",
                         f"{fmt_ms(ours.get('p50_ms'))} / {fmt_ms(ours.get('p99_ms'))}",
                         "nginx", f"{fmt_ms(ref.get('p50_ms'))} / {fmt_ms(ref.get('p99_ms'))}",
                         times_faster([ref["p50_ms"]], [ours["p50_ms"]]), "", ""))
    labels["handshake"] = "new TLS handshakes (`Connection: close`)"
    for label, by_conns in res.get("tls_runs", {}).items():
        for conns, runs in by_conns.items():
            ours = httpbench.summary(runs["netnsd"])
            ref = httpbench.summary(runs["nginx"])
            x = ours["rps"] / ref["rps"]
            what = "handshakes/s" if label == "handshake" else "requests/s"
            rows.append((f"HTTPS {labels[label]}, wrk -c{conns}: {what}", rate(ours["rps"]),
                         "nginx over TLS, same certificate and bytes", rate(ref["rps"]),
                         f"{x:.2f}x nginx", f"≥ {TLS_GOAL_X}x nginx (issue 12)",
                         met(x >= TLS_GOAL_X)))
            rows.append((f"HTTPS {labels[label]}, wrk -c{conns}: latency",
                         f"{fmt_ms(ours.get('p50_ms'))} / {fmt_ms(ours.get('p99_ms'))}",
                         "nginx over TLS",
                         f"{fmt_ms(ref.get('p50_ms'))} / {fmt_ms(ref.get('p99_ms'))}",
                         times_faster([ref["p50_ms"]], [ours["p50_ms"]]), "", ""))
    return rows


# ---------------------------------------------------------------------------------------------
# Charts


def write_dat(path, header, lines):
    with open(path, "w") as f:
        f.write("# " + header + "\n")
        for line in lines:
            f.write(" ".join("NaN" if v is None else f"{v}" for v in line) + "\n")


def gnuplot(script, datdir, notes):
    path = os.path.join(datdir, "chart.gp")
    with open(path, "w") as f:
        f.write(script)
    p = subprocess.run(["gnuplot", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=60)
    if p.returncode != 0:
        err = " ".join(line.strip() for line in p.stdout.splitlines() if line.strip())
        notes.append(f"gnuplot failed on {path}: {err[-400:]}")


def style(color, solid=True, lw=2):
    """One series: a colour per measured thing; solid with nsids, dashed without."""
    return f"w lp lw {lw} pt {7 if solid else 5} dt {1 if solid else 2} lc rgb '{color}'"


IP, IP2, OURS, OURS2, OURS3 = "#c0392b", "#e67e22", "#2471a3", "#17a589", "#7d3c98"

CHART_HEAD = """set terminal pngcairo size 1060,520 font "DejaVu Sans,10" noenhanced
set output '{png}'
set title '{title}'
set grid
set key outside right top vertical spacing 1.3 width -4
set logscale x
set xlabel '{xlabel}'
set ylabel '{ylabel}'
"""


def charts(a, R, resdir, datdir):
    made = {}
    sc = R.get("scaling", {})

    def med(mode, n, key, scale=1.0):
        s = sc.get(mode, {}).get(str(n), {})
        return median(s[key]) * scale if s.get(key) else None

    sizes = a.size_list
    xt = ("set xtics (" + ", ".join(f"'{n}' {n}" for n in sizes) + ")\n"
          + f"set xrange [{min(sizes) / 1.4}:{max(sizes) * 1.4}]\n")
    if any(med(m, n, "list_ms") for m in ("nsid", "plain") for n in sizes):
        dat = os.path.join(datdir, "list.dat")
        write_dat(dat, "N netnsd_nsid ip_nsid netnsd_plain ip_plain (median ms)",
                  [(n, med("nsid", n, "list_ms"), med("nsid", n, "ip_ms"),
                    med("plain", n, "list_ms"), med("plain", n, "ip_ms")) for n in sizes])
        png = os.path.join(resdir, "list.png")
        gnuplot(CHART_HEAD.format(png=png, title="Listing all namespaces: median time",
                                  xlabel="namespaces (N)", ylabel="ms (log scale)")
                + xt + "set logscale y\n"
                + f"plot '{dat}' u 1:3 {style(IP)} t 'ip -j netns list, with nsids', "
                f"'' u 1:5 {style(IP, False)} t 'ip -j netns list, without nsids', "
                f"'' u 1:2 {style(OURS)} t 'GET /api/v1/netns, with nsids', "
                f"'' u 1:4 {style(OURS, False)} t 'GET /api/v1/netns, without nsids'\n",
                datdir, R["notes"])
        made["list"] = png
    if any(med(m, n, "identify_ms") for m in ("nsid", "plain") for n in sizes):
        dat = os.path.join(datdir, "lookup.dat")
        write_dat(dat, "N api_identify ip_identify api_get ip_list (with nsids) "
                  "api_identify ip_identify api_get (without), median ms",
                  [(n, med("nsid", n, "identify_ms"), med("nsid", n, "ip_identify_ms"),
                    med("nsid", n, "get_ms"), med("nsid", n, "ip_ms"),
                    med("plain", n, "identify_ms"), med("plain", n, "ip_identify_ms"),
                    med("plain", n, "get_ms")) for n in sizes])
        png = os.path.join(resdir, "lookup.png")
        gnuplot(CHART_HEAD.format(png=png, title="Single lookups: median time",
                                  xlabel="namespaces (N)", ylabel="ms (log scale)")
                + xt + "set logscale y\n"
                + f"plot '{dat}' u 1:5 {style(IP)} t 'ip -j netns list (by name), with nsids', "
                f"'' u 1:3 {style(IP2)} t 'ip netns identify PID, with nsids', "
                f"'' u 1:7 {style(IP2, False)} t 'ip netns identify PID, without', "
                f"'' u 1:2 {style(OURS2)} t 'GET /api/v1/processes/PID/netns, with nsids', "
                f"'' u 1:6 {style(OURS2, False)} t 'GET /api/v1/processes/PID/netns, without', "
                f"'' u 1:4 {style(OURS3)} t 'GET /api/v1/netns/NAME, with nsids', "
                f"'' u 1:8 {style(OURS3, False)} t 'GET /api/v1/netns/NAME, without'\n",
                datdir, R["notes"])
        made["lookup"] = png
    if any(med(m, n, "start_ms") for m in ("nsid", "plain") for n in sizes):
        empty = R.get("rss_empty")
        dat = os.path.join(datdir, "memory.dat")
        write_dat(dat, "N start_nsid start_plain rss_nsid_MiB rss_plain_MiB perns_nsid_B "
                  "perns_plain_B",
                  [(n, med("nsid", n, "start_ms"), med("plain", n, "start_ms"),
                    med("nsid", n, "rss", 1 / 1048576), med("plain", n, "rss", 1 / 1048576),
                    (med("nsid", n, "rss") - empty) / n if empty and med("nsid", n, "rss") else None,
                    (med("plain", n, "rss") - empty) / n if empty and med("plain", n, "rss") else None)
                   for n in sizes])
        png = os.path.join(resdir, "startup.png")
        gnuplot(CHART_HEAD.format(png=png, title="Cold start to a full list: median time",
                                  xlabel="namespaces (N)", ylabel="ms (log scale)")
                + xt + "set logscale y\n"
                + f"plot '{dat}' u 1:2 {style(OURS)} t 'netnsd, with nsids', "
                f"'' u 1:3 {style(OURS, False)} t 'netnsd, without nsids', "
                f"{START_GOAL_MS} w l dt 2 lc rgb 'gray40' t 'goal at 5000 (issue 2)'\n",
                datdir, R["notes"])
        made["startup"] = png
        png = os.path.join(resdir, "memory.png")
        gnuplot(CHART_HEAD.format(png=png, title="RSS after the first full list",
                                  xlabel="namespaces (N)", ylabel="MiB")
                + xt + "set y2label 'bytes per namespace (over an empty dir)'\n"
                "set y2tics\nset ytics nomirror\nset yrange [0:*]\nset y2range [0:*]\n"
                + f"plot '{dat}' u 1:4 {style(OURS)} t 'RSS, with nsids', "
                f"'' u 1:5 {style(OURS, False)} t 'RSS, without nsids', "
                f"'' u 1:6 axes x1y2 {style(OURS3, lw=1)} t 'per namespace, with nsids (right axis)', "
                f"'' u 1:7 axes x1y2 {style(OURS3, False, lw=1)} t 'per namespace, without (right axis)', "
                f"{RSS_GOAL_B} axes x1y2 w l dt 2 lc rgb 'gray40' t '1 KiB per namespace goal'\n",
                datdir, R["notes"])
        made["memory"] = png
    fan = (R.get("events") or {}).get("fanout", {})
    pts = [(int(s), median([r["total_ms"] for r in runs if "total_ms" in r]),
            max([r["total_ms"] for r in runs if "total_ms" in r]))
           for s, runs in fan.items() if any("total_ms" in r for r in runs)]
    if len(pts) >= 2:
        pts.sort()
        dat = os.path.join(datdir, "fanout.dat")
        base = pts[0][1] if pts[0][0] == 1 else None
        write_dat(dat, "subscribers median_ms max_ms two_x_one", [(s, m, x, 2 * base if base else None)
                                                                    for s, m, x in pts])
        png = os.path.join(resdir, "fanout.png")
        gnuplot(CHART_HEAD.format(png=png, title=f"Fan-out of {2 * a.ev_count} events: until "
                                  "the last subscriber has the last event",
                                  xlabel="websocket subscribers", ylabel="ms")
                + "set xtics (" + ", ".join(f"'{s}' {s}" for s, _, _ in pts) + ")\n"
                + f"set xrange [{pts[0][0] / 1.6}:{pts[-1][0] * 1.6}]\n"
                "set yrange [0:*]\n"
                + f"plot '{dat}' u 1:2 {style(OURS)} t 'netnsd, median', "
                f"'' u 1:3 w p pt 2 t 'netnsd, max', "
                f"'' u 1:4 w l dt 2 lc rgb 'gray40' t '2x the 1-subscriber time (issue 3 goal)'\n",
                datdir, R["notes"])
        made["fanout"] = png
    return made


# ---------------------------------------------------------------------------------------------
# RESULTS.md


def table(rows):
    out = ["| figure | netnsd median / p99 | reference | reference median / p99 | ratio | "
           "goal | met? |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return out


def human_s(s):
    m, s = divmod(int(round(s)), 60)
    return f"{m} min {s} s" if m else f"{s} s"


AB_BEGIN = "<!-- websocket-ab: written by bench/run --only websocket-ab; kept by full runs -->"
AB_END = "<!-- websocket-ab: end -->"


def kept_block(path):
    """The websocket-ab block of an earlier RESULTS.md at `path`, as lines, or None."""
    try:
        lines = open(path).read().split("\n")
    except OSError:
        return None
    if AB_BEGIN not in lines or AB_END not in lines:
        return None
    return lines[lines.index(AB_BEGIN):lines.index(AB_END) + 1]


def write_results(a, R, made, path):
    rel = lambda p: os.path.relpath(p, os.path.dirname(path))
    F = R["facts"]
    o = []
    o.append("# netnsd benchmark results\n")
    prep = f"{human_s(a.prep_s)} before that for packages and builds" if a.prep_s else "plus the build"
    o.append(f"Written by `{R['invocation']}` on {F['date']}: measuring took "
             f"{human_s(R['total_s'])} ({prep}). Do not edit by hand: re-run it. How each figure "
             "is measured: [README.md](README.md#benchrun-all-of-it-and-resultsmd).\n")
    o.append("| | |\n|---|---|")
    for k in ("cpu", "ram", "kernel", "os", "netnsd", "compiler", "ip", "wrk", "nginx",
              "gnuplot", "python"):
        o.append(f"| {k} | {F.get(k, 'unknown')} |")
    o.append(f"| load average (1/5/15 min) | before: {R['load_start']}; after: {R['load_end']} |")
    o.append("")
    o.append("Everything ran in a private sandbox (`tests/support/sandbox`: new mount and network "
             "namespaces, tmpfs on /run and /run/netns); traffic went only to the sandbox's own "
             "127.0.0.1. netnsd, the reference tools and the clients shared the machine's "
             f"{F.get('nproc', '?')} CPUs. Ratios: for times, reference ÷ netnsd (above 1: netnsd "
             "is faster); for throughput, netnsd ÷ reference. p99 is the nearest-rank 99th "
             "percentile: with fewer than 100 samples it is the maximum.\n")

    sections = [
        ("list", "List: `GET /api/v1/netns` vs `ip -j netns list`", rows_list,
         "netnsd serves the list from its model (a cached body); `ip` opens every entry and asks "
         "the kernel for its nsid (RTM_GETNSID, which walks the nsid table), so it grows faster "
         "than linearly when the namespaces have nsids.", ["list"]),
        ("lookup", "Single lookup", rows_lookup,
         "Two questions. *Which names does this process's network namespace have?* — "
         "`ip netns identify PID` opens and stats every entry of /run/netns; netnsd answers from "
         "its model (where its last /proc sweep saw the process, as the inventory shows that "
         "namespace). *What is "
         "namespace NAME (live? nsid?)* — `ip` has no per-name query, so a script lists "
         "everything (`ip -j netns list | jq ...`); the reference column is the `ip -j netns "
         "list` runs of the list section, without the filter's own cost.", ["lookup"]),
        ("events", "Events: creation → client latency, `ip netns monitor`, fan-out", rows_events,
         "One C++ client (bench/evlat) is both the creator (the system calls of `ip netns add`) and "
         "the websocket subscriber, so both ends read one clock. `ip netns monitor` watches the "
         "burst through inotify and prints `add` when the file is created, before the namespace "
         "is mounted on it: its negative latencies are lines that came before the namespace "
         "existed. Delete latency is from the *call* of umount2(MNT_DETACH), which itself can "
         "take ~10 ms (an RCU grace period).", ["fanout"]),
        ("websocket-ab", "Websocket framing A/B: the hub's frames vs Beast's websocket::stream",
         rows_websocket_ab,
         "The fan-out runs of the events section (bench/evlat fanout: S websocket subscribers, "
         "then a creator makes N namespaces and deletes them as fast as it can) against netnsd "
         "as shipped, whose websocket clients get the hub's frames (each event framed once, "
         "shared by every client, up to 256 frames in one write), and against a build with "
         "NETNSD_BENCH_BEAST_WEBSOCKET, whose clients get Beast's `websocket::stream` writing "
         "each event's text (Beast frames it per client, one write per event). Each run has a "
         "fresh netnsd of its kind, alone; runs are interleaved and the order of the two flips "
         "every run. Ratios: Beast ÷ frames (above 1: the frames are faster or cheaper).", []),
        ("admin", "Admin: create/delete and exec", rows_admin,
         "The API is driven by bench/churn, a C++ client compiled like mkns: 4 threads, one "
         "keep-alive connection each, so that the figure set beside the floor is netnsd's work "
         "rather than a Python interpreter's (the Python client it replaced took ~0.065 ms of "
         "CPU a request, ~10% of the two CPUs); each request is answered once the model shows "
         "the change. `ip` runs one process per namespace in a "
         "bash loop; mkns is the kernel floor (one process doing only the system calls).", []),
        ("http", "HTTP and HTTPS: wrk, netnsd vs nginx", rows_http,
         "wrk (1 thread) at 1 and 64 connections; nginx (Debian's nginx-light, one process "
         "serving, like netnsd's one thread; open_file_cache, no access log) serves the very "
         "bytes netnsd answered as static files at the same paths. Runs are interleaved; each "
         "figure is the median of the runs. Latency percentiles are wrk's. HTTPS: the same, "
         "netnsd with --tls-cert and nginx with ssl, one ECDSA P-256 certificate, TLS 1.3 on "
         f"both; handshakes are wrk at -c{HANDSHAKE_CONNS} sending `Connection: close`, so "
         "every request is a new connection and a full handshake (wrk does not resume "
         "sessions).", []),
        ("memory", "Memory and start-up", rows_memory,
         "RSS (VmRSS) right after the first `GET /api/v1/netns` that lists all N, median of the "
         "starts; per namespace = (RSS at N − RSS on an empty dir) ÷ N. Start-up is from spawning "
         "netnsd to receiving that first full list (the first scan, every nsid query, one "
         "HTTP round trip); the reference is one `ip -j netns list` at the same N.",
         ["startup", "memory"]),
        ("links", "Inside the namespaces: `GET .../links` vs `ip -n NAME -j addr`; the "
         "LISTEN_ALL_NSID tax", rows_links,
         "Each namespace has a veth pair to netnsd's namespace (so an nsid there) and an address. "
         "netnsd dumps each namespace by nsid over rtnetlink on a worker when asked "
         "(RTM_GETLINK, RTM_GETADDR, and the peers' links), and each request here asks a "
         "namespace it has not read in the last second; `ip` is a process per namespace. The "
         "tax: with a NETLINK_LISTEN_ALL_NSID socket joined to the link group open anywhere, "
         "the kernel looks up, for every link notification on the host, the nsid the "
         "listener's namespace has for the namespace it happened in (a walk of that nsid "
         "table); measured as the send→ack time of RTM_NEWLINK up/down on a veth in a "
         "namespace with no nsid (so the walk is a whole one), from a process in it, with the "
         "process's own system time in brackets. netnsd opens such a listener only with "
         "--watch-links, measured the same way with netnsd running. Link event latency: a veth "
         "set up (and down) from a socket in a namespace with an nsid, timed from the send to "
         "the `link` event on a websocket of netnsd --watch-links, changes 270 ms apart (each "
         "the first of its 250 ms coalescing window).",
         []),
        ("ifmetrics", "Per-interface metrics: a /metrics scrape vs the exporter's ways",
         rows_ifmetrics,
         "Each namespace has a veth pair to netnsd's namespace (so an nsid there), lo and eth0 "
         "up and an address. netnsd runs with --metrics-interfaces and a cap above the series "
         "there are; a cold scrape is more than a second after the last (so every namespace is "
         "dumped: one RTM_GETLINK by nsid each, on a worker, split over the CPUs), a warm one "
         "right after it (the text kept for a second). The exporter's ways read the same "
         "counters: `ip -n NAME -s -j link` (a process per namespace), and bench/setns_links "
         "(one process: setns into each namespace, a socket and a link dump there, setns back). "
         "The interfaces include the lhI ends in netnsd's own namespace.", []),
        ("inventory", "Every network namespace of the host: the inventory at scale", rows_inventory,
         "N namespaces held only by processes (bench/procs: children that unshare(CLONE_NEWNET) "
         "and pause(), like `unshare -n sleep`) and idle processes besides, against one netnsd "
         "at its default --sweep-interval (5 s). `lsns -t net -J` reads /proc (every process's "
         "ns/net, and its nsfs mounts); netnsd serves its model (a cached body). The sweep's "
         "duration is its histogram's mean over the quiet window; the CPU share is netnsd's "
         "user+system time over that window (the sweep is nearly all it does then). Detection "
         "and destroyed latency are bounded by the sweep interval: the starts and kills are "
         "spread at random over half of it, so the figures sample the whole range.", []),
        ("nsid", "nsid resolution (the nsid race)", rows_nsid,
         "The kernel's RTM_NEWNSID carries only the number; netnsd must find which namespace got "
         "it. A bash loop runs `ip netns set NAME auto` over namespaces that have none while a "
         "poller asks `GET /api/v1/nsids` every ~2 ms.", []),
    ]
    goals, body = [], []
    for key, title, fn, text, pngs in sections:
        if key == "websocket-ab" and key not in a.sections and R.get("kept_websocket_ab"):
            # The A/B is not part of a full run: the last one's block stays as it was.
            body.extend(R["kept_websocket_ab"] + [""])
            continue
        if key not in a.sections:
            continue
        rows = fn(a, R)
        if key == "websocket-ab":
            # A block of its own, which a later full run keeps (see kept_block).
            sec = R["sections"].get(key, {})
            body.append(AB_BEGIN)
            body.append(f"### {title}\n")
            body.append(f"Measured by `{R['invocation']}` on {F['date']} (netnsd "
                        f"{F.get('netnsd', '?')}; load average {sec.get('load_start', '?')} "
                        f"before, {sec.get('load_end', '?')} after); not part of a full run, "
                        "which keeps this block as it is.\n")
        else:
            body.append(f"## {title}\n")
        body.append(text + "\n")
        if rows:
            body.extend(table(rows))
        else:
            body.append("No figures: the section did not complete (see the notes).")
        body.append("")
        for p in pngs:
            if p in made:
                body.append(f"![{p}]({rel(made[p])})\n")
        extra = details(key, a, R)
        if extra:
            body.extend(extra)
            body.append("")
        if key == "websocket-ab":
            body.extend([AB_END, ""])
        goals += [(title.split(":")[0], r) for r in rows if r[5] and r[6]]

    o.append("## The goals from the issues\n")
    o.append("| section | figure | netnsd | reference | ratio | goal | met? |")
    o.append("|---|---|---|---|---|---|---|")
    for sec, r in goals:
        ref = f"{r[2]}: {r[3]}" if r[2] and r[3] else r[3] or r[2]
        o.append(f"| {sec} | {r[0]} | {r[1]} | {ref} | {r[4]} | {r[5]} | {r[6]} |")
    if not goals:
        o.append("| | none measured in this run | | | | | |")
    o.append("")
    o.extend(body)
    o.append("## Commands\n")
    o.append("```")
    o.append(f"{R['invocation']}   # as root; it ran the following inside the sandbox")
    counts = {}  # in order of first use
    for key in ("events", "admin", "http", "nsid", "scaling", "inventory", "websocket-ab"):
        for c in R["commands"].get(key, []):
            # repeated fan-out runs differ only in their prefix and netnsd's pid
            c = re.sub(r"--prefix f(\d+)r\d+_", r"--prefix f\1rRUN_", c)
            if re.search(r"--prefix ab[a-z]+\d+r\d+_", c):  # the A/B: a fresh netnsd per run
                c = re.sub(r"--prefix ab([a-z]+)(\d+)r\d+_", r"--prefix ab\1\2rRUN_", c)
                c = re.sub(r"--port \d+", "--port PORT", c)
            c = re.sub(r"--netnsd-pid \d+", "--netnsd-pid PID", c)
            counts[c] = counts.get(c, 0) + 1
    for c, k in counts.items():
        o.append(c + (f"   # × {k}" if k > 1 else ""))
    o.append("```\n")
    o.append("Sections: " + ", ".join(f"{k} {human_s(v['seconds'])} (load {v['load_start']} → "
                                       f"{v['load_end']})" for k, v in R["sections"].items())
             + ".\n")
    o.append("## Notes\n")
    notes = R["notes"] or ["none: every phase converged and every process exited cleanly"]
    o.extend(f"* {n}" for n in notes)
    text = "\n".join(o) + "\n"
    root = a.root.rstrip("/") + "/"
    return text.replace(root, "")


def details(key, a, R):
    out = []
    if key == "list":
        for mode, what in MODES:
            for n, s in measured(a, R, mode, "list_ms"):
                out.append(f"* N={n} {what}: {s['list_bytes']:,} bytes per list, "
                           f"{len(s['list_ms'])} requests ({s['list_reconnects']} reconnects), "
                           f"{len(s['ip_ms'])} ip runs; load {s['load']}")
    if key == "http" and R.get("http", {}).get("facts"):
        for label, f in R["http"]["facts"].items():
            out.append(f"* `{f['path']}`: body {f['body_bytes']} bytes; headers: netnsd "
                       f"{f['netnsd_header_bytes']} bytes, nginx {f.get('nginx_header_bytes')} "
                       "bytes")
        for label, f in R["http"].get("tls_facts", {}).items():
            out.append(f"* over TLS, `{f['path']}`: headers netnsd {f['netnsd_header_bytes']} "
                       f"bytes, nginx {f.get('nginx_header_bytes')} bytes (the same body)")
        out.append(f"* {R['http']['n']} namespaces present (with nsids); "
                   f"{a.http_repeats} runs of {a.http_seconds} s per server, target and "
                   "connection count")
    if key == "admin" and R.get("admin"):
        S = admin_summary(R["admin"])
        if "api" in S and "ip" in S and "floor" in S:
            out.append("* per namespace, wall time of each half ÷ N (median of rounds): create "
                       f"API {fmt_ms(median(S['api']['create_wall']))}, ip "
                       f"{fmt_ms(median(S['ip']['create_wall']))}, mkns "
                       f"{fmt_ms(median(S['floor']['create_wall']))}; delete API "
                       f"{fmt_ms(median(S['api']['delete_wall']))}, ip "
                       f"{fmt_ms(median(S['ip']['delete_wall']))}, mkns "
                       f"{fmt_ms(median(S['floor']['delete_wall']))}")
    if key == "events" and R.get("events"):
        E = R["events"]
        fan = E.get("fanout", {})
        for s in sorted(fan, key=int):
            for i, r in enumerate(fan[s]):
                if "total_ms" in r:
                    out.append(f"* fan-out {s}, run {i + 1}: {fmt_ms(r['total_ms'])}; CPU netnsd "
                               f"{fmt_ms(r.get('netnsd_cpu_ms'))}, subscriber client "
                               f"{fmt_ms(r.get('client_io_cpu_ms'))}, creator "
                               f"{fmt_ms(r.get('creator_cpu_ms'))}; load {r.get('load')}")
        out.append("* more in bench/out/events.md (written by the same run, not committed)")
    if key == "websocket-ab" and R.get("websocket_ab"):
        AB = R["websocket_ab"]
        for s in sorted(AB.get("frames", {}), key=int):
            for label in ("frames", "beast"):
                for i, r in enumerate(AB.get(label, {}).get(s, [])):
                    out.append(f"* {label}, {s} subscriber{'s' if s != '1' else ''}, run {i + 1}: "
                               f"{fmt_ms(r.get('total_ms'))}; CPU netnsd "
                               f"{fmt_ms(r.get('netnsd_cpu_ms'))}, subscriber client "
                               f"{fmt_ms(r.get('client_io_cpu_ms'))}, creator "
                               f"{fmt_ms(r.get('creator_cpu_ms'))}; "
                               f"{r.get('exact', 0)}/{r['subs']} exact; load {r.get('load')}")
        seen = []
        for c in R["commands"].get("websocket-ab", []):
            c = re.sub(r"--prefix ab([a-z]+)(\d+)r\d+_", r"--prefix ab\1\2rRUN_", c)
            c = re.sub(r"--port \d+", "--port PORT", c)
            c = re.sub(r"--netnsd-pid \d+", "--netnsd-pid PID", c)
            if c not in seen:
                seen.append(c)
        out += ["", "Commands, inside the sandbox (each evlat run × the repetitions):", "", "```"]
        out += seen + ["```"]
    if key == "memory" and "rss_empty" in R:
        for mode, what in MODES:
            for n, s in measured(a, R, mode, "rss_model_only"):
                out.append(f"* N={n} {what}: model alone (a start watched through /healthz) "
                           f"complete {fmt_ms(s['healthz_start_ms'])} after spawn, RSS "
                           f"{(s['rss_model_only'] - R['rss_empty']) / n:.0f} B per namespace; "
                           "after the list benchmark "
                           f"{(s['rss_after_list'] - R['rss_empty']) / n:.0f} B")
    if key == "nsid":
        for order in ("name", "reverse", "random"):
            r = R.get("race", {}).get(order)
            if r:
                out.append(f"* {order} order: netnsd CPU during the loop {fmt_ms(r['cpu_ms'])} "
                           f"({r['cpu_ms'] / r['n']:.2f} ms per nsid); polls of /api/v1/nsids "
                           f"median {fmt_ms(median(r['poll_ms']) if r['poll_ms'] else None)}, "
                           f"max {fmt_ms(max(r['poll_ms']) if r['poll_ms'] else None)}")
    return out


# ---------------------------------------------------------------------------------------------


def first_line(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return p.stdout.strip().splitlines()[0]
    except Exception as e:
        return f"unknown ({e})"


def dpkg_version(pkg):
    return first_line(["dpkg-query", "-W", "-f=${Version}", pkg])


def facts(a):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    nproc = os.cpu_count()
    try:
        debian = open("/etc/debian_version").read().strip()
    except OSError:
        debian = "?"
    built = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.stat(a.netnsd).st_mtime))
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": nproc,
        "cpu": f"{nproc} cores, {cpu}",
        "ram": f"{mem / 2**30:.1f} GiB",
        "kernel": f"Linux {platform.release()} ({platform.machine()})",
        "os": f"Debian {debian}",
        "netnsd": f"{a.revision}, Release build (build/release/netnsd, built {built})",
        "compiler": first_line(["g++", "--version"]),
        "ip": first_line(["ip", "-V"]),
        "wrk": f"wrk {dpkg_version('wrk')} (Debian package)",
        "nginx": f"{first_line(['nginx', '-v']).replace('nginx version: ', '')} (Debian package "
                 f"nginx-light {dpkg_version('nginx-light')})",
        "gnuplot": first_line(["gnuplot", "--version"]),
        "python": platform.python_version(),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--netnsd", required=True)
    ap.add_argument("--mkns", required=True)
    ap.add_argument("--evlat", required=True)
    ap.add_argument("--churn", default=None,
                    help="bench/churn (the compiled API client of the admin section); without "
                         "it Python threads make the requests")
    ap.add_argument("--procs", required=True, help="bench/procs, built (for inventory)")
    ap.add_argument("--forktax", default=None, help="bench/forktax, built (for inventory)")
    ap.add_argument("--mounttax", default=None, help="bench/mounttax, built (for inventory)")
    ap.add_argument("--setns-links", required=True,
                    help="bench/setns_links, built (for ifmetrics)")
    ap.add_argument("--netnsd-beast-ws", default=None,
                    help="netnsd built with NETNSD_BENCH_BEAST_WEBSOCKET, for websocket-ab")
    ap.add_argument("--root", required=True, help="the repository (for relative paths)")
    ap.add_argument("--revision", default="unknown")
    ap.add_argument("--invocation", default="bench/run")
    ap.add_argument("--prep-s", type=float, default=0,
                    help="seconds bench/run spent on packages and builds, for the report")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", action="append", default=[],
                    help="a section (or a comma-separated list): " + ", ".join(SECTIONS))
    ap.add_argument("--out", help="RESULTS.md to write (default: bench/RESULTS.md for a full "
                    "run of every section, else bench/out/RESULTS.md)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="sections that would start after this many seconds are skipped "
                    "(default 2700, with --quick 300)")
    for k, v in FULL.items():
        ap.add_argument("--" + k.replace("_", "-"), type=type(v), default=None)
    a = ap.parse_args()
    preset = QUICK if a.quick else FULL
    for k, v in preset.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.budget_s is None:
        a.budget_s = 300 if a.quick else 2700
    a.size_list = [int(x) for x in a.sizes.split(",")]
    chosen = [s for x in a.only for s in x.split(",") if s]
    bad = [s for s in chosen if s not in SECTIONS]
    if bad:
        ap.error(f"unknown section {bad[0]!r}; sections: {', '.join(SECTIONS)}")
    a.sections = [s for s in SECTIONS if s in chosen or (not chosen and s not in OPT_IN)]
    a.fanout_budget_s = 330 if not a.quick else 60
    a.websocket_ab_budget_s = 480 if not a.quick else 90
    bench = os.path.dirname(os.path.abspath(__file__))
    a.outdir = os.path.join(bench, "out")
    a.logdir = os.path.join(a.outdir, "logs")
    os.makedirs(a.logdir, exist_ok=True)
    for f in os.listdir(a.logdir):
        if f.startswith(("netnsd-", "nginx", "race-")):
            os.unlink(os.path.join(a.logdir, f))
    full = not a.quick and not chosen
    if a.out is None:
        a.out = os.path.join(bench if full else a.outdir, "RESULTS.md")
    resdir = os.path.join(os.path.dirname(os.path.abspath(a.out)), "results")
    datdir = os.path.join(a.outdir, "plot")
    os.makedirs(datdir, exist_ok=True)
    if os.listdir(NETNS_DIR):
        raise SystemExit(f"{NETNS_DIR} is not empty; run this through bench/run")

    Daemon.next_port = FOUNDATION_PORT
    fa = argparse.Namespace(netnsd=a.netnsd, mkns=a.mkns, logdir=a.logdir, race_n=a.race_n,
                            seed=1, converge_s=20.0, starts=a.starts, warmup=a.warmup,
                            requests=a.requests, ip_warmup=a.ip_warmup, ip_runs=a.ip_runs)
    R = {"notes": [], "commands": {}, "sections": {}, "scaling": {}, "drains": {},
         "invocation": a.invocation, "facts": facts(a), "load_start": loadavg()}
    started = now()
    status = 0
    plan = [("events", lambda: section_events(a, R)),
            ("admin", lambda: section_admin(a, R)),
            ("http", lambda: section_http(a, R, fa)),
            ("nsid", lambda: section_nsid(a, R, fa)),
            ("scaling", lambda: section_scaling(a, R, fa)),
            ("links", lambda: section_links(a, R)),
            ("ifmetrics", lambda: section_ifmetrics(a, R)),
            ("inventory", lambda: section_inventory(a, R)),
            ("websocket-ab", lambda: section_websocket_ab(a, R))]
    for name, fn in plan:
        if name == "scaling":
            if not any(s in a.sections for s in SCALING):
                continue
        elif name not in a.sections:
            continue
        if now() - started > a.budget_s:
            R["notes"].append(f"{name}: skipped, the run had used its {a.budget_s:.0f} s budget")
            status = 1
            continue
        log(f"section {name} (load {loadavg()})")
        t, load0 = now(), loadavg()
        try:
            fn()
        except (BenchError, subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError,
                AssertionError, KeyError, ValueError) as e:
            R["notes"].append(f"{name}: stopped early: {e!r}")
            traceback.print_exc()
            status = 1
        R["sections"][name] = {"seconds": now() - t, "load_start": load0, "load_end": loadavg()}
        left = os.listdir(NETNS_DIR)
        if left:  # a failed section: start the next one from an empty dir anyway
            R["notes"].append(f"{name}: left {len(left)} entries in {NETNS_DIR}; removed them")
            for e in left:
                subprocess.run(["umount", "-l", os.path.join(NETNS_DIR, e)],
                               stderr=subprocess.DEVNULL)
                os.unlink(os.path.join(NETNS_DIR, e))
    R["total_s"] = now() - started
    R["load_end"] = loadavg()
    with open(os.path.join(a.outdir, "run.json"), "w") as f:
        json.dump(R, f, indent=1, default=str)
    os.makedirs(resdir, exist_ok=True)
    made = charts(a, R, resdir, datdir)
    if "websocket-ab" not in a.sections:
        R["kept_websocket_ab"] = kept_block(a.out)
    text = write_results(a, R, made, a.out)
    with open(a.out, "w") as f:
        f.write(text)
    print(text)
    log(f"wrote {os.path.relpath(a.out, a.root)} and {len(made)} charts in "
        f"{os.path.relpath(resdir, a.root)}/ after {human_s(R['total_s'])}")
    return status


if __name__ == "__main__":
    sys.exit(main())
