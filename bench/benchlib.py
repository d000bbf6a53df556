"""What the benchmark drivers (foundation.py, events.py, admin.py) share: timing and
statistics helpers, tying children to the driver's life, and the machine facts every report
starts with."""

import ctypes
import os
import platform
import signal
import subprocess
import time

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


def die_with_parent():
    """For preexec_fn: if the driver is killed (timeout, ^C), the child goes with it."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


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
