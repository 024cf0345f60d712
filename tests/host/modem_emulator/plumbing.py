"""tests/host/modem_emulator/plumbing.py: what every emulated modem shares: the pty pair,
reading AT command lines (and raw payloads after "> "), answering with the dialect's
timing, the muted and failing commands of Faults, the UDP socket to the upstream and
timers. A dialect (one module each) gets the Emulator and implements command(line) and
datagram(data)."""
from __future__ import annotations

import os
import select
import socket
import threading
import time
import tty
from dataclasses import dataclass, field
from typing import Callable, Protocol

class Dialect(Protocol):
    def command(self, line: str) -> None: ...
    def datagram(self, data: bytes) -> None: ...


@dataclass
class Timing:
    """Seconds. The defaults are fast for tests; Timing.real() is closer to the air."""
    command: float = 0.0        # before every answer
    join: float = 0.2           # join-request to join-accept
    airtime: float = 0.03       # an uplink on the air
    rx1: float = 0.15           # end of uplink to RX1 (RECEIVE_DELAY1, 1 s on air)
    rx2: float = 0.15           # RX1 to RX2 (1 s on air)
    bearer: float = 0.05        # AT+CIICR, AT+CNACT=0,1
    connect: float = 0.02       # AT+CIPSTART to CONNECT OK
    attach_polls: int = 1       # AT+CGATT? answers 0 this many times first

    @classmethod
    def real(cls) -> "Timing":
        return cls(command=0.01, join=6.0, airtime=1.5, rx1=1.0, rx2=1.0, bearer=2.0,
                   connect=0.5, attach_polls=3)


@dataclass
class Faults:
    errors: dict[str, str] = field(default_factory=dict)  # command prefix -> reply instead
    mute: tuple[str, ...] = ()          # command prefixes never answered
    join_failures: int = 0              # the first joins get no join-accept
    appkey: str | None = None           # the network's AppKey: other keys never join
    sim_ready: bool = True


class Emulator:
    def __init__(self, dialect: str, handler: Callable[["Emulator"], Dialect],
                 upstream: tuple[str, int] | None = None, *,
                 app_port: int = 10, timing: Timing | None = None,
                 faults: Faults | None = None, rui3: int = 4, network=None) -> None:
        self.dialect = dialect
        self.upstream = upstream
        self.app_port = app_port
        self.timing = timing or Timing()
        self.faults = faults or Faults()
        self.rui3 = rui3              # rak3172 event style: 4 (one line) or 3 (older)
        self.network = network        # LoRaWAN: a network server object (lorawan.py)
        self.transcript: list[tuple[str, str]] = []   # ("<" from the device | ">", line)
        self.uplinks: list[bytes] = []                # relayed to the upstream
        self.polls = 0                                # LoRaWAN uplinks not relayed
        self.downlinks: list[bytes] = []              # delivered to the device
        self.dropped: list[bytes] = []                # B's datagrams too long for the DR
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.echo = dialect.startswith("sim")
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._inbuf = b""
        self._raw_need = 0
        self._raw_done: Callable[[bytes], None] | None = None
        self._swallow_lf = False
        self._timers: list[threading.Timer] = []
        self._threads: list[threading.Thread] = []
        self.sock: socket.socket | None = None
        self.dest: tuple[str, int] | None = None
        self.handler = handler(self)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "Emulator":
        t = threading.Thread(target=self._serial_loop, daemon=True)
        t.start()
        self._threads.append(t)
        if self.upstream is not None and self.dialect in ("rak3172", "lora-e5"):
            self.open_socket(self.upstream)
        return self

    def stop(self) -> None:
        self._stop.set()
        for timer in self._timers:
            timer.cancel()
        for t in self._threads:
            t.join(timeout=2)
        if self.sock is not None:
            self.sock.close()
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serial side -------------------------------------------------------------------
    def _serial_loop(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            with self._lock:
                self._feed(data)

    def _feed(self, data: bytes) -> None:
        self._inbuf += data
        while self._inbuf:
            if self._swallow_lf and self._inbuf[:1] == b"\n":
                self._inbuf = self._inbuf[1:]
            self._swallow_lf = False
            if self._raw_need:
                if len(self._inbuf) < self._raw_need:
                    return
                raw, self._inbuf = self._inbuf[:self._raw_need], self._inbuf[self._raw_need:]
                self._raw_need = 0
                self.transcript.append(("<", "<%d bytes>" % len(raw)))
                done, self._raw_done = self._raw_done, None
                if done is not None:
                    done(raw)
                continue
            ends = [i for i in (self._inbuf.find(b"\r"), self._inbuf.find(b"\n")) if i >= 0]
            if not ends:
                return
            i = min(ends)
            term = self._inbuf[i:i + 1]
            raw, self._inbuf = self._inbuf[:i], self._inbuf[i + 1:]
            self._swallow_lf = term == b"\r"      # CR LF ends one command line
            line = raw.strip().decode("ascii", "replace")
            if not line:
                continue
            self.transcript.append(("<", line))
            if self.echo:
                self._write(line.encode() + b"\r\n")
            self._dispatch(line)

    def _dispatch(self, line: str) -> None:
        for prefix in self.faults.mute:
            if line.upper().startswith(prefix.upper()):
                return
        for prefix, reply in self.faults.errors.items():
            if line.upper().startswith(prefix.upper()):
                self.reply(reply)
                return
        self.handler.command(line)

    def _write(self, data: bytes) -> None:
        try:
            os.write(self.master, data)
        except OSError:
            pass

    def reply(self, *lines: str) -> None:
        """Answer lines now (after Timing.command)."""
        if self.timing.command:
            time.sleep(self.timing.command)
        for line in lines:
            self.transcript.append((">", line))
            self._write(("\r\n%s\r\n" % line).encode())

    def reply_raw(self, data: bytes) -> None:
        self.transcript.append((">", "<%d bytes>" % len(data)))
        self._write(data)

    def expect_raw(self, n: int, done: Callable[[bytes], None]) -> None:
        """The next n bytes from the device are data (after a "> " prompt)."""
        self._raw_need = n
        self._raw_done = done
        self._write(b"\r\n> ")
        self.transcript.append((">", "> "))

    def later(self, delay: float, fn: Callable[[], None]) -> None:
        def run() -> None:
            with self._lock:
                if not self._stop.is_set():
                    fn()
        timer = threading.Timer(delay, run)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    # -- network side ------------------------------------------------------------------
    def open_socket(self, dest: tuple[str, int]) -> None:
        if self.sock is None:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.settimeout(0.05)
            t = threading.Thread(target=self._udp_loop, daemon=True)
            t.start()
            self._threads.append(t)
        self.dest = self.upstream or dest

    def _udp_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self.sock.recvfrom(65536)  # type: ignore[union-attr]
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.handler.datagram(data)

    def relay(self, data: bytes) -> None:
        self.uplinks.append(data)
        if self.sock is not None and self.dest is not None:
            self.sock.sendto(data, self.dest)

    def inject(self, data: bytes) -> None:
        """A datagram from B, as if it came from the upstream."""
        with self._lock:
            self.handler.datagram(data)
