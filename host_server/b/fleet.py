# host_server.b.fleet: a fleet of simulated devices for the scale-out tests and the
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
from airshake.crypto import load_backend
from airshake.initiator import Initiator
from airshake.keys import DeviceKey


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


class _Slot(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.inbox.put_nowait(data)


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
        self.transport: asyncio.DatagramTransport | None = None
        self.slot: _Slot | None = None

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, self.slot = await loop.create_datagram_endpoint(  # type: ignore
            _Slot, remote_addr=(self.host, self.port))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    async def _pump(self, until: float, want_ack: bool) -> str:
        """Drive the initiator until an ack arrives ("ack"), the handshake fails
        ("failed"), or until passes ("timeout")."""
        ini, slot, transport = self.ini, self.slot, self.transport
        assert ini is not None and slot is not None and transport is not None
        while True:
            for d in ini.datagrams_to_send(time.time()):
                transport.sendto(d)
            while (e := ini.next_event()) is not None:
                if isinstance(e, ev.HandshakeConfirmed):
                    self.run.completed += 1
                    self.ref = ini.server
                elif isinstance(e, ev.HandshakeFailed):
                    return "failed"
                elif isinstance(e, ev.DataReceived) and e.data.startswith(b"ack:"):
                    if want_ack:
                        return "ack"
            now = time.time()
            if now >= until:
                return "timeout"
            timer = ini.timer()
            wait = min(until - now, max(0.001, (timer - now) if timer else 0.05), 0.05)
            try:
                msg = await asyncio.wait_for(slot.inbox.get(), wait)
            except asyncio.TimeoutError:
                ini.handle_timer(time.time())
                continue
            try:
                ini.receive(msg, time.time())
            except Exception:  # noqa: BLE001 - a stray or stale datagram: ignore it
                pass

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
