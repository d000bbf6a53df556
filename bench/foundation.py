#!/usr/bin/env python3
"""The measuring half of bench/foundation. It runs inside tests/support/sandbox (private mount
and network namespaces, tmpfs on /run and /run/netns), so every namespace, mount and nsid it
makes vanishes with the sandbox. Run bench/foundation rather than this file.

Phases, in this order so that each starts from a known kernel state:
  1. RSS of a fresh netnsd on an empty dir.
  2. nsid race (name order, then random order): 1000 namespaces without nsids, netnsd running,
     `ip netns set NAME auto` over all of them in a shell loop, while a poller watches
     GET /api/v1/nsids. Then the names are deleted and the API must drain again.
  3. For each N (1000, 5000), every namespace with an nsid: 5 cold starts (spawn to the first
     GET /api/v1/netns that lists N), RSS after that first answer, then GET /api/v1/netns on one
     keep-alive connection against `ip -j netns list` run as a process.
"""

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time

# Between polls of /api/v1/nsids during the nsid race: short against the 100 ms goal, long
# enough that the poller does not steal much of the two CPUs from `ip` and netnsd.
POLL_PAUSE_S = 0.002

from benchlib import (HOST, NETNS_DIR, BenchError, Daemon, machine_facts, median, now,
                      percentile)


def ms(seconds):
    return seconds * 1000.0


def p99(xs):
    return percentile(xs, 99)


class Client:
    """One persistent HTTP/1.1 connection. Counts reconnects, so a benchmark can show that it
    really measured keep-alive requests."""

    def __init__(self, port, timeout=20):
        self.port = port
        self.timeout = timeout
        self.conn = None
        self.connects = 0

    def get(self, path):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            self.conn.connect()
            self.connects += 1
        try:
            self.conn.request("GET", path)
            r = self.conn.getresponse()
            body = r.read()
        except Exception:
            self.close()
            raise
        if r.will_close:
            self.close()
        return r.status, body

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


def mkns(args, verb, prefix, count, nsid=False):
    cmd = [args.mkns, verb, NETNS_DIR, prefix, str(count)] + (["--nsid"] if nsid else [])
    out = run(cmd)
    return out.strip().splitlines()


def names_of(prefix, count):
    return [f"{prefix}{i:05d}" for i in range(count)]


def wait_until(what, probe, deadline_s, pause=0.002):
    """Calls probe() until it returns a true value; returns (value, seconds taken)."""
    start = now()
    last = None
    while True:
        last = probe()
        if last:
            return last, now() - start
        if now() - start > deadline_s:
            raise BenchError(f"timed out after {deadline_s:.0f} s waiting for {what}")
        time.sleep(pause)


def api_doc(client, path):
    status, body = client.get(path)
    if status != 200:
        raise BenchError(f"GET {path} answered {status}: {body[:200]!r}")
    return json.loads(body)


def count_prefix_entries(doc, prefix):
    return sum(1 for e in doc["namespaces"] if e["name"].startswith(prefix))


def count_prefix_nsids(doc, prefix):
    return sum(1 for r in doc["nsids"] if (r.get("name") or "").startswith(prefix))


def kernel_nsid_count():
    """How many named namespaces have an nsid, as `ip` sees them (per-file GETNSID, never the
    truncated dump)."""
    listed = json.loads(run(["ip", "-j", "netns", "list"]) or "[]")
    return sum(1 for e in listed if "id" in e), len(listed)


# ---------------------------------------------------------------------------------------------
# Phases


def first_answer(daemon, want, deadline_s=30.0):
    """Tight poll from spawn until GET /api/v1/netns lists `want` entries. Returns the seconds
    from spawn to receiving that answer, the client, and the smaller counts seen on the way."""
    client = Client(daemon.port)
    partial = []
    refused = 0
    while True:
        daemon.check_alive()
        if now() - daemon.spawned_at > deadline_s:
            raise BenchError(
                f"netnsd ({daemon.label}) did not list {want} entries within {deadline_s:.0f} s "
                f"(counts seen: {partial[-5:]}, refused connects: {refused})"
            )
        try:
            status, body = client.get("/api/v1/netns")
        except (ConnectionRefusedError, ConnectionResetError, http.client.HTTPException, OSError):
            refused += 1
            time.sleep(0.0005)
            continue
        received = now()
        if status != 200:
            partial.append(f"HTTP {status}")
            continue
        count = len(json.loads(body)["namespaces"])
        if count == want:
            return received - daemon.spawned_at, client, partial
        partial.append(count)


def phase_rss_empty(args, R):
    d = Daemon(args.netnsd, args.logdir, "empty", R["notes"])
    try:
        elapsed, client, _ = first_answer(d, 0)
        R["start_empty_ms"] = ms(elapsed)
        R["rss_empty"] = d.rss_bytes()
        client.close()
    finally:
        d.stop()


def phase_nsid_race(args, R, order):
    n = args.race_n
    prefix = {"name": "seq", "reverse": "rev", "random": "rnd"}[order]
    label = f"race-{order}"
    res = {"order": order, "n": n}
    res["mkns"] = mkns(args, "add", prefix, n)
    d = Daemon(args.netnsd, args.logdir, label, R["notes"])
    try:
        _, client, _ = first_answer(d, n)
        names = names_of(prefix, n)
        if order == "reverse":
            names.reverse()
        elif order == "random":
            random.Random(args.seed).shuffle(names)
        listfile = os.path.join(args.logdir, f"{label}.names")
        with open(listfile, "w") as f:
            f.write("\n".join(names) + "\n")

        state = {"full_at": None, "last": 0, "polls": [], "error": None}
        stop = threading.Event()

        def poll():
            pc = Client(d.port)
            try:
                while not stop.is_set():
                    sent = now()
                    doc = api_doc(pc, "/api/v1/nsids")
                    got = now()
                    state["polls"].append(ms(got - sent))
                    state["last"] = count_prefix_nsids(doc, prefix)
                    if state["last"] >= n:
                        state["full_at"] = got
                        return
                    time.sleep(POLL_PAUSE_S)
            except Exception as e:  # reported by the main thread
                state["error"] = repr(e)
            finally:
                pc.close()

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        loop = 'for n in $(cat "$1"); do ip netns set "$n" auto; done'
        cpu_start = d.cpu_seconds()
        t_start = now()
        subprocess.run(["bash", "-c", loop, "loop", listfile], check=True)
        t_end = now()
        poller.join(timeout=args.converge_s)
        stop.set()
        poller.join(timeout=5)
        res["cpu_ms"] = ms(d.cpu_seconds() - cpu_start)
        res["loop_ms"] = ms(t_end - t_start)
        res["polls"] = len(state["polls"])
        res["poll_ms"] = state["polls"]
        if state["error"]:
            res["error"] = state["error"]
        if state["full_at"] is not None:
            res["lag_ms"] = ms(state["full_at"] - t_end)
            res["start_to_full_ms"] = ms(state["full_at"] - t_start)
        else:
            k_ids, k_names = kernel_nsid_count()
            res["lag_ms"] = None
            res["stuck_at"] = state["last"]
            R["notes"].append(
                f"nsid race ({order} order): GET /api/v1/nsids showed {state['last']} of {n} "
                f"nsids {args.converge_s:.0f} s after the loop ended, while the kernel has "
                f"{k_ids} of {k_names} named namespaces with an nsid"
            )

        # Drain: delete them all; the API must lose the names at once and the nsids when the
        # kernel frees the namespaces (RTM_DELNSID).
        res["mkns_del"] = mkns(args, "del", prefix, n)
        t_del = now()

        def drained():
            a = api_doc(client, "/api/v1/netns")
            b = api_doc(client, "/api/v1/nsids")
            return count_prefix_entries(a, prefix) == 0 and len(b["nsids"]) == 0

        try:
            _, res["drain_s"] = wait_until("the API to drain", drained, args.converge_s, 0.01)
        except BenchError as e:
            b = api_doc(client, "/api/v1/nsids")
            res["drain_s"] = None
            R["notes"].append(
                f"nsid race ({order} order): after deleting all {n} names, {e}; "
                f"GET /api/v1/nsids still lists {len(b['nsids'])} nsids"
            )
        client.close()
    finally:
        d.stop()
    # Whatever netnsd thought, the next phase needs an empty nsid table in the kernel.
    try:
        wait_until(
            "the kernel to free the deleted namespaces",
            lambda: run(["ip", "netns", "list-id"]).strip() == "",
            args.converge_s,
            0.05,
        )
        res["kernel_drain_s"] = now() - t_del
    except BenchError as e:
        R["notes"].append(f"nsid race ({order} order): {e}")
    R["race"][order] = res


def make_namespaces(args, prefix, count, present, nsid):
    """Adds `count` namespaces (PREFIX00000...) to the `present` ones and checks with `ip` that
    the kernel has them all, with an nsid each or none. Returns mkns's output lines."""
    lines = mkns(args, "add", prefix, count, nsid=nsid) if count > 0 else []
    n = present + count
    k_ids, k_names = kernel_nsid_count()
    if k_names != n or k_ids != (n if nsid else 0):
        raise BenchError(f"expected {n} namespaces {'with' if nsid else 'without'} nsids, "
                         f"ip sees {k_ids} with an nsid among {k_names}")
    return lines


def cold_starts(args, R, n, label, count):
    """`count` starts of netnsd on the N present namespaces: from spawn to the first
    GET /api/v1/netns listing all N, and the RSS right after it. Returns (ms list, RSS list)."""
    starts, rss = [], []
    for i in range(count):
        daemon = Daemon(args.netnsd, args.logdir, f"{label}-start{i}", R["notes"])
        try:
            elapsed, client, partial = first_answer(daemon, n)
            starts.append(ms(elapsed))
            rss.append(daemon.rss_bytes())
            client.close()
        finally:
            daemon.stop()
        if partial:
            R["notes"].append(
                f"{label} start {i}: the first answers listed fewer entries than present: "
                f"{partial[:5]} before {n}"
            )
    return starts, rss


def start_model_only(args, R, n, label, expect_nsid=True):
    """One more start, watched through /healthz only, which separates the model from the cached
    list; then one GET /api/v1/netns checks what the API shows. Returns the running daemon, a
    keep-alive client on it and the figures (the caller stops the daemon)."""
    daemon = Daemon(args.netnsd, args.logdir, f"{label}-healthz", R["notes"])
    client = Client(daemon.port)
    res = {}

    def model_complete():
        daemon.check_alive()
        try:
            doc = api_doc(client, "/healthz")
        except (ConnectionRefusedError, ConnectionResetError, http.client.HTTPException, OSError):
            return None
        return doc.get("namespaces") == n

    try:
        wait_until("/healthz to count all namespaces", model_complete, 30.0, 0.0005)
        res["healthz_start_ms"] = ms(now() - daemon.spawned_at)
        res["rss_model_only"] = daemon.rss_bytes()
        status, body = client.get("/api/v1/netns")
        doc = json.loads(body)
        with_nsid = sum(1 for e in doc["namespaces"] if e.get("nsid") is not None)
        live = sum(1 for e in doc["namespaces"] if e.get("state") == "live")
        res["api_with_nsid"] = with_nsid
        res["api_live"] = live
        if with_nsid != (n if expect_nsid else 0) or live != n:
            R["notes"].append(
                f"{label}: GET /api/v1/netns shows {live} live entries and {with_nsid} with an "
                f"nsid; the kernel has {n} live, {n if expect_nsid else 0} with an nsid"
            )
        res["list_bytes"] = len(body)
    except BaseException:
        client.close()
        daemon.stop()
        raise
    return daemon, client, res


def timed_gets(client, paths, warmup):
    """GETs each path in turn on one keep-alive connection, after `warmup` untimed GETs of the
    first. Returns (ms per request, reconnects during the timed ones)."""
    for _ in range(warmup):
        client.get(paths[0])
    connects_before = client.connects
    samples = []
    for path in paths:
        t = now()
        status, _ = client.get(path)
        samples.append(ms(now() - t))
        if status != 200:
            raise BenchError(f"GET {path} answered {status}")
    return samples, client.connects - connects_before


def timed_runs(cmd, warmup, runs, check=None):
    """Runs cmd as a process warmup + runs times, output read; returns ms per timed run."""
    samples = []
    for i in range(warmup + runs):
        t = now()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, check=True)
        dt = ms(now() - t)
        if i >= warmup:
            samples.append(dt)
    if check is not None:
        check(p.stdout)
    return samples


def ip_list_samples(n, warmup, runs):
    def check(out):
        listed = json.loads(out)
        if len(listed) != n:
            raise BenchError(f"ip -j netns list printed {len(listed)} entries, expected {n}")

    return timed_runs(["ip", "-j", "netns", "list"], warmup, runs, check)


def phase_size(args, R, n, prefix, present):
    res = {"n": n}
    res["mkns"] = make_namespaces(args, prefix, n - present, present, nsid=True)
    res["start_ms"], res["rss"] = cold_starts(args, R, n, f"n{n}", args.starts)
    daemon, client, model = start_model_only(args, R, n, f"n{n}")
    res.update(model)
    try:
        res["list_ms"], res["list_reconnects"] = timed_gets(
            client, ["/api/v1/netns"] * args.requests, args.warmup)
        res["rss_after_list"] = daemon.rss_bytes()
    finally:
        client.close()
        daemon.stop()
    res["ip_ms"] = ip_list_samples(n, args.ip_warmup, args.ip_runs)
    R["sizes"][str(n)] = res


# ---------------------------------------------------------------------------------------------
# Report


def fmt_ms(x):
    if x is None:
        return "n/a"
    return f"{x:.2f} ms" if x < 10 else f"{x:.1f} ms" if x < 100 else f"{x:.0f} ms"


def fmt_kib(b):
    return f"{b / 1024:.0f} KiB"


def met(ok):
    return "yes" if ok else "**no**"


def report(args, R):
    rows = []
    sizes = [int(s) for s in args.sizes.split(",")]
    big = max(sizes)
    for n in sizes:
        s = R["sizes"].get(str(n))
        if not s:
            continue
        for stat, fn in (("median", median), ("p99", p99)):
            a, b = fn(s["list_ms"]), fn(s["ip_ms"])
            goal, ok = ("≥ 50x faster", met(b / a >= 50)) if n == big else ("", "")
            rows.append(
                (
                    f"list, N={n}, {stat} (`GET /api/v1/netns` vs `ip -j netns list`)",
                    fmt_ms(a),
                    fmt_ms(b),
                    f"{b / a:.0f}x",
                    goal,
                    ok,
                )
            )
    for n in sizes:
        s = R["sizes"].get(str(n))
        if not s:
            continue
        m = median(s["start_ms"])
        goal, ok = ("< 300 ms", met(m < 300)) if n == big else ("", "")
        rows.append(
            (
                f"cold start to a full list, N={n}, median of {len(s['start_ms'])}",
                fmt_ms(m),
                "",
                "",
                goal,
                ok,
            )
        )
    if "rss_empty" in R:
        rows.append(("RSS, 0 namespaces (after its first answer)", fmt_kib(R["rss_empty"]),
                     "", "", "", ""))
    for n in sizes:
        s = R["sizes"].get(str(n))
        if not s or "rss_empty" not in R:
            continue
        rss = median(s["rss"])
        growth = (rss - R["rss_empty"]) / n
        rows.append((f"RSS, N={n} (after listing them; median of starts)", fmt_kib(rss),
                     "", "", "", ""))
        rows.append(
            (
                f"RSS growth per namespace, N={n}",
                f"{growth:.0f} B",
                "",
                "",
                "< 1 KiB",
                met(growth < 1024),
            )
        )
    for order in ("name", "reverse", "random"):
        r = R["race"].get(order)
        if not r:
            continue
        lag = r.get("lag_ms")
        lag_text = "never (see notes)" if lag is None else fmt_ms(max(lag, 0.0))
        rows.append(
            (
                f"nsid race, {r['n']} × `ip netns set NAME auto`, {order} order: "
                "API lag after the loop (ip column: loop time)",
                lag_text,
                fmt_ms(r["loop_ms"]),
                "",
                "< ~100 ms",
                met(lag is not None and lag < 100),
            )
        )

    out = []
    out.append("# netnsd foundation benchmark\n")
    facts = R["facts"]
    out.append(
        "| machine | |\n|---|---|\n"
        + "".join(f"| {k} | {v} |\n" for k, v in facts.items())
    )
    out.append("| figure | netnsd | ip | ratio | goal | met? |")
    out.append("|---|---|---|---|---|---|")
    for row in rows:
        out.append("| " + " | ".join(row) + " |")
    out.append("")

    out.append("## Details\n")
    for n in sizes:
        s = R["sizes"].get(str(n))
        if not s:
            continue
        out.append(
            f"* N={n}: list response {s['list_bytes']} bytes; {len(s['list_ms'])} keep-alive "
            f"requests (after {args.warmup} warm-ups, {s['list_reconnects']} reconnects): "
            f"min {fmt_ms(min(s['list_ms']))}, median {fmt_ms(median(s['list_ms']))}, "
            f"p99 {fmt_ms(p99(s['list_ms']))}, max {fmt_ms(max(s['list_ms']))}; "
            f"`ip -j netns list` × {len(s['ip_ms'])}: min {fmt_ms(min(s['ip_ms']))}, "
            f"median {fmt_ms(median(s['ip_ms']))}, max {fmt_ms(max(s['ip_ms']))}"
        )
        out.append(
            f"* N={n}: cold starts {', '.join(fmt_ms(x) for x in s['start_ms'])}; RSS after "
            f"first answer {', '.join(fmt_kib(x) for x in s['rss'])}; after the list "
            f"benchmark {fmt_kib(s['rss_after_list'])}; API shows {s['api_live']} live, "
            f"{s['api_with_nsid']} with an nsid"
        )
        out.append(
            f"* N={n}: model only (a start watched through /healthz, no list served yet): "
            f"complete {fmt_ms(s['healthz_start_ms'])} after spawn, RSS "
            f"{fmt_kib(s['rss_model_only'])}"
            + (
                f" ({(s['rss_model_only'] - R['rss_empty']) / n:.0f} B per namespace)"
                if "rss_empty" in R
                else ""
            )
        )
        out.append(f"* N={n}: mkns: " + "; ".join(s["mkns"]))
    if "start_empty_ms" in R:
        out.append(f"* empty dir: cold start to first answer {fmt_ms(R['start_empty_ms'])}")
    for order in ("name", "reverse", "random"):
        r = R["race"].get(order)
        if not r:
            continue
        parts = [f"loop {fmt_ms(r['loop_ms'])} ({r['loop_ms'] / r['n']:.2f} ms per `ip`)"]
        parts.append(f"netnsd used {fmt_ms(r['cpu_ms'])} of CPU meanwhile "
                     f"({r['cpu_ms'] / r['n']:.2f} ms per nsid)")
        lag = r.get("lag_ms")
        if lag is not None and lag >= 0:
            parts.append(f"all {r['n']} nsids in the API {fmt_ms(r['start_to_full_ms'])} after "
                         f"the loop started, {lag:.1f} ms after it ended")
        elif lag is not None:
            parts.append(f"all {r['n']} nsids were in the API {-lag:.1f} ms before the loop's "
                         "exit was seen (it kept up)")
        if r["poll_ms"]:
            parts.append(f"{r['polls']} polls of /api/v1/nsids took median "
                         f"{fmt_ms(median(r['poll_ms']))}, max {fmt_ms(max(r['poll_ms']))}")
        if r.get("drain_s") is not None:
            parts.append(f"after deleting all names the API was empty (names and nsids) in "
                         f"{fmt_ms(ms(r['drain_s']))}")
        if r.get("kernel_drain_s") is not None:
            parts.append(f"the kernel's nsid table was empty {fmt_ms(ms(r['kernel_drain_s']))} "
                         "after the deletes")
        out.append(f"* nsid race, {order} order: " + "; ".join(parts))
    out.append("")
    out.append("## Notes\n")
    notes = R["notes"] or ["none: every phase converged and every netnsd exited cleanly"]
    out.extend(f"* {n}" for n in notes)
    out.append("")
    out.append(f"Total benchmark time {R['total_s']:.0f} s. Load average at start "
               f"{' '.join(R['load_start'])}, at end {' '.join(R['load_end'])}.")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--netnsd", required=True)
    ap.add_argument("--mkns", required=True)
    ap.add_argument("--out", required=True, help="the Markdown report to write")
    ap.add_argument("--revision", default="unknown")
    ap.add_argument("--sizes", default="1000,5000")
    ap.add_argument("--race-n", type=int, default=1000)
    ap.add_argument("--starts", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--ip-warmup", type=int, default=2)
    ap.add_argument("--ip-runs", type=int, default=10)
    ap.add_argument("--converge-s", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    args.logdir = os.path.join(os.path.dirname(os.path.abspath(args.out)), "logs")
    os.makedirs(args.logdir, exist_ok=True)

    if os.listdir(NETNS_DIR):
        raise SystemExit(f"{NETNS_DIR} is not empty; run this through bench/foundation")
    started = now()
    R = {"notes": [], "race": {}, "sizes": {}}
    R["facts"] = machine_facts(args.revision, args.netnsd)
    R["load_start"] = open("/proc/loadavg").read().split()[:3]
    status = 0
    try:
        print("foundation: RSS on an empty dir", file=sys.stderr)
        phase_rss_empty(args, R)
        for order in ("name", "reverse", "random"):
            print(f"foundation: nsid race, {order} order", file=sys.stderr)
            phase_nsid_race(args, R, order)
        present = 0
        for i, n in enumerate(int(s) for s in args.sizes.split(",")):
            print(f"foundation: N={n}", file=sys.stderr)
            phase_size(args, R, n, f"n{i}_", present)
            present = n
    except (BenchError, subprocess.CalledProcessError) as e:
        R["notes"].append(f"benchmark stopped early: {e}")
        status = 1
    R["total_s"] = now() - started
    R["load_end"] = open("/proc/loadavg").read().split()[:3]
    text = report(args, R)
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(R, f, indent=1, default=str)
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
