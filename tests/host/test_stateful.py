# tests/host/test_stateful.py: a Hypothesis state machine that runs device A (the core's
# Initiator) and a model of server B (core Responders routed like host_server.server_b.dispatch)
# through tools/linkemu's Link model in virtual time, with a fault schedule chosen by
# Hypothesis frame by frame: drop, duplicate, reorder, delay and tamper (bit flips), on
# both directions, with airshake.fragments.FragmentLink on both sides (C_B by value over
# a 51-byte MTU). Rules: advance the simulation, A or B sends a record, A starts a new
# handshake (then by reference, maybe 0-RTT), B restarts (loses every state).
# Invariants after every rule:
#   - B never establishes a session A did not establish for the same m1, and when both
#     have, they hold the same keys (a record sealed on one side opens on the other,
#     both ways); A only ever accepts the m2 a B Responder made for A's own m1;
#   - every piece of application data a role accepts is what the other sealed, once;
#   - A sends each m1 and m3 at most 1 + max_retries times.
# At teardown the run is driven to quiescence on a clean link (bounded steps): A is
# CONFIRMED or FAILED (cleanly, by HandshakeFailed) within its retry budget, and every
# Responder of B is DONE, FAILED or EXPIRED.
# HYPOTHESIS_PROFILE=fuzz runs many more, longer examples (`make fuzz` style).
from __future__ import annotations

import copy
import heapq
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule)

from testkit import hs_support
from airshake import codec
from airshake import events as ev
from airshake import responder as rsp
from airshake.crypto import load_backend
from airshake.errors import AirshakeError
from airshake.fragments import FragmentLink
from airshake.initiator import CONFIRMED, FAILED, IDLE, Initiator
from airshake.keys import ServerRef
from airshake.session import Session
from airshake_tools.linkemu import Faults, Link, get_profile
from airshake_tools.linkemu.faults import Outcome
from airshake_tools.linkemu.profiles import Profile
from host_server.server_b.dispatch import DONE_LINGER, ERROR_LINGER

# a copy of the pyca backend whose random() the machine seeds for each example: the same
# choices then give the same ephemeral keys, hints and tags, so Hypothesis can replay and
# shrink (the shared, cached backend keeps os.urandom)
BACKEND = copy.copy(load_backend("pyca"))
SUITE = 0
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
RTO = 2.0
DRAIN_STEPS = 20000          # teardown: a run must go quiet within this many events
FAULT_KINDS = ("drop", "duplicate", "reorder", "delay", "tamper", "tamper+original")
PROFILES: dict[str, Profile] = {
    # 51-byte frames (LoRaWAN EU868 DR0-2 payload): C_B by value needs 7 fragments
    "ideal-51": Profile("ideal-51", "ideal", 51, "no delay, 51-byte frames"),
    "lora-sf7-51": Profile("lora-sf7-51", "lora", 51, "raw LoRa SF7, 51-byte frames, "
                           "no duty cycle", sf=7),
    "lora-sf7": get_profile("lora-sf7"),                  # 1 % duty cycle, 255-byte frames
    "lorawan-eu868-dr0": get_profile("lorawan-eu868-dr0"),  # class A windows, 51 bytes
    "nbiot": get_profile("nbiot"),
}
STATS: Counter[str] = Counter()      # what the runs did, printed at the end of the module


class PlannedFaults(Faults):
    """A Faults whose every outcome comes from the state machine (so from Hypothesis),
    plugged into the Link model in place of its seeded random draws."""

    def __init__(self, hook: Any, label: str = "") -> None:
        super().__init__()
        self.hook = hook
        self.label = label

    def fork(self, label: str) -> PlannedFaults:
        return PlannedFaults(self.hook, label)

    def outcome(self, frame: bytes, spacing: float = 0.05) -> Outcome:
        return self.hook(self.label, bytes(frame), spacing)


@dataclass
class Run:
    """One handshake attempt of A (one Initiator)."""
    ini: Initiator
    data: bytes
    early: bool
    started: float
    sent: Counter[bytes] = field(default_factory=Counter)     # m1/m3 bytes -> times sent
    m1s: list[bytes] = field(default_factory=list)
    m2: bytes | None = None           # the m2 A accepted
    session: Session | None = None
    keys: bytes = b""                 # the session as exported when it was established
    ended: float | None = None
    failed: str | None = None


@dataclass(eq=False)
class BSide:
    """One Responder of the B model, with the dispatcher's bookkeeping."""
    res: rsp.Responder
    gen: int
    m1: bytes
    linger_until: float | None = None
    keys: bytes = b""
    m2s: set[bytes] = field(default_factory=set)    # every m2 this Responder sent


class HandshakeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._data: Any = None
        self.t = 0.0

    # -- setup ------------------------------------------------------------------------
    @initialize(profile=st.sampled_from(sorted(PROFILES)), by_reference=st.booleans(),
                skew=st.sampled_from([0, 0, 1, 30, -60, 500]),
                rate=st.sampled_from([0, 5, 15, 30, 50]), max_retries=st.integers(1, 4),
                cs_delay=st.sampled_from([0.0, 0.0, 0.4, 3.0]),
                cs_answer=st.sampled_from(["ok"] * 7 + ["try_later"]),
                first=st.binary(max_size=24), seed=st.integers(0, 2**32 - 1), data=st.data())
    def start(self, profile: str, by_reference: bool, skew: int, rate: int, max_retries: int,
              cs_delay: float, cs_answer: str, first: bytes, seed: int, data: Any) -> None:
        self._data = data
        BACKEND.use_random(random.Random(seed).randbytes)
        self.profile = PROFILES[profile]
        self.rate = rate
        self.skew = skew                          # A's clock = virtual time + skew
        self.max_retries = max_retries
        self.cs_delay = cs_delay
        self.cs_answer = cs_answer
        self.t = float(hs_support.now())
        self.link = Link(self.profile, PlannedFaults(self._fault))
        mtu = self.profile.mtu
        self.a_frag, self.b_frag = FragmentLink(mtu), FragmentLink(mtu)
        self.queue: list[tuple[float, int, str, bytes, bool]] = []   # (at, n, dir, frame, tampered)
        self.creds: list[tuple[float, int, BSide]] = []             # pending CS answers
        self.n = 0
        self.device = hs_support.device_key(BACKEND, SUITE)
        self.c_a = hs_support.cert(SUITE, "device_cert")
        self.gen = 0
        self.restarts = 0
        self._new_b()
        self.sides: list[BSide] = []              # every Responder ever, all generations
        self.runs: list[Run] = []
        self.sent_by_a: dict[tuple[bytes, int], bytes] = {}
        self.sent_by_b: dict[tuple[bytes, int], bytes] = {}
        self.got_by_a: set[tuple[bytes, int]] = set()
        self.got_by_b: set[tuple[bytes, int]] = set()
        self.early_delivered: dict[bytes, int] = {}     # H(m1) -> B generation
        self.ack_rounds = 0
        ref = ServerRef(BACKEND, SUITE, hs_support.cert(SUITE, "server_cert")) \
            if by_reference else None
        self._connect(first, False, ref)
        STATS["examples"] += 1
        STATS["profile " + profile] += 1

    def _new_b(self) -> None:
        self.b_cfg = hs_support.config(BACKEND, (SUITE,), accept_early=True)
        self.b_cfg.started = int(self.t)
        self.by_m1: dict[bytes, BSide] = {}
        self.sessions: dict[bytes, list[BSide]] = {}
        self.b_frag = FragmentLink(self.profile.mtu)

    # -- the fault plan ---------------------------------------------------------------
    def _fault(self, direction: str, frame: bytes, spacing: float) -> Outcome:
        d = self._data
        if d is None or self.rate == 0 or d.draw(st.integers(0, 99)) < 100 - self.rate:
            return Outcome([(0.0, frame)])
        kind = d.draw(st.sampled_from(FAULT_KINDS))
        STATS["fault " + kind] += 1
        if kind == "drop":
            return Outcome([], lost=True)
        if kind == "duplicate":
            return Outcome([(0.0, frame), (spacing * d.draw(st.integers(0, 40)) / 10, frame)],
                           duplicated=True)
        if kind == "reorder":
            return Outcome([(spacing * d.draw(st.integers(10, 30)) / 10, frame)],
                           reordered=True)
        if kind == "delay":
            return Outcome([(float(d.draw(st.sampled_from([0.5, 1.9, 4.5, 20.0, 250.0]))),
                             frame)])
        flipped = bytearray(frame)
        for _ in range(d.draw(st.integers(1, 3))):
            bit = d.draw(st.integers(0, len(frame) * 8 - 1))
            flipped[bit // 8] ^= 0x80 >> (bit % 8)
        copies = [(0.0, bytes(flipped))]
        if kind == "tamper+original":
            copies.append((spacing * d.draw(st.integers(0, 30)) / 10, frame))
        return Outcome(copies, corrupted=True)

    # -- sending through the link -------------------------------------------------------
    def _send(self, direction: str, message: bytes) -> None:
        frag = self.a_frag if direction == "up" else self.b_frag
        for frame in frag.outgoing(message):
            self._frame(direction, frame)

    def _frame(self, direction: str, frame: bytes) -> None:
        STATS["frames " + direction] += 1
        for d in self.link.send(direction, frame, self.t):
            self.n += 1
            # a LoRaWAN uplink may release a held downlink: its Delivery says "down"
            heapq.heappush(self.queue, (d.at, self.n, d.direction, d.frame,
                                        d.frame != frame and d.direction == direction))

    # -- A ----------------------------------------------------------------------------
    @property
    def run(self) -> Run:
        return self.runs[-1]

    def _a_now(self) -> float:
        return self.t + self.skew

    def _connect(self, data: bytes, early: bool, ref: ServerRef | None) -> None:
        ini = Initiator(BACKEND, [self.device], hs_support.anchor(SUITE), server=ref,
                        rto=RTO, max_retries=self.max_retries,
                        server_name=hs_support.SERVER_NAME)
        self.runs.append(Run(ini, data, early, self.t))
        ini.connect(self._a_now(), data, early)
        self._flush_a()
        STATS["handshakes started"] += 1

    def _flush_a(self) -> None:
        run = self.run
        for m in run.ini.datagrams_to_send(self._a_now()):
            kind = m[0] >> 5
            if kind in (codec.TYPE_M1, codec.TYPE_M3):
                run.sent[m] += 1
                if kind == codec.TYPE_M1 and m not in run.m1s:
                    run.m1s.append(m)
            if kind == codec.TYPE_RECORD and run.session is not None:
                _e, sid, seq, _h, _b = codec.decode_record(m)
                assert sid == run.session.sid
            self._send("up", m)

    def _drain_a(self, message: bytes | None) -> None:
        run = self.run
        while (e := run.ini.next_event()) is not None:
            if isinstance(e, ev.HandshakeComplete):
                run.session, run.m2, run.keys = e.session, message, e.session.export()
                STATS["A complete"] += 1
            elif isinstance(e, ev.HandshakeConfirmed):
                run.ended = self.t
                STATS["A confirmed"] += 1
            elif isinstance(e, ev.HandshakeFailed):
                run.ended, run.failed = self.t, e.reason
                STATS["A failed"] += 1
            elif isinstance(e, ev.DataReceived):
                assert run.session is not None
                key = (run.session.sid, e.seq)
                assert self.sent_by_b.get(key) == e.data, "A accepted data B never sent"
                assert key not in self.got_by_a, "A accepted a record twice"
                self.got_by_a.add(key)
            elif isinstance(e, ev.ServerRejected):
                STATS["A got error %d" % e.code] += 1

    def _deliver_a(self, frame: bytes, tampered: bool) -> None:
        try:
            message, back = self.a_frag.incoming(frame, self.t)
        except AirshakeError:
            return
        for b in back:
            self._frame("up", b)
        if message is None:
            return
        try:
            self.run.ini.receive(message, self._a_now())
        except AirshakeError:
            STATS["A dropped"] += 1
        else:
            STATS["A accepted tampered frame" if tampered else "A accepted"] += 1
        self._drain_a(message)
        self._flush_a()

    def _a_timer_at(self) -> float | None:
        deadline = self.run.ini.timer()
        return None if deadline is None else deadline - self.skew

    def _a_timer(self) -> None:
        ini = self.run.ini
        if self.ack_rounds < self.max_retries:       # as device.app: ask for what is missing
            acks = self.a_frag.acks()
            if acks:
                self.ack_rounds += 1
                for a in acks:
                    self._frame("up", a)
        ini.handle_timer(max(self._a_now(), ini.timer()))
        self._drain_a(None)
        self._flush_a()

    # -- B (routing as host_server.server_b.dispatch) -----------------------------------------
    def _flush_b(self, side: BSide) -> None:
        for m in side.res.datagrams_to_send(self.t):
            if codec.message_type(m) == codec.TYPE_M2:
                side.m2s.add(m)
            self._send("down", m)

    def _drain_b(self, side: BSide) -> None:
        res = side.res
        while (e := res.next_event()) is not None:
            if isinstance(e, ev.NeedCredential):
                self.n += 1
                heapq.heappush(self.creds, (self.t + self.cs_delay, self.n, side))
            elif isinstance(e, ev.EarlyData):
                run = self._run_of(side.m1)
                assert run is not None and run.early and e.data == run.data, \
                    "B accepted 0-RTT data A never sent"
                m1h = BACKEND.sha256(side.m1)
                # (a restarted B once accepted 0-RTT data stamped in (started,
                # started + window] again; the core now compares with started + window)
                assert m1h not in self.early_delivered, "0-RTT data delivered twice"
                self.early_delivered[m1h] = side.gen
                STATS["B early data"] += 1
            elif isinstance(e, ev.HandshakeComplete):
                self.sessions.setdefault(e.session.sid, []).append(side)
                side.keys = e.session.export()
                side.linger_until = self.t + DONE_LINGER
                STATS["B complete"] += 1
            elif isinstance(e, ev.DataReceived):
                sid = res.session.sid
                if e.seq < 0:                       # the data of m3
                    run = self._run_of(side.m1)
                    assert run is not None and e.data == run.data, "m3 data A never sent"
                    self._b_send(side, b"ack:m3")
                else:
                    key = (sid, e.seq)
                    assert self.sent_by_a.get(key) == e.data, "B accepted data A never sent"
                    assert key not in self.got_by_b, "B accepted a record twice"
                    self.got_by_b.add(key)
                    self._b_send(side, b"ack:%d" % e.seq)
            elif isinstance(e, ev.HandshakeFailed):
                STATS["B expired"] += 1

    def _b_send(self, side: BSide, data: bytes, key_update: bool = False) -> None:
        session = side.res.session
        self.sent_by_b[(session.sid, session.send_seq)] = data
        side.res.send(data, key_update)

    def _deliver_b(self, frame: bytes, tampered: bool) -> None:
        try:
            message, back = self.b_frag.incoming(frame, self.t)
        except AirshakeError:
            return
        for b in back:
            self._frame("down", b)
        if not message:
            return
        kind = message[0] >> 5
        accepted = False
        if kind == codec.TYPE_M1:
            accepted = self._b_m1(message)
        elif kind == codec.TYPE_M3:
            for side in list(self.by_m1.values()):
                if side.res.hint != message[0] & 0x1F or \
                        side.res.state not in (rsp.WAIT_M3, rsp.DONE):
                    continue
                try:
                    side.res.receive(message, self.t)
                except AirshakeError:
                    continue
                accepted = True
                self._drain_b(side)
                self._flush_b(side)
                break
        elif kind == codec.TYPE_RECORD:
            try:
                sid = codec.decode_record(message)[1]
            except AirshakeError:
                sid = b""
            for side in self.sessions.get(sid, []):
                try:
                    side.res.receive(message, self.t)
                except AirshakeError:
                    continue
                accepted = True
                self._drain_b(side)
                self._flush_b(side)
                break
        STATS[("B accepted tampered " if tampered else "B accepted ") + str(kind)
              if accepted else "B dropped"] += 1

    def _b_m1(self, m1: bytes) -> bool:
        side = self.by_m1.get(m1)
        if side is not None:                       # a duplicate: the identical answer
            try:
                side.res.receive(m1, self.t)
            except AirshakeError:
                return False
            self._flush_b(side)
            return True
        side = BSide(rsp.Responder(self.b_cfg, self.t), self.gen, m1)
        try:
            side.res.receive(m1, self.t)
        except AirshakeError:
            if side.res.state == rsp.FAILED and side.res._m1 is not None:
                side.linger_until = self.t + ERROR_LINGER    # refused: answer dups alike
                self.by_m1[m1] = side
                self.sides.append(side)
            self._flush_b(side)
            return False
        self.by_m1[m1] = side
        self.sides.append(side)
        self._drain_b(side)
        self._flush_b(side)
        return True

    def _answer_credential(self, side: BSide) -> None:
        res = side.res
        if res.state != rsp.WAIT_CRED or side.gen != self.gen:
            return
        try:
            if self.cs_answer == "try_later":
                res.reject_credential(codec.ERR_TRY_LATER, 5)
            elif res.id_a != self.device.id_a:     # a tampered ID: the CS does not know it
                res.reject_credential(codec.ERR_UNKNOWN_ID)
            else:
                res.provide_credential(self.c_a, self.t)
        except AirshakeError:                      # a bad G_X, a 0-RTT tag that fails
            STATS["B refused at credential"] += 1
        self._drain_b(side)
        self._flush_b(side)
        if res.state == rsp.FAILED and side.linger_until is None:
            side.linger_until = self.t + ERROR_LINGER

    def _b_timers(self) -> list[tuple[float, BSide]]:
        out = []
        for side in self.by_m1.values():
            d = side.res.timer()
            if d is not None:
                out.append((d, side))
            if side.linger_until is not None:
                out.append((side.linger_until, side))
        return out

    def _b_timer(self, side: BSide) -> None:
        res = side.res
        d = res.timer()
        if d is not None and d <= self.t:
            res.handle_timer(self.t)
            self._drain_b(side)
            del self.by_m1[side.m1]                # the dispatcher forgets it
        elif side.linger_until is not None and side.linger_until <= self.t:
            del self.by_m1[side.m1]

    # -- the simulation ---------------------------------------------------------------
    def _next(self) -> tuple[float, str, Any] | None:
        cands: list[tuple[float, int, str, Any]] = []
        if self.queue:
            cands.append((self.queue[0][0], 0, "deliver", None))
        if self.creds:
            cands.append((self.creds[0][0], 1, "cred", None))
        a = self._a_timer_at()
        if a is not None:
            cands.append((a, 2, "a_timer", None))
        for at, side in self._b_timers():
            cands.append((at, 3, "b_timer", side))
        if not cands:
            return None
        at, _p, what, arg = min(cands, key=lambda c: (c[0], c[1]))
        return at, what, arg

    def _step(self) -> bool:
        nxt = self._next()
        if nxt is None:
            return False
        at, what, arg = nxt
        self.t = max(self.t, at)
        if what == "deliver":
            _at, _n, direction, frame, tampered = heapq.heappop(self.queue)
            if direction == "up":
                self._deliver_b(frame, tampered)
            else:
                self._deliver_a(frame, tampered)
        elif what == "cred":
            self._answer_credential(heapq.heappop(self.creds)[2])
        elif what == "a_timer":
            self._a_timer()
        else:
            self._b_timer(arg)
        STATS["events"] += 1
        return True

    # -- rules ------------------------------------------------------------------------
    @rule(data=st.data(), count=st.integers(1, 12))
    def advance(self, data: Any, count: int) -> None:
        self._data = data
        for _ in range(count):
            if not self._step():
                break

    @precondition(lambda self: self.run.session is not None and self.run.failed is None)
    @rule(data=st.data(), payload=st.binary(max_size=60), key_update=st.booleans())
    def a_sends_record(self, data: Any, payload: bytes, key_update: bool) -> None:
        self._data = data
        session = self.run.session
        self.sent_by_a[(session.sid, session.send_seq)] = payload
        self.run.ini.send(payload, key_update)
        self._flush_a()

    @precondition(lambda self: self._b_side_of_current() is not None)
    @rule(data=st.data(), payload=st.binary(max_size=60), key_update=st.booleans())
    def b_sends_record(self, data: Any, payload: bytes, key_update: bool) -> None:
        self._data = data
        side = self._b_side_of_current()
        self._b_send(side, payload, key_update)
        self._flush_b(side)

    @precondition(lambda self: self.run.ini.state in (CONFIRMED, FAILED) and len(self.runs) < 4)
    @rule(data=st.data(), payload=st.binary(max_size=24), early=st.booleans())
    def new_handshake(self, data: Any, payload: bytes, early: bool) -> None:
        self._data = data
        self.ack_rounds = 0
        self._connect(payload, early, self.run.ini.server)

    @precondition(lambda self: self.restarts < 2)
    @rule()
    def restart_b(self) -> None:
        """B loses every handshake, session and its replay cache (kill -9 and start)."""
        self.restarts += 1
        self.gen += 1
        self.creds = []
        self._new_b()
        STATS["B restarts"] += 1

    def _b_side_of_current(self) -> BSide | None:
        session = self.run.session
        if session is None:
            return None
        for side in self.sessions.get(session.sid, []):
            if side.res.session is not None and side.res.state == rsp.DONE:
                return side
        return None

    def _run_of(self, m1: bytes) -> Run | None:
        for run in self.runs:
            if m1 in run.m1s:
                return run
        return None

    # -- invariants -------------------------------------------------------------------
    @invariant()
    def established_sides_agree(self) -> None:
        if not self.runs:
            return
        for side in self.sides:
            res = side.res
            if res.state != rsp.DONE:
                continue
            run = self._run_of(side.m1)
            assert run is not None and run.session is not None, \
                "B established a session that A never established"
            assert side.m1 == run.m1s[-1]
            # compared as established: later key updates may legitimately be in flight
            _same_keys(run.keys, side.keys)
        for run in self.runs:
            if run.session is None:
                continue
            makers = [s for s in self.sides
                      if s.m1 == run.m1s[-1] and run.m2 in s.m2s]
            assert makers, "A accepted an m2 no Responder made for its m1"
            if run.ini.state == CONFIRMED:
                assert any(s.res.state == rsp.DONE for s in makers)

    @invariant()
    def retransmissions_stay_in_budget(self) -> None:
        for run in self.runs:
            assert max(run.sent.values(), default=0) <= 1 + self.max_retries
            assert len(run.m1s) <= 1 + self.max_retries

    def teardown(self) -> None:
        if not self.runs:
            return
        self._data = None                          # a clean link from here on
        for _ in range(DRAIN_STEPS):
            if not self._step():
                break
        else:
            pytest.fail("the run did not go quiet within %d events" % DRAIN_STEPS)
        self.established_sides_agree()
        run = self.run
        assert run.ini.state in (CONFIRMED, FAILED), "A is stuck in state %d" % run.ini.state
        # a handshake ends within its retry budget: at most 1 + max_retries m1 variants
        # (new ephemeral after STALE_TIME / UNSUPPORTED_SUITE), each retried with a
        # doubling timer, then as much again for m3
        one = RTO * (2 ** (self.max_retries + 1) - 1)
        for r in self.runs:
            assert r.ini.state != IDLE
            assert r.ended is not None
            assert r.ended - r.started <= (self.max_retries + 2) * one + 1e-6, \
                "handshake took %.1f s, budget %.1f s" % (r.ended - r.started,
                                                          (self.max_retries + 2) * one)
            if r.ini.state == FAILED:
                assert r.failed is not None                # cleanly: a HandshakeFailed
        for side in self.sides:              # (a restarted B's old Responders died with it)
            if side.gen == self.gen:
                assert side.res.state in (rsp.DONE, rsp.FAILED, rsp.EXPIRED), side.res.state
        STATS["runs " + ("confirmed" if run.ini.state == CONFIRMED else "failed")] += 1


def _same_keys(a: bytes, b: bytes) -> None:
    """Seal on a copy of one side and open on a copy of the other, both ways."""
    ca = Session.from_bytes(BACKEND, a)
    cb = Session.from_bytes(BACKEND, b)
    assert ca.sid == cb.sid
    assert cb.open(ca.seal(b"probe a->b"))[1] == b"probe a->b"
    assert ca.open(cb.seal(b"probe b->a"))[1] == b"probe b->a"


HandshakeMachine.TestCase.settings = settings(
    max_examples=3000 if FUZZ else 60, stateful_step_count=80 if FUZZ else 30,
    deadline=None, suppress_health_check=list(HealthCheck))
TestHandshakeMachine = HandshakeMachine.TestCase


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nstateful handshake runs: " + ", ".join("%s=%d" % kv for kv in sorted(STATS.items())))
