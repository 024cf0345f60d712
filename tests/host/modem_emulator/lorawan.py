"""tests/host/modem_emulator/lorawan.py: what both LoRaWAN modems share: keys, join, DR,
the regional payload limits and class A receive windows. With Emulator(network=NS), an
object with uplink(deveui, port, payload), downlink(deveui, window) -> bytes | None and
pending(deveui) (host_server.lorawan.standin.NetworkStandin), every uplink goes to that
network server and each receive window asks it for the downlink, instead of the UDP
upstream and the emulator's own queue."""
from __future__ import annotations

import binascii
from collections import deque
from typing import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plumbing import Emulator

LIMITS = {"EU868": (51, 51, 51, 115, 222, 222, 222, 222), "US915": (11, 53, 125, 242, 242)}


class LoRaWANNetwork:
    """What both LoRaWAN modems share: keys, join, DR, and class A windows."""

    def __init__(self, emu: Emulator) -> None:
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
        network = self.emu.network
        if port == self.port and payload:
            if network is None:
                self.emu.relay(payload)
            else:
                self.emu.uplinks.append(payload)
        else:
            self.emu.polls += 1
        if network is not None:
            network.uplink(self.deveui, port, payload)
        t = self.emu.timing

        def window(n: int) -> None:
            down = self._next(n)
            if down is None and n == 1:
                self.emu.later(t.rx2, lambda: window(2))
                return
            self.busy = False
            pending = self.emu.network.pending(self.deveui) if self.emu.network is not None \
                else bool(self.queue)
            done(down, pending, n)
        self.emu.later(t.airtime + t.rx1, lambda: window(1))

    def _next(self, window: int = 1) -> bytes | None:
        if self.emu.network is not None:
            down = self.emu.network.downlink(self.deveui, window)
            if down is not None:
                self.emu.downlinks.append(down)
            return down
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
