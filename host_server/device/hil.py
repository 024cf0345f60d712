# host_server.device.hil: hardware in the loop (issue 12 item 8). One board, a real one on
# a serial port or `airshake device sim`'s pty, taken through what a deployment gives it,
# against servers of its own: this checkout's `airshake` commands make a CA and B's
# certificate and run the certificate store and server B in a work directory; then the
# board is flashed (--image, a real board), deployed to, and provisioned (its key made on
# the board and enrolled), and the end-to-end checks of the unix tests run against it,
# read from its console as `airshake device monitor` reads it:
#   handshake   the first wake: m1 .. confirmed, B's reply to the reading m3 carried;
#   deep sleep  each later wake comes after a reset (the board's deep sleep: RAM lost)
#               and goes on from flash: the wake counter grows, no new handshake;
#   records     those wakes send one record each on the saved session, each acknowledged;
#               B holds one ok handshake for the ID and each reading once (its database);
#   revocation  the ID revoked in the CS: B drops the session at once, no reading is
#               acknowledged after it, and the board's next handshake is refused
#               (rejected code=3) within a few wakes.
# The board is provisioned locked (the default): after a reset it runs its firmware and
# the wakes come by themselves, each ending in deep sleep (on the sim: the unix port's
# process ends, RAM lost, and the sim boots it again); HIL only resets it once and follows.
# Without a board (no --port, or a port that does not exist) it says so in one line and
# exits 0. Usage: python -m host_server.device.hil --port PORT --board BOARD [...]
# make test runs it against the sim (tests/host/test_hil.py): the same steps, commands
# and console reading. Only a real board confirms: flashing with esptool, the RTS/DTR
# reset, the ESP32's deep sleep and its wake (RTC, USB serial re-enumerating on native-USB
# boards), the radio path to B (Wi-Fi, or LoRa through a gateway: pass --server-host B's
# address as the board reaches it), the console lock against a real UART, the firmware's
# speed and memory on the chip, and the frozen firmware image.
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import serial

from host_server.errors import UserError
from host_server.device import console, ports, sim

SERVER_NAME = "b.hil.airshake.test"
PREFIX = "airshake: "
WAKE_END = ("sleep", "stop")
REPL_MARKS = (b">>> ", b"raw REPL")


class CheckFailed(Exception):
    """One end-to-end check did not hold: the message says which and what was seen."""


@dataclass
class Wake:
    """The "airshake:" lines of one wake, from its "wake" line to its sleep (or stop)."""
    lines: list[str] = field(default_factory=list)

    def steps(self, name: str) -> list[str]:
        return [ln for ln in self.lines if ln.split(" ", 1)[0] == name]

    def has(self, name: str) -> bool:
        return bool(self.steps(name))

    def number(self) -> int:
        m = re.search(r"\bn=(\d+)", self.steps("wake")[0]) if self.has("wake") else None
        return int(m.group(1)) if m else -1

    def text(self) -> str:
        return " | ".join(self.lines)


def _steps(raw: str) -> str | None:
    i = raw.find(PREFIX)
    return raw[i + len(PREFIX):].strip() if i >= 0 else None


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def airshake_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "host_server.cli", *args]


# -- the servers ---------------------------------------------------------------------------

class Servers:
    """A CA, the certificate store and server B, run by the `airshake` commands in work."""

    def __init__(self, work: Path, host: str, show: Callable[[str], None],
                 b_port: int | None = None) -> None:
        self.work = work
        self.host = host
        self.show = show
        self.cs_url = "http://127.0.0.1:%d" % free_port()
        self.b_port = b_port or free_port(socket.SOCK_DGRAM)
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def run(self, *args: str, timeout: float = 120) -> str:
        out = subprocess.run(airshake_argv(*args), cwd=self.work, capture_output=True,
                             text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            last = (out.stderr.strip() or out.stdout.strip()).splitlines()[-1:] or ["?"]
            raise UserError(f"`airshake {' '.join(args[:2])}` failed: {last[0]}")
        return out.stdout

    def start(self, name: str, *args: str) -> tuple[subprocess.Popen, Path]:
        log = self.work / (name + ".log")
        with open(log, "w") as f:
            proc = subprocess.Popen(airshake_argv(*args), cwd=self.work, stdout=f,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.procs.append((proc, log))
        return proc, log

    def _wait(self, proc: subprocess.Popen, log: Path, ready: Callable[[], bool],
              what: str, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise UserError(f"{what} exited: see {log}")
            if time.monotonic() > end:
                raise UserError(f"{what} not ready after {timeout:.0f} s: see {log}")
            time.sleep(0.1)

    def __enter__(self) -> "Servers":
        try:
            self.run("ca", "init", "--dir", "ca", "--alg", "ed25519", "--name", "airshake hil CA")
            self.run("ca", "issue-server", "--ca-dir", "ca", "--suite", "0", "--name",
                     SERVER_NAME, "--out", "keys")
            port = self.cs_url.rsplit(":", 1)[1]
            proc, log = self.start("cs", "cs", "serve", "--db", "cs.db", "--ca-dir", "ca",
                                   "--port", port)

            def cs_up() -> bool:
                try:
                    return httpx.get(self.cs_url + "/health", timeout=1).status_code == 200
                except httpx.TransportError:
                    return False
            self._wait(proc, log, cs_up, "the certificate store")
            proc, log = self.start(
                "server", "server", "--ca-cert", "ca/ca.crt", "--key-dir", "keys", "--cs-url",
                self.cs_url, "--cs-token-file", "reader.token", "--host", self.host, "--port",
                str(self.b_port), "--metrics-port", str(free_port()))
            self._wait(proc, log, lambda: '"ready"' in log.read_text(), "server B")
        except BaseException:
            self.stop()
            raise
        self.show(f"hil: CS at {self.cs_url}, B at {self.host}:{self.b_port} (work {self.work})")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for proc, _log in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _log in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self.procs.clear()

    def b_events(self, id_hex: str, event: str) -> list[dict]:
        """B's JSON log events of one kind for the ID, in order."""
        out = []
        for line in (self.work / "server.log").read_text().splitlines():
            if not line.startswith("{"):
                continue
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("event") == event and e.get("id") == id_hex:
                out.append(e)
        return out

    def b_outcomes(self, id_hex: str) -> list[str]:
        """B's handshake outcomes for the ID, in order."""
        return [str(e.get("outcome")) for e in self.b_events(id_hex, "handshake")]

    def b_records(self, id_hex: str) -> list[str]:
        """The kinds of what B stored for the ID (m3, record), in order."""
        with sqlite3.connect(self.work / "airshake-b.db") as db:
            return [k for (k,) in db.execute(
                "SELECT kind FROM records WHERE id_a = ? ORDER BY rowid", (id_hex,))]


# -- the board -----------------------------------------------------------------------------

class Board:
    """The board on port: its console, resets, and its wakes."""

    def __init__(self, port: str, wake_timeout: float) -> None:
        self.port = port
        self.on_sim = sim.is_sim(port)
        self.wake_timeout = wake_timeout
        self.conn: Any = None            # the console (serial.Serial) while read here
        self.buf = b""
        self.pending: list[str] = []
        self.transcript: list[str] = []

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def reset(self) -> None:
        """A hard reset: RTS/DTR on a board, a restart of the unix port on the sim."""
        if self.on_sim:
            if not sim.reset(self.port):
                raise UserError(f"the sim serving {self.port} went away")
            return
        if self.conn is None:
            self.conn = console.open_port(self.port)
        console.hard_reset(self.conn)

    def _read(self, deadline: float) -> bytes:
        """What the console has (up to 256 bytes). A board whose USB serial goes away in
        deep sleep (the chip's own USB) is opened again when its port comes back."""
        while True:
            try:
                if self.conn is None:
                    self.conn = console.open_port(self.port)
                return self.conn.read(256)
            except (serial.SerialException, OSError, UserError) as e:
                if not ports.missing(self.port):
                    if isinstance(e, UserError):
                        raise
                    raise UserError(f"reading the console at {self.port} failed: {e}")
                self.close()
                if time.monotonic() > deadline:
                    return b""
                time.sleep(0.2)

    def _line(self, deadline: float) -> str | None:
        """The console's next line, or None at the deadline (a REPL prompt counts)."""
        while b"\n" not in self.buf:
            if any(m in self.buf for m in REPL_MARKS):
                line, self.buf = self.buf.decode("utf-8", "replace"), b""
                return line
            if time.monotonic() > deadline:
                return None
            self.buf += self._read(deadline)
        raw, self.buf = self.buf.split(b"\n", 1)
        line = raw.decode("utf-8", "replace").rstrip("\r")
        self.transcript.append(line)
        return line

    def start(self) -> None:
        """Reset the board and wait for its firmware's first line (a locked board, and
        any ESP32, runs main.py after a reset)."""
        self.close()
        self.conn = console.open_port(self.port)
        self.buf = b""
        self.reset()
        deadline = time.monotonic() + self.wake_timeout
        while True:
            line = self._line(deadline)
            if line is None:
                raise CheckFailed(f"no firmware output and no REPL on {self.port} within "
                                  f"{self.wake_timeout:.0f} s of a reset")
            if any(m.decode() in line for m in REPL_MARKS):
                raise CheckFailed(f"the board on {self.port} sits at its REPL after a reset: "
                                  "its firmware did not start (provisioned with --keep-repl, "
                                  "or its unlock pin held?)")
            step = _steps(line)
            if step is not None:          # the firmware runs (its wake may be under way)
                self.pending = [] if step.startswith(("boot", "lock")) else [step]
                return

    def next_wake(self) -> Wake:
        """The next wake's lines, the board waking by itself."""
        wake = Wake(self.pending)
        self.pending = []
        deadline = time.monotonic() + self.wake_timeout
        while True:
            line = self._line(deadline)
            if line is None:
                raise CheckFailed(f"no end of wake within {self.wake_timeout:.0f} s: "
                                  f"{wake.text() or 'nothing'}")
            step = _steps(line)
            if step is None:
                continue
            if step.startswith("wake"):
                wake.lines = [step]
                continue
            if not wake.lines and step.split(" ", 1)[0] in ("boot", "lock"):
                continue                # before a wake: the boot's own lines
            # a wake whose "wake" line was lost (output before the console was read is
            # dropped, by a UART as by the sim's pty) is kept from its first line seen
            wake.lines.append(step)
            if step.split(" ", 1)[0] in WAKE_END:
                return wake


# -- the checks ----------------------------------------------------------------------------

def _expect(cond: bool, what: str, wake: Wake) -> None:
    if not cond:
        raise CheckFailed(f"{what}: {wake.text()}")


def check_handshake(wake: Wake) -> str:
    _expect(wake.has("handshake") and wake.has("complete") and wake.has("confirmed"),
            "the first wake did not complete and confirm a handshake", wake)
    _expect(wake.has("reply") and not wake.has("rejected") and not wake.has("failed"),
            "B's reply to the reading in m3 did not come", wake)
    return wake.steps("handshake")[0].split("id=")[1].split()[0]


def check_record(wake: Wake, prev: Wake) -> None:
    """wake: the one after prev, which must have ended in deep sleep; wake must have sent
    one record on the saved session and had B's answer. A wake's first lines can be lost
    (what a board prints before its console is read is dropped, by a UART as by the sim's
    pty): the wake counter is compared only when both "wake" lines came, and B's database
    is the record's proof (check_b)."""
    _expect(any(s.startswith("sleep deep") for s in prev.steps("sleep")),
            "the wake before did not end in deep sleep", prev)
    if wake.number() > 0 and prev.number() > 0:
        _expect(wake.number() == prev.number() + 1,
                "the wake after a deep sleep did not count on from flash (n=%d after n=%d)"
                % (wake.number(), prev.number()), wake)
    _expect(not wake.has("handshake"), "a wake after deep sleep started a new handshake "
            "(the session did not survive the reset)", wake)
    _expect(len(wake.steps("reply")) == 1 and not wake.has("noreply"),
            "the record was not answered by B", wake)


def check_b(srv: "Servers", id_hex: str, records: int) -> list[str]:
    """B's view: one ok handshake for the ID, and m3 plus `records` records stored once
    each (waited for a moment: B stores as it answers)."""
    want = ["m3"] + ["record"] * records
    end = time.monotonic() + 5
    while True:
        outcomes, kinds = srv.b_outcomes(id_hex), srv.b_records(id_hex)
        if outcomes == ["ok"] and kinds == want:
            return kinds
        if time.monotonic() > end:
            raise CheckFailed(f"B's view: handshakes {outcomes}, stored {kinds} "
                              f"(expected one ok handshake and {want})")
        time.sleep(0.2)


def check_revoked(wakes: list[Wake]) -> None:
    for w in wakes:
        _expect(not w.has("reply") and not w.has("complete"),
                "a reading was acknowledged after the revocation", w)
    _expect(any("code=3" in r for w in wakes for r in w.steps("rejected")),
            "the handshake after the revocation was not refused (rejected code=3)",
            wakes[-1])


# -- the run -------------------------------------------------------------------------------

@dataclass
class Options:
    port: str | None
    board: str
    image: str | None = None
    server_host: str = "127.0.0.1"
    wifi_ssid: str | None = None
    interval: int = 2
    records: int = 2
    wake_timeout: float = 120.0
    revoke_wakes: int = 4
    work: str | None = None
    b_port: int | None = None
    skip_mip: bool = False


def _device(srv: Servers, *args: str, timeout: float = 600) -> str:
    return srv.run("device", *args, timeout=timeout)


def run(opts: Options, show: Callable[[str], None] = print) -> int:
    if not opts.port:
        show("hil: no board given (PORT=/dev/ttyUSB0 BOARD=... or --port): nothing to run")
        return 0
    if ports.missing(opts.port):
        show(f"hil: no board at {opts.port}: nothing to run")
        return 0
    work = Path(opts.work or tempfile.mkdtemp(prefix="airshake-hil-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    board = Board(opts.port, opts.wake_timeout)
    try:
        with Servers(work, opts.server_host, show, opts.b_port) as srv:
            if opts.image:
                show(f"hil: flashing {opts.image}")
                _device(srv, "flash", "--board", opts.board, "--image", opts.image, "--port",
                        opts.port)
            show(f"hil: deploying board {opts.board}")
            try:
                _device(srv, "deploy", "--board", opts.board, "--port", opts.port,
                        *(["--skip-mip"] if opts.skip_mip else []))
            except UserError as e:
                raise UserError(f"{e} (a board locked by an earlier run gives no REPL: flash "
                                "it again with --image, or hold its unlock pin at reset, "
                                "firmware/README.md)")
            show("hil: provisioning (key made on the board, enrolled in the CS)")
            prov = ["provision", "--port", opts.port, "--ca-cert", "ca/ca.crt", "--cs-url",
                    srv.cs_url, "--state-dir", ".", "--server",
                    f"{opts.server_host}:{srv.b_port}", "--server-name", SERVER_NAME,
                    "--interval", str(opts.interval)]
            if opts.wifi_ssid:
                prov += ["--wifi-ssid", opts.wifi_ssid]
            _device(srv, *prov)
            board.start()
            show("hil: the board runs its firmware after a reset: following its console")
            first = board.next_wake()
            id_hex = check_handshake(first)
            show(f"hil: PASS handshake: id {id_hex}, confirmed, the reading in m3 answered")
            kinds = check_b(srv, id_hex, 0)
            prev = first
            for seq in range(opts.records):
                wake = board.next_wake()
                check_record(wake, prev)
                kinds = check_b(srv, id_hex, seq + 1)
                prev = wake
            show(f"hil: PASS deep-sleep wake: {opts.records} wakes after a reset, each on "
                 "the session from flash (last wake n=%d)" % prev.number())
            show(f"hil: PASS records: {opts.records} acknowledged; B stored m3 + "
                 f"{opts.records} records once each")
            srv.run("cs", "revoke", id_hex, "--reason", "keyCompromise", "--state-dir", ".",
                    "--cs-url", srv.cs_url)
            after: list[Wake] = []
            while len(after) < opts.revoke_wakes:
                after.append(board.next_wake())
                if any("code=3" in r for r in after[-1].steps("rejected")):
                    break
            check_revoked(after)
            if srv.b_records(id_hex) != kinds:
                raise CheckFailed("B stored something for the ID after its revocation")
            if not any(e.get("sessions", 0) >= 1
                       for e in srv.b_events(id_hex, "revoked_dropped")):
                raise CheckFailed("B did not drop the revoked ID's session (no "
                                  "revoked_dropped event in its log)")
            show(f"hil: PASS revocation: B dropped the session at once, no reading "
                 f"acknowledged after it, the handshake refused (rejected code=3) on wake "
                 f"{len(after)} after it")
    except CheckFailed as e:
        keep = work / "console.log"
        keep.write_text("\n".join(board.transcript) + "\n")
        show(f"hil: FAILED: {e} (console in {keep}, server logs in {work})")
        return 1
    finally:
        board.close()
    show(f"hil: all checks passed on {opts.port} ({opts.board}) in "
         f"{time.monotonic() - started:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m host_server.device.hil",
        description="Hardware in the loop: flash (--image) or deploy to the board on --port, "
                    "provision it against a CA, certificate store and server B started "
                    "here, and check a handshake, records, deep-sleep wakes and revocation "
                    "on its console. Without a board it says so and exits 0.")
    ap.add_argument("--port", help="the board's serial port, or the pty of `airshake device "
                                   "sim`")
    ap.add_argument("--board", default="unix", help="a board of boards/ (default: unix)")
    ap.add_argument("--image", help="flash this MicroPython image first (a real board)")
    ap.add_argument("--server-host", default="127.0.0.1", metavar="HOST",
                    help="B's address as the board reaches it; B listens there (default "
                         "127.0.0.1: the sim, or a board behind a relay on this host)")
    ap.add_argument("--wifi-ssid", help="Wi-Fi for a udp-radio board (password from "
                                        "$AIRSHAKE_WIFI_PASSWORD, as provision takes it)")
    ap.add_argument("--b-port", type=int, metavar="PORT",
                    help="B's UDP port (default: a free one); fix it for a gateway path "
                         "(a LoRa board reaches B through `airshake gateway`)")
    ap.add_argument("--skip-mip", action="store_true",
                    help="deploy without micropython-lib's packages (a firmware that has "
                         "them frozen, or no network)")
    ap.add_argument("--interval", type=int, default=2, help="seconds between wakes")
    ap.add_argument("--records", type=int, default=2, help="record wakes to check")
    ap.add_argument("--wake-timeout", type=float, default=120.0, metavar="S",
                    help="longest a wake may take (default: %(default)s)")
    ap.add_argument("--work", help="directory for the CA, CS and B (default: a new temp dir)")
    a = ap.parse_args(argv)
    opts = Options(a.port, a.board, a.image, a.server_host, a.wifi_ssid, a.interval,
                   a.records, a.wake_timeout, work=a.work, b_port=a.b_port,
                   skip_mip=a.skip_mip)
    try:
        return run(opts, lambda line: print(line, flush=True))
    except UserError as e:
        print(f"hil: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
