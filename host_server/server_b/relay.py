# host_server.server_b.relay: passes datagrams between the B workers of one host that share a
# UDP port (SO_REUSEPORT). The kernel keeps a device's datagrams on one worker by the
# hash of its 4-tuple, but rehashes when a worker dies (or starts): then a device in the
# middle of a handshake, or with a session, can land on a worker without its state.
# That worker forwards what it cannot place (an m3 or a record: to every sibling; an m1
# owned by a live sibling: to that one) over a Unix datagram socket in the abstract
# namespace, with the device's address; the sibling holding the state handles it and
# answers from its own socket on the shared port, so the device sees the same source.
# Handshake state and session keys never leave their process. A forwarded datagram is
# never forwarded again, and forwarding is rate limited (a flood of garbage m3s must not
# multiply). Linux only (abstract sockets); siblings are worker 0 .. count-1 of a group.
from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter

from host_server.server_b.metrics import Metrics

Addr = Any
_VERSION = 1
RATE = 5000.0       # forwarded datagrams per second, burst the same


def relay_name(group: str, index: int) -> bytes:
    return b"\0airshake-relay:" + group.encode() + b":" + str(index).encode()


def encode(data: bytes, addr: Addr) -> bytes:
    ip = ipaddress.ip_address(addr[0]).packed
    return struct.pack(">BBH", _VERSION, len(ip), addr[1]) + ip + data


def decode(frame: bytes) -> tuple[bytes, Addr]:
    version, n, port = struct.unpack(">BBH", frame[:4])
    if version != _VERSION or n not in (4, 16):
        raise ValueError("not a relay frame")
    ip = str(ipaddress.ip_address(frame[4:4 + n]))
    return frame[4 + n:], (ip, port)


class Relay:
    def __init__(self, group: str, index: int, count: int, metrics: Metrics,
                 deliver: Callable[[bytes, Addr], None]) -> None:
        self.group, self.index, self.count = group, index, count
        self.name = relay_name(group, index)
        self.deliver = deliver      # called with (datagram, device address) from a sibling
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.name)
        self.sock.setblocking(False)
        self._tokens, self._t = RATE, time.monotonic()
        r, inst = metrics.registry, metrics.instance
        self._counter = Counter("airshake_relay", "Datagrams passed between B workers of one "
                                "host (out: forwarded, in: received from a sibling)",
                                ["instance", "direction", "result"], registry=r)
        self._inst = inst

    @property
    def owner_name(self) -> str:
        """How this worker names itself as a replay-cache owner (siblings parse it)."""
        return "relay:%s:%d" % (self.group, self.index)

    def sibling_of(self, owner: str) -> int | None:
        """The sibling index if owner (a replay-cache owner) is a worker of this group."""
        head = owner.split("|", 1)[0]
        prefix = "relay:%s:" % self.group
        if head.startswith(prefix):
            try:
                index = int(head[len(prefix):])
            except ValueError:
                return None
            return index if index != self.index else None
        return None

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        try:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
        except (RuntimeError, ValueError):
            pass
        self.sock.close()

    def _count(self, direction: str, result: str) -> None:
        self._counter.labels(self._inst, direction, result).inc()

    def _allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(RATE, self._tokens + (now - self._t) * RATE)
        self._t = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True

    def forward(self, data: bytes, addr: Addr, to: int | None = None) -> int:
        """Send data (from addr) to sibling `to`, or to every sibling; returns how many
        siblings took it. -1: `to` is gone (its socket does not exist: it died)."""
        if not self._allow():
            self._count("out", "rate_limited")
            return 0
        frame = encode(data, addr)
        targets = [to] if to is not None else [i for i in range(self.count) if i != self.index]
        sent = 0
        for i in targets:
            try:
                self.sock.sendto(frame, relay_name(self.group, i))
                sent += 1
            except (ConnectionRefusedError, FileNotFoundError):
                self._count("out", "sibling_gone")
                if to is not None:
                    return -1
            except (BlockingIOError, OSError):
                self._count("out", "error")
        if sent:
            self._count("out", "ok")
        return sent

    def _readable(self) -> None:
        for _ in range(64):
            try:
                frame = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            try:
                data, addr = decode(frame)
            except (ValueError, struct.error):
                self._count("in", "bad")
                continue
            self._count("in", "ok")
            self.deliver(data, addr)
