# host_server.server_b.tables: the bounded state tables of the dispatcher.
#   Handshake     one core Responder and its routing bookkeeping (addresses, m3, timers);
#                 once B's first record is out the Responder goes and the Handshake keeps
#                 only what answers a retransmitted m3 (m3, that record) while it lingers
#   Conn          one established session (after m3): the core Session, ID_A, address
#   HandshakeTable  by SHA-256(m1), insertion order (oldest evicted first), plus the
#                 (address, hint) index m3s are routed by, plus a timer heap (of m1 keys,
#                 not Handshakes: a stale timer keeps nothing alive and costs the cyclic
#                 GC nothing)
#   SessionTable  by SID (a list: two sessions may share one), least recently used
#                 evicted first; idle sessions beyond the hot few are kept frozen as
#                 bytes (about 300 B each with the table entry, not 2.5 KB: 10^6
#                 sessions fit in 1 GB), thawed when a record for them arrives
#   ErrorTable    the error answered to a refused m1, re-sent to a duplicate of it a
#                 bounded number of times
from __future__ import annotations

import asyncio
import heapq
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from airshake.responder import Responder
from airshake.session import Session

Addr = Any  # a socket address tuple
HOT_LIMIT = 1024    # sessions SessionTable keeps live beyond those in use


@dataclass(eq=False, slots=True)
class Handshake:
    key: bytes                      # SHA-256 of the m1 bytes
    responder: Responder | None     # None once confirmed (first record out)
    addrs: tuple[Addr, ...]
    started: float
    id_hex: str
    suite: int
    timer_at: float = 0.0
    hint: int | None = None         # set once m2 is out
    m3: bytes | None = None         # the m3 that completed it
    confirming: bool = False        # m3 accepted, B's first record not sent yet
    ack: bytes | None = None        # B's first record (it confirmed m3), once sent
    early: asyncio.Task[Any] | None = None
    answers: int = 0                # m2s re-sent to duplicates of the m1
    holding: bool = False           # m2 made, waiting for the shared replay cache
    m1: bytes = b""
    cache: str = ""
    cs_ms: float | None = None


@dataclass(eq=False, slots=True)
class Conn:
    session: Session
    id_a: bytes
    addr: Addr
    last: float
    records: int = field(default=0)
    busy: int = 0                   # SessionTable.hold() count: never frozen while > 0


class HandshakeTable:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.by_m1: OrderedDict[bytes, Handshake] = OrderedDict()
        # m3s to trial-decrypt go to the handshakes waiting for one, by (address, hint);
        # a completed handshake leaves that index and is found by its m3's bytes (a
        # retransmission), so a gateway address with many recent handshakes does not
        # make every m3 walk them all
        self.by_hint: dict[tuple[Addr, int], list[Handshake]] = {}
        self.by_m3: dict[bytes, Handshake] = {}
        self._timers: list[tuple[float, bytes]] = []     # (when, m1 key)

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

    def completed(self, hs: Handshake, m3: bytes) -> None:
        """m3 completed hs: from now on only this m3 reaches it (duplicate())."""
        self._unindex(hs)
        hs.m3 = m3
        self.by_m3[m3] = hs

    def duplicate(self, m3: bytes, addr: Addr) -> Handshake | None:
        """The completed handshake this m3 from addr retransmits, if any."""
        hs = self.by_m3.get(m3)
        return hs if hs is not None and addr in hs.addrs else None

    def index(self, hs: Handshake, addr: Addr) -> None:
        """Route m3s with hs's hint from addr to hs (until it completes)."""
        if hs.hint is None or hs.m3 is not None:
            return
        lst = self.by_hint.setdefault((addr, hs.hint), [])
        if hs not in lst:
            lst.append(hs)

    def candidates(self, addr: Addr, hint: int) -> list[Handshake]:
        return list(self.by_hint.get((addr, hint), ()))

    def _unindex(self, hs: Handshake) -> None:
        if hs.m3 is not None:
            if self.by_m3.get(hs.m3) is hs:
                del self.by_m3[hs.m3]
            return
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
        heapq.heappush(self._timers, (when, hs.key))

    def due(self, now: float) -> list[Handshake]:
        """Live handshakes whose timer has passed (each timer fires once)."""
        out = []
        timers, by_m1 = self._timers, self.by_m1
        while timers and timers[0][0] <= now:
            when, key = heapq.heappop(timers)
            hs = by_m1.get(key)
            if hs is not None and hs.timer_at == when:
                hs.timer_at = -1.0          # fired: a duplicate entry does not fire again
                out.append(hs)
        if len(timers) > 4 * self.capacity + 64:   # drop stale entries of dead handshakes
            self._timers = [t for t in timers if _timer_live(by_m1.get(t[1]), t[0])]
            heapq.heapify(self._timers)
        return out


def _timer_live(hs: Handshake | None, when: float) -> bool:
    return hs is not None and hs.timer_at == when


class SessionTable:
    """Established sessions by SID, least recently used evicted first (module comment).

    A session is held live (its Conn, the core Session with derived keys: about 2.5 KB)
    while it is in use and for the last hot_limit sessions; the others are frozen into
    one bytes object each (_freeze: the core's Session.export() plus ID_A, address, last
    activity and record count: about 200 bytes) and thawed by get() when a record for
    their SID arrives. Only a Conn whose busy count is zero is frozen: the dispatcher
    holds a Conn (hold/release) across every await that ends in a seal(), and a new
    session until B's first record is out, so a session's state lives in exactly one
    place at a time and a (key, sequence number) pair is never sealed twice."""

    def __init__(self, capacity: int, hot_limit: int = HOT_LIMIT) -> None:
        self.capacity = capacity
        self.hot_limit = hot_limit
        # SID -> one entry, or a list of them when SIDs collide; an entry is a Conn or
        # a frozen bytes object
        self._by_sid: OrderedDict[bytes, Any] = OrderedDict()
        self._hot: OrderedDict[Conn, None] = OrderedDict()   # live Conns, oldest first
        self._backend: Any = None
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def add(self, conn: Conn) -> int:
        """Insert conn (live, and held: the caller releases it once B's first record is
        out); returns how many sessions were evicted to make room."""
        sid = conn.session.sid
        self._backend = self._backend or conn.session.backend
        conn.busy += 1
        self._put(sid, conn)
        self._hot[conn] = None
        self.count += 1
        evicted = 0
        while self.count > self.capacity:
            _sid, gone = self._by_sid.popitem(last=False)
            for entry in _entries(gone):
                if isinstance(entry, Conn):
                    self._hot.pop(entry, None)
                self.count -= 1
                evicted += 1
        self._cool()
        return evicted

    def get(self, sid: bytes) -> list[Conn]:
        """The live Conns of this SID (frozen ones are thawed and held live again)."""
        value = self._by_sid.get(sid)
        if value is None:
            return []
        out = []
        for entry in _entries(value):
            if not isinstance(entry, Conn):
                conn = _thaw(self._backend, entry)
                self._replace(sid, entry, conn)
                self._hot[conn] = None
                entry = conn
            out.append(entry)
        return out          # no _cool() here: the caller is about to use them

    def touch(self, sid: bytes) -> None:
        if sid in self._by_sid:
            self._by_sid.move_to_end(sid)

    @staticmethod
    def hold(conn: Conn) -> None:
        """conn is in use across an await: it stays live until release()."""
        conn.busy += 1

    def release(self, conn: Conn) -> None:
        conn.busy -= 1
        self._cool()

    def sweep(self, now: float) -> int:
        """Drop sessions past their max_age (the device handshakes again); returns how
        many were dropped."""
        def gone(entry: Any) -> bool:
            if isinstance(entry, Conn):
                return now - entry.session.created > entry.session.max_age
            created, max_age = _AGE.unpack_from(entry)
            return now - created > max_age
        return self._drop_where(gone)

    def drop_id(self, id_a: bytes) -> int:
        """Drop every session of a device (revoked); returns how many."""
        def gone(entry: Any) -> bool:
            if isinstance(entry, Conn):
                return entry.id_a == id_a
            return _frozen_id(entry) == id_a
        return self._drop_where(gone)

    def remove(self, conn: Conn) -> None:
        sid = conn.session.sid
        value = self._by_sid.get(sid)
        if value is None or not any(e is conn for e in _entries(value)):
            return
        keep = [e for e in _entries(value) if e is not conn]
        self._set(sid, keep)
        self._hot.pop(conn, None)
        self.count -= 1

    # -- internals ----------------------------------------------------------------------
    def _put(self, sid: bytes, entry: Any) -> None:
        value = self._by_sid.get(sid)
        if value is None:
            self._by_sid[sid] = entry
        else:
            self._by_sid[sid] = _entries(value) + [entry]
            self._by_sid.move_to_end(sid)

    def _set(self, sid: bytes, entries: list[Any]) -> None:
        if not entries:
            del self._by_sid[sid]
        else:
            self._by_sid[sid] = entries[0] if len(entries) == 1 else entries

    def _replace(self, sid: bytes, old: Any, new: Any) -> None:
        value = self._by_sid[sid]
        if value is old:                        # the SID's only entry: same place in order
            self._by_sid[sid] = new
        else:
            self._set(sid, [new if e is old else e for e in _entries(value)])

    def _cool(self) -> None:
        """Freeze the oldest idle live sessions beyond hot_limit."""
        hot = self._hot
        busy = []
        while len(hot) > self.hot_limit:
            conn = hot.popitem(last=False)[0]
            if conn.busy:
                busy.append(conn)
                continue
            blob = _freeze(conn)
            if blob is not None:
                self._replace(conn.session.sid, conn, blob)
        for conn in busy:                       # live until released, newest now
            hot[conn] = None

    def _drop_where(self, gone: Callable[[Any], bool]) -> int:
        dropped = 0
        for sid in list(self._by_sid):
            entries = _entries(self._by_sid[sid])
            keep = [e for e in entries if not gone(e)]
            if len(keep) != len(entries):
                for e in entries:
                    if isinstance(e, Conn) and not any(k is e for k in keep):
                        self._hot.pop(e, None)
                dropped += len(entries) - len(keep)
                self._set(sid, keep)
        self.count -= dropped
        return dropped


# A frozen session: created and max_age (u32, for sweep without a thaw), last activity
# (f64), records (u32), the ID's length and the ID, the address (_pack_addr), then the
# core's Session.export().
_AGE = struct.Struct(">II")
_HEAD = struct.Struct(">IIdIB")


def _entries(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _pack_addr(addr: Addr) -> bytes | None:
    """(host, port) or (host, port, flowinfo, scope_id) with a str host; None for any
    other address (its session is not frozen)."""
    if type(addr) is not tuple or len(addr) not in (2, 4) or type(addr[0]) is not str:
        return None
    host = addr[0].encode()
    if len(host) > 255 or not all(type(x) is int for x in addr[1:]):
        return None
    if len(addr) == 2:
        return bytes((2, len(host))) + host + addr[1].to_bytes(2, "big")
    return struct.pack(">BB", 4, len(host)) + host + struct.pack(">HII", *addr[1:])


def _unpack_addr(data: bytes, at: int) -> tuple[Addr, int]:
    kind, n = data[at], data[at + 1]
    at += 2
    host = data[at:at + n].decode()
    at += n
    if kind == 2:
        return (host, struct.unpack_from(">H", data, at)[0]), at + 2
    return (host, *struct.unpack_from(">HII", data, at)), at + 10


def _freeze(conn: Conn) -> bytes | None:
    addr = _pack_addr(conn.addr)
    if addr is None:
        return None
    s = conn.session
    head = _HEAD.pack(s.created, s.max_age, conn.last, conn.records, len(conn.id_a))
    return head + conn.id_a + addr + s.export()


def _frozen_id(blob: bytes) -> bytes:
    n = blob[_HEAD.size - 1]
    return blob[_HEAD.size:_HEAD.size + n]


def _thaw(backend: Any, blob: bytes) -> Conn:
    _c, _m, last, records, n = _HEAD.unpack_from(blob)
    at = _HEAD.size
    id_a = blob[at:at + n]
    addr, at = _unpack_addr(blob, at + n)
    return Conn(Session.from_bytes(backend, blob[at:]), id_a, addr, last, records)


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
