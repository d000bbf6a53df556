#!/usr/bin/env python3
"""The event-stream clients of bench/soak, in one asyncio process (standard library only).

bench/soak.py starts this as a child and talks to it over stdin/stdout, one JSON object per
line:
  {"cmd": "status"}                  -> {"connected": N, "clients": M, "greeted": K, ...}
  {"cmd": "hold"} / {"cmd": "release"} -> {"ok": true}; while held, flaky clients reconnect
                                        at once and stay, slow ones read at full speed (a
                                        window where netnsd's fds are measured)
  {"cmd": "final"}                   -> {"ok": true}; chaos stops, slow clients read at full
                                        speed, disconnected clients reconnect at once
  {"cmd": "catchup", "revision": R, "timeout": S}
                                     -> {"caught_up": bool} once every client has applied R
                                        (or S seconds passed); nothing else changes
  {"cmd": "freeze"}                  -> {"ok": true}; from now on clients receive and hold
                                        what they get without applying it
  {"cmd": "drain", "revision": R, "timeout": S}
                                     -> every client applies what it holds and what comes up to
                                        revision R and nothing after it; their results once each
                                        has applied R (or S seconds passed), then the process exits

Each client keeps a Replica: the live names and nsids it reconstructs from its stream (the
snapshot, then every event, honouring resets), checking as it goes that revisions are
contiguous and that every event is consistent with what came before (no `add` of a name that
is live, no `delete` of one that is not, ...). Every event's JSON text is also compared with
the text any other client got for the same revision: an event is encoded once, whether it is
sent live or replayed from the journal, in whichever framing.

Transports: every client connects over TCP (127.0.0.1:PORT) or over netnsd's Unix socket
(--unix PATH): with --unix-every N, the clients of each kind and behaviour whose index is 1
modulo N (the second, then every Nth) use the Unix socket. Their labels end in "@unix".

Filtered clients (--filtered) ask for `names=` (one shell glob, fnmatch(3) on the name's bytes)
and/or `types=` (add, delete, nsid, destroyed). Their revisions are not contiguous: they check
instead that every event passes their filter and, at the end, that the events of each stretch
of their stream (from a snapshot to the next reset, or to the end) are exactly the events every
client saw together (EVENT_META, by revision) restricted to what the filter admits: none
missed, none extra, in order. Their state is compared with the API's restricted to the filter.

Clients: websocket (RFC 6455: the handshake, unmasked server frames, masked client frames),
Server-Sent Events (resuming with Last-Event-ID, as a browser's EventSource does) and NDJSON
(resuming with since=). Behaviours: `steady` reads everything at once; `flaky` drops its
connection at random (abruptly, or politely with a close frame) and resumes after a random
pause, often long enough to fall out of the journal and get a reset; `trickle` reads a few
messages a second through a small receive buffer, so netnsd drops it (websocket close 1013, or
the end of the HTTP stream) and it resumes; `stall` stops reading now and then for seconds.
"""

import argparse
import asyncio
import base64
import fnmatch
import hashlib
import json
import os
import random
import socket
import struct
import sys
import time
import urllib.parse
import zlib

HOST = "127.0.0.1"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_PROBLEMS = 20  # kept per client; the count is exact

# The text of every event seen so far, by revision (crc32 of the JSON text): whatever the
# framing or path (live, replayed), one revision is one text.
EVENT_TEXT = {}
TEXT_MISMATCHES = []
# What a filter looks at, for every revision any client saw: (type, exact name or None). Every
# revision is one event, so together the clients' streams are the whole sequence, against which
# a filtered client's stream is checked.
EVENT_META = {}
EVENT_TYPES = ("add", "delete", "nsid", "destroyed")


# The host inventory's events that a stream gets only by asking for them with types=; an
# unfiltered stream asks for every type, so that every revision arrives.
INVENTORY_ONLY = ("found", "holders")
ALL_TYPES = "types=add,delete,nsid,destroyed,found,holders"


class Filter:
    """The `names` and `types` query parameters of a filtered stream, and what they admit:
    what netnsd's subscription::wants() does. `names` is one shell glob matched against the
    name's bytes (fnmatch(3) in the C locale; Python's fnmatch on bytes agrees for globs
    without backslashes); an event without a name never matches it."""

    def __init__(self, names=None, types=None):
        if names is not None and ("\\" in names or not names):
            raise SystemExit(f"soak_streams: unsupported names glob {names!r}")
        self.names = names
        self.types = tuple(types) if types else None
        for t in self.types or ():
            if t not in EVENT_TYPES:
                raise SystemExit(f"soak_streams: unknown event type {t!r}")
        self.glob = names.encode("utf-8") if names is not None else None

    @classmethod
    def parse(cls, text):
        """'names=soak-w[13]-*&types=add,delete' (raw, not percent-encoded)"""
        names = types = None
        for item in filter(None, text.split("&")):
            key, _, value = item.partition("=")
            if key == "names":
                names = value
            elif key == "types":
                types = value.split(",")
            else:
                raise SystemExit(f"soak_streams: unknown filter parameter {key!r}")
        return cls(names, types)

    @classmethod
    def from_doc(cls, doc):
        return cls(doc["names"], doc["types"]) if doc else None

    def doc(self):
        return {"names": self.names, "types": list(self.types) if self.types else None}

    def __str__(self):
        parts = []
        if self.names is not None:
            parts.append(f"names={self.names}")
        if self.types:
            parts.append(f"types={','.join(self.types)}")
        return "&".join(parts)

    def query(self):
        """The query parameters, percent-encoded."""
        parts = []
        if self.names is not None:
            parts.append("names=" + urllib.parse.quote(self.names.encode("utf-8"), safe=""))
        if self.types:
            parts.append("types=" + ",".join(self.types))
        return "&".join(parts)

    def admits_type(self, t):
        # Without types= netnsd sends the entries' events and destroyed, not the host
        # inventory's found and holders.
        if self.types is None:
            return t not in INVENTORY_ONLY
        return t in self.types

    def admits_name(self, name):
        """`name` as text, its bytes that are not UTF-8 as surrogate escapes; None: no name."""
        if self.glob is None:
            return True
        if name is None:
            return False
        return fnmatch.fnmatchcase(name.encode("utf-8", "surrogateescape"), self.glob)

    def passes(self, t, name):
        return self.admits_type(t) and self.admits_name(name)

    def live_set(self):
        """Whether the stream can follow which names are live (it gets adds and deletes)."""
        return self.admits_type("add") and self.admits_type("delete")


class Replica:
    """The state a client reconstructs from its stream, checked event by event."""

    def __init__(self, label, flt=None):
        self.label = label
        self.filter = flt
        # A filtered stream's log, in order: ("snapshot", revision) and ("event", revision).
        self.log = [] if flt is not None else None
        self.names = {}        # live name -> namespace key (ns_id, inode)
        self.ns_nsid = {}      # namespace key -> nsid
        self.nsid_owner = {}   # nsid -> namespace key, or None when no name of ours has it
        self.last = None       # revision of the last snapshot or event applied
        self.complete = True   # False after a reset: unnamed nsids are not in a snapshot
        self.awaiting_snapshot = False
        self.problems = []
        self.problem_count = 0
        self.events = 0
        self.by_type = {}
        self.snapshots = 0
        self.resets = 0

    def problem(self, text):
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{self.label}: {text}")

    @staticmethod
    def key_of(ns):
        return (ns.get("ns_id"), ns.get("inode"))

    @staticmethod
    def name_of(ns):
        # `name` is text, with U+FFFD for bytes that are not UTF-8; `href` has the exact bytes.
        raw = urllib.parse.unquote_to_bytes(ns["href"].rsplit("/", 1)[1])
        return raw.decode("utf-8", "surrogateescape")

    def set_nsid(self, key, nsid):
        # What the registry does: an nsid is permanent; a namespace that shows another one, or
        # an nsid that shows up on another namespace, means the older record is gone.
        old = self.ns_nsid.get(key)
        if old == nsid:
            return
        if old is not None:
            self.nsid_owner.pop(old, None)
        prev = self.nsid_owner.get(nsid)
        if prev is not None and prev != key and self.ns_nsid.get(prev) == nsid:
            del self.ns_nsid[prev]
        self.ns_nsid[key] = nsid
        self.nsid_owner[nsid] = key

    def snapshot(self, doc):
        rev = doc["revision"]
        if self.last is not None and rev < self.last:
            self.problem(f"snapshot at revision {rev} is older than {self.last}")
        self.names.clear()
        self.ns_nsid.clear()
        # Unnamed nsids are not in a snapshot: keep only those we cannot learn otherwise.
        if not self.complete:
            self.nsid_owner.clear()
        else:
            self.nsid_owner = {n: None for n, k in self.nsid_owner.items() if k is None}
        for e in doc["namespaces"]:
            if e.get("state") != "live":
                continue  # stale entries are listed but make no events
            key = self.key_of(e)
            self.names[self.name_of(e)] = key
            if e.get("nsid") is not None:
                self.set_nsid(key, e["nsid"])
        self.last = rev
        self.snapshots += 1
        self.awaiting_snapshot = False
        if self.log is not None:
            self.log.append(("snapshot", rev))

    def reset(self):
        self.resets += 1
        self.complete = False
        self.awaiting_snapshot = True

    def apply(self, ev):
        rev = ev["revision"]
        if self.awaiting_snapshot:
            self.problem(f"event {rev} between a reset and its snapshot")
        if self.last is None:
            self.problem(f"event {rev} before any snapshot")
        elif self.filter is not None:
            # A filtered stream skips revisions: only the order can be checked here; that it
            # skipped exactly what its filter hides is checked at the end (filtered_sequence).
            if rev <= self.last:
                self.problem(f"revisions out of order: {self.last} then {rev}")
        elif rev != self.last + 1:
            self.problem(f"revisions not contiguous: {self.last} then {rev}")
        self.last = rev
        self.events += 1
        t = ev["type"]
        self.by_type[t] = self.by_type.get(t, 0) + 1
        name = ev.get("name")
        nsid = ev.get("nsid")
        if t in INVENTORY_ONLY or (t == "destroyed" and nsid is None):
            # The host inventory's: a namespace netnsd knew, named or not; no entry changes.
            if self.filter is not None:
                self.log.append(("event", rev))
            return
        ns = ev.get("namespace")
        if ns is not None:
            if ns.get("name") != name:
                self.problem(f"{rev}: {t} of {name!r} carries the entry of {ns.get('name')!r}")
            name = self.name_of(ns)
        elif name is not None:
            self.problem(f"{rev}: {t} of {name!r} without its entry")
        if self.filter is not None:
            self.log.append(("event", rev))
            if not self.filter.passes(t, name):
                self.problem(f"{rev}: {t} of {name!r} does not pass its filter {self.filter}")
            if not self.filter.live_set():
                return  # without adds and deletes there is no state to keep consistent
        if t == "add":
            if name in self.names:
                self.problem(f"{rev}: add of {name!r}, which is live already")
            if ns is None or ns.get("state") != "live":
                self.problem(f"{rev}: add of {name!r} without its live entry")
                return
            key = self.key_of(ns)
            self.names[name] = key
            if nsid is not None:
                self.set_nsid(key, nsid)
            if ns.get("nsid") != nsid:
                self.problem(f"{rev}: add of {name!r}: nsid {nsid} but entry says {ns.get('nsid')}")
        elif t == "delete":
            key = self.names.pop(name, None)
            if key is None:
                self.problem(f"{rev}: delete of {name!r}, which is not live")
            elif ns is not None and self.key_of(ns) != key:
                self.problem(f"{rev}: delete of {name!r} names another namespace")
        elif t == "nsid":
            if nsid is None:
                self.problem(f"{rev}: nsid event without an nsid")
            elif name is None:
                if nsid not in self.nsid_owner:
                    self.nsid_owner[nsid] = None
            else:
                key = self.names.get(name)
                if key is None:
                    self.problem(f"{rev}: nsid {nsid} for {name!r}, which is not live")
                else:
                    self.set_nsid(key, nsid)
        elif t == "destroyed":
            if nsid not in self.nsid_owner:
                if self.complete:
                    self.problem(f"{rev}: destroyed nsid {nsid}, which we never saw")
            else:
                owner = self.nsid_owner.pop(nsid)
                if owner is not None and self.ns_nsid.get(owner) == nsid:
                    del self.ns_nsid[owner]
        else:
            self.problem(f"{rev}: unknown event type {t!r}")

    def view(self):
        live = {n: {"ns_id": k[0], "inode": k[1], "nsid": self.ns_nsid.get(k)}
                for n, k in self.names.items()}
        names_by_key = {}
        for n, k in self.names.items():
            names_by_key.setdefault(k, []).append(n)
        nsids = {}
        for nsid, k in self.nsid_owner.items():
            names = sorted(names_by_key.get(k, []), key=lambda s: s.encode("utf-8", "surrogateescape"))
            nsids[str(nsid)] = names[0] if names else None
        return {"live": live, "nsids": nsids, "complete": self.complete}


def note_text(client, rev, text, doc):
    crc = zlib.crc32(text)
    seen = EVENT_TEXT.setdefault(rev, crc)
    if seen != crc and len(TEXT_MISMATCHES) < MAX_PROBLEMS:
        TEXT_MISMATCHES.append(f"{client.label}: revision {rev} arrived with another text")
    if rev not in EVENT_META:
        # The same text everywhere (checked above), so whoever saw it first tells its meta.
        ns = doc.get("namespace")
        EVENT_META[rev] = (doc.get("type"), Replica.name_of(ns) if ns is not None else None)


def filtered_sequence(replica, final):
    """A filtered client's stream against the whole sequence (EVENT_META): in each stretch from
    a snapshot at S to its last event E (to `final`, the API's final revision, for the last
    stretch), the events it got must be exactly the revisions in (S, E] its filter admits.
    After a reset the revisions between the end of a stretch and the next snapshot are not
    the client's to know. Returns the figures; problems go to the replica."""
    flt = replica.filter
    stretches = []
    for what, rev in replica.log:
        if what == "snapshot":
            stretches.append([rev, []])
        elif stretches:
            stretches[-1][1].append(rev)
    out = {"stretches": len(stretches), "got": 0, "expected": 0, "covered": 0, "missed": 0,
           "extra": 0, "unknown": 0, "behind": 0}
    for i, (start, got) in enumerate(stretches):
        last = i == len(stretches) - 1
        end = max([start] + got)
        if last:
            if end > final:
                replica.problem(f"events after the API's final revision {final}: up to {end}")
            end = max(end, final)
        expected = []
        unknown = []
        for rev in range(start + 1, end + 1):
            meta = EVENT_META.get(rev)
            if meta is None:
                unknown.append(rev)
            elif flt.passes(*meta):
                expected.append(rev)
        out["got"] += len(got)
        out["expected"] += len(expected)
        out["covered"] += end - start
        out["unknown"] += len(unknown)
        if unknown:
            replica.problem(f"no client saw {len(unknown)} revisions of ({start}, {end}] "
                            f"(first {unknown[0]}): cannot check this filtered stream there")
        if got == expected:
            continue
        got_set, exp_set = set(got), set(expected)
        missed = [r for r in expected if r not in got_set]
        extra = [r for r in got if r not in exp_set]
        behind = [r for r in missed if r > max([start] + got)] if last else []
        out["missed"] += len(missed)
        out["extra"] += len(extra)
        out["behind"] += len(behind)

        def show(revs):
            return ", ".join(f"{r} ({EVENT_META[r][0]} {EVENT_META[r][1]!r})" for r in revs[:3])

        if missed:
            replica.problem(f"missed {len(missed)} events its filter admits after the snapshot "
                            f"at {start}: {show(missed)}"
                            + (f" ({len(behind)} of them after its last event)" if behind else ""))
        if extra:
            replica.problem(f"{len(extra)} events its filter does not admit, or twice: "
                            f"{', '.join(map(str, extra[:3]))}")
        if not missed and not extra:
            replica.problem(f"events out of order, or one twice, after the snapshot at {start}")
    return out


class Closed(Exception):
    """The server ended the connection; `why` says how."""

    def __init__(self, why):
        super().__init__(why)
        self.why = why


class Client:
    def __init__(self, engine, kind, behaviour, index, transport="tcp", flt=None):
        self.engine = engine
        self.kind = kind
        self.behaviour = behaviour
        self.transport = transport
        self.filter = flt
        self.label = (f"{kind}-{behaviour}-{'filtered-' if flt is not None else ''}{index}"
                      f"{'@unix' if transport == 'unix' else ''}")
        self.rng = random.Random(f"{engine.seed}-{self.label}")
        self.replica = Replica(self.label, flt)
        self.connected = False
        self.greeted = False      # has had its first snapshot
        self.connects = 0
        self.closed_by_us = {"abrupt": 0, "polite": 0}
        self.closed_by_server = {}  # why -> count
        self.pings_sent = 0
        self.pongs_ok = 0
        self.sse_last_id = None
        self.wake = asyncio.Event()
        self.task = None
        self.writer = None
        self.close_sent = False
        self.upgraded = False
        self.pause_next = False
        self.pending = []  # messages that came while the engine was frozen, in order
        self.beyond = 0    # events after the cutoff, received and not applied

    # -- behaviour -----------------------------------------------------------------------

    @property
    def final(self):
        return self.engine.final

    def rcvbuf(self):
        return 8192 if self.behaviour in ("trickle", "stall") else None

    async def pace(self):
        """Called after each message. While held (a measuring window) and at the end, everyone
        reads at full speed, so that every client is connected and none is being dropped."""
        if self.final or self.engine.hold:
            return
        if self.behaviour == "trickle":
            await asyncio.sleep(self.rng.uniform(0.02, 0.08))
        elif self.behaviour == "stall" and time.monotonic() >= self.next_stall:
            await self.sleep_unless_final(self.rng.uniform(4, 20))
            self.next_stall = time.monotonic() + self.rng.uniform(5, 30)

    async def sleep_unless_final(self, seconds):
        self.wake.clear()
        try:
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    # -- the connection loop -------------------------------------------------------------

    def target(self):
        r = self.replica
        query = f"&{self.filter.query()}" if self.filter is not None else f"&{ALL_TYPES}"
        if r.last is None:
            return f"/api/v1/events?snapshot=true{query}"
        if self.kind == "sse":
            # As a browser's EventSource does: the same URL again, with Last-Event-ID (which
            # wins over the URL's snapshot=true).
            return f"/api/v1/events?snapshot=true{query}"
        # After a reset whose snapshot never came, this is the old revision again: the
        # server answers with another reset and the snapshot. A filtered stream resumes after
        # the last event it got: the journal replays what the filter admits after that.
        return f"/api/v1/events?since={r.last}{query}"

    def host(self):
        return "localhost" if self.transport == "unix" else f"{HOST}:{self.engine.port}"

    def caught_up(self, revision):
        """Connected, with everything up to `revision` applied: for a filtered client, no
        revision after its last one up to `revision` that its filter admits (nor one no client
        has seen yet, which might be)."""
        r = self.replica
        if not self.connected or r.awaiting_snapshot or r.last is None:
            return False
        if self.filter is None:
            return r.last >= revision
        for rev in range(r.last + 1, revision + 1):
            meta = EVENT_META.get(rev)
            if meta is None or self.filter.passes(*meta):
                return False
        return True

    async def run(self):
        self.next_stall = time.monotonic() + self.rng.uniform(5, 20)
        while not self.engine.stopping:
            self.pause_next = False
            session = asyncio.ensure_future(self.session())
            chaos = None
            if self.behaviour == "flaky" and not self.final:
                chaos = asyncio.ensure_future(self.chaos(session))
            try:
                await session
            except Closed as c:
                self.closed_by_server[c.why] = self.closed_by_server.get(c.why, 0) + 1
            except asyncio.CancelledError:
                if self.engine.stopping:
                    raise
            except (OSError, EOFError) as e:
                why = f"connection lost ({type(e).__name__})"
                self.closed_by_server[why] = self.closed_by_server.get(why, 0) + 1
            except Exception as e:  # a protocol violation: a finding, not a crash of ours
                self.replica.problem(f"protocol: {type(e).__name__}: {e}")
                await asyncio.sleep(1)
            finally:
                self.connected = False
                self.writer = None
                if chaos is not None:
                    chaos.cancel()
            if self.engine.stopping:
                break
            if self.pause_next and not self.final and not self.engine.hold:
                # Short pauses resume from the journal; long ones fall out of it (reset).
                await self.sleep_unless_final(self.rng.choice([self.rng.uniform(0.05, 2),
                                                               self.rng.uniform(2, 15)]))
            else:
                await asyncio.sleep(0.05)

    async def chaos(self, session):
        while True:
            await asyncio.sleep(self.rng.expovariate(1 / 12))
            if self.final or session.done():
                return
            if not self.engine.hold:
                break
        self.pause_next = True
        # A close frame only once the upgrade is answered (RFC 6455 §4.1: the client waits).
        if self.kind == "websocket" and self.upgraded and self.rng.random() < 0.5:
            # Politely: a close frame; the server echoes it (events may come before the echo).
            self.closed_by_us["polite"] += 1
            self.close_sent = True
            self.writer.write(client_frame(0x8, struct.pack("!H", 1000)))
            done, _ = await asyncio.wait([session], timeout=5)
            if done:
                return
            self.replica.problem("our close frame was not answered within 5 s")
        else:
            self.closed_by_us["abrupt"] += 1
        session.cancel()

    async def open_socket(self):
        if self.transport == "unix":
            # A Unix stream socket's receive buffer does not bound what is in flight (the
            # sender's send buffer does): slow clients here hold more before netnsd drops them.
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address = self.engine.unix_path
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            address = (HOST, self.engine.port)
        if self.rcvbuf():
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf())
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        limit = 4096 if self.rcvbuf() else 1 << 20
        return await asyncio.open_connection(sock=sock, limit=limit)

    async def session(self):
        self.close_sent = False
        self.upgraded = False
        reader, writer = await self.open_socket()
        self.writer = writer
        self.connects += 1
        try:
            if self.kind == "websocket":
                await self.websocket(reader, writer)
            else:
                await self.http_stream(reader, writer)
        finally:
            writer.transport.abort()

    # -- messages ------------------------------------------------------------------------

    def on_message(self, text, sse_event=None):
        try:
            doc = json.loads(text)
        except ValueError:
            raise ProtocolError(f"not JSON: {text[:80]!r}")
        t = doc.get("type")
        if sse_event is not None and sse_event != t:
            raise ProtocolError(f"SSE event {sse_event!r} carries type {t!r}")
        if t not in ("hello", "snapshot", "reset") + EVENT_TYPES + INVENTORY_ONLY:
            raise ProtocolError(f"unknown message type {t!r}")
        if t == "hello":
            self.connected = True
        elif self.engine.frozen:
            self.pending.append((t, text, doc))
        else:
            self.apply(t, text, doc)

    def apply(self, t, text, doc):
        r = self.replica
        if t == "snapshot":
            r.snapshot(doc)
            self.greeted = True
        elif t == "reset":
            r.reset()
        elif self.engine.cutoff is not None and doc["revision"] > self.engine.cutoff:
            self.beyond += 1  # after the revision the API was read at: not compared
        else:
            note_text(self, doc["revision"], text, doc)
            r.apply(doc)
        self.engine.max_seen = max(self.engine.max_seen, r.last or 0)

    def thaw(self):
        """Applies what came while the engine was frozen, up to the cutoff."""
        pending, self.pending = self.pending, []
        for t, text, doc in pending:
            self.apply(t, text, doc)

    # -- websocket -----------------------------------------------------------------------

    async def websocket(self, reader, writer):
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {self.target()} HTTP/1.1\r\nHost: {self.host()}\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 101"):
            raise ProtocolError(f"websocket upgrade answered {lines[0]!r}")
        want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        headers = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip()
                   for l in lines[1:] if ":" in l}
        if headers.get("sec-websocket-accept") != want:
            raise ProtocolError(f"wrong Sec-WebSocket-Accept: {headers.get('sec-websocket-accept')} for {key}, want {want}")
        self.upgraded = True
        ping_payload = None
        message = b""
        while True:
            if (ping_payload is None and self.behaviour == "flaky" and not self.close_sent
                    and self.rng.random() < 0.002):
                ping_payload = os.urandom(8)
                self.pings_sent += 1
                writer.write(client_frame(0x9, ping_payload))
            h = await reader.readexactly(2)
            op = h[0] & 0x0F
            fin = bool(h[0] & 0x80)
            if h[1] & 0x80:
                raise ProtocolError("the server sent a masked frame")
            n = h[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await reader.readexactly(8))[0]
            payload = await reader.readexactly(n)
            if op == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                if self.close_sent:
                    if code == 1013:
                        # netnsd dropped us (our queue overflowed) as we closed: its close
                        # crossed ours (RFC 6455 §5.5.1: each side sends one, the other's
                        # stands for the echo). A drop like any other.
                        raise Closed("websocket close 1013 (crossing ours)")
                    if code != 1000:
                        raise ProtocolError(f"our close 1000 was answered with {code}")
                    return  # the echo of ours
                writer.write(client_frame(0x8, payload[:2]))
                raise Closed(f"websocket close {code}")
            if op == 0x9:
                writer.write(client_frame(0xA, payload))
                continue
            if op == 0xA:
                if payload == ping_payload:
                    self.pongs_ok += 1
                    ping_payload = None
                else:
                    raise ProtocolError("a pong that answers no ping of ours")
                continue
            if op in (0x1, 0x0):
                message += payload
                if not fin:
                    continue
                text, message = message, b""
                self.on_message(text)
                await self.pace()
                continue
            raise ProtocolError(f"unexpected opcode {op}")

    # -- SSE and NDJSON over HTTP/1.1 chunked --------------------------------------------

    async def http_stream(self, reader, writer):
        accept = "text/event-stream" if self.kind == "sse" else "application/x-ndjson"
        extra = ""
        if self.kind == "sse" and self.sse_last_id is not None:
            extra = f"Last-Event-ID: {self.sse_last_id}\r\n"
        writer.write((f"GET {self.target()} HTTP/1.1\r\nHost: {self.host()}\r\n"
                      f"Accept: {accept}\r\n{extra}\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if not lines[0].startswith("HTTP/1.1 200"):
            raise ProtocolError(f"stream request answered {lines[0]!r}")
        if not any(l.lower() == "transfer-encoding: chunked" for l in lines):
            raise ProtocolError("an HTTP/1.1 stream that is not chunked")
        pending = b""
        sse = {"event": None, "data": [], "id": None}
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.strip().split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                raise Closed("stream ended")
            chunk = await reader.readexactly(size)
            if await reader.readexactly(2) != b"\r\n":
                raise ProtocolError("a chunk not followed by CRLF")
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if self.kind == "ndjson":
                    if line:
                        self.on_message(line)
                        await self.pace()
                    continue
                if line == b"":
                    if sse["data"]:
                        self.on_message(b"\n".join(sse["data"]), sse["event"])
                        if sse["id"] is not None:
                            self.sse_last_id = sse["id"]
                        await self.pace()
                    sse = {"event": None, "data": [], "id": None}
                elif line.startswith(b":"):
                    continue
                else:
                    field, _, value = line.partition(b":")
                    if value.startswith(b" "):
                        value = value[1:]
                    if field == b"data":
                        sse["data"].append(value)
                    elif field == b"event":
                        sse["event"] = value.decode()
                    elif field == b"id":
                        sse["id"] = value.decode()

    def result(self, final, caught_up):
        r = self.replica
        return {
            "label": self.label,
            "kind": self.kind,
            "behaviour": self.behaviour,
            "transport": self.transport,
            "filter": self.filter.doc() if self.filter is not None else None,
            "caught_up": caught_up,
            "sequence": filtered_sequence(r, final) if self.filter is not None else None,
            "connects": self.connects,
            "closed_by_us": self.closed_by_us,
            "closed_by_server": self.closed_by_server,
            "events": r.events,
            "by_type": r.by_type,
            "snapshots": r.snapshots,
            "resets": r.resets,
            "last": r.last,
            "beyond": self.beyond,
            "connected": self.connected,
            "pings": self.pings_sent,
            "pongs": self.pongs_ok,
            "problems": r.problems,
            "problem_count": r.problem_count,
            "state": r.view(),
        }


class ProtocolError(Exception):
    pass


def client_frame(op, payload):
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | op, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | op, 0x80 | 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | op, 0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class Engine:
    def __init__(self, args):
        self.port = args.port
        self.unix_path = args.unix
        self.seed = args.seed
        self.final = False
        self.hold = False  # a measuring window: flaky clients stay connected
        self.stopping = False
        self.max_seen = 0
        # The end: `freeze` holds every message back before the driver reads the API at some
        # revision R, `drain` R applies them up to R and no further. netnsd's inventory may
        # publish at any time (another process on the host makes a namespace), so the clients
        # are compared with the API at exactly R, not at "the end".
        self.frozen = False
        self.cutoff = None
        self.clients = []
        for kind, spec in (("websocket", args.websocket), ("sse", args.sse),
                           ("ndjson", args.ndjson)):
            for behaviour, count in parse_spec(spec):
                for i in range(count):
                    self.clients.append(Client(self, kind, behaviour, i,
                                               transport_of(i, args.unix_every, args.unix)))
        for i, (kind, behaviour, transport, flt) in enumerate(parse_filtered(args.filtered)):
            if transport == "unix" and not args.unix:
                raise SystemExit("soak_streams: a filtered client over unix needs --unix")
            self.clients.append(Client(self, kind, behaviour, i, transport, flt))

    def status(self):
        return {
            "clients": len(self.clients),
            "connected": sum(c.connected for c in self.clients),
            "greeted": sum(c.greeted for c in self.clients),
            "max_seen": self.max_seen,
            "min_last": min((c.replica.last or 0) for c in self.clients),
        }

    async def catch_up(self, revision, timeout):
        """Waits until every client has applied `revision` (or S seconds passed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.caught_up(revision) for c in self.clients):
                return True
            await asyncio.sleep(0.1)
        return False

    async def drain(self, revision, timeout):
        self.cutoff = revision
        self.frozen = False
        for c in self.clients:
            c.thaw()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.caught_up(revision) for c in self.clients):
                break
            await asyncio.sleep(0.1)
        # Before the tasks end (which disconnects them).
        caught_up = [c.caught_up(revision) for c in self.clients]
        self.stopping = True
        for c in self.clients:
            c.task.cancel()
        await asyncio.gather(*(c.task for c in self.clients), return_exceptions=True)
        return {
            "clients": [c.result(revision, ok) for c, ok in zip(self.clients, caught_up)],
            "revisions_seen": len(EVENT_TEXT),
            "text_mismatches": TEXT_MISMATCHES,
        }

    async def main(self):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 20)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        for i, c in enumerate(self.clients):
            c.task = asyncio.ensure_future(c.run())
            if i % 10 == 9:
                await asyncio.sleep(0.05)
        while True:
            line = await reader.readline()
            if not line:
                return  # the driver went away
            cmd = json.loads(line)
            if cmd["cmd"] == "status":
                reply(self.status())
            elif cmd["cmd"] in ("hold", "release"):
                self.hold = cmd["cmd"] == "hold"
                # Paused clients come back over 2.5 s, not all in the same instant: a herd
                # made by the measurement would weigh on what it measures.
                for c in self.clients:
                    loop.call_later(c.rng.uniform(0, 2.5), c.wake.set)
                reply({"ok": True})
            elif cmd["cmd"] == "final":
                self.final = True
                for c in self.clients:
                    c.wake.set()
                reply({"ok": True})
            elif cmd["cmd"] == "catchup":
                reply({"caught_up": await self.catch_up(cmd["revision"], cmd["timeout"])})
            elif cmd["cmd"] == "freeze":
                self.frozen = True
                reply({"ok": True})
            elif cmd["cmd"] == "drain":
                reply(await self.drain(cmd["revision"], cmd["timeout"]))
                return


def reply(doc):
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def parse_spec(spec):
    """'steady:25,flaky:10' -> [('steady', 25), ('flaky', 10)]"""
    out = []
    for item in filter(None, spec.split(",")):
        behaviour, _, count = item.partition(":")
        if behaviour not in ("steady", "flaky", "trickle", "stall"):
            raise SystemExit(f"soak_streams: unknown behaviour {behaviour!r}")
        out.append((behaviour, int(count)))
    return out


def transport_of(index, every, unix_path):
    """--unix-every N: the second client of each kind and behaviour, then every Nth, goes over
    the Unix socket (N=1: all of them; 0: none)."""
    if not unix_path or every <= 0:
        return "tcp"
    return "unix" if index % every == min(1, every - 1) else "tcp"


def parse_filtered(spec):
    """'websocket:steady:tcp:names=soak-w[13]-*;sse:flaky:unix:types=add,delete' ->
    [(kind, behaviour, transport, Filter), ...]. A glob here cannot hold ';' or '&'."""
    out = []
    for item in filter(None, spec.split(";")):
        parts = item.split(":", 3)
        if len(parts) != 4:
            raise SystemExit(f"soak_streams: a filtered client is KIND:BEHAVIOUR:TRANSPORT:QUERY, "
                             f"not {item!r}")
        kind, behaviour, transport, query = parts
        if kind not in ("websocket", "sse", "ndjson") or transport not in ("tcp", "unix"):
            raise SystemExit(f"soak_streams: bad filtered client {item!r}")
        parse_spec(f"{behaviour}:1")
        flt = Filter.parse(query)
        if flt.names is None and flt.types is None:
            raise SystemExit(f"soak_streams: filtered client {item!r} has no filter")
        out.append((kind, behaviour, transport, flt))
    return out


DEFAULT_FILTERED = ("websocket:steady:tcp:names=soak-w[13]-*;"
                    "websocket:flaky:unix:names=soak-[!w]*&types=add,delete,nsid;"
                    "sse:flaky:tcp:types=add,delete;"
                    "ndjson:steady:unix:names=soak-w0-*&types=add,delete")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--unix", default=None, help="netnsd's Unix socket")
    ap.add_argument("--unix-every", type=int, default=3)
    ap.add_argument("--filtered", default=DEFAULT_FILTERED)
    ap.add_argument("--seed", default="soak")
    ap.add_argument("--websocket", default="steady:25,flaky:10,trickle:8,stall:7")
    ap.add_argument("--sse", default="steady:2,flaky:2,trickle:1")
    ap.add_argument("--ndjson", default="steady:2,flaky:2,stall:1")
    args = ap.parse_args()
    asyncio.run(Engine(args).main())


if __name__ == "__main__":
    main()
