"""Link event latency (issue 15): from a link change to its `link` event on a websocket client
of netnsd --watch-links.

A namespace with an nsid (`ip netns set NAME auto`) and a veth inside it; this process holds a
netlink socket made in that namespace (as `ip -n NAME link set DEV up` would) and sets the veth
up and down with RTM_NEWLINK, NLM_F_ACK. Each change is timed from just before its send to the
arrival of the matching `changed` event on a websocket of /api/v1/events?types=link (a minimal
client: the handshake, then the server's unmasked text frames). Changes are spaced by more than
netnsd's coalescing window (250 ms), so each is the first change of its window and is sent at
once: this is the latency of a change, not of the coalescing.

Run in bench/run's sandbox (root, private /run/netns). Used by report.py's `links` section;
also runnable alone:  python3 bench/linkevents.py --netnsd build/release/netnsd --changes 200
"""
import argparse
import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time

import benchlib
import linktax

NS = "linkev-a"
WINDOW_S = 0.25


class ws_client:
    def __init__(self, port, target):
        self.sock = socket.create_connection(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                           "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
                          .encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"no websocket: {head[:80]!r}")

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            if not chunk:
                raise RuntimeError("the server closed the stream")
            self.buf += chunk
        return True

    def read(self, timeout):
        """The next text message as JSON, or None at the timeout. A ping is answered and a
        pong skipped (netnsd pings an idle stream now and then)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._frame(deadline)
            if frame is None:
                return None
            opcode, payload = frame
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode == 0x8:
                raise RuntimeError(f"the server closed the stream: {payload[:80]!r}")
            elif opcode != 0xA:
                return json.loads(payload)

    def _send(self, opcode, payload):
        """One masked frame (a client must mask; a zero mask leaves the payload as it is)."""
        assert len(payload) < 126
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)

    def _frame(self, deadline):
        """(opcode, payload) of the next frame, or None at the deadline."""
        if not self._need(2, deadline):
            return None
        opcode = self.buf[0] & 0x0F
        b1 = self.buf[1] & 0x7F
        at = 2
        if b1 == 126:
            if not self._need(4, deadline):
                return None
            b1 = struct.unpack_from("!H", self.buf, 2)[0]
            at = 4
        elif b1 == 127:
            if not self._need(10, deadline):
                return None
            b1 = struct.unpack_from("!Q", self.buf, 2)[0]
            at = 10
        if not self._need(at + b1, deadline):
            return None
        payload, self.buf = self.buf[at:at + b1], self.buf[at + b1:]
        return opcode, payload

    def close(self):
        self.sock.close()


def percentile(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


def measure(netnsd, logdir, notes, changes, log=lambda m: None):
    """Returns the latencies (ms) of `changes` link changes, and what ran."""
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
    linktax.sh("ip", "netns", "add", NS)
    linktax.sh("ip", "netns", "set", NS, "auto")
    linktax.sh("ip", "-n", NS, "link", "add", "e0", "type", "veth", "peer", "name", "e1")
    d = benchlib.Daemon(netnsd, logdir, "linkevents", notes, extra_args=("--watch-links",))
    lat, down, after_ack = [], [], []
    try:
        d.wait_watching()
        ws = ws_client(d.port, "/api/v1/events?types=link")
        ws.read(5)  # hello
        fd = os.open(f"/run/netns/{NS}", os.O_RDONLY)
        sock, index = linktax.ifindex_in(fd, "e0")
        os.close(fd)
        sock.bind((0, 0))
        log(f"links: {changes} link changes to a websocket client of netnsd --watch-links")
        for i in range(changes):
            up = i % 2 == 0
            body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, index,
                               linktax.IFF_UP if up else 0, linktax.IFF_UP)
            msg = struct.pack("IHHII", 16 + len(body), linktax.RTM_NEWLINK,
                              linktax.NLM_F_REQUEST | linktax.NLM_F_ACK, i + 1, 0) + body
            t = time.perf_counter()
            sock.send(msg)
            sock.recv(4096)  # the ack
            acked = time.perf_counter()
            while True:
                e = ws.read(5)
                if e is None:
                    raise RuntimeError(f"change {i}: no link event within 5 s")
                link = e.get("link") or {}
                if link.get("name") == "e0" and ("UP" in link.get("flags", [])) == up:
                    got = time.perf_counter()
                    if up:
                        lat.append((got - t) * 1000)
                    else:
                        down.append((got - t) * 1000)
                    after_ack.append((got - acked) * 1000)
                    break
            time.sleep(WINDOW_S + 0.02)  # the next change opens a new window
        sock.close()
        ws.close()
        cpu = d.cpu_seconds()
    finally:
        d.stop()
        subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
    # Up: the change the goal is about. Down: its ack comes only after the kernel closed the
    # device (an RCU grace period and more), which is in the time. After the ack: netnsd's part.
    return {"changes": changes, "latency_ms": lat, "p50_ms": percentile(lat, 50),
            "p99_ms": percentile(lat, 99), "max_ms": max(lat) if lat else float("nan"),
            "down_p50_ms": percentile(down, 50), "down_p99_ms": percentile(down, 99),
            "after_ack_p50_ms": percentile(after_ack, 50),
            "after_ack_p99_ms": percentile(after_ack, 99),
            "cpu_s": cpu, "command": " ".join(d.cmd)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--netnsd", required=True)
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--logdir", default="/tmp")
    a = ap.parse_args()
    r = measure(a.netnsd, a.logdir, [], a.changes, lambda m: print(m, file=sys.stderr))
    print(f"{r['changes']} link changes: up p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
          f"max {r['max_ms']:.2f} ms; down p50 {r['down_p50_ms']:.2f} ms, p99 "
          f"{r['down_p99_ms']:.2f} ms; after the ack p50 {r['after_ack_p50_ms']:.2f} ms, "
          f"p99 {r['after_ack_p99_ms']:.2f} ms")


if __name__ == "__main__":
    main()
