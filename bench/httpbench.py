"""The HTTP phase of bench/run: wrk against netnsd and against nginx serving the same bytes as
static files, on the sandbox's own loopback. Imported by bench/report.py; runs inside
tests/support/sandbox only (it starts nginx with a private prefix under the sandbox's tmpfs /run,
never the system's nginx service or configuration).

nginx is the ceiling: a C server made for static files, given every advantage (one process
serving, like netnsd's one thread; open_file_cache; no access log; keep-alive without a request
limit). Both
answer the same URL paths with the same body bytes; only their headers differ, and the report
says by how much.

The TLS part (run_tls) does the same over HTTPS: netnsd with --tls-cert/--tls-key and nginx with
`ssl` on another port, the same certificate and key (ECDSA P-256, made here with openssl), TLS 1.2
and 1.3 allowed on both (both pick TLS 1.3 with wrk's OpenSSL), no session resumption on either
side that wrk would use (it does not resume). Also new handshakes per second: wrk sending
`Connection: close`, so every request is a new TCP connection and a full TLS handshake.
"""

import os
import re
import shutil
import signal
import socket
import ssl
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
{tls_server}}}
"""

NGINX_TLS_SERVER = """\
    server {{
        listen {host}:{port} ssl;
        root {prefix}/www;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets off;
    }}
"""


def make_cert(directory):
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 (cert, key paths), made with openssl:
    the one both servers use."""
    os.makedirs(directory, exist_ok=True)
    cert, key = os.path.join(directory, "bench.crt"), os.path.join(directory, "bench.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o644)  # nginx's worker reads it in the sandbox
    return cert, key


def raw_get(port, path, timeout=10, cafile=None):
    """One GET on a fresh connection (TLS, trusting `cafile`, when given); returns (status,
    header bytes, body bytes)."""
    with socket.create_connection((HOST, port), timeout=timeout) as plain:
        s = plain
        if cafile:
            s = ssl.create_default_context(cafile=cafile).wrap_socket(plain,
                                                                       server_hostname=HOST)
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

    def __init__(self, port, files, logdir, tls=None):
        """`tls`: (port, cert, key) to serve the same files over HTTPS too."""
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
            tls_server = ""
            if tls:
                tls_server = NGINX_TLS_SERVER.format(host=HOST, port=tls[0], prefix=NGINX_PREFIX,
                                                     cert=tls[1], key=tls[2])
            f.write(NGINX_CONF.format(prefix=NGINX_PREFIX, host=HOST, port=port,
                                      tls_server=tls_server))
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


def wrk(port, path, conns, seconds, commands, scheme="http", close=False):
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "2s"]
    if close:
        cmd += ["-H", "Connection: close"]
    cmd.append(f"{scheme}://{HOST}:{port}{path}")
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


def wait_tls(port, cafile, timeout_s=10):
    """Until netnsd answers /healthz over TLS on `port`."""
    deadline = now() + timeout_s
    while True:
        try:
            if raw_get(port, "/healthz", timeout=2, cafile=cafile)[0] == 200:
                return
        except (OSError, ValueError, IndexError):
            pass
        if now() > deadline:
            raise BenchError(f"netnsd did not answer /healthz over TLS within {timeout_s} s")
        time.sleep(0.02)


def run_tls(netnsd_port, nginx_port, nginx_tls_port, cert, key, targets, conns_list, seconds,
            repeats, handshake_conns, logdir, notes, commands):
    """The HTTPS twin of run(): netnsd (already serving TLS on netnsd_port with cert/key) and
    nginx with the same certificate. Returns ({label: {conns: {"netnsd": [...], "nginx": [...]}},
    plus "handshake": {conns: ...}}, facts)."""
    files, facts = {}, {}
    for label, path in targets.items():
        status, head_len, body = raw_get(netnsd_port, path, cafile=cert)
        if status != 200:
            raise BenchError(f"netnsd answered {status} to GET {path} over TLS")
        files[path] = body
        facts[label] = {"path": path, "body_bytes": len(body), "netnsd_header_bytes": head_len}
    server = Nginx(nginx_port, files, logdir, tls=(nginx_tls_port, cert, key))
    commands.append(" ".join(server.cmd) + f"   # config: {server.conf}, with ssl on "
                    f"{nginx_tls_port} (see bench/httpbench.py)")
    try:
        for label, path in targets.items():
            status, head_len, body = raw_get(nginx_tls_port, path, cafile=cert)
            if status != 200 or body != files[path]:
                raise BenchError(f"nginx does not serve the same bytes for {path} over TLS")
            facts[label]["nginx_header_bytes"] = head_len
        ports = {"netnsd": netnsd_port, "nginx": nginx_tls_port}
        for name, port in ports.items():
            wrk(port, next(iter(targets.values())), max(conns_list), 1, [], scheme="https")
        out = {}
        plan = [(label, path, conns, False) for label, path in targets.items()
                for conns in conns_list]
        plan.append(("handshake", next(iter(targets.values())), handshake_conns, True))
        for label, path, conns, close in plan:
            runs = {"netnsd": [], "nginx": []}
            for _ in range(repeats):
                for name, port in ports.items():
                    r = wrk(port, path, conns, seconds, commands, scheme="https", close=close)
                    r["load"] = open("/proc/loadavg").read().split()[0]
                    if r["errors"] or r["non_2xx"]:
                        notes.append(f"wrk https {name} {path} -c{conns}"
                                     f"{' (Connection: close)' if close else ''}: "
                                     f"{r['errors']} socket errors, {r['non_2xx']} non-2xx")
                    runs[name].append(r)
            out.setdefault(label, {})[str(conns)] = runs
    finally:
        server.stop()
    return out, facts
