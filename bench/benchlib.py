"""What the benchmark drivers (foundation.py, events.py, admin.py) share: timing and
statistics helpers, tying children to the driver's life, one netnsd process, and the machine
facts every report starts with."""

import ctypes
import json
import os
import platform
import signal
import subprocess
import time
import urllib.request

NETNS_DIR = "/run/netns"
HOST = "127.0.0.1"
FIRST_PORT = 9321  # the sandbox has its own loopback, so nothing else is listening here
# In the sandbox's private tmpfs on /run: netnsd creates its admin token when missing, and its
# default (/etc/netnsd/token) is on the host's filesystem.
TOKEN_FILE = "/run/netnsd-bench/token"

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


class BenchError(Exception):
    pass


def now():
    return time.perf_counter()


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def percentile(xs, q):
    """Nearest-rank percentile (with 10 samples, the 99th is the maximum)."""
    s = sorted(xs)
    rank = -(-q * len(s) // 100)  # ceil
    return s[max(rank, 1) - 1]


def quiesce(busy_below=0.10, window_s=0.2, timeout_s=15.0):
    """Waits until the machine is nearly idle: the share of all CPUs busy over a window (from
    /proc/stat) below `busy_below`, or `timeout_s`. Deleting a thousand namespaces leaves the
    kernel's cleanup of them (a workqueue, seconds of CPU) running after the deletes return;
    a phase started before it ends pays for the one before. Returns the seconds waited."""

    def busy_idle():
        fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, idle

    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        b0, i0 = busy_idle()
        time.sleep(window_s)
        b1, i1 = busy_idle()
        total = (b1 - b0) + (i1 - i0)
        if total > 0 and (b1 - b0) / total < busy_below:
            break
    return time.monotonic() - start


def die_with_parent():
    """For preexec_fn: if the driver is killed (timeout, ^C), the child goes with it."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class Daemon:
    """One netnsd process on its own port (a fresh port per start avoids TIME_WAIT surprises),
    its output in LOGDIR/netnsd-LABEL.log; what went wrong is added to `notes`."""

    next_port = FIRST_PORT

    def __init__(self, exe, logdir, label, notes, extra_args=(), preexec_fn=die_with_parent):
        self.port = Daemon.next_port
        Daemon.next_port += 1
        self.label = label
        self.notes = notes
        self.log_path = os.path.join(logdir, f"netnsd-{label}.log")
        self.log = open(self.log_path, "wb")
        self.cmd = [exe, "--listen", f"{HOST}:{self.port}", "--netns-dir", NETNS_DIR,
                    "--token-file", TOKEN_FILE, *extra_args]
        self.spawned_at = now()
        self.proc = subprocess.Popen(
            self.cmd, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn
        )

    def healthz(self, timeout=5):
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/healthz", timeout=timeout) as r:
            return json.loads(r.read())

    def wait_watching(self, timeout_s=10):
        """Until /healthz answers with the dir watched."""
        deadline = now() + timeout_s
        while True:
            self.check_alive()
            try:
                if self.healthz(timeout=2).get("watching"):
                    return
            except OSError:
                pass
            if now() > deadline:
                raise BenchError(f"netnsd ({self.label}) did not answer /healthz within "
                                 f"{timeout_s} s")
            time.sleep(0.01)

    def rss_bytes(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise BenchError("no VmRSS line")

    def cpu_seconds(self):
        """user + system CPU time so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def check_alive(self):
        rc = self.proc.poll()
        if rc is not None:
            raise BenchError(f"netnsd ({self.label}) exited with status {rc}; see {self.log_path}")

    def stop(self):
        """SIGTERM (SIGKILL after 8 s); notes a bad exit and any warning or error it logged."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=8)
            except subprocess.TimeoutExpired:
                self.notes.append(f"netnsd ({self.label}) ignored SIGTERM for 8 s; killed it")
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        if rc != 0:
            self.notes.append(f"netnsd ({self.label}) exited with status {rc}; see {self.log_path}")
        self.log.close()
        with open(self.log_path, errors="replace") as f:
            odd = [l.strip() for l in f if l.startswith(("warn", "error"))]
        if odd:
            self.notes.append(
                f"netnsd ({self.label}) logged {len(odd)} warnings/errors, first: `{odd[0]}`"
            )


def machine_facts(revision, netnsd):
    """The facts a report opens with: what ran, where, and when."""

    def first_line(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, check=True).stdout.strip().splitlines()[0]
        except Exception as e:
            return f"unknown ({e})"

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": first_line(["nproc"]),
        "cpu": cpu,
        "kernel": platform.release(),
        "ip -V": first_line(["ip", "-V"]),
        "netnsd": revision,
        "netnsd binary": time.strftime("built %Y-%m-%d %H:%M:%S",
                                       time.localtime(os.stat(netnsd).st_mtime)),
        "load average at start": " ".join(open("/proc/loadavg").read().split()[:3]),
    }
