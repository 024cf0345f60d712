# airshake_tools.linkemu.model: the sans-I/O link model. Link turns "this frame is handed
# to the radio at time t" into "it arrives at time t' (or not, or twice)", applying the
# profile's time on air, half-duplex radio, duty cycles, class A receive windows,
# cellular latency and wake-up, and the seeded faults; it keeps a log of every frame.
# cost() runs a whole exchange of message sizes through a fault-free Link.
#
# Time is a float in seconds on the caller's clock (any origin). The model never reads a
# clock and never sleeps: tests call it in-process, relay.py drives it from sockets.
#
# Rules:
# - send() takes ONE radio frame of at most profile.mtu application bytes; anything
#   larger is the caller's error (airshake's fragment layer, PROTOCOL.md §3.6, cuts
#   messages into frames before they reach the radio).
# - Half-duplex: one frame at a time on the air of a link. Each transmitter (the device
#   "up"; B's radio, the gateway or the base station "down") sends its frames in the
#   order given, each after its previous one; a frame then takes the first gap on the
#   channel that holds it, so B's radio can answer while the device sits out a
#   duty-cycle wait (the channel is busy only while something is on the air).
# - Duty cycle (LoRa, LoRaWAN): each transmitter has its own per-sub-band budget
#   (lorawan.DutyCycle) under the run's policy (dutycycle.POLICIES: per-frame off-time,
#   ETSI's hourly 1 %, LoRaMac-node's time credits; the profile's unless Link is given
#   one); a frame waits for the first of the allowed sub-bands whose budget holds its
#   airtime (subbands=1, 2 or 3, lorawan.UPLINK_SUBBANDS). duty_wait is that part of
#   the wait.
# - LoRaWAN class A: after an uplink that the network received (not lost) the device
#   listens in RX1 (1 s after the uplink ends, same sub-band and data rate) and RX2
#   (2 s, 869.525 MHz, DR0); it cannot transmit again before RX2 has opened (nor while
#   a downlink is on the air in RX1). A downlink
#   that B hands over goes out in the first window it can make (reaching the gateway,
#   after LORAWAN_BACKHAUL, no later than the window opens; the gateway's own duty cycle
#   permitting). One downlink per uplink. A downlink that misses both windows, or comes
#   when no window is open, is HELD by the network (at most HOLD_LIMIT frames, oldest
#   dropped first) and goes out in RX1/RX2 of the device's next received uplink:
#   send("up") then returns that downlink's Delivery too. A class A device that expects
#   more downlinks must therefore send uplinks (cost() sends empty "pull" uplinks).
# - Cellular: an idle radio (no frame for idle_after seconds) first pays wake_delay
#   (RRC setup; paging for a downlink); the datagram's airtime includes 28 bytes of
#   IP/UDP headers; the one-way latency is added on top.
# - Faults hit a frame after its airtime has been spent: a lost frame still used the
#   channel and the duty-cycle budget. Uplinks and downlinks draw from separate streams
#   forked from the Faults given (Faults.fork("up"), Faults.fork("down")).
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from airshake_tools.linkemu import dutycycle, lorawan
from airshake_tools.linkemu.faults import Faults
from airshake_tools.linkemu.profiles import Profile, get_profile

DIRECTIONS = ("up", "down")
FRAGMENT_HEADER = 4        # airshake fragment: head, tag, index, count (PROTOCOL.md §3.6)
MAX_FRAGMENTS = 255
HOLD_LIMIT = 16            # downlinks a LoRaWAN network holds for a class A device
MIN_SPACING = 0.01         # floor of the spacing that scales fault delays (s)


@dataclass(frozen=True)
class Delivery:
    at: float              # when the frame arrives at the far end
    frame: bytes           # what arrives (possibly corrupted)
    airtime: float         # seconds on the air of the radio frame
    duty_wait: float       # seconds the frame waited for a duty-cycle budget
    frames: int = 1        # radio frames used
    direction: str = "up"


class Link:
    """One device's radio link to B under a profile. See the module comment for rules."""

    def __init__(self, profile: Profile | str, faults: Faults | None = None,
                 subbands: int = 1, duty_policy: str | None = None) -> None:
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.faults = faults if faults is not None else Faults()
        # one stream per direction: the faults of the n-th uplink do not depend on how
        # uplinks and downlinks interleave
        self._streams = {d: self.faults.fork(d) for d in DIRECTIONS}
        if subbands not in lorawan.UPLINK_SUBBANDS:
            raise ValueError("subbands must be one of %s, not %r"
                             % (", ".join(map(str, lorawan.UPLINK_SUBBANDS)), subbands))
        self.subbands = subbands
        self.bands = lorawan.UPLINK_SUBBANDS[subbands]
        self.log: list[dict[str, Any]] = []
        self._tx_free = {d: float("-inf") for d in DIRECTIONS}   # per transmitter
        self._busy: list[tuple[float, float]] = []               # frames on the air
        self._horizon = float("-inf")                            # latest now seen
        self.duty_policy = dutycycle.check_policy(duty_policy or self.profile.duty_policy)
        self._duty = {d: lorawan.DutyCycle(policy=self.duty_policy) for d in DIRECTIONS}
        self._last_up: tuple[float, str] | None = None    # (end, sub-band) of the uplink
        self._window_used = True                           # the network received last
        self._held: deque[tuple[float, bytes]] = deque()
        self._last_activity: float | None = None

    # -- public ---------------------------------------------------------------------------
    @property
    def pending_downlinks(self) -> int:
        """LoRaWAN: downlinks held for the device's next uplink."""
        return len(self._held)

    @property
    def radio_free_at(self) -> float:
        """End of the last frame scheduled on the air."""
        return max((end for _, end in self._busy), default=float("-inf"))

    def next_uplink_at(self, now: float) -> float:
        """Earliest time a frame handed over at now could start going up (ignoring its own
        airtime: its fit between scheduled downlinks and, under an hourly policy, in the
        budget)."""
        t = max(now, self._tx_free["up"])
        if self.profile.duty_cycle:
            t += self._duty["up"].earliest(t, self.bands)[1]
        return t

    def send(self, direction: str, payload: bytes, now: float) -> list[Delivery]:
        """Hand one radio frame to the link at time now; returns what arrives, and when.

        [] when the frame is lost or (LoRaWAN downlink) held for a later window."""
        if direction not in DIRECTIONS:
            raise ValueError("direction must be 'up' or 'down', not %r" % (direction,))
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise ValueError("payload must be bytes, not %s" % type(payload).__name__)
        frame = bytes(payload)
        mtu = self.profile.mtu
        if len(frame) > mtu:
            raise ValueError("frame of %d bytes exceeds the %d-byte MTU of link profile %s; "
                             "fragment it first" % (len(frame), mtu, self.profile.name))
        kind = self.profile.kind
        if kind == "ideal":
            return self._emit(direction, frame, now, now, 0.0, 0.0, now, MIN_SPACING * 5)
        if kind == "cellular":
            return self._cellular(direction, frame, now)
        if kind == "lorawan" and direction == "down":
            return self._lorawan_down(frame, now)
        return self._lora(direction, frame, now)

    # -- the channel ------------------------------------------------------------------------
    def _clash(self, start: float, airtime: float) -> float | None:
        """End of a scheduled frame that overlaps [start, start + airtime), if any."""
        end = start + airtime
        for a, b in self._busy:
            if a < end and start < b:
                return b
        return None

    def _slot(self, direction: str, ready: float, airtime: float) -> tuple[float, str, float]:
        """(start, sub-band, duty-cycle wait) of a frame: after the transmitter's previous
        frame, in a sub-band whose budget is open, in a gap of the channel."""
        t = max(ready, self._tx_free[direction])
        band, duty_wait = self.bands[0], 0.0
        while True:
            if self.profile.duty_cycle:
                band, w = self._duty[direction].earliest(t, self.bands, airtime)
                t += w
                duty_wait += w
            later = self._clash(t, airtime)
            if later is None:
                return t, band, duty_wait
            t = later

    def _occupy(self, direction: str, start: float, airtime: float) -> None:
        self._busy.append((start, start + airtime))
        self._tx_free[direction] = max(self._tx_free[direction], start + airtime)

    def _prune(self, now: float) -> None:
        # frames handed over later start no earlier than now: older frames cannot clash
        self._horizon = max(self._horizon, now)
        self._busy = [(a, b) for a, b in self._busy if b > self._horizon]

    # -- LoRa and LoRaWAN uplinks ---------------------------------------------------------
    def _lora(self, direction: str, frame: bytes, now: float) -> list[Delivery]:
        p = self.profile
        self._prune(now)
        airtime = p.airtime(len(frame), direction)
        start, band, wait = self._slot(direction, now, airtime)
        self._duty[direction].record(start, band, airtime)
        self._occupy(direction, start, airtime)
        end = start + airtime
        spacing = max(airtime / lorawan.EU868_SUBBANDS[band].duty, MIN_SPACING)
        out = self._emit(direction, frame, now, start, airtime, wait, end + p.latency,
                         spacing, band=band)
        if p.class_a:
            # the device listens in its windows: no uplink before RX2 opens
            self._tx_free["up"] = max(self._tx_free["up"], end + lorawan.RX2_DELAY)
            if self.log[-1]["delivered"]:
                self._last_up = (end, band)
                self._window_used = False
                if self._held:
                    since, held = self._held[0]
                    sent = self._schedule_down(held, end + p.latency, since)
                    if sent is not None:
                        self._held.popleft()
                        out.extend(sent)
        return out

    # -- LoRaWAN class A downlinks ----------------------------------------------------------
    def _lorawan_down(self, frame: bytes, now: float) -> list[Delivery]:
        self._prune(now)
        sent = self._schedule_down(frame, now + self.profile.latency, now)
        if sent is not None:
            return sent
        if len(self._held) >= HOLD_LIMIT:
            since, dropped = self._held.popleft()
            self.log.append({"t": now, "submitted": since, "direction": "down",
                             "bytes": len(dropped), "airtime_s": 0.0, "duty_wait_s": 0.0,
                             "arrive_s": None, "delivered": False, "lost": False,
                             "dup": False, "reordered": False, "corrupt": False,
                             "dropped": "held downlink queue full"})
        self._held.append((now, frame))
        return []

    def _schedule_down(self, frame: bytes, ready: float, since: float) -> list[Delivery] | None:
        """Put a downlink into RX1 or RX2 of the last received uplink, if one can take it."""
        if self._last_up is None or self._window_used:
            return None
        p = self.profile
        end, band_up = self._last_up
        duty = self._duty["down"]
        windows = (("rx1", lorawan.RX1_DELAY, band_up, p.dr),
                   ("rx2", lorawan.RX2_DELAY, lorawan.RX2_SUBBAND, lorawan.RX2_DR))
        for name, delay, band, dr in windows:
            t = end + delay
            if ready > t or len(frame) > lorawan.max_payload(p.region, dr):
                continue
            airtime = p.downlink_airtime(len(frame), dr)
            if duty.wait(t, band, airtime) > 0 or self._clash(t, airtime) is not None:
                continue
            duty.record(t, band, airtime)
            self._window_used = True
            self._occupy("down", t, airtime)
            # the device is receiving: its next uplink waits for the downlink's end
            self._tx_free["up"] = max(self._tx_free["up"], t + airtime)
            spacing = max(airtime / lorawan.EU868_SUBBANDS[band].duty, MIN_SPACING)
            return self._emit("down", frame, since, t, airtime, 0.0, t + airtime, spacing,
                              band=band, window=name, held_s=t - since)
        return None

    # -- cellular ---------------------------------------------------------------------------
    def _cellular(self, direction: str, frame: bytes, now: float) -> list[Delivery]:
        p = self.profile
        assert p.cell is not None
        c = p.cell
        self._prune(now)
        # a downlink first crosses the core network, then the radio; an uplink the reverse
        reach = now + (p.latency if direction == "down" else 0.0)
        last = self._last_activity
        idle = last is None or (reach - last > c.idle_after and reach >= self.radio_free_at)
        wake = c.wake_delay if idle else 0.0
        airtime = c.airtime(len(frame), direction)
        start, _, _ = self._slot(direction, reach + wake, airtime)
        self._occupy(direction, start, airtime)
        end = start + airtime
        self._last_activity = max(end, last if last is not None else end)
        arrive = end + (p.latency if direction == "up" else 0.0)
        return self._emit(direction, frame, now, start, airtime, 0.0, arrive,
                          max(airtime + p.latency, MIN_SPACING), wake_s=wake)

    # -- faults and the log -----------------------------------------------------------------
    def _emit(self, direction: str, frame: bytes, now: float, start: float, airtime: float,
              duty_wait: float, arrive: float, spacing: float, **extra: Any) -> list[Delivery]:
        o = self._streams[direction].outcome(frame, spacing)
        entry: dict[str, Any] = {
            "t": start, "submitted": now, "direction": direction, "bytes": len(frame),
            "airtime_s": airtime, "duty_wait_s": duty_wait,
            "arrive_s": None if o.lost else arrive, "delivered": not o.lost,
            "lost": o.lost, "dup": o.duplicated, "reordered": o.reordered,
            "corrupt": o.corrupted}
        entry.update(extra)
        self.log.append(entry)
        return [Delivery(arrive + delay, data, airtime, duty_wait, 1, direction)
                for delay, data in o.copies]


def fragment_sizes(size: int, mtu: int) -> list[int]:
    """Frame sizes airshake's fragment layer makes of a message (airshake.fragments.split):
    the message itself if it fits, else ceil(size / (mtu - 4)) fragments of <= mtu bytes."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError("message size must be a non-negative integer, not %r" % (size,))
    if size <= mtu:
        return [size]
    chunk = mtu - FRAGMENT_HEADER
    if chunk < 1:
        raise ValueError("an MTU of %d bytes is too small to fragment" % mtu)
    count = -(-size // chunk)
    if count > MAX_FRAGMENTS:
        raise ValueError("a %d-byte message needs %d fragments of %d bytes; airshake allows %d"
                         % (size, count, mtu, MAX_FRAGMENTS))
    last = size - chunk * (count - 1)
    return [FRAGMENT_HEADER + chunk] * (count - 1) + [FRAGMENT_HEADER + last]


def cost(messages: Iterable[tuple[str, int]], profile: Profile | str,
         subbands: int = 1, duty_policy: str | None = None) -> dict[str, Any]:
    """Time on air and wall time of an exchange, without faults.

    messages: (direction, size in bytes) in protocol order; each is sent when the previous
    one has fully arrived (zero processing time); a message larger than the MTU becomes
    airshake fragments, handed to the radio together (on LoRaWAN downlink, no more than
    the network holds: HOLD_LIMIT). On LoRaWAN the device pulls each
    held downlink fragment with an empty uplink (13 bytes of framing) as soon as the
    previous downlink has arrived. Returns frames (radio frames, both directions,
    including pulls), airtime_s, wall_s (from the first frame handed over to the last
    message's arrival), duty_wait_s, pull_uplinks, next_uplink_s (when the device could
    send again after the exchange) and arrivals (per message). duty_policy: one of
    dutycycle.POLICIES (default: the profile's)."""
    link = Link(profile, subbands=subbands, duty_policy=duty_policy)
    mtu = link.profile.mtu
    t = 0.0
    pulls = 0
    arrivals: list[float] = []
    for direction, size in messages:
        if direction not in DIRECTIONS:
            raise ValueError("direction must be 'up' or 'down', not %r" % (direction,))
        done = t

        def pull() -> None:
            nonlocal done, pulls
            pulls += 1
            for d in link.send("up", b"", done):
                if d.direction == "down":
                    done = max(done, d.at)

        for frame_size in fragment_sizes(size, mtu):
            # the network holds at most HOLD_LIMIT downlinks: B hands over the next
            # fragment only when one has gone out, so none is dropped
            while direction == "down" and link.pending_downlinks >= HOLD_LIMIT:
                pull()
            for d in link.send(direction, bytes(frame_size), t):
                if d.direction == direction:
                    done = max(done, d.at)
        while direction == "down" and link.pending_downlinks:
            pull()
        arrivals.append(done)
        t = done
    return {
        "frames": len(link.log),
        "airtime_s": sum(e["airtime_s"] for e in link.log),
        "wall_s": t,
        "duty_wait_s": sum(e["duty_wait_s"] for e in link.log),
        "pull_uplinks": pulls,
        "next_uplink_s": link.next_uplink_at(t),
        "arrivals": arrivals,
    }
