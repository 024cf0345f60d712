# host_server.server_b.fleet: a fleet of simulated devices for the scale-out tests and the
# benchmark (bench/scaleout.py). Each device is the core's Initiator on a UDP socket of
# its own (so the kernel's SO_REUSEPORT hash spreads the fleet over B's workers) and
# delivers numbered readings, b"n=<k> d=<device>", until B acknowledges each ("ack:"
# replies, B's reply = "ack"): the first rides in m3, the next ones as session records.
# A reading without an acknowledgement within ack_timeout is sent again, in a new
# handshake, as a real device would after losing its server; B stores a reading once
# per (device, n) whatever carried it. The result says, per device, which readings were
# acknowledged and how many handshakes it took.
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from airshake import events as ev
from airshake import shell
from airshake.crypto import load_backend
from airshake.initiator import Initiator
from airshake.keys import DeviceKey
from host_server.udp_link import UdpLink


@dataclass
class DeviceRun:
    index: int
    id_hex: str
    acked: list[int] = field(default_factory=list)
    handshakes: int = 0          # started
    completed: int = 0           # confirmed
    failed: int = 0
    resent: int = 0              # readings sent again after a missing ack
    latencies: list[float] = field(default_factory=list)


class _Device:
    def __init__(self, key: DeviceKey, run: DeviceRun, anchor: bytes, port: int,
                 host: str, early: bool, rto: float, ack_timeout: float,
                 server_name: str) -> None:
        self.key, self.run, self.anchor = key, run, anchor
        self.server_name = server_name
        self.port, self.host = port, host
        self.early, self.rto, self.ack_timeout = early, rto, ack_timeout
        self.ref = None
        self.ini: Initiator | None = None
        self.link: UdpLink | None = None

    async def open(self) -> None:
        self.link = await UdpLink.open((self.host, self.port), connect=True)

    def close(self) -> None:
        if self.link is not None:
            self.link.close()

    async def _pump(self, until: float, want_ack: bool) -> str:
        """Drive the initiator (airshake.shell) until an ack arrives ("ack"), the
        handshake fails ("failed"), or until passes ("timeout")."""
        ini, link = self.ini, self.link
        assert ini is not None and link is not None
        failed: list[ev.HandshakeFailed] = []

        def on_event(e: ev.Event) -> None:
            if isinstance(e, ev.HandshakeConfirmed):
                self.run.completed += 1
                self.ref = ini.server
            elif isinstance(e, ev.HandshakeFailed):
                failed.append(e)

        def is_ack(e: ev.Event) -> bool:
            return want_ack and isinstance(e, ev.DataReceived) and e.data.startswith(b"ack:")

        got = await shell.drive(ini, link, time.time, until=is_ack, on_event=on_event,
                                idle=max(0.0, until - time.time()), deadline=until)
        if got is not None:
            return "ack"
        return "failed" if failed else "timeout"

    async def deliver(self, readings: int, deadline: float) -> None:
        n = 1
        while n <= readings and time.time() < deadline:
            payload = b"n=%d d=%d" % (n, self.run.index)
            t0 = time.time()
            if self.ini is None:
                backend = load_backend("pyca")
                self.ini = Initiator(backend, [self.key], self.anchor, server=self.ref,
                                     rto=self.rto, max_retries=3,
                                     server_name=self.server_name)
                self.ini.connect(t0, payload, early=self.early and self.ref is not None)
                self.run.handshakes += 1
                budget = self.rto * 16 + self.ack_timeout
            else:
                self.ini.send(payload)
                budget = self.ack_timeout
            got = await self._pump(min(deadline, t0 + budget), want_ack=True)
            if got == "ack":
                self.run.acked.append(n)
                self.run.latencies.append(time.time() - t0)
                n += 1
                continue
            if got == "failed":
                self.run.failed += 1
            self.run.resent += 1
            self.ini = None                     # handshake again, resend the same reading
            await asyncio.sleep(random.uniform(0.05, 0.3))


async def deliver(port: int, keys: list[DeviceKey], anchor: bytes, readings: int = 2,
                  concurrency: int = 100, duration: float = 60.0, host: str = "127.0.0.1",
                  early: bool = False, rto: float = 0.4, ack_timeout: float = 1.0,
                  on_done: Callable[[DeviceRun], None] | None = None,
                  server_name: str = "") -> list[DeviceRun]:
    """Every device delivers `readings` readings (at most `concurrency` devices at once),
    pinned to B's name server_name (the CN of C_B); returns one DeviceRun per key, in
    order."""
    if not server_name:
        raise ValueError("deliver() needs server_name, the CN of B's certificate")
    runs = [DeviceRun(i, k.id_a.hex()) for i, k in enumerate(keys)]
    deadline = time.time() + duration
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            dev = _Device(keys[i], runs[i], anchor, port, host, early, rto, ack_timeout,
                          server_name)
            await dev.open()
            try:
                await dev.deliver(readings, deadline)
            finally:
                dev.close()
            if on_done is not None:
                on_done(runs[i])

    await asyncio.gather(*(one(i) for i in range(len(keys))))
    return runs
