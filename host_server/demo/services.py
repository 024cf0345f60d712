# host_server.demo.services: owns the infrastructure of a demo run, each started through
# its real command line: the CA (`airshake ca init`, `airshake ca issue-server`), the
# certificate store (`airshake cs serve`, SQLite), server B (`airshake server`) and the
# link emulator's relay (`python -m airshake_tools.linkemu`). Checks the ports first, waits
# for each to say it is ready, and turns a failure into one UserError line.
from __future__ import annotations

import errno
import json
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from host_server.demo.procs import Proc, Supervisor, run_quiet
from host_server.errors import UserError

HOST = "127.0.0.1"
READY_TIMEOUT = 20.0
SERVER_NAME = "b.demo.airshake"
_RELAY_READY = re.compile(r"relay listening on [^ ]*:(\d+),")


def airshake_cli(*args: str) -> list[str]:
    """The `airshake` command line, run with this Python (no PATH lookup)."""
    return [sys.executable, "-m", "host_server.cli", *args]


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def check_port(port: int, kind: int, flag: str) -> None:
    """A port given on the command line must be free now (0 means any free port)."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as e:
            proto = "TCP" if kind == socket.SOCK_STREAM else "UDP"
            if e.errno == errno.EADDRINUSE:
                raise UserError(f"{proto} port {port} ({flag}) is in use: stop the other "
                                f"process or pass {flag} 0 for any free port")
            raise UserError(f"cannot use {proto} port {port} ({flag}): {e.strerror}")


def make_pki(work: Path, suite: int) -> tuple[Path, Path]:
    """CA (Ed25519 for suite 0, P-256 for suite 2) and B's key and C_B for the suite.
    Returns (CA directory, B's key directory)."""
    ca_dir, key_dir = work / "ca", work / "b-keys"
    alg = "p256" if suite == 2 else "ed25519"
    for argv in (airshake_cli("ca", "init", "--dir", str(ca_dir), "--alg", alg,
                              "--name", "airshake demo CA"),
                 airshake_cli("ca", "issue-server", "--ca-dir", str(ca_dir), "--suite",
                              str(suite), "--name", SERVER_NAME, "--out", str(key_dir))):
        done = run_quiet(argv, cwd=work)
        if done.returncode != 0:
            raise UserError("`airshake %s` failed: %s" % (" ".join(argv[3:5]),
                                                          _last(done.stderr)))
    return ca_dir, key_dir


@dataclass
class Service:
    proc: Proc
    port: int
    what: str


class Readiness:
    """Set by the line callbacks when a service reports it is ready (or its port)."""

    def __init__(self) -> None:
        self.ports: dict[str, int] = {}
        self.event = threading.Event()

    def feed(self, name: str, stream: str, line: str) -> None:
        if name == "b" and stream == "stderr" and '"ready"' in line:
            try:
                self.ports["b"] = int(json.loads(line)["port"])
            except (ValueError, KeyError, TypeError):
                return
            self.event.set()
        elif name == "cs" and stream == "stderr" and '"event":"start"' in line:
            self.ports["cs"] = -1
            self.event.set()
        elif name == "relay" and stream == "stderr":
            m = _RELAY_READY.search(line)
            if m:
                self.ports["relay"] = int(m.group(1))
                self.event.set()


def _wait(ready: Readiness, name: str, proc: Proc, what: str, hint: str) -> int:
    deadline = time.monotonic() + READY_TIMEOUT
    while name not in ready.ports:
        if not proc.alive():
            time.sleep(0.1)           # let the reader take the last stderr line
            raise UserError(f"{what} did not start: {proc.last_error() or 'no output'}{hint}")
        if time.monotonic() > deadline:
            raise UserError(f"{what} did not report ready within {READY_TIMEOUT:.0f} s: "
                            f"see its log with --keep")
        ready.event.wait(0.05)
        ready.event.clear()
    return ready.ports[name]


CS_START_ATTEMPTS = 3     # --cs-port 0: a free port another program took before the CS bound it


def start_cs(sup: Supervisor, ready: Readiness, work: Path, ca_dir: Path, port: int) -> Service:
    for attempt in range(1 if port else CS_START_ATTEMPTS):
        chosen = port or free_port()
        proc = sup.start("cs", airshake_cli("cs", "serve", "--ca-dir", str(ca_dir), "--db",
                                            str(work / "cs.db"), "--host", HOST, "--port",
                                            str(chosen), "--instance", "demo-cs"), cwd=work)
        try:
            _wait(ready, "cs", proc, "the certificate store (airshake cs serve)",
                  "" if port == 0 else " (--cs-port)")
            break
        except UserError as e:
            if port or attempt + 1 == CS_START_ATTEMPTS or f"port {chosen} " not in str(e) \
                    or "is in use" not in str(e):
                raise
    _health(f"http://{HOST}:{chosen}/health", proc)
    return Service(proc, chosen, "certificate store")


def _health(url: str, proc: Proc) -> None:
    """The store logs `start` just before it listens: wait for its first answer."""
    import logging

    import httpx
    logging.getLogger("httpx").setLevel(logging.WARNING)     # no line per request
    deadline = time.monotonic() + READY_TIMEOUT
    while proc.alive() and time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise UserError(f"the certificate store does not answer at {url}: "
                    f"{proc.last_error() or 'no answer'}")


def start_b(sup: Supervisor, ready: Readiness, work: Path, ca_dir: Path, key_dir: Path,
            cs_port: int, port: int, mtu: int, class_a: bool = False,
            extra: list[str] | None = None) -> Service:
    argv = airshake_cli(
        "server", "--ca-cert", str(ca_dir / "ca.der"), "--key-dir", str(key_dir),
        "--cs-url", f"http://{HOST}:{cs_port}", "--host", HOST, "--port", str(port),
        # the CS made its reader token (B's credential) in its state directory, work/
        "--cs-token-file", str(work / "reader.token"),
        "--db", str(work / "b-records.db"), "--metrics-port", "0", "--reply", "ack",
        "--mtu", str(mtu), "--instance", "demo-b",
        # every device reaches B through the relay's one address, as through a gateway
        "--rate-per-source", "1000:2000")
    if class_a:
        # one downlink per uplink: resending every missing fragment per ack floods the
        # network's downlink queue, which then drops B's confirmation
        argv += ["--fragment-resend", "1"]
    argv += extra or []           # --via chirpstack|tts: the MQTT integration's flags
    proc = sup.start("b", argv, cwd=work)
    bound = _wait(ready, "b", proc, "server B (airshake server)",
                  "" if port == 0 else " (--b-port)")
    return Service(proc, bound, "server B")


def start_relay(sup: Supervisor, ready: Readiness, work: Path, profile: str, loss: float,
                seed: int, virtual: bool, port: int, upstream: int) -> Service:
    argv = [sys.executable, "-m", "airshake_tools.linkemu", "--profile", profile,
            "--listen", f"{HOST}:{port}", "--upstream", f"{HOST}:{upstream}",
            "--loss", repr(loss), "--seed", str(seed), "--events", "-"]
    if virtual:
        argv.append("--virtual")
    proc = sup.start("relay", argv, cwd=work)
    bound = _wait(ready, "relay", proc, "the link emulator (python -m airshake_tools.linkemu)",
                  "" if port == 0 else " (--relay-port)")
    return Service(proc, bound, "link emulator")


def _last(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
