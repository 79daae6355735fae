"""What the Python benchmark scripts (bench-capacity, bench-cluster,
bench-record) share: where the release binaries are (honouring
CARGO_TARGET_DIR), a registry of the processes a run starts so that every
one is stopped, starting the game server and learning the address it bound
from its JSON log, a free port, and durations on the command line.

The shell scripts have the same for themselves in scripts/lib/server.sh.
Imported, not run:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
    import bench
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

# How long a process may take to print its address.
START_TIMEOUT_S = 10.0

# How long a server may take to exit after SIGTERM before it is killed
# (the game server's own shutdown timeout is 5 s).
STOP_GRACE_S = 10.0

# The line a server logs once it listens, with --log-format json.
ADDR_PATTERN = re.compile(r'"addr":"(127\.0\.0\.1:\d+)"')


class RunError(Exception):
    """Something could not be run; the benchmark stops with exit code 2."""


def bin_dir():
    """The directory of the release binaries."""
    return os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")


class Procs:
    """Every process a benchmark starts, so that each is stopped by its pid."""

    def __init__(self):
        self.live = []

    def start(self, name, argv, out_path, core=None):
        """Starts argv with stdout and stderr into out_path; pinned to `core`
        when one is given (taskset execs the program, so the pid is the
        program's)."""
        if core is not None:
            argv = ["taskset", "-c", str(core)] + list(argv)
        out = open(out_path, "ab")
        try:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, cwd=ROOT)
        finally:
            out.close()
        p.bench_name = name
        p.bench_log = out_path
        self.live.append(p)
        return p

    def wait(self, p, timeout):
        """Waits for p to exit; RunError if it overruns (it is then killed)."""
        try:
            rc = p.wait(timeout=max(timeout, 0.1))
        except subprocess.TimeoutExpired:
            self.stop(p)
            raise RunError(f"{p.bench_name} did not finish within {timeout:.0f} s (killed); see {p.bench_log}")
        self.live.remove(p)
        return rc

    def kill(self, p):
        """SIGKILL, as a crash would end it."""
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.live.remove(p)

    def stop(self, p, grace=STOP_GRACE_S):
        """SIGTERM, then SIGKILL after `grace`; returns the exit code."""
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.live:
            self.live.remove(p)
        return p.returncode

    def stop_all(self):
        for p in list(self.live):
            self.stop(p, grace=2.0)


PROCS = Procs()


def on_signal(signum, _frame):
    """A signal handler that unwinds through the `finally` stopping every process."""
    raise SystemExit(128 + signum)


def tail(path, lines=20):
    """The last lines of a log, or nothing if it cannot be read."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def wait_for_addr(p, log, timeout=START_TIMEOUT_S):
    """The address a server started with --log-format json printed as
    `"addr":"127.0.0.1:PORT"`; RunError if it exits or prints none in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = ADDR_PATTERN.findall(tail(log, 200))
        if m:
            return m[-1]
        if p.poll() is not None:
            raise RunError(f"{p.bench_name} exited with {p.returncode} before listening:\n{tail(log)}")
        time.sleep(0.05)
    raise RunError(f"{p.bench_name} printed no address within {timeout:.0f} s:\n{tail(log)}")


def start_server(name, args, log, core=None, server="server"):
    """Starts the release `server` binary with --log-format json and `args`,
    logging into `log`, and waits for it to listen: (process, address)."""
    p = PROCS.start(name, [os.path.join(bin_dir(), server), "--log-format", "json", *args], log, core)
    return p, wait_for_addr(p, log)


def free_port():
    """A port nothing listens on now, for a process that must know its port
    before it binds it (a cluster node's public URL names it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seconds(text):
    """`90s`, `2m`, `500ms` (a space before the unit allowed) or a plain
    number of seconds, as a float."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|m)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 60s, 2m or 500ms")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]
    return float(m.group(1)) * scale


def millis(secs):
    """A duration as loadgen and floor read it (humantime takes no fractions)."""
    return f"{round(secs * 1000)}ms"
