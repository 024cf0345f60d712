# host_server.server_b.admission: what B does with an m1 (PROTOCOL.md §7.2). By SHA-256 of the
# m1 bytes: a duplicate from ANY address reaches the same Responder (identical m2) or the
# error it was refused with, answered at most duplicate_answers times; a new m1 gets a
# new Responder (timestamp and suite checks in the core: a Refused event is answered, a
# Dropped one is not); an ID not in the CS's ID set is answered UNKNOWN_ID there, keeping
# nothing; else the credential pipeline (the shared limits with Redis, the CS lookup as a
# task, the core's checks of C_A), then m2 out, and 0-RTT data to the sink (recorded
# across instances first when Redis is shared).
from __future__ import annotations

import asyncio
import hashlib

from airshake import codec
from airshake import events as ev
from airshake import responder as rsp
from airshake.errors import WIRE_NAMES, ReplayError
from host_server.server_b.credentials import Decision
from host_server.server_b.tables import Addr, Handshake

from host_server.server_b.plumbing import Plumbing, _drain


class Admission(Plumbing):
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
                          id=res.id_a.hex() if res.id_a else "", peer=addr)
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
        hs = Handshake(key, res, (addr,), now, need.id_a.hex(), need.suite, m1=m1)
        for old in self.handshakes.add(hs):
            if old.responder is not None and (old.responder.waiting_credential
                                              or old.responder.waiting_m3):  # unfinished
                self._outcome(old, "failed", "evicted", "warning")
        if self.shared is not None:      # the shared checks need a Redis round trip
            self.handshakes.set_timer(hs, res.timer() or now + 2 * self.rcfg.window)
            self._spawn(self._admit(hs, need.id_a, need.suite, addr, now))
            return
        decision = self.creds.check(need.id_a, need.suite, addr[0], now)
        if decision is None:
            self.handshakes.set_timer(hs, res.timer() or now + 2 * self.rcfg.window)
            self._spawn(self._lookup(hs, need.id_a, need.suite))
            return
        try:
            self._decide(hs, decision, now)    # m2 out sets the m3 timer, or hs is gone
        finally:
            if not hs.timer_at and self.handshakes.live(hs):
                self.handshakes.set_timer(hs, now + 2 * self.rcfg.window)

    def _duplicate_m1(self, hs: Handshake, m1: bytes, addr: Addr, now: float) -> None:
        self.metrics.datagram("m1", "duplicate")
        if addr not in hs.addrs and len(hs.addrs) < 4:
            hs.addrs += (addr,)
            self.handshakes.index(hs, addr)
        res = hs.responder
        if res is not None and res.waiting_m3 and not hs.holding:
            if hs.answers >= self.duplicate_answers:
                self.metrics.withheld("duplicate")
                return
            res.receive(m1, now)                    # queues the identical m2
            for message in res.datagrams_to_send(now):
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
        if self.handshakes.live(hs) and _waiting_credential(hs):
            self._decide(hs, decision, self.clock())

    async def _admit(self, hs: Handshake, id_a: bytes, suite: int, addr: Addr,
                     now: float) -> None:
        """The shared limits of a new m1 (host_server.server_b.shared), then the lookup; the
        per-process limits while Redis is down."""
        proven = self.creds.proven.has(id_a, addr[0])
        verdict = await self.shared.admit(id_a, str(addr[0]), proven, now)
        if not self.handshakes.live(hs) or not _waiting_credential(hs):
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
        self._outcome(hs, "refused", reason)

    def _decide(self, hs: Handshake, d: Decision, now: float) -> None:
        res = hs.responder
        assert res is not None              # waiting for its credential
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
        if reason == "replay":
            self.metrics.datagram("m1", "replay")
            self._outcome(None, "dropped", "replay", "debug", peer=addr)
        else:
            self._outcome(hs, "dropped", reason, "debug")

    def _release(self, hs: Handshake, early: bytes | None, now: float) -> None:
        """m2 out (and 0-RTT data to the sink): the handshake now waits for m3."""
        res = hs.responder
        assert res is not None
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
        from host_server.server_b import shared as sh
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


def _waiting_credential(hs: Handshake) -> bool:
    return hs.responder is not None and hs.responder.waiting_credential
