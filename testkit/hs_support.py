# testkit/hs_support.py: builds both roles from tests/vectors/handshake/fixtures.json
# and pumps datagrams between them, for the portable handshake tests.
from testkit.support import load_json, unhex
from airshake import events as ev
from airshake.crypto.contract import RsaPrivate
from airshake.initiator import Initiator
from airshake.keys import DeviceKey, ServerKey
from airshake.responder import Responder, ResponderConfig

_FIX = None


def fixtures():
    global _FIX
    if _FIX is None:
        _FIX = load_json("handshake/fixtures.json")
    return _FIX


NOW = None


def now():
    return fixtures()["now"]


def _int(h):
    return int(h[2:] if h.startswith("0x") else h, 16)


def private(suite, which):
    v = fixtures()["suite%d" % suite][which]
    if suite == 1:
        return RsaPrivate(_int(v["n"]), v["e"], _int(v["d"]), _int(v["p"]), _int(v["q"]),
                          _int(v["dp"]), _int(v["dq"]), _int(v["qinv"]))
    return unhex(v)


def cert(suite, which):
    return unhex(fixtures()["suite%d" % suite][which])


def anchor(suite):
    return unhex(fixtures()["ca_p256" if suite == 2 else "ca_ed25519"])


def device_key(backend, suite):
    return DeviceKey(backend, suite, private(suite, "device_key"))


def server_key(backend, suite, cert_name="server_cert"):
    return ServerKey(backend, suite, private(suite, "server_key"), cert(suite, cert_name))


SERVER_NAME = "b.airshake.test"   # the CN of every fixture C_B: A's pin


def initiator(backend, suite, server=None, **kw):
    kw.setdefault("server_name", SERVER_NAME)
    return Initiator(backend, [device_key(backend, suite)], anchor(suite), server=server, **kw)


def config(backend, suites=(0, 1, 2), **kw):
    return ResponderConfig(backend, [server_key(backend, s) for s in suites], **kw)


class Pair:
    """One A and B; B answers NeedCredential with the fixture C_A of the suite."""

    def __init__(self, backend, suite, ini=None, cfg=None, t=None, device_cert=None):
        self.backend = backend
        self.suite = suite
        self.t = now() if t is None else t
        self.ini = ini or initiator(backend, suite)
        self.cfg = cfg or config(backend, (suite,))
        self.res = None
        self.device_cert = device_cert or cert(suite, "device_cert")
        self.a_events = []
        self.b_events = []
        self.wire = []       # (direction, bytes) of everything sent

    def responder_for(self, m1):
        if self.res is None:
            self.res = Responder(self.cfg, self.t)
        return self.res

    def a_to_b(self, drop=None):
        out = self.ini.datagrams_to_send(self.t)
        for d in out:
            self.wire.append(("A", d))
            if drop and drop(d):
                continue
            res = self.responder_for(d)
            res.receive(d, self.t)
            self.b_drain()
        return out

    def b_drain(self):
        res = self.res
        while True:
            e = res.next_event()
            if e is None:
                break
            self.b_events.append(e)
            if isinstance(e, ev.NeedCredential):
                res.provide_credential(self.device_cert, self.t)

    def b_to_a(self, drop=None):
        if self.res is not None and self.res.confirm_due:
            self.res.send(b"")          # as B does: m3 confirmed even with nothing to say
        out = self.res.datagrams_to_send(self.t) if self.res else []
        for d in out:
            self.wire.append(("B", d))
            if drop and drop(d):
                continue
            self.ini.receive(d, self.t)
        self.a_drain()
        return out

    def a_drain(self):
        while True:
            e = self.ini.next_event()
            if e is None:
                break
            self.a_events.append(e)

    def run(self, data=b"", early=False):
        """Full handshake plus B's first record; returns the wire sizes [m1, m2, m3]."""
        self.ini.connect(self.t, data, early)
        self.a_to_b()
        self.b_to_a()
        self.a_to_b()
        self.b_to_a()
        return [len(d) for who, d in self.wire[:3]]

    def kinds(self, events, cls):
        return [e for e in events if isinstance(e, cls)]


def refused_in(events, exc_type):
    """The error of the first Dropped or Refused event in events whose error is an
    exc_type (a role refused remote input); AssertionError when there is none."""
    for e in events:
        error = getattr(e, "error", None)
        if isinstance(error, exc_type):
            return error
    raise AssertionError("no refusal with %s among %r" % (exc_type, events))


def drain(role):
    """Every event a role has queued, oldest first."""
    out = []
    while True:
        e = role.next_event()
        if e is None:
            return out
        out.append(e)
