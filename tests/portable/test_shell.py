# airshake.shell.drive, the one I/O loop of device A, on both runtimes: against the core's
# Responder over an in-memory link on a virtual clock (no sleeping), with loss, silence,
# garbage and a fragmenting link.
import asyncio

from testkit.hs_support import initiator, config, cert, now
from testkit.support import backends
from airshake import events as ev
from airshake import shell
from airshake.responder import Responder


class Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


class Link:
    """A's end of a link to one Responder. recv_message() returns what B queued, else
    lets `timeout` pass on the virtual clock. drop(message) -> True loses an uplink."""

    def __init__(self, backend, clock, drop=None, answer=True):
        self.res = None
        self.cfg = config(backend, (0,))
        self.clock = clock
        self.drop = drop
        self.answer = answer
        self.inbox = []
        self.sent = []

    async def send_message(self, message):
        self.sent.append(message)
        if (self.drop and self.drop(message)) or not self.answer:
            return
        if self.res is None:
            self.res = Responder(self.cfg, self.clock())
        res = self.res
        res.receive(message, self.clock())
        while True:
            e = res.next_event()
            if e is None:
                break
            if isinstance(e, ev.NeedCredential):
                res.provide_credential(cert(0, "device_cert"), self.clock())
            elif isinstance(e, ev.DataReceived):
                res.send(b"ack:" + e.data)
        if res.confirm_due:
            res.send(b"")
        self.inbox.extend(res.datagrams_to_send(self.clock()))

    async def recv_message(self, timeout):
        if self.inbox:
            return self.inbox.pop(0)
        self.clock.t += timeout
        return None


def _run(coro):
    return asyncio.run(coro)


def _setup(**link_kw):
    backend = backends()[0]
    clock = Clock(now())
    ini = initiator(backend, 0, rto=2.0, max_retries=3)
    link = Link(backend, clock, **link_kw)
    return ini, link, clock


def _is(cls):
    return lambda e: isinstance(e, cls)


def test_drive_completes_and_returns_the_awaited_event_in_order():
    ini, link, clock = _setup()
    seen = []
    ini.connect(clock(), b"n=1")
    got = _run(shell.drive(ini, link, clock, until=_is(ev.HandshakeConfirmed),
                           on_event=lambda e: seen.append(type(e).__name__)))
    assert isinstance(got, ev.HandshakeConfirmed) and ini.confirmed
    assert seen[:2] == ["HandshakeComplete", "HandshakeConfirmed"], seen
    assert [m[0] >> 5 for m in link.sent] == [0, 2]          # m1, m3: nothing else
    assert link.res.complete


def test_a_lost_m1_is_resent_after_the_timer_on_the_virtual_clock():
    lost = [1]

    def drop(m):
        if lost[0] and m[0] >> 5 == 0:
            lost[0] -= 1
            return True
        return False
    ini, link, clock = _setup(drop=drop)
    t0 = clock()
    ini.connect(t0)
    got = _run(shell.drive(ini, link, clock, until=_is(ev.HandshakeConfirmed)))
    assert isinstance(got, ev.HandshakeConfirmed)
    assert [m[0] >> 5 for m in link.sent] == [0, 0, 2]
    assert clock() - t0 >= 2.0                               # one rto waited


def test_silence_ends_after_max_retries_with_handshake_failed():
    ini, link, clock = _setup(answer=False)
    seen = []
    ini.connect(clock())
    got = _run(shell.drive(ini, link, clock, until=_is(ev.HandshakeConfirmed),
                           on_event=seen.append))
    assert got is None and ini.ended
    assert len(link.sent) == 1 + ini.max_retries             # m1 and its resends
    assert isinstance(seen[-1], ev.HandshakeFailed)


def test_idle_bounds_the_wait_once_nothing_is_left_to_resend():
    ini, link, clock = _setup()
    ini.connect(clock())
    _run(shell.drive(ini, link, clock, until=_is(ev.HandshakeConfirmed)))
    t0 = clock()
    got = _run(shell.drive(ini, link, clock, until=_is(ev.DataReceived), idle=5.0))
    assert got is None and clock() - t0 == 5.0
    ini.send(b"n=2")                                         # a record: B answers it
    got = _run(shell.drive(ini, link, clock, until=_is(ev.DataReceived), idle=5.0))
    assert isinstance(got, ev.DataReceived) and got.data == b"ack:n=2"


def test_the_deadline_stops_the_loop_before_the_retries_end():
    ini, link, clock = _setup(answer=False)
    t0 = clock()
    ini.connect(t0)
    got = _run(shell.drive(ini, link, clock, until=_is(ev.HandshakeConfirmed),
                           deadline=t0 + 3))
    assert got is None and not ini.ended and clock() >= t0 + 3
    assert len(link.sent) == 2                               # m1 at 0 and at 2 s


def test_garbage_reaches_the_caller_as_dropped_events_and_the_handshake_goes_on():
    ini, link, clock = _setup()
    link.inbox.append(b"\x20" + bytes(10))                   # a short m2: garbage
    seen = []
    ini.connect(clock())
    got = _run(shell.drive(ini, link, clock, until=_is(ev.HandshakeConfirmed),
                           on_event=seen.append))
    assert isinstance(got, ev.HandshakeConfirmed)
    dropped = [e for e in seen if isinstance(e, ev.Dropped)]
    assert len(dropped) == 1 and dropped[0].kind == "m2"


class FragmentingLink(Link):
    """A link on which part of B's message is always in and never completes: the shell
    asks for the missing fragments ACK_ROUNDS times before it lets the core resend m1."""

    def __init__(self, *a, **kw):
        Link.__init__(self, *a, **kw)
        self.recv_frames = 0
        self.acks = 0

    def partial(self):
        return True

    async def send_acks(self):
        self.acks += 1
        return 1


def test_a_partial_inbound_message_is_pulled_with_acks_before_m1_is_resent():
    backend = backends()[0]
    clock = Clock(now())
    ini = initiator(backend, 0, rto=2.0, max_retries=1)
    link = FragmentingLink(backend, clock, answer=False)
    rounds = []
    ini.connect(clock())
    got = _run(shell.drive(ini, link, clock, until=_is(ev.HandshakeConfirmed),
                           on_acks=rounds.append))
    assert got is None and ini.ended
    # ACK_ROUNDS rounds of acks while no new frame comes; then the core's timer runs:
    # m1 resent, then the failure (the rounds start again only when a frame arrives)
    assert link.acks == shell.ACK_ROUNDS and rounds == [1] * link.acks
    assert len(link.sent) == 2
