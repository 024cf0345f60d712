# airshake_tools.linkemu.relay: the UDP relay that puts model.Link between devices and
# server B. Devices send to the relay's listen address; each device (told apart by its
# source address) gets its own Link and its own upstream socket, so B sees one peer per
# device; B's answers go back to the device that the upstream socket belongs to, through
# the same Link's downlink model. Datagrams larger than the profile's MTU cannot be sent
# on the radio: they are dropped and logged ("dropped": "exceeds mtu"). The first device
# draws its faults from --seed, later ones from Faults.fork("device<n>"), in order of
# first contact. Devices do not contend with each other: each has its own channel and
# duty-cycle budgets (B's radio or the gateway included).
#
# Events (--events FILE|-): one JSON line per radio frame, written when the model decides
# its fate: device, t (modelled start of transmission), submitted (when it was handed to
# the link), direction, bytes, airtime_s, duty_wait_s, arrive_s (null if lost),
# delivered, lost, dup, reordered, corrupt, at (the relay's clock when the model took the
# frame: non-decreasing across all devices), and where they apply band (EU868 sub-band),
# window (rx1/rx2), held_s (LoRaWAN downlink held for a window), wake_s (cellular RRC
# setup), dropped (why a datagram never went on the air). The last line is
# {"summary": {...}}, the counters also printed as one line on stderr at exit.
#
# Time. The relay's model time starts at 0 when it starts listening.
# - Real time (default): deliveries are scheduled with the event loop at their modelled
#   arrival; the relay sleeps the airtime, latency, duty-cycle and window waits.
# - Virtual time (--virtual): the relay does not sleep the modelled time. Its clock runs
#   at real speed between frames and JUMPS to each frame's modelled arrival when the frame
#   is forwarded, which happens as soon as every frame modelled to arrive earlier has been
#   forwarded and the frame has waited SETTLE seconds of real time (so a burst of
#   fragments sent together is still ordered by the model), and, for a frame that moves
#   the clock, B has answered every uplink forwarded to it (or ANSWER_CAP has passed, for
#   an uplink B does not answer). A SF12 exchange of minutes
#   thus completes in well under a second while the events and the summary report the
#   modelled seconds.
#   Preserved: the order of arrivals, loss, duplication, reordering within what is in
#   flight at once, corruption, and the modelled times (airtime, duty-cycle waits, class A
#   window choice), with the real processing time of the device and of B counted at real
#   speed. NOT preserved: the endpoints' own clocks. The device's and B's timers run in
#   real time, so a retransmission timer that would fire long before a SF12 answer in
#   reality does not fire in virtual time, and a timer shorter than the real processing
#   time fires spuriously. Use virtual time for ordering, loss and cost, with
#   retransmission timers longer than the real processing time (a few hundred ms);
#   test the timers themselves in real time.
from __future__ import annotations

import asyncio
import functools
import heapq
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from airshake_tools.linkemu.faults import Faults
from airshake_tools.linkemu.model import Delivery, Link
from airshake_tools.linkemu.profiles import Profile

SETTLE = 0.005          # real seconds a frame waits in virtual time (keeps bursts ordered)
ANSWER_CAP = 1.0        # real seconds the virtual clock waits for an answer that never comes
MAX_DATAGRAM = 65535


class RealClock:
    """Model time = seconds since start; deliveries wait for their modelled time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.t0 = loop.time()

    def now(self) -> float:
        return self.loop.time() - self.t0

    def schedule(self, at: float, fn: Callable[[], None]) -> None:
        self.loop.call_at(self.t0 + at, fn)


class VirtualClock:
    """Model time runs at real speed and jumps forward to each forwarded frame's arrival.
    After forwarding an uplink to B it does not jump again until B has answered on that
    peer (answered()), or ANSWER_CAP real seconds have passed for an uplink B does not
    answer: what B sends in answer is taken at (nearly) the uplink's arrival. With several
    devices, another device's later frame that is already due would otherwise move the
    clock past the first one's LoRaWAN receive windows, and B's answer would be held for
    that device's next uplink. Frames due at or before the clock's time never wait for
    this, and neither does anything for a device's answers (a device that has its own
    uplinks queued, or goes to sleep, would hold every other device for the cap; its
    answer is stamped when it comes, which matters to no receive window)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._anchor_v = 0.0
        self._anchor_r = loop.time()
        self._heap: list[tuple[float, int, float, Callable[[], None]]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        # (peer, direction of the answer) -> real time after which it is not waited for
        self._awaiting: dict[tuple[str, str], float] = {}

    def now(self) -> float:
        return self._anchor_v + (self.loop.time() - self._anchor_r)

    def _ready_at(self) -> float:
        """Real time at which the first frame in the heap may be forwarded."""
        at, _, settle, _ = self._heap[0]
        if at <= self.now() or not self._awaiting:
            return settle
        return max(settle, max(self._awaiting.values()))

    def schedule(self, at: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, self.loop.time() + SETTLE, fn))
        self._arm()

    def forwarded(self, peer: str, answer: str) -> None:
        """A frame went to an endpoint: hold the jumps until it answers on `peer` (in
        direction `answer`) or for ANSWER_CAP."""
        self._awaiting[(peer, answer)] = self.loop.time() + ANSWER_CAP

    def answered(self, peer: str, direction: str) -> None:
        if self._awaiting.pop((peer, direction), None) is not None and self._timer is not None:
            self._timer.cancel()            # a held jump may be due now
            self._timer = None
            self._arm()

    def _arm(self) -> None:
        if self._timer is None and self._heap:
            delay = max(0.0, self._ready_at() - self.loop.time())
            self._timer = self.loop.call_later(delay, self._pump)

    def _pump(self) -> None:
        self._timer = None
        real = self.loop.time()
        self._awaiting = {k: until for k, until in self._awaiting.items() if until > real}
        while self._heap and self._ready_at() <= real:
            at, _, _, fn = heapq.heappop(self._heap)
            if at > self.now():
                self._anchor_v, self._anchor_r = at, real
            fn()
        self._arm()


@dataclass
class Peer:
    addr: tuple[Any, ...]
    name: str
    link: Link
    transport: asyncio.DatagramTransport | None = None
    backlog: list[bytes] = field(default_factory=list)
    logged: int = 0
    failed: bool = False


class _DeviceSide(asyncio.DatagramProtocol):
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.relay.from_device(data, addr)

    def error_received(self, exc: Exception) -> None:
        self.relay.socket_errors += 1


class _ServerSide(asyncio.DatagramProtocol):
    def __init__(self, relay: Relay, peer: Peer) -> None:
        self.relay = relay
        self.peer = peer

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.relay.from_server(self.peer, data)

    def error_received(self, exc: Exception) -> None:   # e.g. B not listening (ICMP)
        self.relay.socket_errors += 1


def addr_text(addr: tuple[Any, ...]) -> str:
    host, port = addr[0], addr[1]
    return "[%s]:%d" % (host, port) if ":" in str(host) else "%s:%d" % (host, port)


class Relay:
    def __init__(self, profile: Profile, listen: tuple[str, int], upstream: tuple[str, int],
                 faults: Faults | None = None, subbands: int = 1, virtual: bool = False,
                 events: TextIO | None = None, log: TextIO | None = None) -> None:
        self.profile = profile
        self.listen = listen
        self.upstream = upstream
        self.faults = faults if faults is not None else Faults()
        self.subbands = subbands
        Link(profile, subbands=subbands)     # validates subbands before anything listens
        self.virtual = virtual
        self.events = events
        self.out = log if log is not None else sys.stderr
        self.peers: dict[tuple[Any, ...], Peer] = {}
        self.transport: asyncio.DatagramTransport | None = None
        self.clock: RealClock | VirtualClock | None = None
        self.counts = {"up": 0, "down": 0, "delivered": 0, "lost": 0, "dup": 0,
                       "reordered": 0, "corrupt": 0, "oversize": 0}
        self.socket_errors = 0
        self.last_event = 0.0
        self.bound: tuple[Any, ...] | None = None
        self._started = 0.0
        self.finished = False
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _DeviceSide(self), local_addr=self.listen)
        self.transport = transport
        self.bound = transport.get_extra_info("sockname")
        self.clock = VirtualClock(loop) if self.virtual else RealClock(loop)
        self._started = time.monotonic()
        print("linkemu: %s relay listening on %s, upstream %s, %s time"
              % (self.profile.name, addr_text(self.bound), addr_text(self.upstream),
                 "virtual" if self.virtual else "real"), file=self.out, flush=True)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.transport is not None:
            self.transport.close()
        for peer in self.peers.values():
            if peer.transport is not None:
                peer.transport.close()

    async def run(self, stop: asyncio.Event) -> dict[str, Any]:
        await self.start()
        try:
            await stop.wait()
        finally:
            self.close()
        summary = self.summary()
        self._event({"summary": summary})
        print("linkemu: " + self.summary_line(summary), file=self.out, flush=True)
        self.finished = True
        return summary

    # -- traffic --------------------------------------------------------------------------
    def from_device(self, data: bytes, addr: tuple[Any, ...]) -> None:
        peer = self.peers.get(addr)
        if peer is None:
            peer = self._new_peer(addr)
        self._transmit(peer, "up", data)

    def from_server(self, peer: Peer, data: bytes) -> None:
        self._transmit(peer, "down", data)

    def _new_peer(self, addr: tuple[Any, ...]) -> Peer:
        index = len(self.peers)
        faults = self.faults.fork("device%d" % index) if index else self.faults
        peer = Peer(addr, addr_text(addr), Link(self.profile, faults, self.subbands))
        self.peers[addr] = peer
        task = asyncio.get_running_loop().create_task(self._open_upstream(peer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return peer

    async def _open_upstream(self, peer: Peer) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _ServerSide(self, peer), remote_addr=self.upstream)
        except OSError as e:
            peer.failed = True
            print("linkemu: cannot open an upstream socket for %s: %s"
                  % (peer.name, e.strerror or e), file=self.out, flush=True)
            return
        peer.transport = transport
        for frame in peer.backlog:
            transport.sendto(frame)
        peer.backlog.clear()

    def _transmit(self, peer: Peer, direction: str, data: bytes) -> None:
        assert self.clock is not None
        if isinstance(self.clock, VirtualClock):
            self.clock.answered(peer.name, direction)
        now = self.clock.now()
        if len(data) > self.profile.mtu:
            self.counts["oversize"] += 1
            self._event({"t": round(now, 6), "at": round(now, 6), "device": peer.name,
                         "direction": direction, "bytes": len(data), "delivered": False,
                         "lost": False, "dropped": "exceeds mtu %d" % self.profile.mtu})
            return
        deliveries = peer.link.send(direction, data, now)
        for entry in peer.link.log[peer.logged:]:
            self._account(peer, entry)
        peer.logged = len(peer.link.log)
        for d in deliveries:
            self.clock.schedule(d.at, functools.partial(self._deliver, peer, d))

    def _deliver(self, peer: Peer, d: Delivery) -> None:
        self.last_event = max(self.last_event, d.at)
        if d.direction == "up" and isinstance(self.clock, VirtualClock):
            self.clock.forwarded(peer.name, "down")      # B's answer, for the device's window
        if d.direction == "up":
            if peer.transport is not None:
                peer.transport.sendto(d.frame)
            elif not peer.failed:
                peer.backlog.append(d.frame)
        elif self.transport is not None:
            self.transport.sendto(d.frame, peer.addr)

    # -- events and summary ---------------------------------------------------------------
    def _account(self, peer: Peer, entry: dict[str, Any]) -> None:
        if "dropped" not in entry:
            self.counts[entry["direction"]] += 1
            for key in ("delivered", "lost", "dup", "reordered", "corrupt"):
                self.counts[key] += bool(entry.get(key))
        self.last_event = max(self.last_event, entry["t"] + entry.get("airtime_s", 0.0))
        assert self.clock is not None
        # "at": the relay's clock when the model took the frame (one clock for all
        # devices, never going back; "t" may lie ahead of it by a duty-cycle wait)
        event: dict[str, Any] = {"device": peer.name, "at": round(self.clock.now(), 6)}
        for key, value in entry.items():
            event[key] = round(value, 6) if isinstance(value, float) else value
        self._event(event)

    def _event(self, event: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.write(json.dumps(event, separators=(",", ":")) + "\n")
            self.events.flush()

    def summary(self) -> dict[str, Any]:
        logs = [e for p in self.peers.values() for e in p.link.log if "dropped" not in e]
        return {
            "profile": self.profile.name, "virtual": self.virtual,
            "devices": len(self.peers), "frames_up": self.counts["up"],
            "frames_down": self.counts["down"], "delivered": self.counts["delivered"],
            "lost": self.counts["lost"], "duplicated": self.counts["dup"],
            "reordered": self.counts["reordered"], "corrupted": self.counts["corrupt"],
            "oversize_dropped": self.counts["oversize"],
            "held_downlinks": sum(p.link.pending_downlinks for p in self.peers.values()),
            "airtime_s": round(sum(e["airtime_s"] for e in logs), 6),
            "duty_wait_s": round(sum(e["duty_wait_s"] for e in logs), 6),
            "modelled_s": round(self.last_event, 6),
            "real_s": round(time.monotonic() - self._started, 6),
        }

    @staticmethod
    def summary_line(s: dict[str, Any]) -> str:
        return ("%s, %d device(s), %d frames up, %d down, %d lost, %d duplicated, "
                "%d reordered, %d corrupted, %d oversize dropped, %d downlinks held; "
                "airtime %.3f s, duty-cycle waits %.3f s; modelled %.3f s in %.3f s real "
                "(%s time)"
                % (s["profile"], s["devices"], s["frames_up"], s["frames_down"], s["lost"],
                   s["duplicated"], s["reordered"], s["corrupted"], s["oversize_dropped"],
                   s["held_downlinks"], s["airtime_s"], s["duty_wait_s"], s["modelled_s"],
                   s["real_s"], "virtual" if s["virtual"] else "real"))


def install_stop_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):   # not on this platform / thread
            pass
