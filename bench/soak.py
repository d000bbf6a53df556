#!/usr/bin/env python3
"""The driver of bench/soak: everything at once against one netnsd, then a strict comparison.

It runs inside tests/support/sandbox (private mount and network namespaces, tmpfs on /run,
/run/netns and /etc/netns), so every namespace, mount and nsid it makes vanishes with the
sandbox, and all traffic goes to netnsd on the sandbox's own 127.0.0.1, or to its Unix socket
in the sandbox's /run (netnsd listens on both). Run bench/soak rather than this file.

For --duration seconds, at once:
  * stream clients (bench/soak_streams.py, a child process): websocket, SSE and NDJSON, some
    steady, some dropping their connection and resuming, some too slow for their queue; a
    third of them over the Unix socket; a few with names= and types= filters;
  * wrk on the read API (/api/v1/netns, /api/v1/netns/NAME, /api/v1/nsids, /healthz),
    paced by a Lua delay() so that it loads netnsd without taking a whole CPU;
  * workers doing add/delete cycles, half with `ip netns add/del`, half with the admin API,
    plus nsid sets (`ip netns set NAME auto`, PUT .../nsid, POST with "nsid":"auto") and execs
    of `true` (POST .../exec); half of the admin requests over the Unix socket;
  * a disruptor: forced inotify overflows (netnsd was started with a small inotify queue and
    is held with SIGSTOP while a burst of entries is made and removed), the netns dir
    unmounted and a fresh tmpfs mounted there, and keepers (a process holding a namespace
    with an nsid after its name was deleted, then exiting).
Then: everything stops, the API must equal `ip` (names, inodes, nsids), every client's
reconstruction must equal the API at the same revision (a filtered client's, the API's state
restricted to its filter; its events, exactly the whole sequence filtered), each admin request
must have its audit line naming its peer (127.0.0.1:PORT, or the driver's pid, uid and gid over
the Unix socket), netnsd's fds and RSS must be within
10% of their warm-up values (and its fds back to the idle count once the clients left), and
its log may hold no warning or error the run did not provoke. A summary goes to stdout and
to OUT/soak.md (raw figures in OUT/soak.json, netnsd's log in OUT/logs/); the exit status is
1 when anything was lost or wrong.
"""

import argparse
import collections
import http.client
import json
import os
import random
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.parse

from benchlib import BenchError, die_with_parent, machine_facts, median, now
from soak_streams import DEFAULT_FILTERED, Filter

HOST = "127.0.0.1"
NETNS_DIR = "/run/netns"
KNOB = "/proc/sys/fs/inotify/max_queued_events"
SANE_QUEUE = 1024  # no real system runs with an inotify queue below this
ANCHOR = "soak-anchor"
# netnsd's second listener, in the sandbox's own tmpfs /run (next to the token).
UNIX_SOCKET = "/run/netnsd-soak/netnsd.sock"

T0 = now()


def say(text):
    sys.stderr.write(f"soak [{now() - T0:7.1f}s] {text}\n")
    sys.stderr.flush()


class Problems:
    """Everything that went wrong, in order; any of them fails the run."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, text):
        with self.lock:
            self.items.append(text)
        say(f"PROBLEM: {text}")


PROBLEMS = Problems()


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = collections.Counter()

    def add(self, key, n=1):
        with self.lock:
            self.c[key] += n

    def __getitem__(self, key):
        with self.lock:
            return self.c[key]

    def snapshot(self):
        with self.lock:
            return dict(self.c)


OPS = Counters()


# --- talking to netnsd -------------------------------------------------------------------------


def quote(name):
    """A name in a URL path: every byte percent-encoded as needed (names are bytes; ours hold
    their non-UTF-8 bytes as surrogate escapes, as os.fsencode does)."""
    return urllib.parse.quote(name.encode("utf-8", "surrogateescape"), safe="")


def name_of(entry):
    """The exact name of an API entry: `name` is text (U+FFFD for bytes that are not UTF-8),
    `href` percent-encodes the bytes."""
    raw = urllib.parse.unquote_to_bytes(entry["href"].rsplit("/", 1)[1])
    return raw.decode("utf-8", "surrogateescape")


def lossy(name):
    """A name as JSON text shows it (what /api/v1/nsids has: no href there)."""
    if name is None:
        return None
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def is_utf8(name):
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix stream socket."""

    def __init__(self, socket_path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class Api:
    """One keep-alive connection (per thread that uses it), over TCP, or over the Unix socket
    at `unix` when given."""

    def __init__(self, port, token=None, unix=None):
        self.port = port
        self.token = token
        self.unix = unix
        self.conn = None
        self.last_used = 0.0

    def request(self, method, path, body=None, timeout=60):
        # netnsd closes a connection idle for 30 s; start a fresh one well before that.
        if self.conn is None or now() - self.last_used > 10:
            self.close()
            if self.unix is not None:
                self.conn = UnixHTTPConnection(self.unix, timeout)
            else:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token is not None and method != "GET":
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
            raw = r.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        self.last_used = now()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = raw.decode("utf-8", "replace")
        return r.status, doc

    def get(self, path):
        status, doc = self.request("GET", path)
        if status != 200:
            raise BenchError(f"GET {path}: HTTP {status}: {doc}")
        return doc

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        try:
            out[key] = float(value)
        except ValueError:
            pass
    return out


class Daemon:
    def __init__(self, args):
        self.args = args
        self.port = args.port
        self.log_path = os.path.join(args.out, "logs", "netnsd.log")
        self.token_file = "/run/netnsd-soak/token"
        self.unix = args.unix_socket
        self.cmd = [
            args.netnsd,
            "--listen", f"{HOST}:{self.port}",
            "--listen", f"unix:{self.unix}",
            "--netns-dir", NETNS_DIR,
            "--token-file", self.token_file,
            "--enable-exec",
            "--log-format", "json",
            "--journal-size", str(args.journal_size),
            "--stream-queue-messages", str(args.stream_queue_messages),
            "--audit-interval", str(args.audit_interval),
            "--max-stream-clients", str(2048),
            "--log-level", args.netnsd_log_level,
        ]
        self.proc = None
        self.api = None
        self.queue_lowered = False

    def start(self):
        """Starts netnsd with a small inotify queue: the limit is read when netnsd calls
        inotify_init1, and it is a host-wide sysctl, so it is lowered for that moment only and
        restored at once, whatever happens."""
        saved = read_knob()
        waited = 0.0
        while saved < SANE_QUEUE and waited < 10:
            # Someone else (netns_watch_test does the same) has it lowered right now.
            time.sleep(0.05)
            waited += 0.05
            saved = read_knob()
        if saved < SANE_QUEUE:
            raise BenchError(f"{KNOB} stays at {saved}; not touching it")
        os.makedirs(os.path.dirname(self.unix), exist_ok=True)
        log = open(self.log_path, "wb")
        try:
            write_knob(self.args.inotify_queue)
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT,
                                         preexec_fn=die_with_parent)
            deadline = now() + 10
            while not self.has_inotify():
                if self.proc.poll() is not None or now() > deadline:
                    raise BenchError("netnsd never opened its inotify instance")
                time.sleep(0.001)
            self.queue_lowered = True
        finally:
            write_knob(saved)
        deadline = now() + 15
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"netnsd exited with {self.proc.returncode}; see {self.log_path}")
            try:
                api = Api(self.port)
                if api.get("/healthz").get("watching"):
                    api.close()
                    break
            except (OSError, http.client.HTTPException, BenchError):
                pass
            if now() > deadline:
                raise BenchError("netnsd did not answer /healthz within 15 s")
            time.sleep(0.02)
        with open(self.token_file) as f:
            self.token = f.read().strip()
        # The Unix listener: a socket, mode 0660, serving the same netnsd.
        api = Api(self.port, unix=self.unix)
        try:
            st = os.lstat(self.unix)
            if not stat.S_ISSOCK(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o660:
                PROBLEMS.add(f"{self.unix}: mode {stat.filemode(st.st_mode)}, not a socket of "
                             "mode 0660")
            if not api.get("/healthz").get("watching"):
                PROBLEMS.add(f"/healthz over {self.unix} says netnsd is not watching")
        except (OSError, http.client.HTTPException) as e:
            raise BenchError(f"netnsd's Unix socket {self.unix}: {type(e).__name__}: {e}")
        finally:
            api.close()

    def has_inotify(self):
        try:
            for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
                try:
                    if os.readlink(f"/proc/{self.proc.pid}/fd/{fd}") == "anon_inode:inotify":
                        return True
                except OSError:
                    pass
        except OSError:
            pass
        return False

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def fd_kinds(self):
        """netnsd's descriptors by kind: TCP connections (by what the peer is), the Unix
        listener and its connections, other sockets (TCP listener, netlink), and the rest by
        what they link to."""
        peers = tcp_peers(self.port)
        peers.update(unix_sockets(self.unix))
        kinds = collections.Counter()
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                link = os.readlink(f"/proc/{self.proc.pid}/fd/{fd}")
            except OSError:
                continue
            m = re.match(r"socket:\[(\d+)\]", link)
            if m:
                kinds[peers.get(int(m.group(1)), "socket")] += 1
            elif link.startswith("anon_inode:") or link.startswith("pipe:"):
                kinds[link.split(":")[0] + ":" + link.split(":")[1].strip("[]")] += 1
            else:
                kinds["file"] += 1
        return dict(kinds)

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def metrics(self, api):
        status, text = api.request("GET", "/metrics")
        if status != 200:
            raise BenchError(f"GET /metrics: HTTP {status}")
        return parse_metrics(text if isinstance(text, str) else json.dumps(text))

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


def tcp_peers(port):
    """Socket inode -> "tcp:PROCESS" for netnsd's side of every TCP connection on `port`,
    named by the process at the other end (stream clients, wrk, the driver)."""
    local = {}
    remote_port_owner = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            lport = int(parts[1].split(":")[1], 16)
            rport = int(parts[2].split(":")[1], 16)
            inode = int(parts[9])
            if lport == port and parts[3] != "0A":  # netnsd's side, not the listener
                local[inode] = rport
            elif rport == port:
                remote_port_owner[lport] = inode
    owners = {}
    if local:
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                comm = open(f"/proc/{pid}/comm").read().strip()
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    m = re.match(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
                    if m:
                        owners[int(m.group(1))] = comm
            except OSError:
                continue
    out = {}
    for inode, rport in local.items():
        client = remote_port_owner.get(rport)
        out[inode] = "tcp:" + owners.get(client, "closed") if client else "tcp:closed"
    return out


def unix_sockets(path):
    """Socket inode -> "unix:listener" or "unix:connection" for the sockets bound to `path`
    (what netnsd accepts there carries the listener's address)."""
    out = {}
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            if len(parts) >= 8 and parts[7] == path:
                out[int(parts[6])] = "unix:listener" if parts[5] == "01" else "unix:connection"
    return out


def read_knob():
    with open(KNOB) as f:
        return int(f.read().strip())


def write_knob(value):
    with open(KNOB, "w") as f:
        f.write(str(value))


def ip(*args, check=True):
    # Bytes out: names are bytes, and ip prints them as they are.
    r = subprocess.run(["ip", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    r.stdout = r.stdout.decode("utf-8", "surrogateescape")
    r.stderr = r.stderr.decode("utf-8", "backslashreplace")
    if check and r.returncode != 0:
        raise BenchError(f"ip {' '.join(map(repr, args))}: exit {r.returncode}: {r.stderr.strip()}")
    return r


def ip_json(*args):
    out = ip("-j", *args).stdout.strip()
    return json.loads(out) if out else []


# --- the gate: workers run ops under it shared, the remount takes it exclusive -------------------


class Gate:
    def __init__(self):
        self.cond = threading.Condition()
        self.readers = 0
        self.writer = False
        self.generation = 0

    def shared(self):
        gate = self

        class Shared:
            def __enter__(self):
                with gate.cond:
                    while gate.writer:
                        gate.cond.wait()
                    gate.readers += 1
                    return gate.generation

            def __exit__(self, *exc):
                with gate.cond:
                    gate.readers -= 1
                    gate.cond.notify_all()

        return Shared()

    def exclusive(self):
        gate = self

        class Exclusive:
            def __enter__(self):
                with gate.cond:
                    while gate.writer:
                        gate.cond.wait()
                    gate.writer = True
                    while gate.readers:
                        gate.cond.wait()

            def __exit__(self, *exc):
                with gate.cond:
                    gate.generation += 1
                    gate.writer = False
                    gate.cond.notify_all()

        return Exclusive()


# --- workers: add/delete cycles -------------------------------------------------------------------


class Worker(threading.Thread):
    def __init__(self, index, args, daemon, gate, stop, pace_s):
        super().__init__(name=f"worker-{index}", daemon=True)
        self.index = index
        self.args = args
        self.gate = gate
        self.stop = stop
        # Seconds per operation: the workers together make the target number of cycles over
        # the whole load phase (they never stop early: the end window measures them too).
        self.pace_s = pace_s
        self.rng = random.Random(f"{args.seed}-worker-{index}")
        # Which transport each admin request takes: its own generator, so that the mix of
        # operations is the same whatever the share.
        self.transport_rng = random.Random(f"{args.seed}-worker-{index}-transport")
        self.api = Api(daemon.port, daemon.token)
        self.api_unix = Api(daemon.port, daemon.token, unix=daemon.unix)
        # Names are bytes to the kernel: a few in each pool have a space, UTF-8, a byte that is
        # not UTF-8 (a surrogate escape here), a newline, a leading dash.
        odd = [f"soak w{index} space", f"soak-\u00fc\u00f1\u00ee-{index}",
               f"soak-\udcff-{index}", f"soak-nl\n{index}", f"-soak-dash-{index}"]
        plain = [f"soak-w{index}-{i:02d}" for i in range(max(0, args.pool - len(odd)))]
        self.names = plain + odd
        self.live = set()
        self.has_nsid = set()

    def fail(self, what, detail):
        OPS.add("failed")
        PROBLEMS.add(f"{self.name}: {what}: {detail}")

    def admin(self, method, path, body, want):
        unix = self.transport_rng.random() < self.args.unix_admin_share
        OPS.add("admin_requests")
        OPS.add("admin_requests_unix" if unix else "admin_requests_tcp")
        try:
            status, doc = (self.api_unix if unix else self.api).request(method, path, body)
        except (OSError, http.client.HTTPException) as e:
            self.fail(f"{method} {path} over {'unix' if unix else 'tcp'}",
                      f"{type(e).__name__}: {e}")
            return None
        if status != want:
            self.fail(f"{method} {path} over {'unix' if unix else 'tcp'}", f"HTTP {status}: {doc}")
            return None
        return doc

    def add(self, name):
        # JSON text cannot carry a name that is not UTF-8: those are made with ip.
        if self.rng.random() < 0.5 or not is_utf8(name):
            r = ip("netns", "add", name, check=False)
            OPS.add("ip_add")
            if r.returncode != 0:
                return self.fail(f"ip netns add {name}", r.stderr.strip())
        else:
            body = {"name": name}
            if self.rng.random() < 0.3:
                body["nsid"] = "auto"
            OPS.add("api_add")
            doc = self.admin("POST", "/api/v1/netns", body, 201)
            if doc is None:
                return
            if "nsid" in body:
                OPS.add("api_add_nsid")
                if doc.get("nsid") is None:
                    self.fail(f"POST {name} with nsid auto", f"answered without an nsid: {doc}")
                self.has_nsid.add(name)
        self.live.add(name)
        if name not in self.has_nsid and self.rng.random() < 0.25:
            if self.rng.random() < 0.5:
                r = ip("netns", "set", name, "auto", check=False)
                OPS.add("ip_nsid")
                if r.returncode != 0:
                    return self.fail(f"ip netns set {name} auto", r.stderr.strip())
            else:
                OPS.add("api_nsid")
                doc = self.admin("PUT", f"/api/v1/netns/{quote(name)}/nsid", {"nsid": "auto"}, 200)
                if doc is not None and doc.get("nsid") is None:
                    self.fail(f"PUT {name}/nsid auto", f"answered without an nsid: {doc}")
            self.has_nsid.add(name)
        if self.rng.random() < self.args.exec_share:
            OPS.add("exec")
            doc = self.admin("POST", f"/api/v1/netns/{quote(name)}/exec",
                             {"argv": ["true"], "timeout_ms": 10000}, 200)
            if doc is not None and (doc.get("exit_code") != 0 or doc.get("timed_out")):
                self.fail(f"exec true in {name}", json.dumps(doc))

    def delete(self, name):
        if self.rng.random() < 0.5:
            r = ip("netns", "del", name, check=False)
            OPS.add("ip_del")
            if r.returncode != 0:
                return self.fail(f"ip netns del {name}", r.stderr.strip())
        else:
            OPS.add("api_del")
            if self.admin("DELETE", f"/api/v1/netns/{quote(name)}", None, 200) is None:
                return
        self.live.discard(name)
        self.has_nsid.discard(name)
        OPS.add("cycles")

    def run(self):
        generation = 0
        next_at = now()
        try:
            while not self.stop.is_set():
                delay = next_at - now()
                if delay > 0 and self.stop.wait(delay):
                    break
                # A worker held up (a burst, a remount, a slow exec) catches up afterwards, but
                # never by more than 50 operations at once.
                next_at = max(next_at + self.pace_s, now() - 50 * self.pace_s)
                with self.gate.shared() as g:
                    if g != generation:
                        # The dir was unmounted: every name went with it.
                        generation = g
                        self.live.clear()
                        self.has_nsid.clear()
                    name = self.rng.choice(self.names)
                    if name in self.live:
                        self.delete(name)
                    else:
                        self.add(name)
        except Exception as e:  # a bug in the soak itself: say so, loudly
            PROBLEMS.add(f"{self.name} crashed: {type(e).__name__}: {e}")
        finally:
            self.api.close()
            self.api_unix.close()


# --- the disruptor: overflows, remounts, keepers ---------------------------------------------------


class Disruptor(threading.Thread):
    def __init__(self, args, daemon, gate, stop, load_s, warmup_s):
        super().__init__(name="disruptor", daemon=True)
        self.args = args
        self.daemon_ = daemon
        self.gate = gate
        self.stop = stop
        self.api = Api(daemon.port, daemon.token)
        self.keepers = []
        self.burst_names = []
        self.log = []  # (t, what, detail)
        n_bursts = max(2, round(load_s / args.burst_every))
        n_remounts = max(1, round(load_s / args.remount_every))
        n_keepers = max(1, round(load_s / args.keeper_every))
        n_short = max(1, round(load_s / args.short_every)) if args.evlat else 0
        # The first of each kind happens during the warm-up, so that the warm-up's fds and RSS
        # already include what each costs; the others are spread over the rest of the load.
        plan = []
        for what, n, first in (("keeper", n_keepers, 0.3), ("burst", n_bursts, 0.45),
                               ("remount", n_remounts, 0.6), ("short", n_short, 0.75)):
            if n == 0:
                continue
            plan.append((first * warmup_s, what, 0))
            rest = n - 1
            for i in range(rest):
                at = warmup_s + (0.9 * load_s - warmup_s) * (i + 0.5) / rest
                plan.append((at, what, i + 1))
        self.plan = sorted(plan)
        self.keeper_life = max(3.0, min(20.0, load_s / 6))

    def note(self, what, detail=""):
        self.log.append((round(now() - self.t0, 1), what, detail))
        say(f"{what} {detail}".rstrip())

    def run(self):
        self.t0 = now()
        try:
            for at, what, i in self.plan:
                delay = self.t0 + at - now()
                if delay > 0 and self.stop.wait(delay):
                    break
                if self.stop.is_set():
                    break
                getattr(self, what)(i)
        except Exception as e:
            PROBLEMS.add(f"disruptor crashed: {type(e).__name__}: {e}")
        finally:
            self.api.close()

    def overflows(self):
        m = self.daemon_.metrics(self.api)
        return m.get('netnsd_resyncs_total{reason="inotify_overflow"}', 0)

    def burst(self, i):
        """Overflow netnsd's small inotify queue: SIGSTOP it, make far more entries than the
        queue holds (placeholder files, plus real namespaces, one with an nsid, and the
        deletion of the previous burst's), remove half, SIGCONT, remove the rest."""
        before = self.overflows()
        flood = [f"{NETNS_DIR}/soak-flood-{i}-{k:04d}" for k in range(4 * self.args.inotify_queue)]
        names = [f"soak-burst-{i}-{k}" for k in range(3)]
        pid = self.daemon_.proc.pid
        with self.gate.shared():
            os.kill(pid, signal.SIGSTOP)
            try:
                for path in flood:
                    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0))
                for name in names:
                    ip("netns", "add", name)
                ip("netns", "set", names[0], "auto")
                for name in self.burst_names:
                    ip("netns", "del", name, check=False)  # gone if a remount came between
                for path in flood[::2]:
                    os.unlink(path)
            finally:
                os.kill(pid, signal.SIGCONT)
            for path in flood[1::2]:
                os.unlink(path)
            self.burst_names = names
        OPS.add("bursts")
        deadline = now() + 10
        while self.overflows() <= before:
            if now() > deadline:
                PROBLEMS.add(f"burst {i}: netnsd counted no inotify overflow")
                return
            time.sleep(0.05)
        self.note(f"burst {i}", f"({len(flood)} placeholders, 3 namespaces) overflowed the queue")

    def remount(self, i):
        """Unmount the netns dir (a tmpfs; every namespace bound there goes with it) and mount
        a fresh one, with the workers held at the gate."""
        with self.gate.exclusive():
            subprocess.run(["umount", "-l", NETNS_DIR], check=True)
            OPS.add("remounts")
            t = now()
            ok = self.wait_for(lambda l: not l, 10)
            if not ok:
                PROBLEMS.add(f"remount {i}: netnsd still lists entries 10 s after the unmount")
            if ip_json("netns", "list"):
                PROBLEMS.add(f"remount {i}: ip still lists entries after the unmount")
            gone_s = now() - t
            self.stop.wait(0.3)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", f"soak-netns-{i}",
                            NETNS_DIR], check=True)
            t = now()
            ip("netns", "add", ANCHOR)
            if not self.wait_for(lambda l: l.get(ANCHOR) == "live", 10):
                PROBLEMS.add(f"remount {i}: netnsd did not see {ANCHOR} in the new dir")
            self.burst_names = []
            self.note(f"remount {i}", f"(emptied in {gone_s * 1000:.0f} ms, "
                                      f"new dir followed in {(now() - t) * 1000:.0f} ms)")

    def short(self, i):
        """Short lives under everything else: bench/evlat's own subscribers (a few of them
        slow) and a creator making namespaces that are deleted --short-lifetime-ms after their
        mount; every one of its subscribers must get exactly the creator's adds and deletes, in
        order. evlat's whole answer (the creator's record with each call's time) is kept in
        short-lives-I.json."""
        prefix = f"soak-short-{i}-"
        cmd = [self.args.evlat, "fanout", "--port", str(self.daemon_.port), "--dir", NETNS_DIR,
               "--subs", str(self.args.short_subs), "--slow", str(max(1, self.args.short_subs // 50)),
               "--count", str(self.args.short_count), "--lifetime-ms",
               str(self.args.short_lifetime_ms), "--pace-us", "0",
               "--prefix", prefix, "--timeout", "120",
               # The entries' events only: the host inventory's (found, holders, destroyed)
               # would triple what a subscriber queues, over this soak's small queue limit.
               "--entries-only"]
        with self.gate.shared():
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               timeout=180, preexec_fn=die_with_parent)
        try:
            doc = json.loads(p.stdout)
        except ValueError:
            PROBLEMS.add(f"short lives {i}: evlat exited {p.returncode}: {p.stderr[-300:]}")
            return
        with open(os.path.join(self.args.out, f"short-lives-{i}.json"), "w") as f:
            json.dump(doc, f)
        OPS.add("short_lives")
        OPS.add("short_namespaces", self.args.short_count)
        if p.returncode != 0 or doc.get("exact") != doc.get("subs"):
            PROBLEMS.add(f"short lives {i}: {doc.get('exact')} of {doc.get('subs')} subscribers "
                         f"had exactly the creator's sequence, lost {doc.get('lost')}; "
                         f"{doc.get('failure') or '; '.join(doc.get('differences', [])[:2])}")
        self.note(f"short lives {i}", f"({doc.get('exact')}/{doc.get('subs')} exact, "
                                      f"{self.args.short_count} namespaces of "
                                      f"{self.args.short_lifetime_ms} ms)")

    def wait_for(self, pred, timeout):
        deadline = now() + timeout
        while now() < deadline:
            doc = self.api.get("/api/v1/netns")
            if pred({name_of(e): e["state"] for e in doc["namespaces"]}):
                return True
            time.sleep(0.02)
        return False

    def keeper(self, i):
        k = Keeper(i, self, self.keeper_life)
        self.keepers.append(k)
        k.start()


class Keeper(threading.Thread):
    """A namespace with an nsid whose name is deleted while a process still holds it: netnsd
    must keep the nsid (unnamed) until the process exits, then drop it (RTM_DELNSID)."""

    def __init__(self, index, disruptor, life):
        super().__init__(name=f"keeper-{index}", daemon=True)
        self.index = index
        self.d = disruptor
        self.life = life
        self.proc = None
        # Its reads go over the Unix socket.
        self.api = Api(disruptor.daemon_.port, unix=disruptor.daemon_.unix)
        self.outcome = "unfinished"

    def nsid_row(self, nsid):
        OPS.add("unix_reads")
        rows = self.api.get("/api/v1/nsids")["nsids"]
        for r in rows:
            if r["nsid"] == nsid:
                return r
        return None

    def run(self):
        name = f"soak-keep-{self.index}"
        try:
            with self.d.gate.shared():
                ip("netns", "add", name)
                ip("netns", "set", name, "auto")
                nsid = next(e["id"] for e in ip_json("netns", "list") if e["name"] == name)
                ino = os.stat(f"{NETNS_DIR}/{name}").st_ino
                self.proc = subprocess.Popen(["nsenter", f"--net={NETNS_DIR}/{name}", "sleep",
                                              str(self.life)])
                deadline = now() + 5
                while True:
                    try:
                        if os.stat(f"/proc/{self.proc.pid}/ns/net").st_ino == ino:
                            break
                    except OSError:
                        pass
                    if now() > deadline:
                        raise BenchError("the keeper never entered its namespace")
                    time.sleep(0.005)
                ip("netns", "del", name)
            OPS.add("keepers")
            deadline = now() + 5
            while True:
                row = self.nsid_row(nsid)
                if row is not None and row["name"] is None:
                    break
                if now() > deadline:
                    PROBLEMS.add(f"keeper {self.index}: nsid {nsid} not shown unnamed after "
                                 f"{name} was deleted (row: {row})")
                    self.outcome = "failed"
                    return
                time.sleep(0.02)
            listed = {e["nsid"]: e.get("name") for e in ip_json("netns", "list-id")}
            if nsid not in listed:
                PROBLEMS.add(f"keeper {self.index}: ip netns list-id lacks nsid {nsid}")
            self.d.note(f"keeper {self.index}", f"holds nsid {nsid} of deleted {name} "
                                                f"for {self.life:.0f} s")
            self.proc.wait()
            exited = now()
            deadline = now() + 10
            while True:
                row = self.nsid_row(nsid)
                # Gone, or already given to a namespace with a name (nsids are reused).
                if row is None or row["name"] is not None:
                    break
                if now() > deadline:
                    PROBLEMS.add(f"keeper {self.index}: nsid {nsid} still unnamed 10 s after "
                                 "its holder exited")
                    self.outcome = "failed"
                    return
                time.sleep(0.05)
            self.outcome = f"ok (nsid {nsid} dropped {1000 * (now() - exited):.0f} ms after exit)"
            OPS.add("keepers_ok")
        except Exception as e:
            PROBLEMS.add(f"keeper {self.index} crashed: {type(e).__name__}: {e}")
            self.outcome = "crashed"
        finally:
            self.api.close()

    def end(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()


# --- sampling fds and RSS ---------------------------------------------------------------------------


class Sampler(threading.Thread):
    def __init__(self, daemon, streams, stop, t0):
        super().__init__(name="sampler", daemon=True)
        self.daemon_ = daemon
        self.streams = streams
        self.stop = stop
        self.t0 = t0
        self.samples = []  # (t, fds, rss_kb, live, revision, connected)
        self.kinds = []    # (t, {kind: count}) every 5 s
        self.api = Api(daemon.port)

    def run(self):
        t0 = self.t0
        tick = 0
        while not self.stop.is_set():
            try:
                fds, rss = self.daemon_.fds(), self.daemon_.rss_kb()
                live = rev = connected = None
                if tick % 5 == 0:
                    h = self.api.get("/healthz")
                    live, rev = h.get("namespaces"), h.get("revision")
                    connected = self.streams.status()["connected"]
                self.samples.append((round(now() - t0, 1), fds, rss, live, rev, connected))
                if tick % 5 == 0:
                    self.kinds.append((round(now() - t0, 1), self.daemon_.fd_kinds()))
            except Exception as e:
                if self.daemon_.alive():
                    PROBLEMS.add(f"sampler: {type(e).__name__}: {e}")
                else:
                    PROBLEMS.add(f"netnsd died (exit {self.daemon_.proc.returncode})")
                    return
            tick += 1
            self.stop.wait(1.0)
        self.api.close()


# --- the stream clients' process ---------------------------------------------------------------------


class Streams:
    def __init__(self, args, port, unix):
        self.lock = threading.Lock()
        here = os.path.dirname(os.path.abspath(__file__))
        self.err = open(os.path.join(args.out, "logs", "streams.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(here, "soak_streams.py"), "--port", str(port),
             "--unix", unix, "--unix-every", str(args.unix_every), "--filtered", args.filtered,
             "--seed", str(args.seed), "--websocket", args.websocket, "--sse", args.sse,
             "--ndjson", args.ndjson],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True,
            preexec_fn=die_with_parent)

    def ask(self, cmd):
        with self.lock:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise BenchError("the stream clients' process died; see logs/streams.log")
        return json.loads(line)

    def status(self):
        return self.ask({"cmd": "status"})

    def finish(self):
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- wrk ---------------------------------------------------------------------------------------------

WRK_LUA = """
local paths = {"/api/v1/netns", "/api/v1/netns/%(anchor)s", "/healthz", "/api/v1/nsids"}
local i = 0
local threads = {}
ok = 0
missing = 0
other = 0
function setup(thread) table.insert(threads, thread) end
function request()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1
  elseif status == 404 then missing = missing + 1
  else other = other + 1 end
end
function delay() return %(delay_ms)d end
function done(summary, latency, requests)
  local a, b, c = 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("ok"); b = b + t:get("missing"); c = c + t:get("other")
  end
  io.write(string.format(
    "SOAK-WRK requests=%%d ok=%%d missing=%%d other=%%d connect=%%d read=%%d write=%%d " ..
    "timeout=%%d p50_us=%%d p99_us=%%d max_us=%%d\\n",
    summary.requests, a, b, c, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, latency:percentile(50),
    latency:percentile(99), latency.max))
end
"""


def start_wrk(args, port, seconds):
    script = os.path.join(args.out, "soak-wrk.lua")
    with open(script, "w") as f:
        f.write(WRK_LUA % {"anchor": ANCHOR, "delay_ms": args.wrk_delay_ms})
    out = open(os.path.join(args.out, "logs", "wrk.log"), "w")
    cmd = ["wrk", "-t1", f"-c{args.wrk_connections}", f"-d{int(seconds)}s", "--timeout", "10s",
           "-s", script, f"http://{HOST}:{port}"]
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent), out.name


def wrk_result(path):
    with open(path) as f:
        text = f.read()
    m = re.search(r"SOAK-WRK (.*)", text)
    if not m:
        return None, text
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}, text


# --- the final comparison ----------------------------------------------------------------------------


def api_state(api):
    """The names and nsids the API serves, both at one revision (read again until the two
    reads agree: the inventory's events may move the revision between them)."""
    for _ in range(20):
        a = api.get("/api/v1/netns")
        n = api.get("/api/v1/nsids")
        if n["revision"] == a["revision"]:
            break
    live = {}
    stale = []
    for e in a["namespaces"]:
        if e["state"] == "live":
            live[name_of(e)] = {"ns_id": e.get("ns_id"), "inode": e.get("inode"),
                                "nsid": e.get("nsid")}
        else:
            stale.append(name_of(e))
    nsids = {str(r["nsid"]): r.get("name") for r in n["nsids"]}
    return {"revision": a["revision"], "nsids_revision": n["revision"], "live": live,
            "stale": stale, "nsids": nsids}


def ip_state():
    names = {e["name"]: e.get("id") for e in ip_json("netns", "list")}
    list_id = {str(e["nsid"]): lossy(e.get("name")) for e in ip_json("netns", "list-id")}
    inodes = {}
    for name in names:
        try:
            inodes[name] = os.stat(f"{NETNS_DIR}/{name}").st_ino
        except OSError:
            inodes[name] = None
    return {"names": names, "list_id": list_id, "inodes": inodes}


def compare_api_ip(a, i):
    """The differences between what netnsd serves and what the kernel shows through ip."""
    diffs = []
    if a["revision"] != a["nsids_revision"]:
        diffs.append("the two API reads straddled a change")
    if a["stale"]:
        diffs.append(f"stale entries left: {sorted(a['stale'])[:5]}")
    api_names, ip_names = set(a["live"]), set(i["names"])
    if api_names != ip_names:
        diffs.append(f"names: API only {sorted(api_names - ip_names)[:5]}, "
                     f"ip only {sorted(ip_names - api_names)[:5]}")
    for name in sorted(api_names & ip_names):
        e = a["live"][name]
        if e["nsid"] != i["names"][name]:
            diffs.append(f"{name}: API nsid {e['nsid']}, ip {i['names'][name]}")
        if e["inode"] != i["inodes"][name]:
            diffs.append(f"{name}: API inode {e['inode']}, stat {i['inodes'][name]}")
    # `ip netns list-id` is a dump, truncated at ~134 entries on Linux 6.18 (one
    # datagram; the kernel does not continue it): exact below that, a subset above.
    if len(i["list_id"]) < 120:
        if a["nsids"] != i["list_id"]:
            diffs.append(f"nsids: API {sorted(a['nsids'].items())[:8]}, "
                         f"ip list-id {sorted(i['list_id'].items())[:8]}")
    elif any(a["nsids"].get(k) != v for k, v in i["list_id"].items()):
        diffs.append("nsids: ip list-id shows rows the API does not")
    return diffs


def compare_filtered(c, a, flt):
    """A filtered client's reconstruction against the API's state restricted to its filter:
    the live names its glob admits, with ns_id and inode (and nsid when it gets nsid events),
    when it gets both adds and deletes. Its snapshots list every entry; its events only
    those its filter admits, so only the admitted names are followed. Unnamed nsids never
    pass a names filter, and without `destroyed` a deleted namespace's nsid is never known
    to be gone: the nsid table is not compared."""
    diffs = []
    s = c["state"]
    if not c["caught_up"] or c["last"] is None or c["last"] > a["revision"]:
        diffs.append(f"ended at revision {c['last']}, missing events its filter admits up to "
                     f"the API's {a['revision']}")
    if not flt.live_set():
        return diffs
    keys = ("ns_id", "inode", "nsid") if flt.admits_type("nsid") else ("ns_id", "inode")

    def restricted(live):
        return {n: tuple(e[k] for k in keys) for n, e in live.items() if flt.admits_name(n)}

    mine, theirs = restricted(s["live"]), restricted(a["live"])
    c["admitted"] = {"client": len(mine), "api": len(theirs), "api_live": len(a["live"])}
    if mine != theirs:
        only_c = sorted(set(mine) - set(theirs))[:5]
        only_a = sorted(set(theirs) - set(mine))[:5]
        differ = sorted(n for n in set(mine) & set(theirs) if mine[n] != theirs[n])[:5]
        diffs.append(f"live set ({flt}; {', '.join(keys)}) differs: client only {only_c}, "
                     f"API only {only_a}, different {differ}")
    return diffs


def compare_client(c, a):
    """A client's reconstruction against the API at the same revision."""
    flt = Filter.from_doc(c["filter"])
    if flt is not None:
        return compare_filtered(c, a, flt)
    diffs = []
    s = c["state"]
    if c["last"] != a["revision"]:
        diffs.append(f"ended at revision {c['last']}, the API at {a['revision']}")
    if s["live"] != a["live"]:
        mine, theirs = s["live"], a["live"]
        only_c = sorted(set(mine) - set(theirs))[:5]
        only_a = sorted(set(theirs) - set(mine))[:5]
        differ = sorted(n for n in set(mine) & set(theirs) if mine[n] != theirs[n])[:5]
        diffs.append(f"live set differs: client only {only_c}, API only {only_a}, "
                     f"different {differ}")
    named_c = {k: lossy(v) for k, v in s["nsids"].items() if v is not None}
    named_a = {k: v for k, v in a["nsids"].items() if v is not None}
    if named_c != named_a:
        diffs.append(f"named nsids differ: client {sorted(named_c.items())[:5]}, "
                     f"API {sorted(named_a.items())[:5]}")
    unnamed_c = {k for k, v in s["nsids"].items() if v is None}
    unnamed_a = {k for k, v in a["nsids"].items() if v is None}
    if s["complete"] and unnamed_c != unnamed_a:
        diffs.append(f"unnamed nsids differ: client {sorted(unnamed_c)}, API {sorted(unnamed_a)}")
    elif not unnamed_c <= unnamed_a:
        diffs.append(f"unnamed nsids the API no longer has: {sorted(unnamed_c - unnamed_a)}")
    return diffs


# --- the log ---------------------------------------------------------------------------------------

# Warnings and errors the run provokes on purpose; anything else fails it. Each entry: a regex
# on the message, and why the run causes it. Empty while netnsd logs none of these as warnings.
PROVOKED = [
]


def read_log(path):
    lines = []
    bad = []
    with open(path, "rb") as f:
        for raw in f:
            try:
                lines.append(json.loads(raw))
            except ValueError:
                bad.append(raw.decode("utf-8", "replace").rstrip())
    return lines, bad


def check_log(path, unix_peer):
    """The log's levels, what was not provoked, and the audit lines by transport: a TCP peer
    must be 127.0.0.1:PORT, a Unix one exactly `unix_peer` (the driver's pid, uid and gid:
    only the driver sends admin requests over the socket)."""
    lines, bad = read_log(path)
    counts = collections.Counter()
    unexpected = []
    provoked = collections.Counter()
    for doc in lines:
        level, msg = doc.get("level"), doc.get("msg", "")
        counts[level] += 1
        if msg == "rescan":
            provoked[f"rescan, reason={doc.get('reason')}"] += 1
        if level in ("warn", "error"):
            for pattern, why in PROVOKED:
                if re.search(pattern, msg):
                    provoked[f"{level}: {msg} ({why})"] += 1
                    break
            else:
                unexpected.append(f"{level}: {msg} {json.dumps(doc)}")
    audits = collections.Counter()
    bad_peers = []
    for d in lines:
        if d.get("msg") != "audit":
            continue
        peer = str(d.get("peer"))
        if peer.startswith("unix"):
            audits["unix"] += 1
            ok = peer == unix_peer
        else:
            audits["tcp"] += 1
            ok = re.fullmatch(rf"{re.escape(HOST)}:\d+", peer) is not None
        if not ok:
            bad_peers.append(json.dumps(d))
    return {"lines": len(lines), "levels": dict(counts), "not_json": bad[:5],
            "unexpected": unexpected, "provoked": dict(provoked),
            "audit_lines": sum(audits.values()), "audit_by_transport": dict(audits),
            "bad_peers": len(bad_peers), "bad_peer_lines": bad_peers[:5]}


# --- the run -----------------------------------------------------------------------------------------


def fd_rss_window(samples, start, end):
    xs = [s for s in samples if start <= s[0] < end]
    if not xs:
        return None
    return {"from": start, "to": end, "n": len(xs), "fds": median([s[1] for s in xs]),
            "rss_kb": median([s[2] for s in xs])}


def run(args):
    load_s = args.duration - args.final_reserve
    if load_s < 20:
        raise BenchError("--duration is too short: at least final reserve + 20 s")
    # Warm-up: a third of the load, at most a minute. By then every client has been dropped or
    # resumed at least once, the journal is full, the caches have the load's size and every
    # kind of disruption has happened once.
    warmup_s = min(60.0, load_s / 3)
    window_s = min(10.0, load_s / 10)
    target_cycles = args.cycles if args.cycles is not None else round(20000 * args.duration / 600)
    R = {"args": vars(args), "facts": machine_facts(args.revision, args.netnsd),
         "load_s": load_s, "warmup_s": warmup_s, "target_cycles": target_cycles}

    daemon = Daemon(args)
    streams = None
    wrk = None
    keepers = []
    try:
        daemon.start()
        say(f"netnsd {daemon.proc.pid} up (inotify queue {args.inotify_queue} for it, "
            f"{read_knob()} again for everyone else)")
        time.sleep(0.2)
        R["idle_fds"] = daemon.fds()
        R["idle_rss_kb"] = daemon.rss_kb()

        streams = Streams(args, daemon.port, daemon.unix)
        deadline = now() + 30
        while True:
            st = streams.status()
            if st["greeted"] == st["clients"]:
                break
            if now() > deadline:
                raise BenchError(f"only {st['greeted']} of {st['clients']} stream clients "
                                 "had their snapshot after 30 s")
            time.sleep(0.1)
        say(f"{st['clients']} stream clients connected; load for {load_s:.0f} s "
            f"(warm-up {warmup_s:.0f} s), {target_cycles} add/delete cycles")

        stop = threading.Event()
        gate = Gate()
        admin = Api(daemon.port, daemon.token)
        ip("netns", "add", ANCHOR)
        t_load = now()
        sampler = Sampler(daemon, streams, stop, t_load)
        sampler.start()
        wrk, wrk_log = start_wrk(args, daemon.port, load_s)
        # Aim 3% high: operations wait for their answers, and a busy machine loses a little.
        ops_per_s = 2 * target_cycles * 1.03 / load_s
        workers = [Worker(i, args, daemon, gate, stop, args.workers / ops_per_s)
                   for i in range(args.workers)]
        disruptor = Disruptor(args, daemon, gate, stop, load_s, warmup_s)
        for w in workers:
            w.start()
        disruptor.start()

        # Two measuring windows of fds and RSS: after the warm-up and at the end of the load.
        # In each, the flaky clients are held connected, so that both count the same clients.
        windows = [[warmup_s, warmup_s + window_s], [load_s - window_s, load_s]]
        R["windows"] = windows
        held = None
        last_report = now()
        while now() - t_load < load_s:
            time.sleep(0.5)
            t = now() - t_load
            for i, win in enumerate(windows):
                if held is None and win[0] - 3 <= t < win[1] and i not in R.setdefault("held", []):
                    streams.ask({"cmd": "hold"})
                    held = i
                    R["held"].append(i)
                elif held == i and t >= win[1]:
                    streams.ask({"cmd": "release"})
                    held = None
            if not daemon.alive():
                raise BenchError(f"netnsd died (exit {daemon.proc.returncode}); "
                                 f"see {daemon.log_path}")
            if now() - last_report >= args.progress_every:
                last_report = now()
                s = sampler.samples[-1] if sampler.samples else None
                say(f"cycles {OPS['cycles']}/{target_cycles}, fds {s[1] if s else '?'}, "
                    f"RSS {s[2] / 1024 if s else 0:.1f} MiB, problems {len(PROBLEMS.items)}")

        say("load phase over: stopping workers, disruptor, keepers and wrk")
        stop.set()
        for w in workers:
            w.join(timeout=60)
        disruptor.join(timeout=60)
        keepers = disruptor.keepers
        for k in keepers:
            k.end()
        for k in keepers:
            k.join(timeout=20)
        sampler.join(timeout=10)
        try:
            wrk.wait(timeout=20)
        except subprocess.TimeoutExpired:
            wrk.send_signal(signal.SIGINT)
            wrk.wait(timeout=10)
        R["wrk"], wrk_text = wrk_result(wrk_log)
        if R["wrk"] is None:
            PROBLEMS.add(f"wrk printed no summary: {wrk_text[-500:]}")
        R["samples"] = sampler.samples
        R["fd_kinds"] = sampler.kinds
        R["ops"] = OPS.snapshot()
        R["disruptions"] = disruptor.log
        R["keepers"] = [k.outcome for k in keepers]

        # Everything has stopped: netnsd must converge to what ip shows.
        streams.ask({"cmd": "final"})
        deadline = now() + 30
        diffs = ["never compared"]
        while now() < deadline:
            a = api_state(admin)
            i = ip_state()
            diffs = compare_api_ip(a, i)
            if not diffs:
                # ... and stay there: names and nsids must not move while we look (the
                # revision may: the inventory follows the whole host, where other tests run).
                time.sleep(0.5)
                a2 = api_state(admin)
                if (a2["live"], a2["nsids"]) == (a["live"], a["nsids"]):
                    break
                diffs = ["the names or nsids still move"]
            time.sleep(0.2)
        R["final_api"] = {"revision": a["revision"], "live": len(a["live"]),
                          "nsids": len(a["nsids"]),
                          "unnamed_nsids": sum(v is None for v in a["nsids"].values())}
        if diffs:
            for d in diffs[:20]:
                PROBLEMS.add(f"API vs ip at the end: {d}")
        say(f"API equals ip: {len(a['live'])} namespaces, {len(a['nsids'])} nsids, "
            f"revision {a['revision']}" if not diffs else "API and ip disagree")

        # And the audit agrees: none now, and none during the whole run. (An admin request: it
        # has its audit line too.)
        for key in ("admin_requests", "admin_requests_tcp"):
            R["ops"][key] = R["ops"].get(key, 0) + 1
        status, report = admin.request("POST", "/api/v1/audit")
        if status != 200:
            PROBLEMS.add(f"POST /api/v1/audit: HTTP {status}")
        elif report.get("divergences"):
            PROBLEMS.add(f"the final audit found divergences: {report['divergences'][:5]}")
        R["final_audit"] = report
        m = daemon.metrics(admin)
        R["metrics"] = {k: v for k, v in m.items() if k.startswith("netnsd_")
                        and "_bucket" not in k and "http_request" not in k}
        for k, v in R["metrics"].items():
            if k.startswith("netnsd_model_divergences_total") and v != 0:
                PROBLEMS.add(f"{k} is {v:g}: an audit during the run found the model wrong")
        if R["metrics"].get("netnsd_audits_total", 0) < max(1, load_s / args.audit_interval / 2):
            PROBLEMS.add(f"only {R['metrics'].get('netnsd_audits_total', 0):g} audits ran "
                         f"(one every {args.audit_interval} s)")
        # The clients are compared with the API at one revision. The inventory's events may
        # move it at any time (a namespace made or freed anywhere on the host, as other tests
        # do beside this one), so the clients hold what they get from now on, the API is read
        # once more, and they apply up to that revision and no further.
        # First every client connected and caught up (a slow one may have been dropped and
        # resumed, or reset, at the end of the load): one that resets after the freeze would
        # get a snapshot past the revision it is compared at.
        streams.ask({"cmd": "catchup", "revision": api_state(admin)["revision"], "timeout": 30})
        streams.ask({"cmd": "freeze"})
        a = api_state(admin)
        for d in compare_api_ip(a, i):
            PROBLEMS.add(f"API vs ip once the clients froze: {d}")
        drained = streams.ask({"cmd": "drain", "revision": a["revision"], "timeout": 30})
        streams.finish()
        R["streams"] = drained
        for c in drained["clients"]:
            for p in c["problems"]:
                PROBLEMS.add(f"stream {p}")
            if c["problem_count"] > len(c["problems"]):
                PROBLEMS.add(f"stream {c['label']}: {c['problem_count'] - len(c['problems'])} "
                             "more problems")
            for d in compare_client(c, a):
                PROBLEMS.add(f"stream {c['label']}: {d}")
        for t in drained["text_mismatches"]:
            PROBLEMS.add(f"stream {t}")
        if args.unix_every > 0 and not any(c["transport"] == "unix" for c in drained["clients"]):
            PROBLEMS.add("no stream client went over the Unix socket")
        admin.close()

        # With every client gone, netnsd holds exactly the descriptors it held when idle.
        deadline = now() + 10
        while daemon.fds() != R["idle_fds"] and now() < deadline:
            time.sleep(0.1)
        R["final_fds"] = daemon.fds()
        R["final_rss_kb"] = daemon.rss_kb()
        if R["final_fds"] != R["idle_fds"]:
            PROBLEMS.add(f"netnsd holds {R['final_fds']} fds once every client left, "
                         f"{R['idle_fds']} before any came")
    finally:
        for k in keepers:
            k.end()
        if wrk is not None and wrk.poll() is None:
            wrk.kill()
        if streams is not None and streams.proc.poll() is None:
            streams.proc.kill()
        code = daemon.stop()
        R["exit_code"] = code

    if code != 0:
        PROBLEMS.add(f"netnsd exited with {code} on SIGTERM")
    if os.path.lexists(daemon.unix):
        PROBLEMS.add(f"netnsd left its socket {daemon.unix} behind")
    R["unix_peer"] = f"unix:pid={os.getpid()},uid={os.getuid()},gid={os.getgid()}"
    R["log"] = check_log(daemon.log_path, R["unix_peer"])
    for u in R["log"]["unexpected"][:20]:
        PROBLEMS.add(f"log: {u}")
    for b in R["log"]["not_json"]:
        PROBLEMS.add(f"log: a line that is not JSON: {b}")
    if R["log"]["audit_lines"] != R["ops"].get("admin_requests", 0):
        PROBLEMS.add(f"log: {R['log']['audit_lines']} audit lines for "
                     f"{R['ops'].get('admin_requests', 0)} admin requests")
    for transport in ("tcp", "unix"):
        lines = R["log"]["audit_by_transport"].get(transport, 0)
        sent = R["ops"].get(f"admin_requests_{transport}", 0)
        if lines != sent:
            PROBLEMS.add(f"log: {lines} audit lines with a {transport} peer for {sent} admin "
                         f"requests over {transport}")
    if R["ops"].get("admin_requests_unix", 0) == 0 and args.unix_admin_share > 0:
        PROBLEMS.add("no admin request went over the Unix socket")
    if R["log"]["bad_peers"]:
        PROBLEMS.add(f"log: {R['log']['bad_peers']} audit lines name a peer that is neither "
                     f"{HOST}:PORT nor {R['unix_peer']}: {R['log']['bad_peer_lines'][:3]}")

    # fds and RSS: the median over a window after warm-up against the last window of load.
    R["warm"] = fd_rss_window(R["samples"], *R["windows"][0])
    R["end"] = fd_rss_window(R["samples"], *R["windows"][1])
    if R["warm"] and R["end"]:
        for key, what in (("fds", "fd count"), ("rss_kb", "RSS")):
            w, e = R["warm"][key], R["end"][key]
            if abs(e - w) > 0.10 * w:
                PROBLEMS.add(f"{what} moved {100 * (e - w) / w:+.1f}% between warm-up ({w}) "
                             f"and the end of the load ({e})")
    else:
        PROBLEMS.add("too few fd/RSS samples to compare warm-up with the end")

    w = R.get("wrk")
    if w:
        if w["connect"] or w["read"] or w["write"] or w["timeout"]:
            PROBLEMS.add(f"wrk socket errors: {w}")
        if w["other"]:
            PROBLEMS.add(f"wrk: {w['other']} answers neither 2xx nor 404")
        if w["ok"] == 0:
            PROBLEMS.add("wrk: no successful request")
    cycles = R["ops"].get("cycles", 0)
    if cycles < 0.5 * target_cycles:
        # Fewer than half means something held the workers up (each op waits for its answer).
        PROBLEMS.add(f"only {cycles} of {target_cycles} add/delete cycles were done")
    if R["ops"].get("bursts", 0) == 0 or R["ops"].get("remounts", 0) == 0 or \
            R["ops"].get("keepers_ok", 0) == 0:
        PROBLEMS.add("a disruption never happened (bursts, remounts, keepers: "
                     f"{R['ops'].get('bursts', 0)}, {R['ops'].get('remounts', 0)}, "
                     f"{R['ops'].get('keepers_ok', 0)})")
    R["problems"] = PROBLEMS.items
    return R


# --- the summary ---------------------------------------------------------------------------------


def mib(kb):
    return f"{kb / 1024:.1f} MiB"


def pct_change(a, b):
    return f"{100 * (b - a) / a:+.1f}%" if a else "n/a"


def summary(R):
    out = []
    ok = not R["problems"]
    f = R["facts"]
    ops = R.get("ops", {})
    m = R.get("metrics", {})
    out.append(f"# bench/soak: {'PASS' if ok else 'FAIL'}")
    out.append("")
    out.append(f"- {R['args']['duration']} s ({R['load_s']:.0f} s of load, warm-up "
               f"{R['warmup_s']:.0f} s); {f['date']}; {f['nproc']} CPUs ({f['cpu']}); "
               f"kernel {f['kernel']}; {f['ip -V']}; netnsd {f['netnsd']} ({f['netnsd binary']}); "
               f"load average at start {f['load average at start']}, at end "
               f"{' '.join(open('/proc/loadavg').read().split()[:3])}")
    out.append(f"- command: `{R['args']['invocation']}`")
    out.append("")
    out.append("## Counts")
    out.append("")
    out.append(f"- add/delete cycles: {ops.get('cycles', 0)} (target {R['target_cycles']} or more) "
               f"(adds: ip {ops.get('ip_add', 0)}, API {ops.get('api_add', 0)} of which "
               f"{ops.get('api_add_nsid', 0)} with nsid auto; deletes: ip {ops.get('ip_del', 0)}, "
               f"API {ops.get('api_del', 0)})")
    at = R["log"].get("audit_by_transport", {})
    out.append(f"- nsid sets: ip {ops.get('ip_nsid', 0)}, API {ops.get('api_nsid', 0)}; execs of "
               f"`true`: {ops.get('exec', 0)}; admin requests {ops.get('admin_requests', 0)} "
               f"(TCP {ops.get('admin_requests_tcp', 0)}, Unix socket "
               f"{ops.get('admin_requests_unix', 0)}), audit lines {R['log']['audit_lines']} "
               f"(peer {HOST}:PORT {at.get('tcp', 0)}, `{R.get('unix_peer')}` "
               f"{at.get('unix', 0)}); failed operations {ops.get('failed', 0)}; keepers' reads "
               f"over the Unix socket {ops.get('unix_reads', 0)}")
    ev = {t: int(m.get(f'netnsd_events_total{{type="{t}"}}', 0))
          for t in ("add", "delete", "nsid", "destroyed")}
    out.append(f"- events: {sum(ev.values())} (add {ev['add']}, delete {ev['delete']}, nsid "
               f"{ev['nsid']}, destroyed {ev['destroyed']}); final revision "
               f"{R.get('final_api', {}).get('revision')}")
    rs = {r: int(m.get(f'netnsd_resyncs_total{{reason="{r}"}}', 0))
          for r in ("inotify_overflow", "dir_changed", "netlink_overrun")}
    out.append(f"- disruptions: {ops.get('bursts', 0)} forced overflow bursts (netnsd's "
               f"overflow rescans: {rs['inotify_overflow']}), {ops.get('remounts', 0)} dir "
               f"unmount+remounts (dir-changed rescans: {rs['dir_changed']}), "
               f"{ops.get('keepers_ok', 0)}/{len(R.get('keepers', []))} keepers whose nsid "
               f"outlived the name and went with the process; netlink overruns "
               f"{rs['netlink_overrun']}")
    fa = R.get("final_api", {})
    out.append(f"- at the end: {fa.get('live')} namespaces, {fa.get('nsids')} nsids "
               f"({fa.get('unnamed_nsids')} unnamed) in the API, equal to ip")
    s = R.get("streams", {})
    clients = s.get("clients", [])
    if clients:
        kinds = collections.Counter(c["kind"] for c in clients)
        agg = collections.Counter()
        server = collections.Counter()
        for c in clients:
            agg["connects"] += c["connects"]
            agg["abrupt"] += c["closed_by_us"]["abrupt"]
            agg["polite"] += c["closed_by_us"]["polite"]
            agg["resets"] += c["resets"]
            agg["snapshots"] += c["snapshots"]
            agg["events"] += c["events"]
            agg["pings"] += c["pings"]
            agg["pongs"] += c["pongs"]
            for why, n in c["closed_by_server"].items():
                server[why] += n
        out.append(f"- stream clients: {len(clients)} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}); "
                   f"connections {agg['connects']}; they dropped {agg['abrupt']} abruptly and "
                   f"{agg['polite']} with a close frame; netnsd ended "
                   f"{sum(server.values())} ({', '.join(f'{k}: {n}' for k, n in sorted(server.items())) or 'none'}); "
                   f"resets {agg['resets']}, snapshots {agg['snapshots']}; events applied "
                   f"{agg['events']}; their pings answered {agg['pongs']}/{agg['pings']}; "
                   f"distinct revisions seen {s.get('revisions_seen')}")
        for transport in ("tcp", "unix"):
            cs = [c for c in clients if c["transport"] == transport]
            by = collections.Counter(f"{c['kind']} {c['behaviour']}"
                                     f"{' filtered' if c['filter'] else ''}" for c in cs)
            mix = ", ".join(f"{k} {n}" for k, n in sorted(by.items()))
            out.append(f"  - over {'TCP' if transport == 'tcp' else 'the Unix socket'}: "
                       f"{len(cs)} clients ({mix}), "
                       f"{sum(c['connects'] for c in cs)} connections, "
                       f"{sum(sum(c['closed_by_server'].values()) for c in cs)} ended by netnsd, "
                       f"{sum(c['resets'] for c in cs)} resets, "
                       f"{sum(c['events'] for c in cs)} events applied")
        for c in clients:
            q = c.get("sequence")
            if not q:
                continue
            ad = c.get("admitted", {})
            out.append(f"  - filtered {c['label']} (`{Filter.from_doc(c['filter'])}`): got "
                       f"{q['got']} events of the {q['covered']} revisions its stream covered "
                       f"(stretches from a snapshot: {q['stretches']}), expected {q['expected']}; "
                       f"missed {q['missed']}, extra {q['extra']}; {c['resets']} resets; at the "
                       f"end {ad.get('client', '-')} live names admitted "
                       f"(API {ad.get('api', '-')} of {ad.get('api_live', '-')})")
        qf = int(m.get('netnsd_stream_clients_dropped_total{reason="queue_full"}', 0))
        un = int(m.get('netnsd_stream_clients_dropped_total{reason="unresponsive"}', 0))
        out.append(f"- netnsd's drop counters: queue_full {qf}, unresponsive {un}")
    w = R.get("wrk")
    if w:
        out.append(f"- wrk: {w['requests']} requests ({w['ok']} 2xx, {w['missing']} 404 while "
                   f"{ANCHOR} was away, {w['other']} other), socket errors "
                   f"{w['connect'] + w['read'] + w['write'] + w['timeout']}, latency p50 "
                   f"{w['p50_us'] / 1000:.2f} ms, p99 {w['p99_us'] / 1000:.2f} ms, max "
                   f"{w['max_us'] / 1000:.1f} ms")
    out.append("")
    out.append("## fds and RSS")
    out.append("")
    wm, en = R.get("warm"), R.get("end")
    out.append(f"- idle (before any client): {R.get('idle_fds')} fds, {mib(R.get('idle_rss_kb', 0))}")
    if wm and en:
        out.append(f"- warm-up (median of t={wm['from']:.0f}-{wm['to']:.0f} s): {wm['fds']} fds, "
                   f"{mib(wm['rss_kb'])}")
        out.append(f"- end of load (median of t={en['from']:.0f}-{en['to']:.0f} s): {en['fds']} "
                   f"fds ({pct_change(wm['fds'], en['fds'])}), {mib(en['rss_kb'])} "
                   f"({pct_change(wm['rss_kb'], en['rss_kb'])})")
    out.append(f"- after every client left: {R.get('final_fds')} fds, {mib(R.get('final_rss_kb', 0))}")
    out.append("")
    out.append("| t (s) | fds | RSS | namespaces | stream clients connected |")
    out.append("|---:|---:|---:|---:|---:|")
    samples = [x for x in R.get("samples", []) if x[3] is not None]
    step = max(1, len(samples) // 20)
    for x in samples[::step] + ([samples[-1]] if samples and (len(samples) - 1) % step else []):
        out.append(f"| {x[0]:.0f} | {x[1]} | {mib(x[2])} | {x[3]} | {x[5]} |")
    out.append("")
    out.append("## Disruptions")
    out.append("")
    for t, what, detail in R.get("disruptions", []):
        out.append(f"- t={t:.0f} s: {what} {detail}".rstrip())
    for i, k in enumerate(R.get("keepers", [])):
        out.append(f"- keeper {i}: {k}")
    out.append("")
    out.append("## netnsd's log")
    out.append("")
    lg = R["log"]
    out.append(f"- {lg['lines']} lines: {', '.join(f'{k} {v}' for k, v in sorted(lg['levels'].items(), key=lambda kv: str(kv[0])))}")
    for what, n in sorted(lg["provoked"].items()):
        out.append(f"- provoked: {n} x `{what}`")
    out.append(f"- warnings or errors not provoked: {len(lg['unexpected'])}")
    out.append("")
    out.append("## Problems")
    out.append("")
    if ok:
        out.append("none: nothing lost, duplicated or out of order; every check passed")
    for p in R["problems"][:100]:
        out.append(f"- {p}")
    if len(R["problems"]) > 100:
        out.append(f"- ... and {len(R['problems']) - 100} more")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description="the soak run of bench/soak (run that instead)")
    ap.add_argument("--netnsd", required=True)
    ap.add_argument("--out", required=True, help="directory for soak.md, soak.json, logs/")
    ap.add_argument("--duration", type=float, default=600, help="seconds, all phases (600)")
    ap.add_argument("--final-reserve", type=float, default=None,
                    help="seconds of --duration kept for the final checks (default 5%%, at "
                         "least 8)")
    ap.add_argument("--cycles", type=int, default=None,
                    help="add/delete cycles (default 20000 per 600 s of --duration)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--pool", type=int, default=30, help="names per worker")
    ap.add_argument("--exec-share", type=float, default=0.08)
    ap.add_argument("--port", type=int, default=9321)
    ap.add_argument("--unix-socket", default=UNIX_SOCKET,
                    help=f"netnsd's second listener, a Unix socket ({UNIX_SOCKET})")
    ap.add_argument("--unix-admin-share", type=float, default=0.5,
                    help="share of the workers' admin requests sent over the Unix socket")
    ap.add_argument("--unix-every", type=int, default=3,
                    help="the second stream client of each kind and behaviour, then every "
                         "Nth, connects over the Unix socket (0: none)")
    ap.add_argument("--seed", default="soak")
    ap.add_argument("--inotify-queue", type=int, default=128)
    # Small, so that resets and drops happen; sized for clients that ask for every type, whose
    # streams carry the host inventory's found and holders too (about three events per
    # namespace change, where the entries' own are one).
    ap.add_argument("--journal-size", type=int, default=3000)
    ap.add_argument("--stream-queue-messages", type=int, default=750)
    ap.add_argument("--websocket", default="steady:25,flaky:10,trickle:8,stall:7")
    ap.add_argument("--sse", default="steady:2,flaky:2,trickle:1")
    ap.add_argument("--ndjson", default="steady:2,flaky:2,stall:1")
    ap.add_argument("--filtered", default=DEFAULT_FILTERED,
                    help="filtered stream clients: KIND:BEHAVIOUR:TRANSPORT:QUERY, separated "
                         "by ';' (QUERY: names=GLOB and/or types=T,T joined by '&'; default "
                         "%(default)s)")
    ap.add_argument("--wrk-connections", type=int, default=4)
    ap.add_argument("--wrk-delay-ms", type=int, default=4)
    ap.add_argument("--burst-every", type=float, default=40)
    ap.add_argument("--remount-every", type=float, default=150)
    ap.add_argument("--keeper-every", type=float, default=60)
    ap.add_argument("--progress-every", type=float, default=30)
    ap.add_argument("--evlat", default=None,
                    help="bench/evlat, for the short lives (none: they are left out)")
    ap.add_argument("--short-every", type=float, default=120,
                    help="seconds between short-lives runs (the first in the warm-up)")
    ap.add_argument("--short-subs", type=int, default=200)
    ap.add_argument("--short-count", type=int, default=200)
    # 10 ms, as bench/events: under all of the soak at once on 2 cores a 10 ms life went unseen
    # in 12 of ~105 runs until the readers stopped waiting for ordinary threads (malloc's arena
    # locks, page faults behind the mmap lock, exec's fork); since, 0 of 15, the attach read at
    # most 0.23 ms after mount(2) returned (README, "Nothing lost").
    ap.add_argument("--short-lifetime-ms", type=int, default=10,
                    help="how long each short-lived namespace stays mounted")
    ap.add_argument("--audit-interval", type=int, default=5,
                    help="netnsd's --audit-interval: its audits must all find nothing")
    ap.add_argument("--netnsd-log-level", default="info",
                    help="netnsd's --log-level; debug logs every mount event as read, which "
                         "bench/short-lives-trace sets beside the short lives' record")
    ap.add_argument("--revision", default="unknown")
    ap.add_argument("--invocation", default="bench/soak")
    args = ap.parse_args()
    if args.final_reserve is None:
        args.final_reserve = max(8.0, 0.05 * args.duration)
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    # timeout(1) ends us with SIGTERM: unwind (restoring what we changed, stopping netnsd).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    sys.stdout.reconfigure(errors="backslashreplace")

    try:
        R = run(args)
    except BenchError as e:
        say(f"FAILED: {e}")
        for p in PROBLEMS.items:
            say(f"  problem: {p}")
        return 1
    text = summary(R)
    with open(os.path.join(args.out, "soak.md"), "w", errors="backslashreplace") as f:
        f.write(text)
    with open(os.path.join(args.out, "soak.json"), "w") as f:
        json.dump(R, f, indent=1, default=str)
    sys.stdout.write(text)
    return 0 if not R["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())
