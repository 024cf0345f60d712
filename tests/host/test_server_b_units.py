"""Server B's parts in one process, without sockets: the dispatcher driven by the core's
Initiator through a fake certificate store (routing by m1 hash, hint and SID, fragments,
timers, rate limits, shared lookups, stale cache under an outage), and the small pieces
(verify against the X.509 fixtures, caches, token buckets, replay cache, config, sink)."""
import argparse
import asyncio
import hashlib
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airshake import codec
from airshake import events as ev
from airshake import shell
from airshake.crypto import load_backend
from airshake.fragments import FragmentLink
from airshake.initiator import Initiator
from airshake.keys import DeviceKey
from airshake.responder import ReplayCache, ResponderConfig
from airshake.x509 import Certificate
from host_server.server_b import config as bconfig
from host_server.server_b import cs_client
from host_server.server_b.cache import MemCache, NegativeCache
from host_server.server_b.config import Rate, ServerConfig
from host_server.server_b.backend import load_server_backend, pin_server_keys
from host_server.server_b.credentials import Credentials
from host_server.server_b.dispatch import Dispatcher
from host_server.server_b.tables import Handshake
from host_server.server_b.keyfiles import load_ca, load_server_keys
from host_server.server_b.logs import EventLog
from host_server.server_b.metrics import Metrics
from host_server.server_b.ratelimit import RateLimiter
from host_server.server_b.sink import SqliteSink
from host_server.server_b.verify import Rejected, Verifier
from host_server.ca import CA
from host_server.errors import UserError

BACKEND = load_backend("pyca")
SERVER_BACKEND = load_server_backend()
X509 = "tests/vectors/x509/"
FIXTURE_NOW = 1767225600


# -- an in-process B ---------------------------------------------------------------

class FakeCS:
    """The CS API B uses, in memory: certs by hex ID, a switch to take it down."""

    def __init__(self):
        self.certs, self.revoked, self.calls = {}, set(), 0
        self.down = False
        self.delay = 0.0

    async def get_cert(self, id_hex):
        self.calls += 1
        await asyncio.sleep(self.delay)
        if self.down:
            return cs_client.CertResult(cs_client.ERROR, detail="ConnectError")
        if id_hex in self.revoked:
            return cs_client.CertResult(cs_client.REVOKED)
        der = self.certs.get(id_hex)
        return cs_client.CertResult(cs_client.OK, der=der) if der else \
            cs_client.CertResult(cs_client.ABSENT)

    async def close(self):
        pass


class MemorySink:
    def __init__(self, reply=None):
        self.rows, self.reply = [], reply

    async def on_record(self, id_a, sid, seq, data, kind):
        self.rows.append((id_a.hex(), sid.hex(), seq, kind, data))
        return self.reply

    async def close(self):
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("unit-pki")
    ca = CA.init(tmp / "ca", "ed25519", "unit CA")
    for suite in (0, 2):
        ca.issue_server(suite, "b.unit", tmp / "keys")
    return ca, tmp


class Harness:
    def __init__(self, pki, mtu=1200, clock=None, **settings):
        ca, tmp = pki
        settings.setdefault("rate_per_source", Rate(1000, 1000))
        settings.setdefault("rate_per_id", Rate(1000, 1000))
        self.cfg = ServerConfig(ca_cert=tmp / "ca" / "ca.crt", key_dir=tmp / "keys",
                                instance="unit", **settings)
        self.ca = ca
        self.anchor = ca.cert_der
        keys = load_server_keys(SERVER_BACKEND, self.cfg)
        pin_server_keys(SERVER_BACKEND, keys)
        rcfg = ResponderConfig(SERVER_BACKEND, keys, id_len=8, window=self.cfg.window,
                               replay=ReplayCache(1000),
                               accept_early=self.cfg.accept_early)
        self.cs = FakeCS()
        self.metrics = Metrics("unit")
        self.creds = Credentials(self.cfg, Verifier(load_ca(self.cfg.ca_cert), 8), self.cs,
                                 self.metrics)
        self.sink = MemorySink()
        self.out = []                                      # (bytes, addr) sent by B
        self.clock = clock or time.time
        self.d = Dispatcher(rcfg, self.creds, self.sink, self.metrics,
                            EventLog("unit", "warning"), lambda m, a: self.out.append((m, a)),
                            mtu=mtu, clock=self.clock,
                            amplification=self.cfg.amplification,
                            duplicate_answers=self.cfg.duplicate_answers)

    def device(self, suite=0, enroll=True):
        key = DeviceKey.generate(BACKEND, suite)
        if enroll:
            from cryptography.hazmat.primitives.asymmetric import ec, x25519
            pub = (x25519.X25519PublicKey.from_public_bytes(key.public) if suite == 0 else
                   ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), key.public))
            self.cs.certs[key.id_a.hex()] = self.ca.issue_device(pub, "dev")
        return key

    def take(self, addr):
        got = [m for m, a in self.out if a == addr]
        self.out = [(m, a) for m, a in self.out if a != addr]
        return got

    def metric(self, name, **labels):
        declared = {f.name for f in self.metrics.registry.collect()}
        assert name in declared or name.removesuffix("_total") in declared, \
            "B declares no metric %s" % name
        value = self.metrics.registry.get_sample_value(name, dict(instance="unit", **labels))
        return value or 0.0


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


class HarnessLink:
    """A's end of a link into the harness's dispatcher (airshake.shell drives it): what
    B sends to addr comes back, through the fragment layer when there is one."""

    def __init__(self, h, addr, frag=None):
        self.h, self.addr, self.frag = h, addr, frag
        self.pending = []

    async def send_message(self, message):
        for frame in (self.frag.outgoing(message) if self.frag else [message]):
            self.h.d.datagram(frame, self.addr)

    async def recv_message(self, timeout):
        end = time.monotonic() + timeout
        while True:
            await settle()
            self.pending.extend(self.h.take(self.addr))
            while self.pending:
                frame = self.pending.pop(0)
                if self.frag is None:
                    return frame
                message, back = self.frag.incoming(frame, time.time())
                for b in back:
                    self.h.d.datagram(b, self.addr)
                if message is not None:
                    return message
            if time.monotonic() >= end:
                return None
            await asyncio.sleep(0.002)


async def run_device(h, key, addr, data=b"", server=None, early=False, link=None):
    """One handshake through the dispatcher; returns the Initiator and its events."""
    ini = Initiator(BACKEND, [key], h.anchor, server=server, server_name="b.unit")
    ini.connect(time.time(), data, early)
    events = []
    await shell.drive(ini, HarnessLink(h, addr, link), time.time, deadline=time.time() + 3,
                      on_event=events.append,
                      until=lambda e: isinstance(e, ev.HandshakeConfirmed))
    return ini, events


def codes(events):
    return [e.code for e in events if isinstance(e, ev.ServerRejected)]


def confirmed(events):
    return any(isinstance(e, ev.HandshakeConfirmed) for e in events)


# -- dispatcher --------------------------------------------------------------------

def test_many_pending_handshakes_from_one_address_share_hints(pki):
    """40 handshakes from one gateway address: some must share a 5-bit hint, and every
    m3 still finds its handshake by trial decryption."""
    async def go():
        h = Harness(pki)
        addr = ("10.0.0.1", 1700)
        inis = []
        for _ in range(40):
            ini = Initiator(BACKEND, [h.device()], h.anchor, server_name="b.unit")
            ini.connect(time.time(), b"x")
            for m in ini.datagrams_to_send(time.time()):
                h.d.datagram(m, addr)
            inis.append(ini)
        await settle()
        m2s = h.take(addr)
        assert len(m2s) == 40
        hints = {}
        for ini, m2 in zip(inis, m2s):   # B answers in order: lookups share no state
            ini.receive(m2, time.time())
            hints[m2[1] & 0x1F] = hints.get(m2[1] & 0x1F, 0) + 1
        # 40 hints in 32 values share some (pigeonhole); B indexes every handshake that
        # shares one under it, so each m3 below has to be found among several candidates
        assert {hint: len(h.d.handshakes.candidates(addr, hint)) for hint in hints} == hints
        assert max(hints.values()) >= 2
        for ini in reversed(inis):
            for m in ini.datagrams_to_send(time.time()):
                h.d.datagram(m, addr)
        await settle()
        assert len(h.take(addr)) == 40 and h.d.completed == 40
        assert len(h.sink.rows) == 40
        # completed, they leave the hint index: a later m3 from this gateway tries only
        # the handshakes still waiting, and a retransmitted m3 is found by its bytes
        assert h.d.handshakes.by_hint == {} and len(h.d.handshakes.by_m3) == 40
        (m3,) = [m3 for m3, hs in h.d.handshakes.by_m3.items() if hs.ack][:1]
        h.d.datagram(m3, addr)
        assert h.take(addr) == [h.d.handshakes.by_m3[m3].ack]
        h.d.datagram(m3, ("10.0.0.9", 1700))     # from an address that never sent its m1
        assert h.take(("10.0.0.9", 1700)) == []
    asyncio.run(go())


def test_large_m2_is_fragmented_for_a_small_mtu(pki):
    async def go():
        h = Harness(pki, mtu=60, accept_early=True)
        addr = ("10.0.0.2", 1)
        key = h.device()
        link = FragmentLink(60)
        _ini, events = await run_device(h, key, addr, b"by value", link=link)
        assert confirmed(events)
        # and a 0-RTT m1 longer than the MTU reassembles at B
        h.out.clear()
        ini2 = Initiator(BACKEND, [key], h.anchor, server=_ini.server,
                          server_name="b.unit")
        ini2.connect(time.time() + 1, b"early data, quite a lot of it " * 3, early=True)
        m1 = ini2.datagrams_to_send(time.time())[0]
        assert len(m1) > 60
        for frame in link.outgoing(m1):
            h.d.datagram(frame, addr)
        await settle()
        assert [r for r in h.sink.rows if r[3] == "early"]
    asyncio.run(go())


def test_rate_limits_answer_try_later(pki):
    async def go():
        h = Harness(pki, rate_per_id=Rate(0.01, 2), rate_per_source=Rate(0.01, 3))
        key = h.device()
        results = [codes((await run_device(h, key, ("10.0.0.3", 1)))[1]) for _ in range(3)]
        assert results[:2] == [[], []] and results[2] == [codec.ERR_TRY_LATER]
        other = h.device()
        assert codes((await run_device(h, other, ("10.0.0.3", 2)))[1]) == [codec.ERR_TRY_LATER]
        assert h.metric("airshake_handshakes_total", outcome="refused", reason="rate_id") == 1
        assert h.metric("airshake_handshakes_total", outcome="refused",
                        reason="rate_source") == 1
        assert h.cs.calls == 1
    asyncio.run(go())


def test_concurrent_lookups_for_one_id_share_one_cs_request(pki):
    async def go():
        h = Harness(pki)
        h.cs.delay = 0.05
        key = h.device()
        results = await asyncio.gather(*[run_device(h, key, ("10.0.1.%d" % i, 1))
                                         for i in range(5)])
        assert all(confirmed(e) for _i, e in results)
        assert h.cs.calls == 1
    asyncio.run(go())


def test_stale_cache_is_served_only_while_the_cs_is_down(pki):
    async def go():
        h = Harness(pki, cache_ttl=5)
        key = h.device()
        assert confirmed((await run_device(h, key, ("10.0.2.1", 1)))[1])
        entry = h.creds.mem.get(key.id_a, time.time())
        entry.fresh_until = time.time() - 1                 # due for a refresh
        h.cs.down = True
        assert confirmed((await run_device(h, key, ("10.0.2.1", 2)))[1])
        assert h.metric("airshake_cache_total", cache="mem", result="stale") == 1
        h.cs.down = False
        h.cs.revoked.add(key.id_a.hex())                     # refreshed: now refused
        assert codes((await run_device(h, key, ("10.0.2.1", 3)))[1]) == [codec.ERR_UNKNOWN_ID]
        h.cs.down = True
        assert codes((await run_device(h, key, ("10.0.2.1", 4)))[1]) == [codec.ERR_UNKNOWN_ID]
    asyncio.run(go())


def test_revocation_push_drops_the_cached_certificate(pki):
    async def go():
        h = Harness(pki)
        key = h.device()
        assert confirmed((await run_device(h, key, ("10.0.3.1", 1)))[1])
        h.creds.revoke(key.id_a, time.time())
        h.cs.down = True                  # even with the CS gone it is not served again
        assert codes((await run_device(h, key, ("10.0.3.1", 2)))[1]) == [codec.ERR_UNKNOWN_ID]
    asyncio.run(go())


def test_timers_expire_handshakes_without_m3(pki):
    now = [time.time()]

    async def go():
        h = Harness(pki, clock=lambda: now[0], window=10)
        ini = Initiator(BACKEND, [h.device()], h.anchor, server_name="b.unit")
        ini.connect(now[0], b"")
        h.d.datagram(ini.datagrams_to_send(now[0])[0], ("10.0.4.1", 1))
        await settle()
        assert len(h.d.handshakes) == 1
        now[0] += 21
        h.d.tick()
        assert len(h.d.handshakes) == 0
        assert h.metric("airshake_handshakes_total", outcome="failed", reason="no_m3") == 1
    asyncio.run(go())


def test_a_confirmed_handshake_lingers_as_its_m3_and_first_record_only(pki):
    """After B's first record the Responder (and its Session) go: a retransmitted m3
    still gets that identical record until done_linger, then nothing; the timer heap
    holds m1 keys, never a Handshake, so a stale timer keeps nothing alive."""
    now = [time.time()]

    async def go():
        h = Harness(pki, clock=lambda: now[0])
        addr = ("10.0.4.2", 7)
        ini = Initiator(BACKEND, [h.device()], h.anchor, server_name="b.unit")
        ini.connect(now[0], b"")
        h.d.datagram(ini.datagrams_to_send(now[0])[0], addr)
        await settle()                                      # the CS lookup
        (m2,) = h.take(addr)
        ini.receive(m2, now[0])
        m3 = ini.datagrams_to_send(now[0])[0]
        h.d.datagram(m3, addr)
        await settle()
        (first,) = h.take(addr)
        (hs,) = h.d.handshakes.by_m1.values()
        assert hs.responder is None and hs.ack == first and hs.m3 == m3
        assert all(not isinstance(x, Handshake) for t in h.d.handshakes._timers for x in t)
        h.d.datagram(m3, addr)                              # A did not hear the record
        assert h.take(addr) == [first]
        # the gauges read the tables when scraped
        assert h.metric("airshake_sessions") == 1
        assert h.metric("airshake_pending_handshakes") == 1
        now[0] += h.d.done_linger + 1
        h.d.tick()
        assert len(h.d.handshakes) == 0 and h.metric("airshake_pending_handshakes") == 0
        h.d.datagram(m3, addr)
        assert h.take(addr) == []
        assert h.metric("airshake_datagrams_total", type="m3", result="duplicate") == 1
    asyncio.run(go())


def test_records_reach_their_session_and_replays_are_refused(pki):
    async def go():
        h = Harness(pki)
        h.sink.reply = b"pong"
        addr = ("10.0.5.1", 9)
        ini, events = await run_device(h, h.device(), addr, b"")
        assert confirmed(events)
        ini.send(b"ping")
        rec = ini.datagrams_to_send(time.time())[0]
        h.d.datagram(rec, ("10.0.5.2", 9))              # the device roamed
        await settle()
        (reply,) = h.take(("10.0.5.2", 9))
        ini.receive(reply, time.time())
        assert ini.next_event().data == b"pong"
        h.d.datagram(rec, addr)
        await settle()
        assert h.take(addr) == [] and len([r for r in h.sink.rows if r[3] == "record"]) == 1
        assert h.metric("airshake_datagrams_total", type="record", result="replay") == 1
    asyncio.run(go())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_is_dropped_without_an_answer(data):
    h = _GARBAGE_HARNESS[0]
    h.d.datagram(data, ("10.9.9.9", 1))
    answers = h.take(("10.9.9.9", 1))
    # only a well-formed m1 earns an answer (a STALE_TIME or UNSUPPORTED_SUITE error)
    assert all(a[0] >> 5 == codec.TYPE_ERROR for a in answers)


_GARBAGE_HARNESS = []


@pytest.fixture(autouse=True, scope="module")
def _garbage_harness(pki):
    _GARBAGE_HARNESS.append(Harness(pki))
    yield
    _GARBAGE_HARNESS.clear()


# -- verify ------------------------------------------------------------------------

def _fixture(name):
    with open(X509 + name + ".der", "rb") as f:
        return f.read()


def _id_of(der):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()[:8]


@pytest.fixture
def verifier(tmp_path):
    (tmp_path / "ca.der").write_bytes(_fixture("ca_ed25519"))
    return Verifier(load_ca(tmp_path / "ca.der"), 8)


def test_verify_accepts_a_device_certificate_of_the_ca(pki):
    ca, tmp = pki
    from cryptography.hazmat.primitives.asymmetric import x25519
    der = ca.issue_device(x25519.X25519PrivateKey.generate().public_key(), "dev")
    got = Verifier(load_ca(tmp / "ca" / "ca.crt"), 8).verify(der, _id_of(der), time.time())
    assert got.cert.key_type == "x25519"


def test_verify_refuses_as_c_a_a_certificate_without_the_device_role(pki, verifier):
    """A server certificate of the same CA (serverAuth), or one with no extendedKeyUsage
    (the old profile), is not a device's: REJECTED (issue 11 item 1)."""
    ca, tmp = pki
    server_der = (tmp / "keys" / "server-suite0.der").read_bytes()
    with pytest.raises(Rejected) as e:
        Verifier(load_ca(tmp / "ca" / "ca.crt"), 8).verify(server_der, _id_of(server_der),
                                                           time.time())
    assert e.value.reason == "not_device_role" and e.value.code == codec.ERR_REJECTED
    old = _fixture("server_x25519")
    with pytest.raises(Rejected) as e:
        verifier.verify(old, _id_of(old), FIXTURE_NOW)
    assert e.value.reason == "not_device_role"


@pytest.mark.parametrize("name,reason", [("expired", "expired"), ("other_server", "wrong_ca"),
                                         ("tampered", "wrong_ca"),
                                         ("critical_unknown", "malformed"),
                                         ("truncated", "malformed")])
def test_verify_refuses(verifier, name, reason):
    der = _fixture(name)
    id_a = _id_of(_fixture("server_x25519")) if name in ("truncated",) else _id_of(der)
    with pytest.raises(Rejected) as e:
        verifier.verify(der, id_a, FIXTURE_NOW)
    assert e.value.reason == reason and e.value.code == codec.ERR_REJECTED


def test_verify_refuses_a_key_that_does_not_hash_to_the_id(verifier):
    with pytest.raises(Rejected) as e:
        verifier.verify(_fixture("server_x25519"), bytes(8), FIXTURE_NOW)
    assert e.value.reason == "id_mismatch"


def test_verify_refuses_before_validity_and_revoked(verifier):
    from host_server.server_b.cache import RevokedSet
    der = _fixture("server_x25519")
    with pytest.raises(Rejected, match="not_yet_valid"):
        verifier.verify(der, _id_of(der), 1748736000 - 10)
    revoked = RevokedSet()
    revoked.add(_id_of(der), 0)
    with pytest.raises(Rejected) as e:
        verifier.verify(der, _id_of(der), FIXTURE_NOW, revoked)
    assert e.value.code == codec.ERR_UNKNOWN_ID       # as an unknown ID (issue 11 item 10)


# -- small parts -------------------------------------------------------------------

def test_token_bucket_and_its_memory_bound():
    rl = RateLimiter(Rate(2, 3), capacity=100)
    assert [rl.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert rl.retry_after("a", 0.0) == 1
    assert rl.take("a", 0.5) and not rl.take("a", 0.5)
    for i in range(1000):
        rl.take(i, 1.0)
    assert len(rl) == 100


def test_caches_are_bounded_and_expire():
    mem = MemCache(capacity=2, ttl=10)
    for i in range(3):
        mem.put(bytes([i]), Certificate(b"der"), not_after=100, now=0)
    assert mem.get(b"\x00", 1) is None and mem.get(b"\x02", 1).fresh_until == 10
    assert mem.get(b"\x02", 100) is None                  # the certificate expired
    neg = NegativeCache(capacity=2, ttl=5)
    neg.put(b"a", 3, now=0)
    assert neg.get(b"a", 4) == 3 and neg.get(b"a", 5) is None


def test_config_from_toml_and_flags(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRSHAKE_CS_TOKEN", "reader-token-for-the-config-test")
    (tmp_path / "b.toml").write_text(
        '[server]\nca_cert = "ca.crt"\nkey_dir = "keys"\nwindow = 30\n'
        'rate_per_source = {rate = 5, burst = 9}\nrate_per_id = 3\nreply = "ack"\n')
    parser = argparse.ArgumentParser()
    bconfig.add_flags(parser)
    cfg = bconfig.from_sources(parser.parse_args(["--config", str(tmp_path / "b.toml"),
                                                  "--window", "45"]))
    assert cfg.ca_cert == tmp_path / "ca.crt" and cfg.key_dir == tmp_path / "keys"
    assert cfg.window == 45 and cfg.reply == "ack"
    assert cfg.rate_per_source == Rate(5, 9) and cfg.rate_per_id == Rate(3, 6)
    assert cfg.accept_early is False and cfg.rcvbuf == 4 * 1024 * 1024    # the defaults
    cfg = bconfig.from_sources(parser.parse_args(["--config", str(tmp_path / "b.toml"),
                                                  "--accept-early", "--rcvbuf", "65536"]))
    assert cfg.accept_early is True and cfg.rcvbuf == 65536
    (tmp_path / "c.toml").write_text('[server]\nca_cert = "ca.crt"\nkey_dir = "k"\n'
                                     'accept_early = true\nrcvbuf = 1048576\n')
    cfg = bconfig.from_sources(parser.parse_args(["--config", str(tmp_path / "c.toml")]))
    assert cfg.accept_early is True and cfg.rcvbuf == 1048576
    (tmp_path / "d.toml").write_text('[server]\nca_cert = "ca.crt"\nkey_dir = "k"\n'
                                     'accept_early = "yes"\n')
    with pytest.raises(UserError, match="accept_early must be true or false"):
        bconfig.from_sources(parser.parse_args(["--config", str(tmp_path / "d.toml")]))
    with pytest.raises(UserError, match="cs_url"):
        bconfig.from_sources(parser.parse_args(["--config", str(tmp_path / "b.toml"),
                                                "--reply", "none", "--instance", "x",
                                                "--cs-url", "ftp://x"]))


def test_sqlite_sink_stores_a_duplicate_once(tmp_path):
    async def go():
        sink = SqliteSink(tmp_path / "r.db", reply="ack")
        replies = await asyncio.gather(*[sink.on_record(b"\x01" * 8, b"\x02" * 4, 7, b"d",
                                                        "record") for _ in range(3)])
        await sink.close()
        return sink, replies
    sink, replies = asyncio.run(go())
    assert replies == [b"ack:7"] * 3 and sink.stored == 1 and sink.duplicates == 2
    assert os.path.getsize(tmp_path / "r.db") > 0


# -- issue 11: the ID set, the per-ID limits, the amplification bound ----------------------

def test_id_set_keeps_the_changes_made_while_a_full_read_is_in_flight():
    from host_server.server_b.idset import IdSet
    ids = IdSet()
    assert not ids.unknown(b"x" * 8)                     # not synced: look IDs up
    ids.begin_read()
    ids.add(b"new-----")                                 # an enrolled event meanwhile
    ids.discard(b"gone----")                             # a revoked event meanwhile
    ids.end_read({b"gone----", b"old-----"})
    assert ids.synced and len(ids) == 2 and b"new-----" in ids and b"gone----" not in ids
    assert not ids.unknown(b"x" * 8)                     # the event stream is down
    ids.live = True
    assert ids.unknown(b"x" * 8) and not ids.unknown(b"old-----")
    ids.begin_read()
    ids.end_read(None)                                   # a failed read keeps the set
    assert len(ids) == 2


def test_forgeries_from_other_sources_cannot_spend_a_proven_sources_budget(pki):
    h = Harness(pki, rate_per_id=Rate(2, 5), rate_per_id_all=Rate(1, 2))
    victim = b"v" * 8
    now = time.time()
    h.creds.proven.add(victim, "10.0.0.1")
    refused = [h.creds.take_id(victim, "10.6.6.%d" % i, now) for i in range(50)]
    assert refused[:2] == [None, None]
    assert all(d is not None and d.reason == "rate_id_all" for d in refused[2:])
    assert [h.creds.take_id(victim, "10.0.0.1", now) for _ in range(5)] == [None] * 5
    assert h.creds.take_id(victim, "10.0.0.1", now).reason == "rate_id"   # its own bucket
    h.creds.revoke(victim, now)
    assert not h.creds.proven.has(victim, "10.0.0.1")


def test_amplification_guard_bounds_what_an_unproven_address_is_sent():
    from host_server.server_b.amplify import AmplificationGuard
    g = AmplificationGuard(3, capacity=2)
    a = ("10.0.0.1", 1)
    assert not g.allow(a, 1)                             # never heard from: nothing
    g.received(a, 46)
    assert g.allow(a, 100) and g.allow(a, 38) and not g.allow(a, 1)
    g.received(a, 46)
    assert g.allow(a, 138)
    g.prove(a)
    assert g.allow(a, 10 ** 6) and len(g) == 0
    for i in range(5):
        g.received(("10.0.0.2", i), 46)
    assert len(g) == 2                                   # bounded


def test_an_m1_of_a_later_version_is_answered_unsupported_version_and_version_0_is_not(pki):
    """PROTOCOL.md §6: B names its version to an m1 of a later one (ref = H(m1)[0:2]); the
    reserved version 0 and anything shorter than a version-1 m1 are garbage. (Before the
    core's error boundary, B queued this answer and never sent it.)"""
    h = Harness(pki)
    _ini, m1 = _first_m1(h)
    later = bytes((m1[0] & ~0x18 | (2 << 3),)) + m1[1:]        # version 2
    addr = ("10.7.7.7", 7)
    h.d.datagram(later, addr)
    answers = h.take(addr)
    assert len(answers) == 1
    err = codec.decode_error(answers[0])
    assert err.code == codec.ERR_UNSUPPORTED_VERSION and err.body == bytes((codec.VERSION,))
    assert err.ref == hashlib.sha256(later).digest()[:codec.REF_LEN]
    assert h.metric("airshake_datagrams_total", type="m1", result="refused") == 1
    h.d.datagram(bytes((m1[0] & ~0x18,)) + m1[1:], addr)           # version 0
    assert h.take(addr) == []
    h.d.datagram(later[:10], addr)       # shorter than a version-1 m1: no 4-byte answer
    assert h.take(addr) == []


def _first_m1(h):
    ini = Initiator(BACKEND, [h.device()], h.anchor, server_name="b.unit")
    ini.connect(time.time())
    return ini, ini.datagrams_to_send(time.time())[0]
