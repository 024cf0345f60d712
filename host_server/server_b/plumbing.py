# host_server.server_b.plumbing: the state and the outbound path every part of B's dispatcher
# shares (host_server.server_b.dispatch routes, .admission takes m1s, .delivery completes
# handshakes and delivers records): the handshake, session and error tables, the
# fragment links per peer address, sending through the amplification bound, tasks, the
# handshake outcome log line, and the call into the application's sink.
# Rules: the tables are created here and only here; every datagram out passes send() (or
# _allowed() for fragment acks), so the amplification bound holds (host_server.server_b.amplify).
from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from airshake import events as ev
from airshake import responder as rsp
from airshake.fragments import FragmentLink
from host_server.server_b.amplify import AmplificationGuard
from host_server.server_b.credentials import Credentials
from host_server.server_b.logs import EventLog
from host_server.server_b.metrics import Metrics
from host_server.server_b.sink import Sink
from host_server.server_b.tables import (Addr, ErrorTable, Handshake, HandshakeTable,
                                  SessionTable)

DONE_LINGER = 64.0     # keep a completed handshake for A's m3 retransmissions
ERROR_LINGER = 60.0    # re-send a refusal to a duplicate m1 this long
SESSION_SWEEP = 60.0   # seconds between sweeps for sessions past their max_age
# (both at most the session max_age: a completed handshake outliving its session would
# confirm a retransmitted m3 for a session B no longer holds)
_LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
               "error": logging.ERROR}



class Plumbing:
    def __init__(self, rcfg: rsp.ResponderConfig, creds: Credentials, sink: Sink,
                 metrics: Metrics, log: EventLog, send: Callable[[bytes, Addr], None], *,
                 mtu: int = 1200, fragment_resend: int = 0, max_handshakes: int = 50000,
                 max_sessions: int = 100000, amplification: float = 10.0,
                 duplicate_answers: int = 3,
                 clock: Callable[[], float] = time.time) -> None:
        self.rcfg = rcfg
        self.creds = creds
        self.sink = sink
        self.metrics = metrics
        self.log = log
        self._sendto = send
        self.mtu = mtu
        self.fragment_resend = fragment_resend
        self.clock = clock
        self.handshakes = HandshakeTable(max_handshakes)
        self.sessions = SessionTable(max_sessions)
        self.errors = ErrorTable(max(1024, max_handshakes // 4), ERROR_LINGER)
        self.amp = AmplificationGuard(amplification, proven_capacity=max(1024, max_sessions))
        self.duplicate_answers = duplicate_answers
        self.links: OrderedDict[Addr, FragmentLink] = OrderedDict()
        self.max_links = 10000
        self.completed = 0
        self._next_sweep = 0.0
        max_age = rcfg.limits[1]
        self.done_linger = min(DONE_LINGER, max_age)
        self.sweep_every = min(SESSION_SWEEP, max(1.0, max_age / 2))
        # a ServerBackend keeps the ephemeral key loaded until told to forget it
        self._forget: Callable[[], None] = getattr(rcfg.backend, "forget", lambda: None)
        self._tasks: set[asyncio.Task[Any]] = set()
        # scale-out (host_server.server_b.shared, host_server.server_b.relay), set by the server
        self.shared: Any = None            # Redis: replay cache, limits, negative cache
        self.relay: Any = None             # sibling workers on this host
        creds.on_revoke.append(self.revoke)
        # the gauges read the tables' sizes when scraped: nothing to set per handshake
        metrics.sessions.source = lambda: self.sessions.count
        metrics.pending.source = lambda: len(self.handshakes.by_m1)

    # -- plumbing ---------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            e = task.exception()    # a bug: log it as a JSON line, keep serving
            self.log.error("internal_error", where="task", error=type(e).__name__,
                           detail=str(e)[:200])

    async def drain(self) -> None:
        """Wait for lookups and sink calls in flight (graceful stop)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)

    def _link(self, addr: Addr) -> FragmentLink:
        link = self.links.get(addr)
        if link is None:
            link = self.links[addr] = FragmentLink(self.mtu, resend_limit=self.fragment_resend)
            if len(self.links) > self.max_links:
                self.links.popitem(last=False)
        else:
            self.links.move_to_end(addr)
        return link

    def send(self, message: bytes, addr: Addr) -> bool:
        """Send message (fragmented over the MTU); False when the amplification bound
        withheld it."""
        if len(message) <= self.mtu:
            if not self._allowed(addr, len(message)):
                return False
            self._sendto(message, addr)
            return True
        frames = self._link(addr).outgoing(message)
        if self.fragment_resend:
            # paced (LoRaWAN class A: one downlink per uplink): the first fragments only;
            # A pulls the rest with fragment acks, so the network never queues stale ones
            frames = frames[:self.fragment_resend]
        if not self._allowed(addr, sum(len(f) for f in frames)):
            return False
        for frame in frames:
            self._sendto(frame, addr)
        return True

    def _allowed(self, addr: Addr, size: int) -> bool:
        if self.amp.allow(addr, size):
            return True
        self.metrics.withheld("amplification")
        return False

    def _flush(self, hs: Handshake, addrs: Sequence[Addr], now: float) -> list[bytes]:
        assert hs.responder is not None
        out = hs.responder.datagrams_to_send(now)
        for message in out:
            for addr in addrs:
                self.send(message, addr)
        return out

    def _outcome(self, hs: Handshake | None, outcome: str, reason: str, level: str = "info",
                 **fields: Any) -> None:
        self.metrics.handshake(outcome, reason)
        if not self.log.enabled(_LOG_LEVELS[level]):
            return                      # B's hot path: no fields built for no line
        if "peer" in fields:            # an address: formatted only for a line
            fields["peer"] = _peer(fields["peer"])
        if hs is not None:
            fields = dict(id=hs.id_hex, suite=hs.suite, cache=hs.cache or "none",
                          cs_ms=hs.cs_ms, ms=round((self.clock() - hs.started) * 1000, 2),
                          **fields)
        getattr(self.log, level)("handshake", outcome=outcome, reason=reason, **fields)

    async def _store(self, id_a: bytes, sid: bytes, seq: int, data: bytes,
                     kind: str) -> bytes | None:
        try:
            reply = await self.sink.on_record(id_a, sid, seq, data, kind)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the application's problem must not end the session
            self.metrics.record(kind, "error")
            self.log.error("sink_error", id=id_a.hex(), kind=kind, seq=seq,
                           error=type(e).__name__)
            return None
        self.metrics.record(kind, "ok")
        self.log.debug("record", id=id_a.hex(), sid=sid.hex(), kind=kind, seq=seq,
                       size=len(data))
        return reply

    # -- revocation (Credentials.on_revoke) ----------------------------------------
    def revoke(self, id_a: bytes) -> None:
        """Drop every session and handshake of a revoked ID (issue 11 item 3): its next
        record and m3 find nothing and are dropped."""
        sessions = self.sessions.drop_id(id_a)
        id_hex = id_a.hex()
        handshakes = [hs for hs in list(self.handshakes.by_m1.values()) if hs.id_hex == id_hex]
        for hs in handshakes:
            self.handshakes.remove(hs)
        if sessions or handshakes:
            self.log.info("revoked_dropped", id=id_hex, sessions=sessions,
                          handshakes=len(handshakes))


def _drain(res: rsp.Responder) -> list[ev.Event]:
    """Every event res has queued, oldest first."""
    out = []
    while (e := res.next_event()) is not None:
        out.append(e)
    return out


def _peer(addr: Addr) -> str:
    return "%s:%s" % (addr[0], addr[1])
