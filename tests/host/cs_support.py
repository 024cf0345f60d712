# tests/host/cs_support.py: helpers for the CA and certificate-store tests: run the real
# `airshake` CLI as a subprocess, start `airshake cs serve` on a free loopback port and
# wait for /health, stop it with SIGTERM, and check the one-line error contract.
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AIRSHAKE = os.path.join(os.path.dirname(sys.executable), "airshake")
OPENSSL = "/usr/bin/openssl"
# the tokens the test CSs are started with (the CS is closed: docs/CS_API.md)
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
READER_TOKEN = "test-reader-token-0123456789abcdef"
ADMIN_HEADERS = {"Authorization": "Bearer " + ADMIN_TOKEN}
READER_HEADERS = {"Authorization": "Bearer " + READER_TOKEN}
TOKEN_ENVS = ("AIRSHAKE_ADMIN_TOKEN", "AIRSHAKE_READER_TOKEN", "AIRSHAKE_CS_TOKEN")
CS_ENV = {"AIRSHAKE_ADMIN_TOKEN": ADMIN_TOKEN, "AIRSHAKE_READER_TOKEN": READER_TOKEN}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    def __init__(self, tmp_path, ca_dir, env=None, **settings):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        settings = dict({"db": str(tmp_path / "cs.db"), "ca_dir": str(ca_dir),
                         "host": "127.0.0.1", "port": self.port, "instance": "test-cs",
                         "admin_token": ADMIN_TOKEN, "reader_token": READER_TOKEN},
                        **settings)
        settings = {k: v for k, v in settings.items() if v is not None}
        self.config = tmp_path / "cs.toml"
        self.config.write_text("[cs]\n" + "".join(
            "%s = %s\n" % (k, json.dumps(v)) for k, v in settings.items()))
        self.stderr_path = tmp_path / "cs.stderr"
        self._stderr = open(self.stderr_path, "w")
        env = dict({k: v for k, v in os.environ.items() if k not in TOKEN_ENVS}, **(env or {}))
        self.proc = subprocess.Popen([AIRSHAKE, "cs", "serve", "--config", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=self._stderr,
                                     cwd=ROOT, env=env)
        self._wait_healthy()

    def _wait_healthy(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("cs serve exited: " + self.stderr_path.read_text())
            try:
                r = httpx.get(self.url + "/health", timeout=1.0)
                if r.status_code == 200:
                    return
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
