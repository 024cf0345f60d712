"""tests/host/modem_emulator.py: an AT-command modem on a pseudo-terminal, for testing the
device's AT drivers (firmware/lib/radios/lorawan_at.py, cellular_at.py) on the MicroPython
unix binary without hardware. It opens a pty pair itself, answers in one of four AT
dialects and moves the device's data to and from a UDP upstream (server B, or a test's
echo socket):

  rak3172   RAKwireless RUI3 AT command set (RUI3 AT Command Manual: AT+NJM, AT+BAND,
            AT+DEVEUI/APPEUI/APPKEY, AT+JOIN=1:0:8:1 -> +EVT:JOINED, AT+NJS=?,
            AT+SEND=<port>:<hex> -> OK ... +EVT:RX_1:<rssi>:<snr>:UNICAST:<port>:<hex>,
            +EVT:TX_DONE; AT_PARAM_ERROR, AT_BUSY_ERROR, AT_NO_NETWORK_JOINED). rui3=3:
            the older events, +EVT:RX_1, RSSI -60, SNR 8 / +EVT:UNICAST / +EVT:<port>:<hex>,
            and no +EVT:TX_DONE)
  lora-e5   Seeed LoRa-E5 AT firmware (LoRa-E5 AT Command Specification: AT+MODE=LWOTAA,
            AT+DR=EU868|<dr>, AT+ID=DevEui,"..", AT+KEY=APPKEY,"..", AT+PORT, AT+JOIN ->
            +JOIN: Start .. Network joined .. Done, AT+MSGHEX="<hex>" -> +MSGHEX: Start,
            [FPENDING], [PORT: 10; RX: "<hex>"], RXWIN1, RSSI .., Done; Length error <n>)
  sim7000   SIMCom SIM7000 classic TCP/IP stack (AT+CIPSHUT, AT+CIPRXGET=1, AT+CSTT,
            AT+CIICR, AT+CIFSR, AT+CIPSTART="UDP", AT+CIPSEND=<n> + "> " + raw bytes ->
            SEND OK, +CIPRXGET: 1, AT+CIPRXGET=3,<n> -> hex, at most 730 bytes a read)
  sim7080   SIMCom SIM7080 application stack (AT+CNCFG, AT+CNACT=0,1, AT+CAOPEN=0,0,"UDP",
            AT+CASEND=0,<n> + "> " + raw bytes, +CAURC: "recv",0, AT+CARECV=0,<n> ->
            +CARECV: <len>,<raw bytes>)

LoRaWAN (network server and gateway folded in): an uplink on the application port is
relayed to the upstream; B's datagrams queue as downlinks, and one is delivered only in a
receive window after an uplink (RX1, else RX2), as in class A. The regional payload limit
of the DR holds both ways: an oversize AT+SEND/AT+MSGHEX gets the module's error, and a
datagram of B too long for the DR is dropped (a network server would refuse to schedule
it). Uplinks on other ports, or empty ones, only open the windows (polls).
Cellular: a plain UDP relay, one datagram per read.

Timing (Timing) and faults (Faults: error replies, muted commands, failing joins, a key
the network does not know, no SIM, a slow attach) are hooks for the tests.

Not modelled: radio loss, duty-cycle limits, ADR and MAC commands, confirmed uplinks,
FCnt, class B/C, multiple sockets, TCP, SMS, power saving, baud rates.

Run standalone:  python tests/host/modem_emulator.py --dialect rak3172 --upstream 127.0.0.1:PORT
It prints the pty path, then serves until interrupted.
"""
from __future__ import annotations

import argparse
import binascii
import os
import select
import signal
import socket
import sys
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

DIALECTS = ("rak3172", "lora-e5", "sim7000", "sim7080")
LIMITS = {"EU868": (51, 51, 51, 115, 222, 222, 222, 222), "US915": (11, 53, 125, 242, 242)}
RAK_BANDS = {4: "EU868", 5: "US915"}
HEX_READ_MAX = 730            # SIM7000 AT+CIPRXGET=3: bytes a read in hex mode
SEND_MAX = 1460               # SIMCom per-send limit


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


class ModemEmulator:
    def __init__(self, dialect: str, upstream: tuple[str, int] | None = None, *,
                 app_port: int = 10, timing: Timing | None = None,
                 faults: Faults | None = None, rui3: int = 4) -> None:
        if dialect not in DIALECTS:
            raise ValueError("dialect %r not in %s" % (dialect, DIALECTS))
        self.dialect = dialect
        self.upstream = upstream
        self.app_port = app_port
        self.timing = timing or Timing()
        self.faults = faults or Faults()
        self.rui3 = rui3              # rak3172 event style: 4 (one line) or 3 (older)
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
        kinds: dict[str, Callable[[ModemEmulator], Dialect]] = {
            "rak3172": Rak3172, "lora-e5": LoraE5, "sim7000": Sim7000, "sim7080": Sim7080}
        self.handler = kinds[dialect](self)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "ModemEmulator":
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

    def __enter__(self) -> "ModemEmulator":
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


# -- LoRaWAN ------------------------------------------------------------------------------

class LoRaWANNetwork:
    """What both LoRaWAN modems share: keys, join, DR, and class A windows."""

    def __init__(self, emu: ModemEmulator) -> None:
        self.emu = emu
        self.region = "EU868"
        self.dr = 0
        self.deveui = self.appeui = self.appkey = ""
        self.joined = False
        self.joins = 0
        self.busy = False
        self.port = emu.app_port
        self.queue: deque[bytes] = deque()

    def limit(self) -> int:
        return LIMITS[self.region][self.dr]

    def set_dr(self, dr: int) -> bool:
        if not 0 <= dr < len(LIMITS[self.region]):
            return False
        self.dr = dr
        return True

    def join(self, done: Callable[[bool], None]) -> None:
        self.joins += 1
        self.busy = True
        f = self.emu.faults

        def finish() -> None:
            self.busy = False
            ok = (self.joins > f.join_failures and len(self.appkey) == 32
                  and len(self.deveui) == 16 and len(self.appeui) == 16
                  and (f.appkey is None or f.appkey.upper() == self.appkey.upper()))
            self.joined = ok
            done(ok)
        self.emu.later(self.emu.timing.join, finish)

    def uplink(self, port: int, payload: bytes,
               done: Callable[[bytes | None, bool, int], None]) -> None:
        """Class A: relay, then RX1 and RX2; done(downlink or None, fpending, window)."""
        self.busy = True
        if port == self.port and payload:
            self.emu.relay(payload)
        else:
            self.emu.polls += 1
        t = self.emu.timing

        def window(n: int) -> None:
            down = self._next()
            if down is None and n == 1:
                self.emu.later(t.rx2, lambda: window(2))
                return
            self.busy = False
            done(down, bool(self.queue), n)
        self.emu.later(t.airtime + t.rx1, lambda: window(1))

    def _next(self) -> bytes | None:
        while self.queue:
            d = self.queue.popleft()
            if len(d) > self.limit():
                self.emu.dropped.append(d)
                continue
            self.emu.downlinks.append(d)
            return d
        return None

    def datagram(self, data: bytes) -> None:
        self.queue.append(data)


def _hex(value: str, digits: int | None = None) -> bytes | None:
    value = value.strip().strip('"').replace(" ", "").replace(":", "")
    if digits is not None and len(value) != digits:
        return None
    try:
        return binascii.unhexlify(value)
    except (binascii.Error, ValueError):
        return None


class Rak3172(LoRaWANNetwork):
    def command(self, line: str) -> None:
        emu = self.emu
        name, eq, arg = line.partition("=")
        name = name.upper()
        get = arg == "?"
        if name == "AT":
            return emu.reply("OK")
        if name == "AT+NWM":
            return emu.reply("AT+NWM=1", "OK") if get else \
                emu.reply("OK" if arg == "1" else "AT_PARAM_ERROR")
        if name in ("AT+NJM", "AT+ADR", "AT+CFM"):
            return emu.reply("%s=1" % name, "OK") if get else \
                emu.reply("OK" if arg in ("0", "1") else "AT_PARAM_ERROR")
        if name == "AT+CLASS":
            return emu.reply("AT+CLASS=A", "OK") if get else \
                emu.reply("OK" if arg.upper() in ("A", "B", "C") else "AT_PARAM_ERROR")
        if name == "AT+BAND":
            if get:
                band = {v: k for k, v in RAK_BANDS.items()}[self.region]
                return emu.reply("AT+BAND=%d" % band, "OK")
            if arg.isdigit() and int(arg) in RAK_BANDS:
                self.region = RAK_BANDS[int(arg)]
                return emu.reply("OK")
            return emu.reply("AT_PARAM_ERROR")
        if name in ("AT+DEVEUI", "AT+APPEUI", "AT+APPKEY"):
            attr, digits = {"AT+DEVEUI": ("deveui", 16), "AT+APPEUI": ("appeui", 16),
                            "AT+APPKEY": ("appkey", 32)}[name]
            if get:
                return emu.reply("%s=%s" % (name, getattr(self, attr)), "OK")
            if _hex(arg, digits) is None:
                return emu.reply("AT_PARAM_ERROR")
            setattr(self, attr, arg.upper())
            return emu.reply("OK")
        if name == "AT+DR":
            if get:
                return emu.reply("AT+DR=%d" % self.dr, "OK")
            return emu.reply("OK" if arg.isdigit() and self.set_dr(int(arg)) else "AT_PARAM_ERROR")
        if name == "AT+NJS":
            return emu.reply("AT+NJS=%d" % self.joined, "OK")
        if name == "AT+JOIN":
            if self.busy:
                return emu.reply("AT_BUSY_ERROR")
            params = arg.split(":") if eq else ["1"]
            if params[0] not in ("0", "1") or (len(params) > 2 and not 7 <= int(params[2]) <= 255):
                return emu.reply("AT_PARAM_ERROR")
            if params[0] == "0":
                return emu.reply("OK")
            emu.reply("OK")
            return self.join(lambda ok: emu.reply(
                "+EVT:JOINED" if ok else "+EVT:JOIN_FAILED_RX_TIMEOUT"))
        if name == "AT+SEND":
            if not self.joined:
                return emu.reply("AT_NO_NETWORK_JOINED")
            if self.busy:
                return emu.reply("AT_BUSY_ERROR")
            port, _, data = arg.partition(":")
            payload = _hex(data)
            if (not port.isdigit() or not 1 <= int(port) <= 223 or payload is None
                    or not 1 <= len(payload) <= 250 or len(payload) > self.limit()):
                return emu.reply("AT_PARAM_ERROR")
            emu.reply("OK")

            def done(down: bytes | None, pending: bool, window: int) -> None:
                if down is not None and emu.rui3 >= 4:
                    emu.reply("+EVT:RX_%d:-60:8:UNICAST:%d:%s"
                              % (window, self.port, down.hex().upper()))
                elif down is not None:
                    emu.reply("+EVT:RX_%d, RSSI -60, SNR 8" % window, "+EVT:UNICAST",
                              "+EVT:%d:%s" % (self.port, down.hex().upper()))
                if emu.rui3 >= 4:
                    emu.reply("+EVT:TX_DONE")
            return self.uplink(int(port), payload, done)
        return emu.reply("AT_COMMAND_NOT_FOUND")


class LoraE5(LoRaWANNetwork):
    def __init__(self, emu: ModemEmulator) -> None:
        super().__init__(emu)
        self.mode = "LWABP"

    def command(self, line: str) -> None:
        emu = self.emu
        name, eq, arg = line.partition("=")
        name = name.upper()
        tag = "+" + name[3:] if name.startswith("AT+") else "+AT"
        if name == "AT":
            return emu.reply("+AT: OK")
        if name == "AT+MODE":
            if eq and arg.upper() not in ("LWOTAA", "LWABP", "TEST"):
                return emu.reply("+MODE: ERROR(-1)")
            if eq:
                self.mode = arg.upper()
            return emu.reply("+MODE: %s" % self.mode)
        if name == "AT+DR":
            if not eq:
                return emu.reply("+DR: DR%d" % self.dr, "+DR: %s DR%d" % (self.region, self.dr))
            if arg.upper() in LIMITS:
                self.region = arg.upper()
                return emu.reply("+DR: %s" % self.region)
            value = arg.upper().removeprefix("DR")
            if value.isdigit() and self.set_dr(int(value)):
                return emu.reply("+DR: DR%d" % self.dr)
            return emu.reply("+DR: ERROR(-1)")
        if name == "AT+ID":
            kind, _, value = arg.partition(",")
            attr = {"DEVEUI": "deveui", "APPEUI": "appeui"}.get(kind.strip().upper())
            raw = _hex(value, 16)
            if attr is None or raw is None:
                return emu.reply("+ID: ERROR(-1)")
            setattr(self, attr, raw.hex().upper())
            return emu.reply("+ID: %s, %s" % (kind.strip(), ":".join(
                "%02X" % b for b in raw)))
        if name == "AT+KEY":
            kind, _, value = arg.partition(",")
            if kind.strip().upper() != "APPKEY" or _hex(value, 32) is None:
                return emu.reply("+KEY: ERROR(-1)")
            self.appkey = value.strip().strip('"').upper()
            return emu.reply("+KEY: APPKEY %s" % self.appkey)
        if name == "AT+CLASS":
            return emu.reply("+CLASS: A" if arg.upper() == "A" else "+CLASS: ERROR(-1)")
        if name == "AT+ADR":
            return emu.reply("+ADR: %s" % arg.upper() if arg.upper() in ("ON", "OFF")
                             else "+ADR: ERROR(-1)")
        if name == "AT+PORT":
            if arg.isdigit() and 1 <= int(arg) <= 223:
                self.port = int(arg)
                return emu.reply("+PORT: %d" % self.port)
            return emu.reply("+PORT: ERROR(-1)")
        if name == "AT+JOIN":
            if self.mode != "LWOTAA":
                return emu.reply("+JOIN: Not in OTAA mode")
            if self.joined:
                return emu.reply("+JOIN: Joined already")
            if self.busy:
                return emu.reply("+JOIN: LoRaWAN modem is busy")
            emu.reply("+JOIN: Start", "+JOIN: NORMAL")
            return self.join(lambda ok: emu.reply(
                *(("+JOIN: Network joined", "+JOIN: NetID 000013 DevAddr 26:0B:4A:7C",
                   "+JOIN: Done") if ok else ("+JOIN: Join failed", "+JOIN: Done"))))
        if name == "AT+MSGHEX":
            if not self.joined:
                return emu.reply("+MSGHEX: Please join network first")
            if self.busy:
                return emu.reply("+MSGHEX: LoRaWAN modem is busy")
            payload = _hex(arg) if eq else b""
            if payload is None:
                return emu.reply("+MSGHEX: ERROR(-1)")
            if len(payload) > self.limit():
                return emu.reply("+MSGHEX: Length error %d" % self.limit())
            emu.reply("+MSGHEX: Start")

            def done(down: bytes | None, pending: bool, window: int) -> None:
                lines = []
                if pending:
                    lines.append("+MSGHEX: FPENDING")
                if down is not None:
                    lines.append('+MSGHEX: PORT: %d; RX: "%s"' % (self.port, down.hex().upper()))
                    lines.append("+MSGHEX: RXWIN%d, RSSI -60, SNR 8.0" % window)
                emu.reply(*lines, "+MSGHEX: Done")
            return self.uplink(self.port, payload, done)
        return emu.reply("%s: ERROR(-10)" % tag)


# -- cellular -----------------------------------------------------------------------------

def _quoted(args: str) -> list[str]:
    return [a.strip().strip('"') for a in args.split(",")]


class SimCom:
    """What both SIMCom stacks share: echo, SIM, attach, the UDP relay."""

    def __init__(self, emu: ModemEmulator) -> None:
        self.emu = emu
        self.attach_asked = 0
        self.bearer = False
        self.connected = False
        self.current = b""
        self.queue: deque[bytes] = deque()

    def common(self, name: str, arg: str) -> bool:
        emu = self.emu
        if name == "AT":
            emu.reply("OK")
        elif name == "ATE0":
            emu.echo = False
            emu.reply("OK")
        elif name == "ATE1":
            emu.echo = True
            emu.reply("OK")
        elif name == "AT+CMEE":
            emu.reply("OK")
        elif name == "AT+CPIN?":
            if emu.faults.sim_ready:
                emu.reply("+CPIN: READY", "OK")
            else:
                emu.reply("+CME ERROR: SIM not inserted")
        elif name == "AT+CGATT?":
            self.attach_asked += 1
            attached = emu.faults.sim_ready and self.attach_asked > emu.timing.attach_polls
            emu.reply("+CGATT: %d" % attached, "OK")
        else:
            return False
        return True

    def open(self, host: str, port: str) -> bool:
        if not port.isdigit():
            return False
        self.emu.open_socket((host, int(port)))
        self.connected = True
        return True

    def send(self, n: str, done: str) -> None:
        emu = self.emu
        if not self.connected or not n.isdigit() or not 1 <= int(n) <= SEND_MAX:
            return emu.reply("ERROR")

        def sent(data: bytes) -> None:
            emu.relay(data)
            emu.reply(done)
        emu.expect_raw(int(n), sent)

    def datagram(self, data: bytes) -> None:
        if not self.connected:
            return
        was_empty = not self.current and not self.queue
        self.queue.append(data)
        self.emu.downlinks.append(data)
        if was_empty:
            self.emu.reply(self.urc)

    def take(self, n: int) -> tuple[bytes, int]:
        """Up to n bytes of the current datagram (never across two), and what is left of it."""
        if not self.current and self.queue:
            self.current = self.queue.popleft()
        data, self.current = self.current[:n], self.current[n:]
        return data, len(self.current)

    urc = ""


class Sim7000(SimCom):
    urc = "+CIPRXGET: 1"

    def command(self, line: str) -> None:
        emu = self.emu
        name, eq, arg = line.partition("=")
        name = name.upper()
        if self.common(name, arg):
            return
        if name == "AT+CIPSHUT":
            self.bearer = self.connected = False
            return emu.reply("SHUT OK")
        if name in ("AT+CIPMUX", "AT+CIPRXGET") and arg in ("0", "1") and not self.connected:
            return emu.reply("OK")
        if name == "AT+CSTT":
            return emu.reply("OK" if _quoted(arg)[0] else "ERROR")
        if name == "AT+CIICR":
            def up() -> None:
                self.bearer = True
                emu.reply("OK")
            return emu.later(emu.timing.bearer, up)
        if name == "AT+CIFSR":
            return emu.reply("10.64.12.7" if self.bearer else "ERROR")
        if name == "AT+CIPSTART":
            args = _quoted(arg)
            if not self.bearer or len(args) != 3 or args[0] != "UDP":
                return emu.reply("ERROR")
            if self.connected:
                return emu.reply("ALREADY CONNECT")
            if not self.open(args[1], args[2]):
                return emu.reply("ERROR")
            emu.reply("OK")
            return emu.later(emu.timing.connect, lambda: emu.reply("CONNECT OK"))
        if name == "AT+CIPSEND":
            return self.send(arg, "SEND OK")
        if name == "AT+CIPRXGET" and arg.startswith("3,"):
            n = arg[2:]
            if not self.connected or not n.isdigit() or not 1 <= int(n) <= HEX_READ_MAX:
                return emu.reply("ERROR")
            data, left = self.take(int(n))
            if not data:
                return emu.reply("+CIPRXGET: 3,0,0", "OK")
            return emu.reply("+CIPRXGET: 3,%d,%d" % (len(data), left), data.hex().upper(), "OK")
        if name == "AT+CIPCLOSE":
            if not self.connected:
                return emu.reply("ERROR")
            self.connected = False
            return emu.reply("CLOSE OK")
        return emu.reply("ERROR")


class Sim7080(SimCom):
    urc = '+CAURC: "recv",0'

    def command(self, line: str) -> None:
        emu = self.emu
        name, eq, arg = line.partition("=")
        name = name.upper()
        if self.common(name, arg):
            return
        if name == "AT+CNCFG":
            args = _quoted(arg)
            return emu.reply("OK" if len(args) >= 3 and args[0] == "0" else "ERROR")
        if name == "AT+CNACT?":
            return emu.reply('+CNACT: 0,%d,"%s"' % (self.bearer, "10.64.12.8" if self.bearer
                                                    else "0.0.0.0"),
                             '+CNACT: 1,0,"0.0.0.0"', "OK")
        if name == "AT+CNACT":
            if arg == "0,1":
                if self.bearer:
                    return emu.reply("ERROR")
                emu.reply("OK")

                def up() -> None:
                    self.bearer = True
                    emu.reply("+APP PDP: 0,ACTIVE")
                return emu.later(emu.timing.bearer, up)
            if arg == "0,0":
                self.bearer = self.connected = False
                return emu.reply("OK", "+APP PDP: 0,DEACTIVE")
            return emu.reply("ERROR")
        if name == "AT+CACLOSE":
            if arg != "0" or not self.connected:
                return emu.reply("ERROR")
            self.connected = False
            return emu.reply("OK")
        if name == "AT+CAOPEN":
            args = _quoted(arg)
            if not self.bearer or len(args) != 5 or args[:3] != ["0", "0", "UDP"]:
                return emu.reply("ERROR")
            if self.connected:
                return emu.reply("+CAOPEN: 0,4", "OK")
            if not self.open(args[3], args[4]):
                return emu.reply("ERROR")
            return emu.reply("+CAOPEN: 0,0", "OK")
        if name == "AT+CASEND":
            cid, _, n = arg.partition(",")
            return self.send(n if cid == "0" else "", "OK")
        if name == "AT+CARECV":
            cid, _, n = arg.partition(",")
            if cid != "0" or not self.connected or not n.isdigit() or not 1 <= int(n) <= SEND_MAX:
                return emu.reply("ERROR")
            data, _ = self.take(int(n))
            if not data:
                return emu.reply("+CARECV: 0", "OK")
            emu.reply_raw(b"\r\n+CARECV: %d," % len(data) + data)
            return emu.reply("OK")
        return emu.reply("ERROR")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="AT modem emulator on a pty")
    ap.add_argument("--dialect", choices=DIALECTS, required=True)
    ap.add_argument("--upstream", help="host:port of B (LoRaWAN network server target; "
                    "for cellular it overrides the address in AT+CIPSTART/AT+CAOPEN)")
    ap.add_argument("--port", type=int, default=10, help="LoRaWAN application FPort")
    ap.add_argument("--real-timing", action="store_true",
                    help="air-like delays (join 6 s, RX1 1 s, ...)")
    args = ap.parse_args(argv)
    upstream = None
    if args.upstream:
        host, _, port = args.upstream.rpartition(":")
        upstream = (host or "127.0.0.1", int(port))
    emu = ModemEmulator(args.dialect, upstream, app_port=args.port,
                        timing=Timing.real() if args.real_timing else None)
    emu.start()
    print(emu.path, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
