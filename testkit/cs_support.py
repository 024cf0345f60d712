# testkit/cs_support.py: helpers for the CA and certificate-store tests: run the real
# `airshake` CLI as a subprocess, start `airshake cs serve` on a free loopback port and
# wait for /health, stop it with SIGTERM, and check the one-line error contract. Owns
# free_port(), the one way the tests pick a port for a server they start.
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AIRSHAKE = os.path.join(os.path.dirname(sys.executable), "airshake")
OPENSSL = "/usr/bin/openssl"
# the tokens the test CSs are started with (the CS is closed: docs/CS_API.md)
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
READER_TOKEN = "test-reader-token-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": "Bearer " + ADMIN_TOKEN}
READER_HEADERS = {"Authorization": "Bearer " + READER_TOKEN}
TOKEN_ENVS = ("AIRSHAKE_ADMIN_TOKEN", "AIRSHAKE_READER_TOKEN", "AIRSHAKE_CS_TOKEN")
CS_ENV = {"AIRSHAKE_ADMIN_TOKEN": ADMIN_TOKEN, "AIRSHAKE_READER_TOKEN": READER_TOKEN}


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _port_cycle():
    """This process's ports: a slice of those below the kernel's ephemeral range, one
    slice per xdist worker, walked round from a random start."""
    low, high = 10000, _ephemeral_low()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    count = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1), index + 1)
    size = (high - low) // count
    first = low + index * size
    start = random.randrange(size)
    return itertools.cycle([first + (start + i) % size for i in range(size)])


_PORTS = None


def _bindable(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port():
    """A loopback port (TCP and UDP) for a server a test is about to start. Not one the
    kernel picked for port 0: those come from the ephemeral range, where the other xdist
    worker's bind(0)s and outgoing connections land too, and either could take it before
    the server binds it. Ports here come from below that range, each worker from its own
    slice, so only a foreign program can race for one (CSProcess retries on that)."""
    global _PORTS
    if _PORTS is None:
        _PORTS = _port_cycle()
    for port in _PORTS:
        if _bindable(port):
            return port
    raise AssertionError("unreachable")      # the cycle never ends


def run(*args, env=None, timeout=30):
    """Run `airshake ARGS`; returns the CompletedProcess (text)."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in (*TOKEN_ENVS, "AIRSHAKE_CS_URL")}
    full_env.update(env or {})
    return subprocess.run([AIRSHAKE, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=full_env)


def assert_one_line_error(proc, *needles):
    """Non-zero exit, exactly one line on stderr (no traceback) naming needles."""
    assert proc.returncode != 0, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("airshake: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def openssl(*args, cwd=None):
    out = subprocess.run([OPENSSL, *map(str, args)], capture_output=True, text=True,
                         cwd=cwd, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


class CSProcess:
    """`airshake cs serve --config FILE` as a subprocess on a free loopback port, with
    ADMIN_TOKEN and READER_TOKEN in its file unless given (None: not set, so the CS
    makes its own in its state directory)."""

    START_ATTEMPTS = 5    # a port another program took between free_port() and the bind

    def __init__(self, tmp_path, ca_dir, env=None, **settings):
        settings = dict({"db": str(tmp_path / "cs.db"), "ca_dir": str(ca_dir),
                         "host": "127.0.0.1", "instance": "test-cs",
                         "admin_token": ADMIN_TOKEN, "reader_token": READER_TOKEN},
                        **settings)
        settings = {k: v for k, v in settings.items() if v is not None}
        self.config = tmp_path / "cs.toml"
        self.stderr_path = tmp_path / "cs.stderr"
        env = dict({k: v for k, v in os.environ.items() if k not in TOKEN_ENVS}, **(env or {}))
        for attempt in range(self.START_ATTEMPTS):
            self.port = free_port()
            self.url = "http://127.0.0.1:%d" % self.port
            self.config.write_text("[cs]\n" + "".join(
                "%s = %s\n" % (k, json.dumps(v))
                for k, v in dict(settings, port=self.port).items()))
            self._stderr = open(self.stderr_path, "w")
            self.proc = subprocess.Popen([AIRSHAKE, "cs", "serve", "--config",
                                          str(self.config)], stdout=subprocess.DEVNULL,
                                         stderr=self._stderr, cwd=ROOT, env=env)
            if self._wait_healthy(retry_if_taken=attempt + 1 < self.START_ATTEMPTS):
                return
            self._stderr.close()

    def _wait_healthy(self, timeout=15.0, retry_if_taken=False):
        """True once /health answers; False when the port was taken (and retry_if_taken)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.stderr_path.read_text()
                if retry_if_taken and "port %d on 127.0.0.1 is in use" % self.port in err:
                    return False
                raise AssertionError("cs serve exited: " + err)
            try:
                r = httpx.get(self.url + "/health", timeout=1.0)
                if r.status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise AssertionError("cs serve did not become healthy: " + self.stderr_path.read_text())

    def stop(self, timeout=10.0):
        """SIGTERM, wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()
        return self.proc.returncode

    def log_lines(self):
        """The service's stderr, each line parsed as JSON (fails on a non-JSON line)."""
        return [json.loads(line) for line in self.stderr_path.read_text().splitlines()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
