# host_server.server_b.tables: the bounded state tables of the dispatcher.
#   Handshake     one core Responder and its routing bookkeeping (addresses, m3, timers)
#   Conn          one established session (after m3): the core Session, ID_A, address
#   HandshakeTable  by SHA-256(m1), insertion order (oldest evicted first), plus the
#                 (address, hint) index m3s are routed by, plus a timer heap
#   SessionTable  by SID (a list: two sessions may share one), least recently used
#                 evicted first
#   ErrorTable    the error answered to a refused m1, re-sent to a duplicate of it a
#                 bounded number of times
from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from airshake.responder import Responder
from airshake.session import Session

Addr = Any  # a socket address tuple


@dataclass(eq=False)
class Handshake:
    key: bytes                      # SHA-256 of the m1 bytes
    responder: Responder
    addrs: list[Addr]
    started: float
    id_hex: str
    suite: int
    timer_at: float = 0.0
    hint: int | None = None         # set once m2 is out
    m3: bytes | None = None         # the m3 that completed it
    confirming: bool = False        # m3 accepted, B's first record not sent yet
    early: asyncio.Task[Any] | None = None
    answers: int = 0                # m2s re-sent to duplicates of the m1
    holding: bool = False           # m2 made, waiting for the shared replay cache
    m1: bytes = b""
    cache: str = ""
    cs_ms: float | None = None


@dataclass(eq=False)
class Conn:
    session: Session
    id_a: bytes
    addr: Addr
    last: float
    records: int = field(default=0)


class HandshakeTable:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.by_m1: OrderedDict[bytes, Handshake] = OrderedDict()
        self.by_hint: dict[tuple[Addr, int], list[Handshake]] = {}
        self._timers: list[tuple[float, int, Handshake]] = []
        self._count = itertools.count()

    def __len__(self) -> int:
        return len(self.by_m1)

    def get(self, key: bytes) -> Handshake | None:
        return self.by_m1.get(key)

    def live(self, hs: Handshake) -> bool:
        return self.by_m1.get(hs.key) is hs

    def add(self, hs: Handshake) -> list[Handshake]:
        """Insert hs; returns the handshakes evicted to make room."""
        self.by_m1[hs.key] = hs
        evicted = []
        while len(self.by_m1) > self.capacity:
            _key, old = self.by_m1.popitem(last=False)
            self._unindex(old)
            evicted.append(old)
        return evicted

    def index(self, hs: Handshake, addr: Addr) -> None:
        """Route m3s with hs's hint from addr to hs."""
        if hs.hint is None:
            return
        lst = self.by_hint.setdefault((addr, hs.hint), [])
        if hs not in lst:
            lst.append(hs)

    def candidates(self, addr: Addr, hint: int) -> list[Handshake]:
        return list(self.by_hint.get((addr, hint), ()))

    def _unindex(self, hs: Handshake) -> None:
        if hs.hint is None:
            return
        for addr in hs.addrs:
            lst = self.by_hint.get((addr, hs.hint))
            if lst and hs in lst:
                lst.remove(hs)
                if not lst:
                    del self.by_hint[(addr, hs.hint)]

    def remove(self, hs: Handshake) -> None:
        if self.by_m1.get(hs.key) is hs:
            del self.by_m1[hs.key]
        self._unindex(hs)

    def set_timer(self, hs: Handshake, when: float) -> None:
        hs.timer_at = when
        heapq.heappush(self._timers, (when, next(self._count), hs))

    def due(self, now: float) -> list[Handshake]:
        """Live handshakes whose timer has passed (each timer fires once)."""
        out = []
        timers = self._timers
        while timers and timers[0][0] <= now:
            when, _n, hs = heapq.heappop(timers)
            if hs.timer_at == when and self.live(hs):
                out.append(hs)
        if len(timers) > 4 * self.capacity + 64:   # drop stale entries of dead handshakes
            self._timers = [t for t in timers if self.live(t[2]) and t[2].timer_at == t[0]]
            heapq.heapify(self._timers)
        return out


class SessionTable:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._by_sid: OrderedDict[bytes, list[Conn]] = OrderedDict()
        self.count = 0

    def add(self, conn: Conn) -> int:
        """Insert conn; returns how many sessions were evicted to make room."""
        sid = conn.session.sid
        self._by_sid.setdefault(sid, []).append(conn)
        self._by_sid.move_to_end(sid)
        self.count += 1
        evicted = 0
        while self.count > self.capacity:
            _sid, conns = self._by_sid.popitem(last=False)
            self.count -= len(conns)
            evicted += len(conns)
        return evicted

    def get(self, sid: bytes) -> list[Conn]:
        return self._by_sid.get(sid) or []

    def touch(self, sid: bytes) -> None:
        if sid in self._by_sid:
            self._by_sid.move_to_end(sid)

    def sweep(self, now: float) -> int:
        """Drop sessions past their max_age (the device handshakes again); returns how
        many were dropped."""
        return self._drop_where(lambda c: now - c.session.created > c.session.max_age)

    def drop_id(self, id_a: bytes) -> int:
        """Drop every session of a device (revoked); returns how many."""
        return self._drop_where(lambda c: c.id_a == id_a)

    def _drop_where(self, gone: Callable[[Conn], bool]) -> int:
        dropped = 0
        for sid in list(self._by_sid):
            conns = self._by_sid[sid]
            keep = [c for c in conns if not gone(c)]
            if len(keep) != len(conns):
                dropped += len(conns) - len(keep)
                if keep:
                    self._by_sid[sid] = keep
                else:
                    del self._by_sid[sid]
        self.count -= dropped
        return dropped

    def remove(self, conn: Conn) -> None:
        conns = self._by_sid.get(conn.session.sid)
        if conns and conn in conns:
            conns.remove(conn)
            self.count -= 1
            if not conns:
                del self._by_sid[conn.session.sid]


class ErrorTable:
    def __init__(self, capacity: int, linger: float) -> None:
        self.capacity = capacity
        self.linger = linger
        self._items: OrderedDict[bytes, list[Any]] = OrderedDict()  # [until, error, sent]

    def put(self, key: bytes, error: bytes, now: float) -> None:
        self._items[key] = [now + self.linger, error, 0]
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def get(self, key: bytes, now: float, limit: int = 1 << 30) -> bytes | None:
        """The error to re-send to a duplicate; b"" once it was re-sent limit times;
        None when the m1 was not refused (or long ago)."""
        item = self._items.get(key)
        if item is None:
            return None
        if now >= item[0]:
            del self._items[key]
            return None
        if item[2] >= limit:
            return b""
        item[2] += 1
        return item[1]

    def expire(self, now: float) -> None:
        items = self._items
        while items:
            key, (until, _e, _n) = next(iter(items.items()))
            if until > now:
                break
            del items[key]
