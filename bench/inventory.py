"""The host inventory's benchmark (bench/run --only inventory), in the sandbox: N network
namespaces held only by processes (bench/procs: one parent forks N children that each
unshare(CLONE_NEWNET) and pause(), like `unshare -n sleep`), plus IDLE idle processes (the same
helper without the unshare), then, against one netnsd at its default --sweep-interval:

  - GET /api/v1/namespaces (the whole inventory) vs `lsns -t net -J` (which reads /proc);
  - the /proc sweep's duration (netnsd_sweep_duration_seconds) and netnsd's CPU share of one
    core over a quiet window (the sweep is nearly all it does then);
  - the deep scan's duration and what it visited (POST /api/v1/namespaces/scan);
  - detection latency: `unshare -n sleep` started -> its `found` on the event stream, and
    destroyed latency: the sleep killed -> its `destroyed`; both bounded by the sweep interval,
    so the starts and kills are spread at random over it.

pid_max bounds the processes: IDLE is lowered (and a note says so) when N + IDLE would leave
fewer than PID_MARGIN pids for the rest of the machine."""

import http.client
import json
import os
import random
import socket
import subprocess
import threading
import time

import foundation
from benchlib import HOST, BenchError, Daemon, die_with_parent, median, now, percentile

SWEEP_INTERVAL_S = 5  # netnsd's default, which the figures are about
PROC_EVENTS_SPREAD_S = 0.2  # between starts (and kills) with --proc-events: nothing to wait for
PID_MARGIN = 6000     # pids left for everything else on the machine


def tasks_now():
    """Scheduling entities (processes and threads) on the machine: /proc/loadavg's 4th field."""
    return int(open("/proc/loadavg").read().split()[3].split("/")[1])


class Procs:
    """bench/procs N idle|unshare: N children in pause(), killed when this is stopped."""

    def __init__(self, exe, n, mode):
        self.proc = subprocess.Popen([exe, str(n), mode], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True,
                                     preexec_fn=die_with_parent)
        line = self.proc.stdout.readline().split()
        if len(line) != 4 or line[0] != "ready" or int(line[1]) != n:
            self.stop()
            raise BenchError(f"procs {n} {mode}: {' '.join(line) or 'no answer'}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class EventReader:
    """An NDJSON stream of found and destroyed, read on a thread: (arrival time, event)."""

    def __init__(self, port):
        self.events = []
        self.lock = threading.Lock()
        self.conn = http.client.HTTPConnection(HOST, port, timeout=600)
        self.conn.request("GET", "/api/v1/events?types=found,destroyed",
                          headers={"Accept": "application/x-ndjson"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise BenchError(f"the event stream answered {self.resp.status}")
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        try:
            for line in self.resp:
                t = now()
                e = json.loads(line)
                with self.lock:
                    self.events.append((t, e))
        except (OSError, ValueError, AttributeError, http.client.HTTPException):
            pass  # closed by close(): http.client drops its file under the reading thread

    def first(self, type_, inode, after):
        with self.lock:
            for t, e in self.events:
                if t >= after and e.get("type") == type_ and (e.get("host") or {}).get("inode") == inode:
                    return t
        return None

    def close(self):
        # Shut down first: the reading thread holds the response's buffer while it waits in
        # recv, and a close alone would wait for that lock (for as long as no event comes).
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except (OSError, AttributeError):
            pass
        self.thread.join(10)
        self.conn.close()


def netns_inode(pid):
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def latencies(daemon, events, samples, spread_s, notes):
    """Starts `samples` `unshare -n sleep`s, spread at random, and times each to its `found`,
    from its start and from the moment its namespace exists (its /proc/PID/ns/net, polled every
    0.5 ms, names a new one: unshare(2) has returned; the kernel's work of making a namespace,
    which grows with the namespaces a host has, is before that); then kills them, spread the
    same way, and times each to its `destroyed`."""
    own = os.stat("/proc/self/ns/net").st_ino
    sleepers = []
    for _ in range(samples):
        time.sleep(random.uniform(0, spread_s))
        t0 = now()
        p = subprocess.Popen(["unshare", "-n", "sleep", "600"], preexec_fn=die_with_parent)
        foundation.wait_until("unshare -n to exec sleep in a namespace of its own",
                              lambda: netns_inode(p.pid) not in (None, own), 10, 0.0005)
        exists = now()
        ino = netns_inode(p.pid)
        sleepers.append((p, ino, t0, exists))
    found = []
    found_from_exists = []
    for p, ino, t0, exists in sleepers:
        try:
            t, _ = foundation.wait_until(f"found for inode {ino}",
                                         lambda: events.first("found", ino, t0),
                                         3 * SWEEP_INTERVAL_S, 0.005)
            found.append(t - t0)
            found_from_exists.append(max(t - exists, 0.0))
        except BenchError as e:
            notes.append(f"inventory: {e}")
    destroyed = []
    kills = []
    for p, ino, _, _ in sleepers:
        time.sleep(random.uniform(0, spread_s))
        t0 = now()
        p.kill()
        p.wait()
        kills.append((ino, t0))
    for ino, t0 in kills:
        try:
            t, _ = foundation.wait_until(f"destroyed for inode {ino}",
                                         lambda: events.first("destroyed", ino, t0),
                                         3 * SWEEP_INTERVAL_S, 0.005)
            destroyed.append(t - t0)
        except BenchError as e:
            notes.append(f"inventory: {e}")
    return found, found_from_exists, destroyed


def host_netns():
    """The network namespace of the nearest ancestor outside the sandbox (the host's initial
    one, where the process connector lives): where netnsd --proc-events and forktax make their
    sockets."""
    own = os.stat("/proc/self/ns/net").st_ino
    pid = os.getppid()
    while pid > 1:
        ino = netns_inode(pid)
        if ino is not None and ino != own:
            return f"/proc/{pid}/ns/net"
        stat = open(f"/proc/{pid}/stat").read()
        pid = int(stat[stat.rindex(")") + 1:].split()[1])
    return "/proc/1/ns/net"


def forktax(exe, forks, rounds):
    """bench/forktax in the host's network namespace: per round, with and without a listener,
    the kernel CPU per fork+exit (us) and the listener's CPU per event (us)."""
    out = subprocess.run(["nsenter", f"--net={host_netns()}", exe, str(forks), str(rounds)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise BenchError(f"forktax: {out.stderr.strip()[:200]}")
    res = {"forks": forks, "off_wall_us": [], "on_wall_us": [], "off_sys_us": [],
           "on_sys_us": [], "listener_us_per_event": []}
    for line in out.stdout.splitlines():
        mode, wall, sys_us, listener_us, events = line.split()
        res[f"{mode}_wall_us"].append(float(wall))
        res[f"{mode}_sys_us"].append(float(sys_us))
        if mode == "on" and int(events) > 0:
            res["listener_us_per_event"].append(float(listener_us) / int(events))
    return res


def metrics_text(client):
    # A connection of its own: the client's keep-alive one may have timed out in a quiet window.
    conn = http.client.HTTPConnection(HOST, client.port, timeout=60)
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    status, body = r.status, r.read()
    conn.close()
    if status != 200:
        raise BenchError(f"/metrics answered {status}")
    return body.decode()


def metric(client, name):
    for line in metrics_text(client).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise BenchError(f"/metrics has no {name}")


def lag_histogram(client):
    """netnsd_proc_event_lag_seconds as {upper bound (s): cumulative count}, "+Inf" last."""
    out = {}
    prefix = 'netnsd_proc_event_lag_seconds_bucket{le="'
    for line in metrics_text(client).splitlines():
        if line.startswith(prefix):
            le, value = line[len(prefix):].split('"} ')
            out[le] = int(float(value))
    return out


def lag_quantile(hist, q):
    """The upper bound (s) of the bucket that holds quantile q, or None (beyond the last)."""
    total = hist.get("+Inf", 0)
    if total == 0:
        return None
    for le, count in hist.items():
        if le != "+Inf" and count >= q * total:
            return float(le)
    return None


def phase_inventory(a, R, n, idle_wanted, port):
    """One size: n namespaces held by processes, plus idle processes."""
    res = {"n": n}
    room = int(open("/proc/sys/kernel/pid_max").read()) - tasks_now() - n - PID_MARGIN
    idle = max(0, min(idle_wanted, room))
    if idle < idle_wanted:
        R["notes"].append(f"inventory at {n}: {idle} idle processes instead of {idle_wanted} "
                          f"(pid_max leaves room for no more with {PID_MARGIN} to spare)")
    res["idle"] = idle
    held = idle_procs = daemon = events = None
    try:
        t = now()
        held = Procs(a.procs, n, "unshare")
        res["make_namespaces_s"] = now() - t
        idle_procs = Procs(a.procs, idle, "idle") if idle else None
        res["processes"] = sum(1 for d in os.listdir("/proc") if d.isdigit())
        Daemon.next_port = port
        daemon = Daemon(a.netnsd, a.logdir, f"inventory-{n}", R["notes"],
                        extra_args=["--deep-scan-interval", "0"])
        daemon.wait_watching(60)
        client = foundation.Client(daemon.port, timeout=120)
        want = n + 1  # and the sandbox's own
        foundation.wait_until(f"the inventory to hold {want} namespaces",
                              lambda: len(json.loads(client.get("/api/v1/namespaces")[1])
                                          ["namespaces"]) >= want, 30, 0.05)
        res["list_ms"], _ = foundation.timed_gets(client, ["/api/v1/namespaces"] * a.requests,
                                                  a.warmup)
        res["list_bytes"] = len(client.get("/api/v1/namespaces")[1])
        res["lsns_ms"] = foundation.timed_runs(["lsns", "-t", "net", "-J"], 1, a.inv_lsns_runs)
        # The sweep, on a quiet daemon: its histogram's mean over the window, and netnsd's CPU.
        sweeps0 = metric(client, "netnsd_sweep_duration_seconds_count")
        sum0 = metric(client, "netnsd_sweep_duration_seconds_sum")
        cpu0, t0 = daemon.cpu_seconds(), now()
        time.sleep(a.inv_window_s)
        cpu1, t1 = daemon.cpu_seconds(), now()
        sweeps1 = metric(client, "netnsd_sweep_duration_seconds_count")
        sum1 = metric(client, "netnsd_sweep_duration_seconds_sum")
        res["sweep_processes"] = metric(client, "netnsd_sweep_processes")
        res["sweeps"] = sweeps1 - sweeps0
        res["sweep_mean_s"] = (sum1 - sum0) / max(sweeps1 - sweeps0, 1)
        res["cpu_share"] = (cpu1 - cpu0) / (t1 - t0)
        res["window_s"] = t1 - t0
        res["rss"] = daemon.rss_bytes()
        # The deep scan, on demand.
        token = open(daemon.cmd[daemon.cmd.index("--token-file") + 1]).read().strip()
        scans = []
        for _ in range(a.inv_scans):
            conn = http.client.HTTPConnection(HOST, daemon.port, timeout=300)
            conn.request("POST", "/api/v1/namespaces/scan",
                         headers={"Authorization": f"Bearer {token}"})
            r = conn.getresponse()
            body = r.read()
            conn.close()
            if r.status != 200:
                raise BenchError(f"POST /api/v1/namespaces/scan answered {r.status}: {body[:200]}")
            scans.append(json.loads(body))
        res["deep_scans"] = scans
        events = EventReader(daemon.port)
        res["found_s"], res["found_exists_s"], res["destroyed_s"] = latencies(
            daemon, events, a.inv_samples, SWEEP_INTERVAL_S / 2, R["notes"])
        events.close()
        events = None
        daemon.stop()
        # The same host, with the process connector (the sweep stays at its default).
        daemon = Daemon(a.netnsd, a.logdir, f"inventory-{n}-proc-events", R["notes"],
                        extra_args=["--deep-scan-interval", "0", "--proc-events",
                                    "--proc-events-netns", host_netns()])
        daemon.wait_watching(60)
        client = foundation.Client(daemon.port, timeout=120)
        if metric(client, "netnsd_proc_events_enabled") != 1:
            raise BenchError("netnsd --proc-events: the kernel refused the connector")
        foundation.wait_until(f"the inventory to hold {want} namespaces",
                              lambda: len(json.loads(client.get("/api/v1/namespaces")[1])
                                          ["namespaces"]) >= want, 30, 0.05)
        res["rss_proc_events"] = daemon.rss_bytes()
        events = EventReader(daemon.port)
        res["found_pe_s"], res["found_exists_pe_s"], res["destroyed_pe_s"] = latencies(
            daemon, events, a.inv_pe_samples, PROC_EVENTS_SPREAD_S, R["notes"])
        res["proc_event_lag"] = lag_histogram(client)
    finally:
        if events:
            events.close()
        if daemon:
            daemon.stop()
        for p in (idle_procs, held):
            if p:
                p.stop()
    return res


def summary(res):
    """The figures of one size, for the report."""
    out = dict(res)
    out["list_med"] = median(res["list_ms"])
    out["lsns_med"] = median(res["lsns_ms"])
    for k in ("found_s", "found_exists_s", "destroyed_s", "found_pe_s", "found_exists_pe_s",
              "destroyed_pe_s"):
        xs = res.get(k) or []
        out[k + "_p50"] = median(xs) if xs else None
        out[k + "_p99"] = percentile(xs, 99) if xs else None
    return out


MNTNS_SCRIPT = r'''set -e
root=$1; count=$2; per=$3
mkdir -p "$root/inner"
i=0
while [ $i -lt $count ]; do
    i=$((i + 1))
    touch "$root/mnt-$i"
    # The kernel refuses (EINVAL) to bind a mount namespace whose id is not above the binder's,
    # and ids come in per-CPU batches: now and then the bind fails, and is tried again.
    tries=0
    until unshare --mount="$root/mnt-$i" --propagation private sh -c '
        mount -t tmpfs bench-inner "$1"
        j=0
        while [ $j -lt $2 ]; do
            j=$((j + 1)); touch "$1/ns-$j"; unshare --net="$1/ns-$j" true
        done' sh "$root/inner" "$per" 2>/dev/null; do
        tries=$((tries + 1)); [ $tries -lt 20 ] || exit 1
    done
done'''


def wait_event(events, type_, ino, after, notes, timeout_s=15):
    deadline = now() + timeout_s
    while now() < deadline:
        at = events.first(type_, ino, after)
        if at is not None:
            return at
        time.sleep(0.001)
    notes.append(f"mount namespaces: no {type_} event for a namespace bound in a followed mount "
                 f"namespace within {timeout_s} s")
    return None


def follow_latencies(daemon, holders, root, samples, notes):
    """With no sweep due: a network namespace bound in a followed mount namespace (found: its
    attach event, then a walk), then unmounted there (destroyed: its detach event). Seconds from
    the return of the command that mounted (unmounted) to the event's arrival."""
    events = EventReader(daemon.port)
    found, destroyed = [], []
    try:
        for k in range(samples):
            holder = holders[k % len(holders)]
            path = f"{root}/inner/late-{k}"
            before = now()
            subprocess.run(["nsenter", f"--mount={holder}", "sh", "-c",
                            'touch "$1" && exec unshare --net="$1" true', "sh", path], check=True)
            t = now()
            ino = int(subprocess.run(["nsenter", f"--mount={holder}", "stat", "-L", "-c", "%i",
                                      path], check=True, capture_output=True, text=True).stdout)
            # (The inode of a freed namespace goes to the next: events older than the command
            # are another's.)
            at = wait_event(events, "found", ino, before, notes)
            if at is None:
                subprocess.run(["nsenter", f"--mount={holder}", "umount", path], check=True)
                continue
            found.append(max(0.0, at - t))
            # The detach can be read, and the namespace found freed, before nsenter has exited:
            # events since the command began are its.
            before = now()
            subprocess.run(["nsenter", f"--mount={holder}", "umount", path], check=True)
            u = now()
            at = wait_event(events, "destroyed", ino, before, notes)
            if at is not None:
                destroyed.append(max(0.0, at - u))
    finally:
        events.close()
    return found, destroyed


def mount_tax(exe, daemon, client, holders, root, pairs, rounds, notes):
    """bench/mounttax in a mount namespace of its own, rounds alternately not followed by netnsd
    (made after its last walk, with no sweep due) and followed (a mount in a followed namespace
    made it walk again): per round the mounter's wall and kernel time per bind mount + unmount,
    and, followed, netnsd's CPU per event read."""
    res = {"pairs": pairs, "off_wall_us": [], "on_wall_us": [], "off_sys_us": [],
           "on_sys_us": [], "netnsd_us_per_event": []}
    for _ in range(rounds):
        for mode in ("off", "on"):
            time.sleep(1)  # the walks that the last round's mounts asked for are over
            p = subprocess.Popen([exe, f"{root}/tax", str(pairs)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
            try:
                if not p.stdout.readline().startswith("ready"):
                    raise BenchError("mounttax did not start")
                followed = metric(client, "netnsd_mount_namespaces_followed")
                if mode == "on":
                    walks = metric(client, "netnsd_mount_namespace_walks_total")
                    subprocess.run(["nsenter", f"--mount={holders[0]}", "sh", "-c",
                                    'touch "$1" && mount --bind "$1" "$1" && umount "$1"', "sh",
                                    f"{root}/inner/poke"], check=True)
                    deadline = now() + 15
                    while now() < deadline and not (
                            metric(client, "netnsd_mount_namespace_walks_total") > walks and
                            metric(client, "netnsd_mount_namespaces_followed") > followed):
                        time.sleep(0.01)
                    if metric(client, "netnsd_mount_namespaces_followed") <= followed:
                        raise BenchError("netnsd did not follow mounttax's mount namespace")
                events = metric(client, "netnsd_foreign_mount_events_total")
                cpu = daemon.cpu_seconds()
                p.stdin.write("go\n")
                p.stdin.flush()
                wall, sys_us = p.stdout.readline().split()
                p.wait(timeout=600)
                time.sleep(0.1)  # the last events read
                cpu = daemon.cpu_seconds() - cpu
                events = metric(client, "netnsd_foreign_mount_events_total") - events
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            res[f"{mode}_wall_us"].append(float(wall))
            res[f"{mode}_sys_us"].append(float(sys_us))
            if mode == "on":
                if events < 2 * pairs:
                    notes.append(f"mounttax: netnsd read {int(events)} events of {2 * pairs}")
                res["netnsd_us_per_event"].append(cpu * 1e6 / max(events, 1))
            elif events:
                notes.append(f"mounttax: netnsd read {int(events)} events of a namespace it "
                             "should not have followed yet")
    return res


def phase_mount_namespaces(a, R, port, count=100, per=10):
    """count mount namespaces that no process is in (each held by a bind mount of it), each
    with per network namespaces bound only there: the walk of the mount namespaces that netnsd
    makes at start (which enters each to identify its new namespaces) and with each sweep
    (which only lists and describes their mounts), against `nsenter --mount=H findmnt -t nsfs`
    for each of them (what a tool reads to list the same)."""
    res = {"count": count, "per": per}
    root = "/run/netnsd-bench-mntns"
    daemon = None
    try:
        t = now()
        subprocess.run(["sh", "-c", MNTNS_SCRIPT, "sh", root, str(count), str(per)], check=True)
        res["make_s"] = now() - t
        holders = [f"{root}/mnt-{i}" for i in range(1, count + 1)]
        for phase, interval in (("first", "600"), ("steady", "1")):
            Daemon.next_port = port
            daemon = Daemon(a.netnsd, a.logdir, f"mntns-{phase}", R["notes"],
                            extra_args=["--deep-scan-interval", "0", "--sweep-interval", interval,
                                        "--follow-mount-namespaces"])
            daemon.wait_watching(120)
            client = foundation.Client(daemon.port, timeout=120)
            res["seen"] = metric(client, "netnsd_mount_namespaces")
            if phase == "first":
                # Nothing but the start's walk yet, which opened every namespace it found.
                res["first_walk_s"] = metric(client, "netnsd_mount_namespace_walk_seconds")
                rows = json.loads(client.get("/api/v1/namespaces")[1])["namespaces"]
                res["found"] = sum(1 for r in rows for m in r["mounts"]
                                   if m["other_mnt_ns"] and m["path"].startswith(f"{root}/inner/"))
                # Between walks (none is due: the next sweep is 10 minutes away), from the
                # followed namespaces' mount events.
                res["follow_found_s"], res["follow_destroyed_s"] = follow_latencies(
                    daemon, holders, root, 5 if a.quick else 20, R["notes"])
                if a.mounttax:
                    try:
                        res["mounttax"] = mount_tax(a.mounttax, daemon, client, holders, root,
                                                    5000 if a.quick else 20000,
                                                    2 if a.quick else 3, R["notes"])
                    except BenchError as e:
                        R["notes"].append(f"mount namespaces: {e}")
            else:
                walks = []
                last = None
                deadline = now() + 60
                while len(walks) < a.inv_walks and now() < deadline:
                    sweeps = metric(client, "netnsd_sweep_duration_seconds_count")
                    if sweeps != last:
                        walks.append(metric(client, "netnsd_mount_namespace_walk_seconds"))
                        last = sweeps
                    time.sleep(0.2)
                res["walk_s"] = walks[1:]  # the first is the start's
                res["cpu_s"] = daemon.cpu_seconds()
            daemon.stop()
            daemon = None
        res["findmnt_s"] = []
        for _ in range(a.inv_lsns_runs):
            t = now()
            for h in holders:
                subprocess.run(["nsenter", f"--mount={h}", "findmnt", "-t", "nsfs", "-n", "-o",
                                "TARGET"], check=True, stdout=subprocess.DEVNULL)
            res["findmnt_s"].append(now() - t)
    finally:
        if daemon:
            daemon.stop()
        for i in range(1, count + 1):
            subprocess.run(["umount", f"{root}/mnt-{i}"], stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", root])
    return res
