#!/usr/bin/env python3
"""The measuring half of bench/events. It runs inside tests/support/sandbox (private mount and
network namespaces, tmpfs on /run and /run/netns), so every namespace it makes vanishes with the
sandbox, and the only traffic is to netnsd on the sandbox's own 127.0.0.1. Run bench/events
rather than this file.

The measuring is done by bench/evlat (one C++ process that is both the websocket client and
the namespace creator, so both read one CLOCK_MONOTONIC); this script starts netnsd, runs evlat
for each phase, checks what it saw and writes the report:
  1. one at a time: create one namespace, wait for its `add` on the websocket, next (N times);
     then delete one, wait for its `delete`, next.
  2. burst: N creations back to back (then N deletions), each event matched to its namespace by
     name, with `stdbuf -oL ip netns monitor` watching the same burst.
  3. fan-out: 1, 100 and 1000 websocket subscribers, a burst of N creations + N deletions,
     until the last subscriber has the last event; every revision must arrive.
"""

import argparse
import http.client
import json
import os
import resource
import subprocess
import sys
import time

P99_GOAL_MS = 5.0
FANOUT_RATIO_GOAL = 2.0

from benchlib import (NETNS_DIR, BenchError, Daemon, die_with_parent, machine_facts, median,
                      now, percentile)


pct = percentile


def child_setup():
    # If the driver dies (timeout, ^C), its children go with it; and 1000 subscribers need
    # more than the usual 1024 descriptors in netnsd.
    die_with_parent()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 8192:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(8192, hard), max(8192, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_daemon(args, label, notes, model_log=False):
    """model_log: debug-level JSON logs, whose `model event` lines time every event the model
    made to the microsecond (model_lags reads them)."""
    extra = ["--max-stream-clients", str(args.max_stream_clients)]
    if model_log:
        extra += ["--log-level", "debug", "--log-format", "json"]
    d = Daemon(args.netnsd, args.logdir, label, notes, extra, preexec_fn=child_setup)
    d.wait_watching()
    return d


def model_lags(log_path, offset, doc):
    """How far behind the kernel the model was: for each add and delete the creator made (its
    record: the system call's CLOCK_REALTIME microseconds), netnsd's `model event` line for that
    name and type, from byte `offset` of its log on. Returns (lags in us, missing, new offset)."""
    made, returned = {}, {}
    for line in doc.get("record", []):
        what, name, at, *back = line.split(" ")
        made[(what, name)] = int(at)
        if back:
            returned[(what, name)] = int(back[0])
    seen = {}
    with open(log_path, "rb") as f:
        f.seek(offset)
        data = f.read()
        end = offset + len(data)
    for raw in data.splitlines():
        if b'"model event"' not in raw:
            continue
        try:
            e = json.loads(raw)
        except ValueError:
            continue
        key = (e.get("type"), e.get("name"))
        if key in made and key not in seen:
            seen[key] = int(e["at_us"])
    lags = [seen[k] - at for k, at in made.items() if k in seen]
    # The worst few, with when the model had them (CLOCK_REALTIME us), to find them in a trace.
    doc["model_lag_worst"] = sorted(
        ({"lag_us": seen[k] - at, "type": k[0], "name": k[1], "model_at_us": seen[k]}
         for k, at in made.items() if k in seen),
        key=lambda w: -w["lag_us"])[:5]
    # Apart, too: a delete's lag starts at the umount2 call, which itself can take an RCU grace
    # period before the mount is gone.
    doc["model_lag_by_type_us"] = {
        t: [seen[k] - at for k, at in made.items() if k in seen and k[0] == t]
        for t in ("add", "delete")
    }
    # And from the call's return: where the kernel's part ends at the latest. Negative when the
    # model had the change before the call returned (a lazy umount2 returns after a grace period).
    doc["model_lag_from_return_by_type_us"] = {
        t: [seen[k] - at for k, at in returned.items() if k in seen and k[0] == t]
        for t in ("add", "delete")
    }
    return lags, len(made) - len(seen), end


def exact_problems(doc):
    """A fan-out run's subscribers that did not get exactly the creator's sequence."""
    subs = doc.get("subs", 0)
    if "exact" in doc and doc["exact"] != subs:
        return [f"{subs - doc['exact']} of {subs} subscribers not exactly the creator's sequence"]
    return []


def evlat(args, R, mode, daemon, *extra, timeout_s=120):
    cmd = [args.evlat, mode, "--port", str(daemon.port), "--dir", NETNS_DIR] + [str(x) for x in extra]
    R["commands"].append(" ".join(cmd))
    p = subprocess.run(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=timeout_s,
        preexec_fn=child_setup,
    )
    if p.stderr.strip():
        R["notes"].append(f"evlat {mode}: {p.stderr.strip()}")
    try:
        doc = json.loads(p.stdout)
    except json.JSONDecodeError:
        raise BenchError(f"evlat {mode} exited with {p.returncode} and printed no result")
    if doc.get("failure"):
        R["notes"].append(f"evlat {mode} {' '.join(map(str, extra))}: {doc['failure']}")
    daemon.check_alive()
    left = os.listdir(NETNS_DIR)
    if left:
        R["notes"].append(f"after evlat {mode}, {NETNS_DIR} still held {len(left)} entries")
    return doc


def stream_problems(doc, prefix="ws_"):
    """What went wrong in one websocket stream of seq or burst, as short phrases."""
    keys = {
        "gaps": "revision gaps",
        "backwards": "revisions going backwards",
        "unparsed": "unparsable messages",
        "other_types": "events of another type",
        "dup_add": "duplicate adds",
        "dup_delete": "duplicate deletes",
        "delete_before_add": "deletes before their add",
        "foreign": "events for names this run did not make",
    }
    out = [f"{doc[prefix + k]} {v}" for k, v in keys.items() if doc.get(prefix + k)]
    if doc.get("add_order_inversions"):
        out.append(f"{doc['add_order_inversions']} adds out of creation order")
    n = doc["count"]
    if doc.get("adds_matched", n) != n:
        out.append(f"{n - doc['adds_matched']} adds missing")
    if doc.get("deletes_matched", n) != n:
        out.append(f"{n - doc['deletes_matched']} deletes missing")
    return out


# ---------------------------------------------------------------------------------------------
# Phases


def phase_latency(args, R):
    d = start_daemon(args, "latency", R["notes"])
    try:
        print("events: one at a time", file=sys.stderr)
        R["seq"] = evlat(args, R, "seq", d, "--count", args.count, "--prefix", "seq_")
        time.sleep(args.pause_s)
        print("events: burst, with ip netns monitor", file=sys.stderr)
        R["burst"] = evlat(
            args, R, "burst", d, "--count", args.count, "--prefix", "bst_", "--monitor",
            "--timeout", 60,
        )
        h = d.healthz()
        if h.get("namespaces") != 0:
            R["notes"].append(f"after the latency phases /healthz still counts {h.get('namespaces')} namespaces")
    finally:
        d.stop()


def phase_fanout(args, R, deadline):
    d = start_daemon(args, "fanout", R["notes"], model_log=True)
    sizes = [int(s) for s in args.fan_subs.split(",")]
    runs = {str(s): [] for s in sizes}
    R["fanout"] = runs
    try:
        for rep in range(args.fan_repeats):
            for s in sizes:
                # Skip a run that would not fit in the time left (its last duration, doubled).
                prev = runs[str(s)]
                need = 2 * (prev[-1]["wall_s"] if prev else (5 + s * 0.03))
                if now() + need > deadline:
                    R["notes"].append(
                        f"fan-out: skipped repetition {rep + 1} with {s} subscribers "
                        "(not enough of the time limit left)"
                    )
                    continue
                print(f"events: fan-out, {s} subscriber{'s' if s != 1 else ''}, run {rep + 1}", file=sys.stderr)
                t = now()
                offset = os.path.getsize(d.log_path)
                # The named view's stream (types=add,delete), as in every run before the host
                # inventory: a subscriber of every type also gets its found/holders/destroyed,
                # about three times the events, each with the whole namespace.
                doc = evlat(
                    args, R, "fanout", d, "--subs", s, "--count", args.count, "--entries-only",
                    "--prefix", f"f{s}r{rep}_", "--netnsd-pid", d.proc.pid, "--timeout", 150,
                    "--pace-us", args.fan_pace_us, timeout_s=180,
                )
                doc["wall_s"] = now() - t
                doc["load"] = open("/proc/loadavg").read().split()[0]
                doc["model_lag_us"], doc["model_missing"], _ = model_lags(d.log_path, offset, doc)
                doc.pop("record", None)
                prev.append(doc)
                # Give the kernel a moment to free the 1000 deleted namespaces.
                time.sleep(args.pause_s)
        # The same burst with every namespace kept alive by the creator's fd until its run
        # ends: deleting a name then destroys nothing, so the kernel's teardown worker
        # (cleanup_net), which on a PREEMPT_NONE kernel holds a CPU for tens of ms per batch,
        # does not run meanwhile. The lag left is netnsd's own.
        held = {}
        R["fanout_held"] = held
        for rep in range(args.held_repeats):
            for s in (sizes[0], sizes[-1]):
                if now() + 2 * (5 + s * 0.03) > deadline:
                    R["notes"].append(f"fan-out, namespaces held: skipped run {rep + 1} with {s} "
                                      "subscribers (not enough of the time limit left)")
                    continue
                print(f"events: fan-out, namespaces held, {s} subscriber{'s' if s != 1 else ''}, "
                      f"run {rep + 1}", file=sys.stderr)
                offset = os.path.getsize(d.log_path)
                doc = evlat(
                    args, R, "fanout", d, "--subs", s, "--count", args.count, "--entries-only",
                    "--hold", "--prefix", f"h{s}r{rep}_", "--netnsd-pid", d.proc.pid,
                    "--timeout", 150, timeout_s=180,
                )
                doc["model_lag_us"], doc["model_missing"], _ = model_lags(d.log_path, offset, doc)
                doc.pop("record", None)
                held.setdefault(str(s), []).append(doc)
                # The held namespaces go when the run ends: let the kernel tear them down
                # before the next run starts.
                time.sleep(max(args.pause_s, 3.0))
    finally:
        d.stop()


def phase_websocket_ab(args, R, variants, deadline):
    """The A/B of the websocket framing (bench/run --only websocket-ab): the fan-out runs of
    phase_fanout against netnsd built two ways, `variants` = {label: binary}. Runs are
    interleaved (every size, then the next repetition) and the order of the two flips every
    run, so that neither always goes first; each run gets a fresh netnsd of its kind, alone on
    the machine (an idle second netnsd would still follow every namespace the other's run
    makes)."""
    sizes = [int(s) for s in args.fan_subs.split(",")]
    labels = list(variants)
    runs = {label: {str(s): [] for s in sizes} for label in labels}
    R["websocket_ab"] = runs
    turn = 0
    for rep in range(args.fan_repeats):
        for s in sizes:
            order = labels if turn % 2 == 0 else labels[::-1]
            turn += 1
            for label in order:
                prev = runs[label][str(s)]
                need = 2 * (prev[-1]["wall_s"] if prev else (5 + s * 0.05))
                if now() + need > deadline:
                    R["notes"].append(f"websocket A/B: skipped repetition {rep + 1} of {label} "
                                      f"with {s} subscribers (not enough of the time left)")
                    continue
                print(f"events: websocket A/B, {label}, {s} subscriber{'s' if s != 1 else ''}, "
                      f"run {rep + 1}", file=sys.stderr)
                d = Daemon(variants[label], args.logdir, f"ab-{label}-{s}-r{rep}", R["notes"],
                           ["--max-stream-clients", str(args.max_stream_clients)],
                           preexec_fn=child_setup)
                try:
                    d.wait_watching()
                    t = now()
                    doc = evlat(
                        args, R, "fanout", d, "--subs", s, "--count", args.count,
                        "--entries-only", "--prefix", f"ab{label}{s}r{rep}_", "--netnsd-pid", d.proc.pid,
                        "--timeout", 150, "--pace-us", 0, timeout_s=180,
                    )
                    doc["wall_s"] = now() - t
                finally:
                    d.stop()
                doc["load"] = open("/proc/loadavg").read().split()[0]
                doc.pop("record", None)
                prev.append(doc)
                time.sleep(args.pause_s)


def phase_shortlived(args, R):
    """Namespaces that live args.short_lifetime_ms each, made as fast as the creator can while
    the earlier ones are deleted, at args.short_subs subscribers (some of them slow readers):
    every subscriber must get exactly the creator's sequence."""
    d = start_daemon(args, "shortlived", R["notes"], model_log=True)
    runs = R.setdefault("shortlived", [])
    try:
        for rep in range(args.short_repeats):
            print(f"events: short lives, {args.short_subs} subscribers, run {rep + 1}",
                  file=sys.stderr)
            offset = os.path.getsize(d.log_path)
            doc = evlat(
                args, R, "fanout", d, "--subs", args.short_subs, "--count", args.count,
                "--entries-only", "--lifetime-ms", args.short_lifetime_ms, "--pace-us", 0, "--slow",
                max(1, args.short_subs // 50), "--prefix", f"sl{rep}_", "--netnsd-pid",
                d.proc.pid, "--timeout", 150, timeout_s=180,
            )
            doc["load"] = open("/proc/loadavg").read().split()[0]
            doc["model_lag_us"], doc["model_missing"], _ = model_lags(d.log_path, offset, doc)
            doc.pop("record", None)
            doc["unresolved"] = metric(d, "netnsd_mount_events_unresolved_total")
            runs.append(doc)
            time.sleep(args.pause_s)
    finally:
        d.stop()


def metric(d, series):
    """One series of the daemon's /metrics, or None."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
    c.request("GET", "/metrics")
    for line in c.getresponse().read().decode().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return None


# ---------------------------------------------------------------------------------------------
# Report


def fmt_ms(x):
    if x is None:
        return "n/a"
    if abs(x) < 10:
        return f"{x:.2f} ms"
    return f"{x:.1f} ms" if abs(x) < 100 else f"{x:.0f} ms"


def met(ok):
    return "yes" if ok else "**no**"


def dist(us_list):
    """p50 / p99 / max of a list of microseconds, in ms."""
    ms = [x / 1000.0 for x in us_list]
    return median(ms), pct(ms, 99), max(ms)


def dist_text(us_list):
    if not us_list:
        return "n/a"
    a, b, c = dist(us_list)
    return f"{fmt_ms(a)} / {fmt_ms(b)} / {fmt_ms(c)}"


def report(args, R):
    rows = []
    lost_total = 0
    lost_parts = []

    def latency_row(label, doc, key, n):
        if not doc or not doc.get(key):
            rows.append((label, "n/a (see notes)", "", f"p99 < {P99_GOAL_MS:.0f} ms", "**no**"))
            return
        _, p99v, _ = dist(doc[key])
        rows.append(
            (
                f"{label} ({len(doc[key])} of {n})",
                dist_text(doc[key]),
                "",
                f"p99 < {P99_GOAL_MS:.0f} ms",
                met(p99v < P99_GOAL_MS and len(doc[key]) == n),
            )
        )

    seq, burst = R.get("seq"), R.get("burst")
    n = args.count
    latency_row("add latency, one at a time: mount() returned → `add` received", seq, "add_us", n)
    latency_row("delete latency, one at a time: umount2() called → `delete` received", seq,
                "del_us", n)
    latency_row("add latency, burst of back-to-back creations", burst, "add_us", n)
    latency_row("delete latency, burst of back-to-back deletions", burst, "del_us", n)

    if burst and "mon_adds" in burst:
        ma = burst["mon_adds"]
        frac = burst["mon_add_before_mount"] / ma if ma else 0.0
        frac_probe = burst["mon_add_probe_not_ns"] / ma if ma else 0.0
        ws_bad = burst["add_probe_not_ns"] + burst["add_before_call"]
        rows.append(
            (
                f"burst of {n}: `add` before the namespace was usable (before its mount() "
                "returned; in brackets: the file was not yet an nsfs mount when the line was read)",
                f"{ws_bad} of {burst['adds_matched']}",
                f"{burst['mon_add_before_mount']} of {ma} = {frac:.0%} "
                f"({burst['mon_add_probe_not_ns']} = {frac_probe:.0%})",
                "netnsd: 0",
                met(ws_bad == 0 and burst["adds_matched"] == n),
            )
        )
        rows.append(
            (
                "`add` received after the file was created (open(O_CREAT) called), median / p99",
                "",
                f"{fmt_ms(median(burst['mon_add_after_open_us']) / 1000)} / "
                f"{fmt_ms(pct(burst['mon_add_after_open_us'], 99) / 1000)}",
                "",
                "",
            )
        )

    fan = R.get("fanout", {})
    fan_med = {}
    for s, runs in fan.items():
        if not runs:
            continue
        totals = [r["total_ms"] for r in runs if "total_ms" in r]
        lost = sum(r["lost"] + r["gaps"] + r["backwards"] + r["duplicates"] for r in runs)
        lost += sum(len(exact_problems(r)) for r in runs)
        lost_total += lost
        if lost:
            lost_parts.append(f"fan-out {s}")
        if totals:
            fan_med[s] = median(totals)
        rows.append(
            (
                f"fan-out, {s} subscriber{'s' if s != '1' else ''}: burst start → last "
                f"subscriber has the last of {2 * n} events (median / max of {len(totals)} runs)",
                f"{fmt_ms(median(totals))} / {fmt_ms(max(totals))}" if totals else "incomplete",
                "",
                "",
                "",
            )
        )
    for s, runs in fan.items():
        lags = [x for r in runs for x in r.get("model_lag_us", [])]
        if lags:
            missing = sum(r.get("model_missing", 0) for r in runs)
            rows.append((f"model lag, fan-out {s}: system call → the model has the change "
                         f"({len(lags)} changes{f', {missing} not found' if missing else ''})",
                         dist_text(lags), "", "", ""))
    for s, runs in R.get("fanout_held", {}).items():
        lost = sum(r["lost"] + r["gaps"] + r["backwards"] + r["duplicates"] for r in runs)
        lost += sum(len(exact_problems(r)) for r in runs)
        lost_total += lost
        if lost:
            lost_parts.append(f"fan-out {s}, namespaces held")
        lags = [x for r in runs for x in r.get("model_lag_us", [])]
        if lags:
            rows.append((f"model lag, fan-out {s}, namespaces held (no kernel teardown): system "
                         f"call → the model has the change ({len(lags)} changes, {len(runs)} runs)",
                         dist_text(lags), "", "", ""))
    short = R.get("shortlived", [])
    if short:
        missed = sum(r["lost"] + r["gaps"] + len(exact_problems(r)) for r in short)
        lost_total += missed
        if missed:
            lost_parts.append("short lives")
        lags = [x for r in short for x in r.get("model_lag_us", [])]
        rows.append((f"short lives: {args.count} namespaces mounted {args.short_lifetime_ms} ms "
                     f"each, {args.short_subs} subscribers, {len(short)} runs: subscribers "
                     "with exactly the creator's sequence",
                     ", ".join(f"{r.get('exact', 0)}/{r['subs']}" for r in short), "",
                     "all", met(missed == 0)))
        if lags:
            rows.append(("short lives: model lag, system call → the model has the change",
                         dist_text(lags), "", "", ""))
    sizes = sorted(fan_med, key=int)
    if len(sizes) >= 2 and sizes[0] == "1":
        big = sizes[-1]
        ratio = fan_med[big] / fan_med["1"]
        rows.append(
            (
                f"fan-out ratio, {big} subscribers / 1 (medians)",
                f"{ratio:.1f}x",
                "",
                f"≤ {FANOUT_RATIO_GOAL:.0f}x",
                met(ratio <= FANOUT_RATIO_GOAL),
            )
        )
    for name, doc in (("one at a time", seq), ("burst", burst)):
        if doc:
            p = stream_problems(doc)
            if p:
                lost_parts.append(f"{name}: " + ", ".join(p))
                lost_total += 1
    rows.append(
        (
            "lost, duplicated or out-of-order events (every phase, every subscriber)",
            "0" if lost_total == 0 else "; ".join(lost_parts),
            "",
            "0",
            met(lost_total == 0 and (seq is not None and burst is not None and fan)),
        )
    )

    out = []
    out.append("# netnsd event-stream benchmark\n")
    out.append(
        "| machine | |\n|---|---|\n"
        + "".join(f"| {k} | {v} |\n" for k, v in R["facts"].items())
    )
    out.append("Latencies are p50 / p99 / max in ms.\n")
    out.append("| figure | netnsd | `ip netns monitor` | goal | met? |")
    out.append("|---|---|---|---|---|")
    for row in rows:
        out.append("| " + " | ".join(str(c) for c in row) + " |")
    out.append("")

    out.append("## Details\n")
    if seq:
        out.append(
            f"* one at a time ({seq['count']}): add latency measured from mount()'s call instead of "
            f"its return {dist_text(seq['add_from_call_us'])}; mount() itself took "
            f"{dist_text(seq['mount_us'])}; {seq['add_before_mount']} `add`s arrived before the "
            "creator's thread got back from mount() (the namespace was mounted: "
            f"{seq['add_probe_not_ns']} were not an nsfs mount when they arrived)"
        )
        out.append(
            f"* one at a time: delete latency from umount2()'s return "
            f"{dist_text(seq['del_umount_us'])}, from unlink()'s return "
            f"{dist_text(seq['del_unlink_us'])} (negative: before it returned); umount2(MNT_DETACH) "
            f"took {dist_text(seq['umount_us'])}; {seq['del_before_umount']} `delete`s arrived "
            f"before umount2() returned and {seq['del_before_unlink']} before unlink() returned "
            "(netnsd sees the unmount in the mount table; the lazy umount2 returns only after an "
            f"RCU grace period); {seq['del_before_call']} before umount2() was called"
        )
    if seq and seq.get("add_us"):
        a = seq["add_us"]
        step = max(len(a) // 10, 1)
        out.append(
            "* one at a time: median add latency per tenth of the creations (live entries grow "
            f"from 0 to {len(a)}): "
            + ", ".join(fmt_ms(median(a[i:i + step]) / 1000) for i in range(0, len(a), step))
        )
    if burst:
        out.append(
            f"* burst ({burst['count']}): the creator took {fmt_ms(burst['create_burst_ms'])} for "
            f"the creations and {fmt_ms(burst['delete_burst_ms'])} for the deletions; the last "
            f"`add` came {fmt_ms(burst['last_add_after_last_mount_us'] / 1000)} after the last "
            f"mount() returned, the last `delete` {fmt_ms(burst['last_delete_after_last_unlink_us'] / 1000)} "
            f"after the last unlink() returned; {burst['add_before_mount']} `add`s arrived before "
            f"the creator's thread got back from mount(), {burst['add_probe_not_ns']} were not yet "
            f"an nsfs mount; {burst['add_order_inversions']} `add`s out of creation order"
        )
        if burst.get("add_us"):
            a = burst["add_us"]
            dl = burst["del_us"]
            step = max(len(a) // 10, 1)
            out.append(
                "* burst: median add latency per tenth of the burst (as the number of live "
                "entries grows): "
                + ", ".join(fmt_ms(median(a[i:i + step]) / 1000) for i in range(0, len(a), step))
            )
            if dl:
                step = max(len(dl) // 10, 1)
                out.append(
                    "* burst: median delete latency per tenth of the deletions (as the number of "
                    "live entries shrinks): "
                    + ", ".join(fmt_ms(median(dl[i:i + step]) / 1000) for i in range(0, len(dl), step))
                )
        for what, key, span in (("add", "add_arrival_ms", "create_burst_ms"),
                                ("delete", "delete_arrival_ms", "delete_burst_ms")):
            at = burst.get(key) or []
            if len(at) < 2:
                continue
            during = [x for x in at if x <= burst[span]]
            gaps = [(at[i + 1] - at[i], i) for i in range(len(at) - 1) if at[i] <= burst[span]]
            if not gaps:
                continue
            g, i = max(gaps)
            clump = sum(1 for x in at[i + 1:] if x <= at[i + 1] + 1.0)
            out.append(
                f"* burst: {len(during)} of {len(at)} `{what}`s arrived while the "
                f"{burst[span]:.0f} ms of {what}s were still running; the longest silence "
                f"between two `{what}`s then was {fmt_ms(g)} (from {fmt_ms(at[i])} to "
                f"{fmt_ms(at[i + 1])} after the {what}s started), followed by {clump} `{what}`s "
                "within 1 ms"
            )
        if "mon_adds" in burst:
            out.append(
                f"* `ip netns monitor` on the burst: {burst['mon_lines']} lines, {burst['mon_adds']} "
                f"adds, {burst['mon_dels']} deletes, {burst['mon_dup']} duplicates, "
                f"{burst['mon_other']} others; its `add` line relative to mount()'s return "
                f"{dist_text(burst['mon_add_rel_us'])} (negative: before the namespace existed); "
                f"its `delete` line relative to unlink()'s return {dist_text(burst['mon_del_rel_us'])}"
            )
    if fan:
        out.append(
            "* fan-out creator: "
            + ("as fast as it can" if not args.fan_pace_us else
               f"paced, one operation every {args.fan_pace_us} us")
            + f"; {args.count} creations then {args.count} deletions per run; runs interleaved "
            f"(1, 100, 1000, 1, ...), {args.pause_s:g} s apart"
        )
    for s, runs in fan.items():
        for i, r in enumerate(runs):
            parts = [f"connect + hello {fmt_ms(r['connect_ms'])}"]
            if "creator_ms" in r:
                parts.append(
                    f"creator {fmt_ms(r['creator_add_ms'])} for the creations, "
                    f"{fmt_ms(r['creator_ms'])} in all"
                )
            if "total_ms" in r:
                parts.append(
                    f"first subscriber done {fmt_ms(r['first_done_ms'])}, median "
                    f"{fmt_ms(r['median_done_ms'])}, last {fmt_ms(r['total_ms'])} "
                    f"({fmt_ms(r['tail_after_creator_ms'])} after the creator finished)"
                )
            parts.append(
                f"CPU: netnsd {fmt_ms(r.get('netnsd_cpu_ms'))}, client {fmt_ms(r.get('client_io_cpu_ms'))}, "
                f"creator {fmt_ms(r.get('creator_cpu_ms'))}"
            )
            parts.append(
                f"{r['complete']}/{r['subs']} complete, lost {r['lost']}, gaps {r['gaps']}, "
                f"duplicates {r['duplicates']}, dropped {r['ended_early']}"
            )
            parts.append(f"load {r['load']}")
            out.append(f"* fan-out {s}, run {i + 1}: " + "; ".join(parts))
    out.append("")
    out.append("## Notes\n")
    notes = list(R["notes"])
    for name, doc in (("one at a time", R.get("seq")), ("burst", R.get("burst"))):
        if doc and doc.get("ws_notes"):
            notes.append(f"{name}: " + "; ".join(doc["ws_notes"]))
    for s, runs in fan.items():
        for r in runs:
            if r.get("notes"):
                notes.append(f"fan-out {s}: " + "; ".join(r["notes"]))
    out.extend(f"* {x}" for x in (notes or ["none: every phase completed and every netnsd exited cleanly"]))
    out.append("")
    out.append("## Commands\n")
    out.append("```")
    out.append(R["invocation"])
    out.extend(R["commands"])
    out.append("```")
    out.append("")
    out.append(
        f"Total benchmark time {R['total_s']:.0f} s. Load average at start "
        f"{' '.join(R['load_start'])}, at end {' '.join(R['load_end'])}."
    )
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--netnsd", required=True)
    ap.add_argument("--evlat", required=True)
    ap.add_argument("--out", required=True, help="the Markdown report to write")
    ap.add_argument("--revision", default="unknown")
    ap.add_argument("--invocation", default="bench/events")
    ap.add_argument("--count", type=int, default=1000, help="namespaces per phase")
    ap.add_argument("--fan-subs", default="1,100,1000")
    ap.add_argument("--fan-repeats", type=int, default=3)
    ap.add_argument("--held-repeats", type=int, default=3,
                    help="fan-out runs (at the fewest and the most subscribers) with every "
                    "namespace held by an fd until the run ends")
    ap.add_argument("--fan-pace-us", type=int, default=0,
                    help="fan-out: start operation k at k * this after the burst's start "
                    "(0: the creator runs as fast as it can)")
    ap.add_argument("--max-stream-clients", type=int, default=1100)
    ap.add_argument("--short-subs", type=int, default=1000,
                    help="short lives: subscribers (one in 50 reads slowly)")
    ap.add_argument("--short-lifetime-ms", type=int, default=10,
                    help="short lives: how long each namespace stays mounted")
    ap.add_argument("--short-repeats", type=int, default=3)
    ap.add_argument("--pause-s", type=float, default=1.0,
                    help="pause between runs, for the kernel to free deleted namespaces")
    ap.add_argument("--limit-s", type=float, default=280.0,
                    help="fan-out runs that would end after this are skipped")
    args = ap.parse_args()
    args.logdir = os.path.join(os.path.dirname(os.path.abspath(args.out)), "logs")
    os.makedirs(args.logdir, exist_ok=True)
    for f in os.listdir(args.logdir):
        if f.startswith(("netnsd-latency", "netnsd-fanout", "netnsd-shortlived")):
            os.unlink(os.path.join(args.logdir, f))

    if os.listdir(NETNS_DIR):
        raise SystemExit(f"{NETNS_DIR} is not empty; run this through bench/events")
    started = now()
    R = {"notes": [], "commands": [], "invocation": args.invocation}
    R["facts"] = machine_facts(args.revision, args.netnsd)
    R["load_start"] = open("/proc/loadavg").read().split()[:3]
    status = 0
    try:
        phase_latency(args, R)
        time.sleep(args.pause_s)
        phase_fanout(args, R, started + args.limit_s)
        time.sleep(args.pause_s)
        phase_shortlived(args, R)
    except (BenchError, subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        R["notes"].append(f"benchmark stopped early: {e}")
        status = 1
    R["total_s"] = now() - started
    R["load_end"] = open("/proc/loadavg").read().split()[:3]
    R["facts"]["load average at end"] = " ".join(R["load_end"])
    text = report(args, R)
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(R, f, indent=1, default=str)
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
