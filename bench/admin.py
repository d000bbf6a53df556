#!/usr/bin/env python3
"""The admin benchmark (run by bench/admin inside the sandbox): what creating, deleting and
entering namespaces costs through netnsd's API, beside `ip` doing the same work in one run."""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

from benchlib import TOKEN_FILE, BenchError, die_with_parent, percentile

PORT = 9321


class Client:
    """One keep-alive connection with the admin token."""

    def __init__(self, token, port=PORT):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None,
                          headers=self.headers)
        r = self.conn.getresponse()
        data = r.read()
        return r.status, data


def netnsd_command(binary, port=PORT):
    return [binary, "--listen=127.0.0.1:%d" % port, "--token-file=" + TOKEN_FILE,
            "--enable-exec", "--log-level=warn"]


def start_netnsd(binary, port=PORT, log=subprocess.DEVNULL):
    proc = subprocess.Popen(netnsd_command(binary, port), stdout=log, stderr=log,
                            preexec_fn=die_with_parent)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise BenchError("netnsd did not start")


class LeanClient:
    """One keep-alive connection that writes each request as bytes and reads the answer by its
    Content-Length: the churn's client, so that the figure is netnsd's work and not the client's
    (http.client spends ~0.14 ms of CPU per request here, this one ~0.06 ms, on a machine whose
    two cores netnsd and the kernel share with it). netnsd answers every request with a
    Content-Length (no chunked bodies outside the event streams)."""

    def __init__(self, token, port=PORT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fixed = ("Host: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n" % (port, token)).encode()
        self.pending = b""

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else b""
        head = b"%s %s HTTP/1.1\r\n" % (method.encode(), path.encode())
        length = b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data)
        self.sock.sendall(head + self.fixed + length + data)
        while True:
            end = self.pending.find(b"\r\n\r\n")
            if end >= 0:
                header = self.pending[:end].lower()
                at = header.find(b"\r\ncontent-length:")
                if at < 0:
                    raise BenchError("an answer without Content-Length: %r" % header[:200])
                line_end = header.find(b"\r\n", at + 2)
                size = int(header[at + 17:line_end if line_end >= 0 else len(header)])
                if len(self.pending) >= end + 4 + size:
                    status = int(header[9:12])
                    answer = self.pending[end + 4:end + 4 + size]
                    self.pending = self.pending[end + 4 + size:]
                    return status, answer
            chunk = self.sock.recv(65536)
            if not chunk:
                raise BenchError("netnsd closed the connection")
            self.pending += chunk


def api_churn(token, n, clients, port=PORT, prefix="api", churn=None):
    """n creates then n deletes through the API, split over `clients` threads. Returns the wall
    time of each half, the errors, and each request's time (s) per half. With `churn` (bench/churn,
    built from churn.cpp) the requests come from that compiled client, as mkns's system calls
    do for the floor; else from Python threads (LeanClient), which cost the shared CPUs more."""
    if churn:
        done = subprocess.run([churn, str(port), TOKEN_FILE, prefix, str(n), str(clients)],
                              stdout=subprocess.PIPE, text=True)
        out = json.loads(done.stdout)
        errors = [tuple(e) for e in out["errors"]]
        if done.returncode != 0 and not errors:
            raise BenchError("churn failed with status %d" % done.returncode)
        return out["create_s"], out["delete_s"], errors, out["create_lat"], out["delete_lat"]
    names = ["%s%05d" % (prefix, i) for i in range(n)]
    errors = []
    latency = {"POST": [], "DELETE": []}

    def run(method, part):
        c = LeanClient(token, port)
        for name in part:
            t0 = time.perf_counter()
            if method == "POST":
                status, _ = c.call("POST", "/api/v1/netns", {"name": name})
                ok = status == 201
            else:
                status, _ = c.call("DELETE", "/api/v1/netns/" + name)
                ok = status == 200
            latency[method].append(time.perf_counter() - t0)  # list.append is atomic
            if not ok:
                errors.append((method, name, status))

    def phase(method):
        parts = [names[i::clients] for i in range(clients)]
        threads = [threading.Thread(target=run, args=(method, p)) for p in parts]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0

    create = phase("POST")
    delete = phase("DELETE")
    return create, delete, errors, latency["POST"], latency["DELETE"]


def timed_shell_loop(verb, names):
    """`ip netns VERB NAME` for each name, one process each, in one bash script that notes
    bash's clock around each (a builtin: no process of its own). Returns (wall s, [s per op])."""
    script = "".join('s=$EPOCHREALTIME; ip netns %s %s; echo "$s $EPOCHREALTIME"\n' % (verb, n)
                     for n in names)
    t0 = time.perf_counter()
    out = subprocess.run(["bash", "-e", "-c", script], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    wall = time.perf_counter() - t0
    each = [float(b) - float(a) for a, b in (line.split() for line in out.splitlines())]
    return wall, each


def ip_churn(n, prefix="ip"):
    """`ip netns add` for n names, then `ip netns del`. Returns (create s, delete s, add
    latencies, del latencies)."""
    names = ["%s%05d" % (prefix, i) for i in range(n)]
    create, adds = timed_shell_loop("add", names)
    delete, dels = timed_shell_loop("del", names)
    return create, delete, adds, dels


MKNS_LINE = re.compile(r"median ([0-9.]+) ms, p99 ([0-9.]+) ms")


def floor_churn(mkns, n, prefix="floor"):
    """mkns add then del of n names. Returns (create s, delete s, (median, p99) ms of one add,
    the same of one del), the per-op figures from mkns's own report."""
    per_op = []
    walls = []
    for verb in ("add", "del"):
        t0 = time.perf_counter()
        out = subprocess.run([mkns, verb, "/run/netns", prefix, str(n)], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        walls.append(time.perf_counter() - t0)
        m = MKNS_LINE.search(out)
        per_op.append((float(m.group(1)), float(m.group(2))) if m else (None, None))
    return walls[0], walls[1], per_op[0], per_op[1]


def exec_latency(token, runs, port=PORT):
    c = Client(token, port)
    status, _ = c.call("POST", "/api/v1/netns", {"name": "execbox"})
    assert status == 201, status
    api, ip, nsenter = [], [], []
    for _ in range(5):  # warm-up
        c.call("POST", "/api/v1/netns/execbox/exec", {"argv": ["true"]})
    for _ in range(runs):
        t0 = time.perf_counter()
        status, body = c.call("POST", "/api/v1/netns/execbox/exec", {"argv": ["true"]})
        api.append(time.perf_counter() - t0)
        assert status == 200 and json.loads(body)["exit_code"] == 0, body
        t0 = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", "execbox", "true"], check=True)
        ip.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run(["nsenter", "--net=/run/netns/execbox", "true"], check=True)
        nsenter.append(time.perf_counter() - t0)
    c.call("DELETE", "/api/v1/netns/execbox")
    return api, ip, nsenter


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--netnsd", required=True)
    ap.add_argument("--mkns", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--revision", default="unknown")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--churn", default=None, help="bench/churn, the compiled API client")
    ap.add_argument("--exec-runs", type=int, default=100)
    a = ap.parse_args()

    proc = start_netnsd(a.netnsd)
    try:
        token = open(TOKEN_FILE).read().strip()
        api_c, api_d, errors, _, _ = api_churn(token, a.n, a.clients, churn=a.churn)
        ip_c, ip_d, _, _ = ip_churn(a.n)
        fl_c, fl_d, _, _ = floor_churn(a.mkns, a.n)
        ex_api, ex_ip, ex_ns = exec_latency(token, a.exec_runs)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)

    n = a.n
    api_rate = 2 * n / (api_c + api_d)
    ip_rate = 2 * n / (ip_c + ip_d)
    fl_rate = 2 * n / (fl_c + fl_d)
    ms = lambda s: "%.2f ms" % (s * 1000)
    lines = [
        "# netnsd admin benchmark",
        "",
        "- date: %s" % datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "- machine: %d cores, kernel %s, %s" % (os.cpu_count(), platform.release(),
                                                 subprocess.run(["ip", "-V"], capture_output=True,
                                                                text=True).stdout.strip()),
        "- netnsd: %s (Release), load average before: %s" % (a.revision,
                                                              open("/proc/loadavg").read().split()[0]),
        "- command: `bench/admin` (%d namespaces, %d API clients, %d exec runs)" % (
            n, a.clients, a.exec_runs),
        "",
        "| figure | netnsd API | ip | kernel floor (mkns) | ratio | goal | met? |",
        "|---|---|---|---|---|---|---|",
        "| create, per namespace | %s | %s | %s | %.1fx faster than ip | | |" % (
            ms(api_c / n), ms(ip_c / n), ms(fl_c / n), ip_c / api_c),
        "| delete, per namespace | %s | %s | %s | %.1fx faster than ip | | |" % (
            ms(api_d / n), ms(ip_d / n), ms(fl_d / n), ip_d / api_d),
        "| create+delete throughput | %.0f ops/s | %.0f ops/s | %.0f ops/s | %.1fx | >= 10x ip | %s |" % (
            api_rate, ip_rate, fl_rate, api_rate / ip_rate,
            "yes" if api_rate >= 10 * ip_rate else "no"),
        "| exec `true`, median | %s | %s (ip netns exec) | %s (nsenter) | %.2fx ip | <= 1.5x ip | %s |" % (
            ms(statistics.median(ex_api)), ms(statistics.median(ex_ip)),
            ms(statistics.median(ex_ns)), statistics.median(ex_api) / statistics.median(ex_ip),
            "yes" if statistics.median(ex_api) <= 1.5 * statistics.median(ex_ip) else "no"),
        "| exec `true`, p99 | %s | %s | %s | %.2fx ip | | |" % (
            ms(percentile(ex_api, 99)), ms(percentile(ex_ip, 99)), ms(percentile(ex_ns, 99)),
            percentile(ex_api, 99) / percentile(ex_ip, 99)),
        "",
        "API errors during the churn: %d%s" % (len(errors), (" (first: %s)" % (errors[0],)) if errors else ""),
        "",
        "The API figures are wall time seen by HTTP clients (request to response, with the model",
        "showing the change before the response is sent); `ip` runs one process per namespace;",
        "mkns is one process doing open + unshare + bind mount (and umount + unlink) per namespace.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    with open(a.out, "w") as f:
        f.write(report)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
