"""The HTTP phase of bench/run: wrk against netnsd and against nginx serving the same bytes as
static files, on the sandbox's own loopback. Imported by bench/report.py; runs inside
tests/support/sandbox only (it starts nginx with a private prefix under the sandbox's tmpfs /run,
never the system's nginx service or configuration).

nginx is the ceiling: a C server made for static files, given every advantage (one process
serving, like netnsd's one thread; open_file_cache; no access log; keep-alive without a request
limit). Both
answer the same URL paths with the same body bytes; only their headers differ, and the report
says by how much.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import time

from benchlib import BenchError, die_with_parent, median, now

HOST = "127.0.0.1"
NGINX_PREFIX = "/run/netnsd-bench-nginx"  # the sandbox's tmpfs; 0755 so nginx's worker can read

NGINX_CONF = """\
# Written by bench/httpbench.py for one benchmark run; never the system's nginx.
# One process that serves (no master + worker): like netnsd's one thread, and it dies with the
# driver (PR_SET_PDEATHSIG is not inherited by a worker a master would fork).
worker_processes 1;
daemon off;
master_process off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 1024;
}}
http {{
    access_log off;
    default_type application/json;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    open_file_cache max=64 inactive=600s;
    open_file_cache_valid 600s;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    server {{
        listen {host}:{port};
        root {prefix}/www;
    }}
}}
"""


def raw_get(port, path, timeout=10):
    """One GET on a fresh connection; returns (status, header bytes, body bytes)."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, len(head) + 4, body


class Nginx:
    """nginx with its own prefix, config and pid file, on 127.0.0.1:port, serving `files`
    ({url path: bytes}) from its www directory."""

    def __init__(self, port, files, logdir):
        self.port = port
        shutil.rmtree(NGINX_PREFIX, ignore_errors=True)
        os.makedirs(os.path.join(NGINX_PREFIX, "tmp"))
        os.chmod(NGINX_PREFIX, 0o755)
        for path, body in files.items():
            dest = os.path.join(NGINX_PREFIX, "www", path.lstrip("/"))
            os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
            with open(dest, "wb") as f:
                f.write(body)
            os.chmod(dest, 0o644)
        for root, dirs, _ in os.walk(os.path.join(NGINX_PREFIX, "www")):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        os.chmod(os.path.join(NGINX_PREFIX, "www"), 0o755)
        self.conf = os.path.join(NGINX_PREFIX, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(prefix=NGINX_PREFIX, host=HOST, port=port))
        self.cmd = ["nginx", "-p", NGINX_PREFIX, "-e", os.path.join(NGINX_PREFIX, "error.log"),
                    "-c", self.conf]
        self.log = open(os.path.join(logdir, "nginx.log"), "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     preexec_fn=die_with_parent)
        deadline = now() + 10
        while True:
            if self.proc.poll() is not None:
                raise BenchError(f"nginx exited with status {self.proc.returncode}; see "
                                 f"{self.log.name} and {NGINX_PREFIX}/error.log")
            try:
                raw_get(port, "/", timeout=1)
                break
            except OSError:
                if now() > deadline:
                    raise BenchError("nginx did not answer within 10 s")
                time.sleep(0.02)

    def workers(self):
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []

    def stop(self):
        workers = self.workers()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in workers:  # gone with the master normally; never left behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    if not m:
        raise BenchError(f"wrk printed a time I cannot read: {text!r}")
    return float(m.group(1)) * _UNIT[m.group(2)]


def parse_wrk(out):
    """Requests/s, latency percentiles (ms), request count and errors from `wrk --latency`."""
    res = {"errors": 0, "non_2xx": 0}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if not m:
        raise BenchError("wrk printed no Requests/sec:\n" + out[-800:])
    res["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = int(m.group(1)) if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if m:
            res[f"p{pct}_ms"] = _ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non_2xx"] = int(m.group(1))
    return res


def wrk(port, path, conns, seconds, commands):
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "2s",
           f"http://{HOST}:{port}{path}"]
    commands.append(" ".join(cmd))
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=seconds + 30, preexec_fn=die_with_parent)
    if p.returncode != 0:
        raise BenchError(f"wrk exited with {p.returncode}: {p.stdout[-400:]}")
    return parse_wrk(p.stdout)


def run(netnsd_port, nginx_port, targets, conns_list, seconds, repeats, logdir, notes,
        commands):
    """For each target ({label: url path}) and connection count, `repeats` interleaved wrk runs
    against netnsd and nginx. Returns {label: {conns: {"netnsd": [run...], "nginx": [...]}}}
    and facts about the bytes served."""
    files, facts = {}, {}
    for label, path in targets.items():
        status, head_len, body = raw_get(netnsd_port, path)
        if status != 200:
            raise BenchError(f"netnsd answered {status} to GET {path}")
        files[path] = body
        facts[label] = {"path": path, "body_bytes": len(body), "netnsd_header_bytes": head_len}
    server = Nginx(nginx_port, files, logdir)
    commands.append(" ".join(server.cmd) + f"   # config: {server.conf} (see bench/httpbench.py)")
    try:
        for label, path in targets.items():
            status, head_len, body = raw_get(nginx_port, path)
            if status != 200 or body != files[path]:
                raise BenchError(f"nginx does not serve the same bytes for {path} (status {status})")
            facts[label]["nginx_header_bytes"] = head_len
        ports = {"netnsd": netnsd_port, "nginx": nginx_port}
        # One short warm-up each, so neither is measured cold.
        for name, port in ports.items():
            wrk(port, next(iter(targets.values())), max(conns_list), 1, [])
        out = {}
        for label, path in targets.items():
            out[label] = {}
            for conns in conns_list:
                runs = {"netnsd": [], "nginx": []}
                for _ in range(repeats):
                    for name, port in ports.items():
                        r = wrk(port, path, conns, seconds, commands)
                        r["load"] = open("/proc/loadavg").read().split()[0]
                        if r["errors"] or r["non_2xx"]:
                            notes.append(f"wrk {name} {path} -c{conns}: {r['errors']} socket "
                                         f"errors, {r['non_2xx']} non-2xx answers")
                        runs[name].append(r)
                out[label][str(conns)] = runs
    finally:
        server.stop()
    return out, facts


def summary(runs):
    """Median over repeated runs of each wrk figure."""
    keys = ("rps", "p50_ms", "p99_ms")
    return {k: median([r[k] for r in runs if k in r]) for k in keys if any(k in r for r in runs)}
