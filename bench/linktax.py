"""The host-wide price of a NETLINK_LISTEN_ALL_NSID listener (issue 15).

With such a socket open and joined to the link group, the kernel looks up, for every link
notification anywhere on the host, the nsid the listener's namespace has for the namespace the
change happened in (peernet2id: a walk of the listener namespace's nsid table). This measures
the kernel time of one link change in an unrelated namespace (one netnsd's namespace has no
nsid for, so the walk is a whole one), with and without such a listener, at a given number of
nsids in the listener's namespace.

The changer is this process: it enters the unrelated namespace (setns, through libc), and
sets a veth there up and down with RTM_NEWLINK and NLM_F_ACK, timing each change from the
send to the ack (all of it kernel work in this thread: the notification is built and
delivered to every listener before the ack) and reading its own system time (getrusage).
The listener is a child process in the caller's namespace that reads and drops everything.

Run in bench/run's sandbox (root, private /run/netns). Used by report.py's `links` section;
also runnable alone:  python3 bench/linktax.py --nsids 1000 --changes 2000
"""
import argparse
import ctypes
import json
import os
import resource
import socket
import struct
import subprocess
import sys
import time

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_LISTEN_ALL_NSID = 8
RTMGRP_LINK = 1
RTM_NEWLINK = 16
NLM_F_REQUEST = 1
NLM_F_ACK = 4
NLMSG_ERROR = 2
IFF_UP = 1
CLONE_NEWNET = 0x40000000

UNRELATED = "linktax-u"
PREFIX = "linktax-"


def sh(*cmd, stdin=None):
    subprocess.run(cmd, check=True, input=stdin, text=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_nsids(n, mkns=None):
    """n namespaces, each with an nsid in the caller's namespace (as `ip netns set NAME auto`);
    named as mkns names them (PREFIX00000 ...)."""
    names = [f"{PREFIX}{i:05d}" for i in range(n)]
    if mkns:
        sh(mkns, "add", "/run/netns", PREFIX, str(n), "--nsid")
    else:
        sh("ip", "-batch", "-", stdin="".join(f"netns add {x}\n" for x in names))
        sh("ip", "-batch", "-", stdin="".join(f"netns set {x} auto\n" for x in names))
    return names


def remove_nsids(n, mkns=None):
    if mkns:
        sh(mkns, "del", "/run/netns", PREFIX, str(n))
    else:
        sh("ip", "-batch", "-", stdin="".join(f"netns del {PREFIX}{i:05d}\n" for i in range(n)))


def make_unrelated():
    sh("ip", "netns", "add", UNRELATED)
    sh("ip", "-n", UNRELATED, "link", "add", "u0", "type", "veth", "peer", "name", "u1")


def remove_unrelated():
    subprocess.run(["ip", "netns", "del", UNRELATED], stderr=subprocess.DEVNULL)


def nsid_count():
    """The names with an nsid (`ip -j netns list` asks GETNSID per name; `ip netns list-id`
    would not do: the kernel's nsid dump stops after one buffer, ~134 entries)."""
    out = subprocess.run(["ip", "-j", "netns", "list"], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    return sum(1 for row in json.loads(out or "[]") if "id" in row)


LISTENER = r"""
import socket, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind((0, 1))  # RTMGRP_LINK
s.setsockopt(270, 8, 1)  # NETLINK_LISTEN_ALL_NSID
print("ready", flush=True)
while True:
    try:
        s.recv(65536)
    except OSError:
        pass  # ENOBUFS: dropped, as a slow reader would
"""


class listener:
    """A NETLINK_LISTEN_ALL_NSID socket joined to the link group, in a child process."""

    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE,
                                     text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the listener did not start")
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()


def ifindex_in(ns_fd, name):
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.setns(ns_fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        index = socket.if_nametoindex(name)
    finally:
        if libc.setns(home, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns back")
        os.close(home)
    return sock, index


def time_changes(count):
    """Sets u0 in the unrelated namespace up and down `count` times; returns the wall time of
    each change (send to ack), and the process's system time over all of them, in seconds."""
    fd = os.open(f"/run/netns/{UNRELATED}", os.O_RDONLY)
    sock, index = ifindex_in(fd, "u0")  # the socket belongs to the unrelated namespace
    os.close(fd)
    sock.bind((0, 0))
    walls = []
    sys0 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    for i in range(count):
        flags = IFF_UP if i % 2 == 0 else 0
        body = struct.pack("BxHiII", socket.AF_UNSPEC, 0, index, flags, IFF_UP)
        msg = struct.pack("IHHII", 16 + len(body), RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK,
                          i + 1, 0) + body
        t = time.perf_counter()
        sock.send(msg)
        reply = sock.recv(4096)
        walls.append(time.perf_counter() - t)
        _, kind = struct.unpack_from("IH", reply)
        err = struct.unpack_from("i", reply, 16)[0] if kind == NLMSG_ERROR else 0
        if kind != NLMSG_ERROR or err != 0:
            raise RuntimeError(f"RTM_NEWLINK answered type {kind} error {err}")
    sys1 = resource.getrusage(resource.RUSAGE_SELF).ru_stime
    sock.close()
    return walls, sys1 - sys0


def median(xs):
    s = sorted(xs)
    return s[len(s) // 2] if s else float("nan")


class netnsd_watching:
    """netnsd --watch-links running in the caller's namespace (its listener is the tax)."""

    def __init__(self, exe, logdir, notes):
        self.exe, self.logdir, self.notes = exe, logdir, notes

    def __enter__(self):
        import benchlib
        self.d = benchlib.Daemon(self.exe, self.logdir, "linktax", self.notes,
                                 extra_args=("--watch-links",))
        # At start it dumps every namespace that has an nsid: thousands take a while.
        self.d.wait_watching(timeout_s=300)
        return self

    def __exit__(self, *exc):
        self.d.stop()


def measure(nsids, changes, blocks, mkns=None, log=lambda m: None, netnsd=None, logdir="/tmp",
            notes=None):
    """At `nsids` nsids: `blocks` interleaved runs (without, with a listener, and with netnsd
    --watch-links running when `netnsd` is its binary), each of `changes` link changes. Returns
    the medians of the per-change times, in microseconds."""
    make_unrelated()
    names = make_nsids(nsids, mkns)
    try:
        have = nsid_count()
        out = {"nsids": have, "changes": changes, "blocks": blocks,
               "without": {"wall_us": [], "sys_us": []}, "with": {"wall_us": [], "sys_us": []}}
        modes = ("without", "with")
        if netnsd:
            out["netnsd"] = {"wall_us": [], "sys_us": []}
            modes += ("netnsd",)
        time_changes(100)  # warm-up
        for b in range(blocks):
            log(f"links: tax at {have} nsids, block {b + 1} of {blocks}")
            walls, system = time_changes(changes)
            out["without"]["wall_us"].append(median(walls) * 1e6)
            out["without"]["sys_us"].append(system / changes * 1e6)
            with listener():
                walls, system = time_changes(changes)
            out["with"]["wall_us"].append(median(walls) * 1e6)
            out["with"]["sys_us"].append(system / changes * 1e6)
            if netnsd:
                with netnsd_watching(netnsd, logdir, notes if notes is not None else []):
                    walls, system = time_changes(changes)
                out["netnsd"]["wall_us"].append(median(walls) * 1e6)
                out["netnsd"]["sys_us"].append(system / changes * 1e6)
        for k in modes:
            out[k]["wall_median_us"] = median(out[k]["wall_us"])
            out[k]["sys_median_us"] = median(out[k]["sys_us"])
        return out
    finally:
        remove_unrelated()
        remove_nsids(len(names), mkns)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nsids", type=int, default=1000)
    ap.add_argument("--changes", type=int, default=2000)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--mkns", default=None, help="bench/out/mkns, to make the namespaces fast")
    ap.add_argument("--netnsd", default=None, help="also with netnsd --watch-links running")
    a = ap.parse_args()
    r = measure(a.nsids, a.changes, a.blocks, a.mkns, lambda m: print(m, file=sys.stderr),
                netnsd=a.netnsd)
    print(f"{r['nsids']} nsids: a link change in an unrelated namespace takes "
          f"{r['without']['wall_median_us']:.1f} us without a listener, "
          f"{r['with']['wall_median_us']:.1f} us with one "
          f"(system time {r['without']['sys_median_us']:.1f} / {r['with']['sys_median_us']:.1f} us)")
    if "netnsd" in r:
        print(f"  with netnsd --watch-links running: {r['netnsd']['wall_median_us']:.1f} us "
              f"(system time {r['netnsd']['sys_median_us']:.1f} us)")


if __name__ == "__main__":
    main()
