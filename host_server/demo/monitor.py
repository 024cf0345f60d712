# host_server.demo.monitor: owns turning what the processes print into the demo's steps.
# It reads the relay's frame events (JSON lines: airtime, duty-cycle wait, loss), names
# each frame from the bytes the probe recorded (m1, m2 fragment 3/7, fragment ack, ...),
# reads B's and the CS's JSON logs (handshake outcome, cache, CS lookup) and the devices'
# `airshake: <step>` lines, prints one line per step through the display, and keeps
# everything the summary and the diagram need (Run, DeviceRun, Frame, Row).
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from airshake import codec, errors
from airshake_tools.linkemu import fragment_sizes
from host_server.demo.display import Display
from host_server.demo.probe import Arrival, Probe

KINDS = ("m1", "m2", "m3", "error", "record", "fragment", "ack", "?")
ERRORS = {1: "STALE_TIME", 2: "UNSUPPORTED_SUITE", 3: "UNKNOWN_ID", 4: "REVOKED",
          5: "TRY_LATER", 6: "UNSUPPORTED_VERSION", 7: "REJECTED"}
CACHE = {"cs": "fetched from the CS (cache miss)", "mem": "from B's cache (hit)",
         "stale": "stale cache entry (CS down)", "negative": "negative cache",
         "none": "no lookup"}


@dataclass
class Frame:
    device: int
    wake: int
    direction: str            # up | down
    size: int
    kind: str                 # the message kind (a fragment's message), "ack", "?"
    label: str                # e.g. "m2 3/7", "ack m2 2/7", "record #0"
    t: float                  # modelled start of transmission (relay clock)
    submitted: float
    airtime: float
    duty_wait: float
    arrive: float | None
    lost: bool
    dup: bool = False
    window: str | None = None
    held: float | None = None
    dropped: str | None = None
    wake_s: float = 0.0       # cellular: radio wake-up (RRC setup) before the frame
    real: float = 0.0         # time.monotonic() when the probe saw it leave its sender
    at: float = 0.0           # the relay's clock when the model took it (never goes back)


@dataclass
class Row:
    """One line of the sequence diagram."""
    device: int
    wake: int
    kind: str                 # frame | lookup | b | a
    text: str
    frame: Frame | None = None
    t: float | None = None    # modelled time, when known


@dataclass
class DeviceRun:
    index: int
    id_hex: str = ""
    wake: int = 0
    frames: list[Frame] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)     # first size of each message
    steps: list[str] = field(default_factory=list)          # the firmware's log lines
    c_b: str = ""                                           # value | ref (wake 1)
    cached_cb: int = 0
    confirmed: bool = False
    replied: bool = False
    noreply: bool = False
    failed: str = ""
    rejected: str = ""
    error: str = ""
    first_up_model: float | None = None     # first m1 handed to the link (modelled)
    m3_arrive_model: float | None = None    # first m3 delivered to B (modelled)
    first_up_real: float | None = None
    m3_at_b_real: float | None = None
    confirm_real: float | None = None
    lookup: dict[str, Any] = field(default_factory=dict)    # the CS's lookup line
    handshake: dict[str, Any] = field(default_factory=dict)  # B's handshake line
    cpu_ms: float | None = None
    finished: bool = False


class Run:
    """Everything seen during one demo run; feed() is called from one thread only."""

    def __init__(self, display: Display, probe: Probe | None, devices: int, mtu: int,
                 wake_from_log: bool = False) -> None:
        self.display = display
        # behind a gateway bridge a device keeps one flow across its wakes: its frames
        # belong to the wake its firmware last announced, not to a new sender address
        self.wake_from_log = wake_from_log
        self.probe = probe
        self.mtu = mtu
        self.devices = {i: DeviceRun(i) for i in range(1, devices + 1)}
        self.rows: list[Row] = []
        self.relay_summary: dict[str, Any] = {}
        self.origin: float | None = None      # modelled time of the first frame
        self.unnamed = 0
        self._tags: dict[tuple[int, str, int], str] = {}
        self._by_id: dict[str, int] = {}
        self.show_device = devices > 1

    # -- helpers ----------------------------------------------------------------------
    def device_of(self, data: bytes) -> int:
        """The device whose ID_A an m1 carries (1 when it is no m1 of a known device):
        the probe's name for a new flow from a gateway bridge."""
        if data and codec.message_type(data) == codec.TYPE_M1:
            for id_hex, index in list(self._by_id.items()):
                try:
                    if codec.decode_m1(data, len(id_hex) // 2).id_a.hex() == id_hex:
                        return index
                except errors.DecodeError:
                    continue
        return 1

    def register(self, index: int, id_hex: str) -> None:
        self.devices[index].id_hex = id_hex
        self._by_id[id_hex] = index

    def rel(self, t: float) -> float:
        return t - (self.origin or 0.0)

    def _who(self, index: int) -> str:
        return ("dev%d  " % index) if self.show_device else ""

    def _say(self, index: int, t: float | None, text: str) -> None:
        stamp = "%9.3f s" % self.rel(t) if t is not None else " " * 11
        self.display.line("  %s  %s%s" % (stamp, self._who(index), text))

    # -- input --------------------------------------------------------------------------
    def feed(self, name: str, stream: str, line: str) -> None:
        if name == "relay" and stream == "stdout":
            self._relay(line)
        elif name == "b" and stream == "stderr":
            self._b(line)
        elif name == "cs" and stream == "stderr":
            self._cs(line)
        elif name.startswith("dev") and stream == "stdout":
            self._device(int(name[3:]), line)

    def arrival(self, a: Arrival) -> None:
        """A datagram reached B (from the probe)."""
        if self.probe is None or not a.data or codec.message_type(a.data) != codec.TYPE_M3:
            return
        who = self.probe.who(a.peer)
        if who is not None:
            dev = self.devices[who[0]]
            if dev.m3_at_b_real is None:
                dev.m3_at_b_real = a.t

    # -- the relay ------------------------------------------------------------------------
    def _relay(self, line: str) -> None:
        try:
            e = json.loads(line)
        except ValueError:
            return
        if "summary" in e:
            self.relay_summary = e["summary"]
            return
        who = self.probe.who(e.get("device", "")) if self.probe else None
        index, wake = who if who else (1, 1)
        if self.wake_from_log and index in self.devices:
            wake = max(1, self.devices[index].wake)
        direction = e.get("direction", "up")
        data, seen = None, time.monotonic()
        if self.probe is not None:
            got = self.probe.take(e.get("device", ""), direction, int(e.get("bytes", 0)))
            if got is not None:
                data, seen = got.data, got.t      # when the frame left its sender
        kind, label = self._name(index, direction, data)
        f = Frame(index, wake, direction, int(e.get("bytes", 0)), kind, label,
                  float(e.get("t", 0.0)), float(e.get("submitted", e.get("t", 0.0))),
                  float(e.get("airtime_s", 0.0)), float(e.get("duty_wait_s", 0.0)),
                  e.get("arrive_s"), bool(e.get("lost")), bool(e.get("dup")),
                  e.get("window"), e.get("held_s"), e.get("dropped"),
                  float(e.get("wake_s") or 0.0), seen,
                  float(e.get("at", e.get("submitted", e.get("t", 0.0)))))
        if self.origin is None:
            self.origin = f.submitted
        dev = self.devices.setdefault(index, DeviceRun(index))
        dev.frames.append(f)
        if direction == "up" and dev.first_up_model is None and kind == "m1":
            dev.first_up_model = f.submitted
            dev.first_up_real = f.real
        if direction == "up" and kind == "m3" and f.arrive is not None \
                and dev.m3_arrive_model is None and not f.dropped:
            dev.m3_arrive_model = float(f.arrive)
        self.rows.append(Row(index, wake, "frame", label, f, f.t))
        # one clock for every line: when the link took the frame (its own wait and the
        # window it was held for are on the line)
        self._say(index, f.at, self._frame_text(f))

    def _name(self, index: int, direction: str, data: bytes | None) -> tuple[str, str]:
        if not data:
            self.unnamed += 1
            return "?", "frame"
        t = codec.message_type(data)
        if t == 5 and len(data) >= 5:                   # fragment
            tag, i, count = data[1], data[2], data[3]
            if i == 0:
                self._tags[(index, direction, tag)] = KINDS[codec.message_type(data[4:])]
            inner = self._tags.get((index, direction, tag), "message")
            return inner, "%s %d/%d" % (inner, i + 1, count)
        if t == 6 and len(data) >= 3:                   # fragment ack
            tag, count = data[1], data[2]
            have = sum(bin(b).count("1") for b in data[3:])
            other = "down" if direction == "up" else "up"
            inner = self._tags.get((index, other, tag), "message")
            return "ack", "ack %s %d/%d" % (inner, have, count)
        if t == 3:
            try:
                name = ERRORS.get(codec.decode_error(data).code, "?")
            except errors.DecodeError:
                name = "?"
            return "error", "error %s" % name
        if t == 4 and len(data) >= 9:
            return "record", "record #%d" % int.from_bytes(data[5:9], "big")
        return KINDS[t], KINDS[t]

    def _frame_text(self, f: Frame) -> str:
        arrow = "A -> B " if f.direction == "up" else "B -> A "
        head = "%s %-14s %4d B" % (arrow, f.label, f.size)
        if f.dropped:
            return head + "  not sent: %s" % f.dropped
        text = head + "  ToA %7.1f ms  wait %6.1f s" % (f.airtime * 1000, f.duty_wait)
        extra = []
        if f.window:
            extra.append("%s" % f.window.upper())
        if f.held:
            extra.append("held %.1f s" % f.held)
        if f.wake_s:
            extra.append("radio wake-up %.1f s" % f.wake_s)
        if f.lost:
            extra.append("LOST")
        if f.dup:
            extra.append("duplicated")
        return text + ("  " + ", ".join(extra) if extra else "")

    # -- B and the CS ------------------------------------------------------------------------
    def _b(self, line: str) -> None:
        try:
            e = json.loads(line)
        except ValueError:
            return
        if e.get("event") != "handshake":
            return
        index = self._by_id.get(str(e.get("id", "")))
        if index is None:
            return
        dev = self.devices[index]
        if not dev.handshake or (e.get("outcome") == "ok"
                                 and dev.handshake.get("outcome") != "ok"):
            dev.handshake = e           # the first contact's (wake 3's is a later one)
        cs_ms = e.get("cs_ms")
        text = "B       handshake %s (%s): C_A %s%s; m1 to m3 took %.0f ms at B" % (
            e.get("outcome"), e.get("reason"), CACHE.get(str(e.get("cache")), e.get("cache")),
            ", lookup %.1f ms" % cs_ms if isinstance(cs_ms, (int, float)) else "",
            float(e.get("ms") or 0.0))
        self.rows.append(Row(index, dev.wake, "b", "handshake %s" % e.get("outcome")))
        self._say(index, None, text)

    def _cs(self, line: str) -> None:
        try:
            e = json.loads(line)
        except ValueError:
            return
        if e.get("event") != "lookup":
            return
        index = self._by_id.get(str(e.get("id", "")))
        if index is None:
            return
        dev = self.devices[index]
        dev.lookup = e
        # B asks for a lone ID with GET /certs/ID, for IDs that piled up with one
        # POST /certs/batch (its log says via=batch)
        request = ("POST /certs/batch [%s ...]" if e.get("via") == "batch"
                   else "GET /certs/%s") % e.get("id")
        text = "B -> CS %s  %s in %.1f ms (C_A stays on the fast network)" % (
            request, e.get("result"), float(e.get("ms") or 0.0))
        self.rows.append(Row(index, dev.wake, "lookup", "%s, %.1f ms" % (
            e.get("result"), float(e.get("ms") or 0.0))))
        self._say(index, None, text)

    # -- the devices --------------------------------------------------------------------------
    def _device(self, index: int, line: str) -> None:
        if not line.startswith("airshake: "):
            return
        dev = self.devices[index]
        body = line[len("airshake: "):]
        dev.steps.append(body)
        step, _, rest = body.partition(" ")
        words = dict(w.split("=", 1) for w in rest.split() if "=" in w)
        size = _size(rest)
        d = self.display
        text = None
        if step == "wake":
            dev.wake = int(words.get("n", dev.wake + 1))
            text = "A       wake %d" % dev.wake
        elif step == "handshake":
            c_b = words.get("c_b", "")
            dev.c_b = dev.c_b or c_b            # the first contact's
            text = "A       no session: handshake as ID %s, C_B %s" % (
                words.get("id", "?"),
                "by value (first contact)" if c_b == "value" else "by reference")
        elif step == "send" and size is not None:
            kind = rest.split()[0]
            dev.sizes.setdefault(kind, size)
            if kind == "m1":
                d.advance(index, "m1 sent")
            elif kind == "m3":
                d.advance(index, "m3 sent")
        elif step == "recv" and size is not None:
            kind = rest.split()[0]
            # B's records are "first record" (its confirmation of m3); "record" is A's
            # own wake-2 uplink, never a repeat of B's (a resent m3 gets it again)
            key = "first record" if kind == "record" else kind
            fresh = key not in dev.sizes
            dev.sizes.setdefault(key, size)
            if size > self.mtu and fresh:
                frames = len(fragment_sizes(size, self.mtu))
                text = "A       %s reassembled: %d B from %d frames of at most %d B" % (
                    kind, size, frames, self.mtu)
        elif step == "cached" and size is not None:
            dev.cached_cb = size
        elif step == "complete":
            d.advance(index, "m2 verified")
            text = "A       m2 verified: B authenticated, keys agreed (session %s); the " \
                   "reading rides in m3" % words.get("sid", "?")
        elif step == "confirmed":
            dev.confirmed = True
            dev.confirm_real = time.monotonic()
            try:
                dev.cpu_ms = float(words.get("cpu_ms", ""))
            except ValueError:
                pass
            d.advance(index, "confirmed")
            text = "A       B's first record confirms m3: session saved (device CPU %s ms)" \
                % words.get("cpu_ms", "?")
        elif step == "record":
            if size is not None:
                dev.sizes.setdefault("record", size)
            d.advance(index, "record sent")
            text = "A       saved session: the reading goes out as ONE record (%s B), no " \
                   "handshake" % (size if size is not None else "?")
        elif step == "reply":
            if dev.wake >= 2:
                dev.replied = True
                d.advance(index, "reply")
            text = "A       reply from B: %s B of application data" % (
                size if size is not None else "?")
        elif step == "noreply":
            dev.noreply = True
            text = "A       no reply from B (a frame was lost; the session stays, the next " \
                   "wake sends again)"
        elif step == "rejected":
            dev.rejected = rest
            text = "A       rejected by B: %s" % rest
        elif step == "failed":
            if dev.wake <= 1:
                dev.failed = rest
            text = "A       handshake failed: %s" % rest
        elif step in ("error", "stop"):
            dev.error = rest
            text = "A       %s: %s" % (step, rest)
        elif step == "drop":
            text = "A       dropped %s" % rest
        if text is not None:
            self.rows.append(Row(index, dev.wake, "a", text[8:]))
            self._say(index, None, text)


def _size(rest: str) -> int | None:
    for w in rest.split():
        if w.endswith("B") and w[:-1].isdigit():
            return int(w[:-1])
    return None
