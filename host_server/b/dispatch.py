# host_server.b.dispatch: routes every datagram B receives to the core's state machines.
#   fragment / ack  -> the peer address's FragmentLink (PROTOCOL.md §3.6); a message
#                      that reassembles is routed as if it had arrived whole; with
#                      fragment_resend N, a long message leaves N fragments at a time
#                      (first send, then per ack); once m3 is in, m2's are forgotten
#   m1              -> by SHA-256 of the m1 bytes: a duplicate from ANY address reaches
#                      the same Responder (identical m2) or the error it was refused with,
#                      answered at most duplicate_answers times; a new m1 gets a new
#                      Responder (timestamp and suite checks in the core); an ID not in
#                      the CS's ID set is answered UNKNOWN_ID there, keeping nothing;
#                      else the credential pipeline; a CS lookup is a task
#   m3              -> the handshakes whose m2 went to this address with this 5-bit hint,
#                      trial-decrypted in turn
#   record          -> the sessions with this SID, trial-decrypted in turn
# Anything else, or anything that fails, is dropped silently and counted. Application
# data goes to the sink; its reply returns encrypted in the session. Owns the timers.
# Every datagram out passes the amplification bound (host_server.b.amplify). A
# revocation (Credentials.on_revoke -> revoke) drops the ID's sessions and handshakes.
from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any

from airshake import codec
from airshake import events as ev
from airshake import responder as rsp
from airshake.errors import WIRE_NAMES, AirshakeError, ReplayError
from airshake.fragments import FragmentLink
from host_server.b.amplify import AmplificationGuard
from host_server.b.credentials import Credentials, Decision
from host_server.b.logs import EventLog
from host_server.b.metrics import Metrics
from host_server.b.sink import Sink
from host_server.b.tables import (Addr, Conn, ErrorTable, Handshake, HandshakeTable,
                                  SessionTable)

DONE_LINGER = 64.0     # keep a completed handshake for A's m3 retransmissions
ERROR_LINGER = 60.0    # re-send a refusal to a duplicate m1 this long
SESSION_SWEEP = 60.0   # seconds between sweeps for sessions past their max_age
# (both at most the session max_age: a completed handshake outliving its session would
# confirm a retransmitted m3 for a session B no longer holds)


class Dispatcher:
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
        creds.on_revoke.append(self.revoke)
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
        # scale-out (host_server.b.shared, host_server.b.relay), set by the server
        self.shared: Any = None            # Redis: replay cache, limits, negative cache
        self.relay: Any = None             # sibling workers on this host

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

    def _flush(self, hs: Handshake, addrs: list[Addr], now: float) -> list[bytes]:
        out = hs.responder.datagrams_to_send(now)
        for message in out:
            for addr in addrs:
                self.send(message, addr)
        return out

    def _outcome(self, hs: Handshake | None, outcome: str, reason: str, level: str = "info",
                 **fields: Any) -> None:
        self.metrics.handshake(outcome, reason)
        if hs is not None:
            fields = dict(id=hs.id_hex, suite=hs.suite, cache=hs.cache or "none",
                          cs_ms=hs.cs_ms, ms=round((self.clock() - hs.started) * 1000, 2),
                          **fields)
        getattr(self.log, level)("handshake", outcome=outcome, reason=reason, **fields)

    # -- entry point ------------------------------------------------------------------
    def datagram(self, data: bytes, addr: Addr, relayed: bool = False) -> None:
        """One datagram from addr; relayed: forwarded by a sibling worker (never
        forwarded again)."""
        now = self.clock()
        if not data:
            self.metrics.datagram("empty", "dropped")
            return
        self.amp.received(addr, len(data))   # relayed too: this worker may answer it
        kind = codec.message_type(data)
        if kind == codec.TYPE_FRAGMENT or kind == codec.TYPE_FRAGMENT_ACK:
            try:
                message, back = self._link(addr).incoming(data, now)
            except AirshakeError:
                self.metrics.datagram(codec.kind_name(data), "dropped")
                return
            for frame in back:
                if self._allowed(addr, len(frame)):
                    self._sendto(frame, addr)
            self.metrics.datagram(codec.kind_name(data), "ok")
            if message is None:
                return
            if not message:
                self.metrics.datagram("reserved", "dropped")
                return
            data, kind = message, codec.message_type(message)
            if kind in (codec.TYPE_FRAGMENT, codec.TYPE_FRAGMENT_ACK):
                self.metrics.datagram("fragment", "dropped")
                return
        if kind == codec.TYPE_M1:
            self._on_m1(data, addr, now)
        elif kind == codec.TYPE_M3:
            self._on_m3(data, addr, now, relayed)
        elif kind == codec.TYPE_RECORD:
            self._on_record(data, addr, now, relayed)
        else:
            self.metrics.datagram(codec.kind_name(data), "dropped")

    # -- m1 ---------------------------------------------------------------------------
    def _on_m1(self, m1: bytes, addr: Addr, now: float) -> None:
        key = hashlib.sha256(m1).digest()
        hs = self.handshakes.get(key)
        if hs is not None:
            self._duplicate_m1(hs, m1, addr, now)
            return
        error = self.errors.get(key, now, self.duplicate_answers)
        if error is not None:
            self.metrics.datagram("m1", "duplicate")
            if error:
                self.send(error, addr)
            else:
                self.metrics.withheld("duplicate")
            return
        res = rsp.Responder(self.rcfg, now)
        res.receive(m1, now)
        need = res.next_event()
        if isinstance(need, ev.Refused):      # stale time, a suite B does not select, ...
            self.metrics.datagram("m1", "refused")
            for message in res.datagrams_to_send(now):
                self.send(message, addr)
            self._outcome(None, "refused", WIRE_NAMES[need.code], "debug",
                          id=res.id_a.hex() if res.id_a else "", peer=_peer(addr))
            return
        if not isinstance(need, ev.NeedCredential):   # Dropped: garbage, nothing sent
            self.metrics.datagram("m1", "dropped")
            return
        if self.creds.ids.unknown(need.id_a):      # unknown or revoked: no state kept
            self.metrics.datagram("m1", "unknown_id")
            res.reject_credential(codec.ERR_UNKNOWN_ID)
            for message in res.datagrams_to_send(now):
                self.send(message, addr)
            self.metrics.handshake("refused", "unknown_id")
            return
        self.metrics.datagram("m1", "ok")
        hs = Handshake(key, res, [addr], now, need.id_a.hex(), need.suite, m1=m1)
        for old in self.handshakes.add(hs):
            if old.responder.waiting_credential or old.responder.waiting_m3:  # unfinished
                self._outcome(old, "failed", "evicted", "warning")
        self.handshakes.set_timer(hs, res.timer() or now + 2 * self.rcfg.window)
        self.metrics.pending.set(len(self.handshakes))
        if self.shared is not None:      # the shared checks need a Redis round trip
            self._spawn(self._admit(hs, need.id_a, need.suite, addr, now))
            return
        decision = self.creds.check(need.id_a, need.suite, addr[0], now)
        if decision is not None:
            self._decide(hs, decision, now)
        else:
            self._spawn(self._lookup(hs, need.id_a, need.suite))

    def _duplicate_m1(self, hs: Handshake, m1: bytes, addr: Addr, now: float) -> None:
        self.metrics.datagram("m1", "duplicate")
        if addr not in hs.addrs and len(hs.addrs) < 4:
            hs.addrs.append(addr)
            self.handshakes.index(hs, addr)
        if hs.responder.waiting_m3 and not hs.holding:
            if hs.answers >= self.duplicate_answers:
                self.metrics.withheld("duplicate")
                return
            hs.responder.receive(m1, now)           # queues the identical m2
            for message in hs.responder.datagrams_to_send(now):
                if self.send(message, addr):
                    hs.answers += 1

    async def _lookup(self, hs: Handshake, id_a: bytes, suite: int) -> None:
        try:
            decision = await self.creds.resolve(id_a, suite)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a bug must not take B down: refuse this one, log it
            self.log.error("lookup_error", id=hs.id_hex, error=type(e).__name__)
            decision = Decision(None, codec.ERR_TRY_LATER, 30, "internal_error", "none")
        if self.handshakes.live(hs) and hs.responder.waiting_credential:
            self._decide(hs, decision, self.clock())

    async def _admit(self, hs: Handshake, id_a: bytes, suite: int, addr: Addr,
                     now: float) -> None:
        """The shared limits of a new m1 (host_server.b.shared), then the lookup; the
        per-process limits while Redis is down."""
        proven = self.creds.proven.has(id_a, addr[0])
        verdict = await self.shared.admit(id_a, str(addr[0]), proven, now)
        if not self.handshakes.live(hs) or not hs.responder.waiting_credential:
            return
        now = self.clock()
        if verdict is None:
            decision = self.creds.check(id_a, suite, addr[0], now)
        else:
            decision = self.creds.check_shared(verdict, id_a, suite, now)
        if decision is not None:
            self._decide(hs, decision, now)
        else:
            await self._lookup(hs, id_a, suite)

    def _refuse(self, hs: Handshake, reason: str, now: float) -> None:
        out = self._flush(hs, hs.addrs, now)
        if out:
            self.errors.put(hs.key, out[0], now)
        self.handshakes.remove(hs)
        self.metrics.pending.set(len(self.handshakes))
        self._outcome(hs, "refused", reason)

    def _decide(self, hs: Handshake, d: Decision, now: float) -> None:
        res = hs.responder
        hs.cache, hs.cs_ms = d.cache, d.cs_ms
        if d.cert is None:
            if d.reason.startswith("rate_"):
                self.metrics.handshake("refused", d.reason)
                res.reject_credential(d.code, d.retry_after)
                self._flush(hs, hs.addrs, now)
                self.handshakes.remove(hs)
                self.log.debug("handshake", outcome="refused", reason=d.reason, id=hs.id_hex)
                return
            res.reject_credential(d.code, d.retry_after)
            self._refuse(hs, d.reason, now)
            return
        full_before = self.rcfg.replay_full
        res.provide_credential(d.cert, now)
        self._forget()
        if self.rcfg.replay_full != full_before:
            self.metrics.replay_full.inc()
        early = None
        for e in _drain(res):
            if isinstance(e, ev.EarlyData):
                early = e.data
            elif isinstance(e, ev.Refused):     # C_A failed the core's checks: REJECTED
                self._refuse(hs, "core_rejected", now)
                return
            elif isinstance(e, ev.Dropped):
                if isinstance(e.error, ReplayError):   # an authenticated 0-RTT m1 again
                    self._drop(hs, "replay", addr=hs.addrs[0])
                else:                           # a bad G_X or 0-RTT tag: garbage
                    self._drop(hs, "bad_m1")
                return
        if early is not None and self.shared is not None:   # record it across instances
            hs.holding = True
            self._spawn(self._record_early(hs, d, early))
            return
        self._release(hs, early, now)

    def _drop(self, hs: Handshake, reason: str, addr: Addr = None) -> None:
        self.handshakes.remove(hs)
        self.metrics.pending.set(len(self.handshakes))
        if reason == "replay":
            self.metrics.datagram("m1", "replay")
            self._outcome(None, "dropped", "replay", "debug", peer=_peer(addr))
        else:
            self._outcome(hs, "dropped", reason, "debug")

    def _release(self, hs: Handshake, early: bytes | None, now: float) -> None:
        """m2 out (and 0-RTT data to the sink): the handshake now waits for m3."""
        res = hs.responder
        hs.holding = False
        if early is not None:
            hs.early = self._spawn(self._store(res.id_a, hs.key[:4], 0, early, "early"))
        hs.hint = res.hint
        for addr in hs.addrs:
            self.handshakes.index(hs, addr)
        self._flush(hs, hs.addrs, now)
        self.handshakes.set_timer(hs, res.timer() or now + 2 * self.rcfg.window)

    async def _record_early(self, hs: Handshake, d: Decision, early: bytes) -> None:
        """With Redis: the shared replay cache decides whether this authenticated 0-RTT
        m1's data is accepted (FRESH), a replay (SEEN: dropped, or forwarded to the
        sibling worker that owns it), or refused (FULL, TAKEN_OVER, Redis down: the
        handshake goes on without 0-RTT and A resends the data in m3)."""
        from host_server.b import shared as sh
        verdict = await self.shared.record_early(hs.key, self.clock())
        if not self.handshakes.live(hs):
            return
        now = self.clock()
        state, owner = verdict if verdict is not None else ("redis_down", "")
        if state == sh.FRESH:
            self._release(hs, early, now)
            return
        if state == sh.SEEN:
            sibling = self.relay.sibling_of(owner) if self.relay is not None else None
            sent = 0
            if sibling is not None:
                sent = self.relay.forward(hs.m1, hs.addrs[0], to=sibling)
            if sent > 0:
                self.handshakes.remove(hs)
                self.metrics.pending.set(len(self.handshakes))
                self.metrics.datagram("m1", "relayed")
            else:
                self._drop(hs, "replay", addr=hs.addrs[0])
            return
        if state == sh.FULL:
            self.metrics.replay_full.inc()
        self.shared.early_refused(state)
        self._answer_without_early(hs, d, now)

    def _answer_without_early(self, hs: Handshake, d: Decision, now: float) -> None:
        """Compute hs's m2 again with 0-RTT refused (EARLY_OK clear)."""
        res = rsp.Responder(self.rcfg, now)
        res.receive(hs.m1, now)
        _drain(res)
        if res.waiting_credential:
            res.provide_credential(d.cert, now, refuse_early=True)
            self._forget()
            _drain(res)
        if not res.waiting_m3:
            self._drop(hs, "bad_m1")
            return
        hs.responder = res
        self._release(hs, None, now)

    # -- m3 ---------------------------------------------------------------------------
    def _on_m3(self, m3: bytes, addr: Addr, now: float, relayed: bool = False) -> None:
        for hs in self.handshakes.candidates(addr, codec.m3_hint(m3)):
            res = hs.responder
            if res.complete:
                if m3 != hs.m3:
                    continue
                self.metrics.datagram("m3", "duplicate")
                if not hs.confirming:
                    res.receive(m3, now)       # queues the identical first record
                    self._flush(hs, [addr], now)
                return
            if not res.waiting_m3:
                continue
            res.receive(m3, now)
            if not res.complete:               # another handshake's m3: Dropped
                _drain(res)
                continue
            self.metrics.datagram("m3", "ok")
            self._complete(hs, m3, addr, now)
            return
        if not relayed and self.relay is not None and self.relay.forward(m3, addr) > 0:
            self.metrics.datagram("m3", "relayed")    # a sibling may hold its handshake
            return
        self.metrics.datagram("m3", "dropped")

    def _complete(self, hs: Handshake, m3: bytes, addr: Addr, now: float) -> None:
        res = hs.responder
        hs.m3, hs.confirming = m3, True
        data = b""
        done = None
        for e in _drain(res):
            if isinstance(e, ev.HandshakeComplete):
                done = e
            elif isinstance(e, ev.DataReceived):
                data = e.data
        assert done is not None
        self.amp.prove(addr)
        self.creds.proven.add(done.id_a, addr[0])
        conn = Conn(done.session, done.id_a, addr, now)
        evicted = self.sessions.add(conn)
        if evicted:
            self.log.warning("sessions_evicted", count=evicted)
        self.metrics.sessions.set(self.sessions.count)
        self.completed += 1
        self.handshakes.set_timer(hs, now + self.done_linger)
        self._forget_sent(hs.addrs)
        self._outcome(hs, "ok", "complete", early=done.early_accepted, data=len(data),
                      peer=_peer(addr))
        if data or hs.early is not None:
            self._spawn(self._confirm(hs, conn, data))
        else:
            self._send_first(hs, conn, [])

    def _forget_sent(self, addrs: list[Addr]) -> None:
        """m3 is in, so A holds m2: B answers no more fragment acks for it (a late ack
        would put stale fragments ahead of B's confirming record). The addresses' links
        go, unless one holds part of an inbound message."""
        for addr in addrs:
            link = self.links.get(addr)
            if link is not None and not link.has_partial():
                del self.links[addr]

    async def _confirm(self, hs: Handshake, conn: Conn, data: bytes) -> None:
        replies = []
        if hs.early is not None:
            reply = await hs.early
            if reply:
                replies.append(reply)
        if data:
            reply = await self._store(conn.id_a, conn.session.sid, 0, data, "m3")
            if reply:
                replies.append(reply)
        self._send_first(hs, conn, replies)

    def _send_first(self, hs: Handshake, conn: Conn, replies: list[bytes]) -> None:
        res, now = hs.responder, self.clock()
        for reply in replies:
            res.send(reply)
        if res.confirm_due:
            res.send(b"")                  # B confirms m3 even with nothing to say
        hs.confirming = False
        self._flush(hs, [conn.addr], now)

    # -- records ------------------------------------------------------------------------
    def _on_record(self, record: bytes, addr: Addr, now: float,
                   relayed: bool = False) -> None:
        try:
            _epoch, sid, _seq, _head, _body = codec.decode_record(record)
        except AirshakeError:
            self.metrics.datagram("record", "dropped")
            return
        for conn in self.sessions.get(sid):
            session = conn.session
            if now - session.created > session.max_age:
                self.sessions.remove(conn)
                self.metrics.sessions.set(self.sessions.count)
                continue
            try:
                seq, data = session.open(record)
            except ReplayError:
                self.metrics.datagram("record", "replay")
                return
            except AirshakeError:
                continue
            if conn.addr != addr:
                self.amp.prove(addr)
            conn.addr, conn.last = addr, now
            conn.records += 1
            self.sessions.touch(sid)
            self.metrics.datagram("record", "ok")
            if data:
                self._spawn(self._deliver(conn, seq, data))
            return
        if not relayed and self.relay is not None and self.relay.forward(record, addr) > 0:
            self.metrics.datagram("record", "relayed")  # a sibling may hold the session
            return
        self.metrics.datagram("record", "dropped")

    async def _deliver(self, conn: Conn, seq: int, data: bytes) -> None:
        reply = await self._store(conn.id_a, conn.session.sid, seq, data, "record")
        if reply and not conn.session.expired(self.clock()):
            self.send(conn.session.seal(reply), conn.addr)

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

    # -- revocation -------------------------------------------------------------------
    def revoke(self, id_a: bytes) -> None:
        """Drop every session and handshake of a revoked ID (issue 11 item 3): its next
        record and m3 find nothing and are dropped."""
        sessions = self.sessions.drop_id(id_a)
        id_hex = id_a.hex()
        handshakes = [hs for hs in list(self.handshakes.by_m1.values()) if hs.id_hex == id_hex]
        for hs in handshakes:
            self.handshakes.remove(hs)
        if sessions or handshakes:
            self.metrics.sessions.set(self.sessions.count)
            self.metrics.pending.set(len(self.handshakes))
            self.log.info("revoked_dropped", id=id_hex, sessions=sessions,
                          handshakes=len(handshakes))

    # -- timers -----------------------------------------------------------------------
    def tick(self) -> None:
        now = self.clock()
        for hs in self.handshakes.due(now):
            res = hs.responder
            if res.waiting_credential or res.waiting_m3:
                reason = "no_m3" if res.waiting_m3 else "no_credential"
                res.handle_timer(now)
                _drain(res)
                self._outcome(hs, "failed", reason)
            self.handshakes.remove(hs)
        self.errors.expire(now)
        self.metrics.pending.set(len(self.handshakes))
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_every
            if self.sessions.sweep(now):
                self.metrics.sessions.set(self.sessions.count)


def _drain(res: rsp.Responder) -> list[ev.Event]:
    """Every event res has queued, oldest first."""
    out = []
    while (e := res.next_event()) is not None:
        out.append(e)
    return out


def _peer(addr: Addr) -> str:
    return "%s:%s" % (addr[0], addr[1])
