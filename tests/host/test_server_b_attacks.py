# tests/host/test_server_b_attacks.py: the protocol attacks on server B that no other test
# covers, each a named test against the real processes (`airshake cs serve`, `airshake
# server`), plus regression tests of two core bugs the stateful test found (fixed).
# Where the rest of the attack list is covered: tests/portable/test_attacks.py (replays,
# reflection, wrong server, fragments), tests/portable/test_negative.py (downgrade, other
# CA, invalid and low-order points), tests/host/test_server_b.py (unknown, revoked,
# expired IDs, CS down), tests/host/test_cs.py (ID collision at enrollment).
from __future__ import annotations

import base64
import signal
import time
from types import SimpleNamespace

import httpx
import pytest

from airshake import codec
from airshake import events as ev
from airshake.errors import AuthenticationFailed
from airshake.keys import DeviceKey
from b_support import (BACKEND, CS, BProcess, Device, exchange, handshake, make_pki, metric,
                       wait_for)
from testkit.cs_support import ADMIN_HEADERS, CSProcess


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("attack-pki")
    ca_dir, key_dir = make_pki(tmp)
    return SimpleNamespace(ca_dir=ca_dir, key_dir=key_dir, anchor=(ca_dir / "ca.der").read_bytes())


# Two X25519 private keys whose SPKIs hash to the same 4-byte ID 3f85aa3d (found by a
# birthday search over 133,923 keys): B's shortest allowed id_len is 4.
COLLIDING = ("98d3ec578474ffee8852fdd441536d7b93c277f072545caf11407058baaa8c73",
             "d627f140280bdce76c680bfd15c43eeb8e2c616b138897d56a257faa4b91518f")


def test_a_device_whose_id_collides_cannot_use_the_enrolled_devices_certificate(pki, tmp_path):
    """An impostor whose key hashes to an enrolled device's ID gets B to fetch the other
    device's C_A, and B answers with an m2 bound to that C_A's key (H(SPKI) in TH_2):
    MAC_2 fails at the impostor, no session exists, nothing is stored."""
    victim, impostor = (Device(0, DeviceKey(BACKEND, 0, bytes.fromhex(h), id_len=4))
                        for h in COLLIDING)
    assert victim.key.id_a == impostor.key.id_a and victim.key.spki != impostor.key.spki
    with CSProcess(tmp_path, pki.ca_dir, id_len=4) as cs:
        b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-collide", id_len=4,
                     reply="ack")
        try:
            victim.enroll(cs.url)
            r = httpx.post(cs.url + "/enroll", timeout=5, headers=ADMIN_HEADERS, json={
                "name": "impostor", "public_key": base64.b64encode(impostor.key.spki).decode()})
            assert r.status_code == 409 and "collides" in r.json()["error"]
            assert handshake(b.port, victim, pki.anchor, data=b"n=1 victim").confirmed
            before = b.metrics()
            res = handshake(b.port, impostor, pki.anchor, data=b"n=2 impostor", timeout=2.0)
            assert not res.confirmed and res.initiator.session is None
            assert res.of(AuthenticationFailed)              # MAC_2, every m2 it got
            after = b.metrics()
            assert metric(after, "airshake_handshakes_total", outcome="ok",
                          reason="complete") == metric(before, "airshake_handshakes_total",
                                                       outcome="ok", reason="complete")
            assert metric(after, "airshake_datagrams_total", type="m3", result="ok") == \
                metric(before, "airshake_datagrams_total", type="m3", result="ok")
            time.sleep(0.2)
            assert [row[4] for row in b.records()] == [b"n=1 victim"]
        finally:
            assert b.stop() == 0


def test_a_revocation_made_while_b_could_not_reach_the_cs_is_applied_on_reconnect(pki,
                                                                                 tmp_path):
    """B's revocation stream is down (the CS was killed); the device is revoked as soon as
    the CS is back, before B reconnects: B catches up (Last-Event-ID / since=) and stops
    serving the cached certificate."""
    cs = CS(tmp_path, pki.ca_dir)
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-catchup")
    try:
        dev = Device(0).enroll(cs.url)
        assert handshake(b.port, dev, pki.anchor).confirmed          # in B's MEM now
        assert wait_for(lambda: metric(b.metrics(), "airshake_cs_stream_connected") == 1)
        cs.stop(signal.SIGKILL)
        assert wait_for(lambda: metric(b.metrics(), "airshake_cs_stream_connected") == 0)
        assert handshake(b.port, dev, pki.anchor).confirmed          # served from MEM
        cs = CS(tmp_path, pki.ca_dir, port=cs.port)
        r = httpx.post(cs.url + "/revoke/" + dev.id_hex, json={"reason": "keyCompromise"},
                       timeout=5, headers=ADMIN_HEADERS)
        assert r.status_code == 200, r.text
        assert wait_for(lambda: handshake(b.port, dev, pki.anchor, timeout=1.0).code ==
                        codec.ERR_UNKNOWN_ID, timeout=10.0, step=0.1)   # revoked: as unknown
        applied = [x for x in b.log_lines() if x.get("event") == "revocation_applied"]
        assert applied and applied[0]["id"] == dev.id_hex and applied[0]["was_cached"]
    finally:
        cs.stop()
        assert b.stop() == 0


def test_zero_rtt_m1_replayed_after_a_b_restart_is_not_delivered_again(pki, tmp_path):
    """A recorded 0-RTT m1 and its m3, replayed to a B that was killed and restarted on
    the same port and database: B answers (its replay cache is new) but refuses the
    0-RTT data, and the recorded m3 cannot complete the new handshake."""
    cs = CS(tmp_path, pki.ca_dir)
    db = tmp_path / "records.db"
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-before", db=db, window=3,
                 accept_early=True)
    port = b.port
    try:
        dev = Device(0).enroll(cs.url)
        assert handshake(port, dev, pki.anchor).confirmed            # learns C_B
        started = next(x["started"] for x in b.log_lines() if x.get("event") == "ready")
        while int(time.time()) <= started + 3:          # 0-RTT refused up to start+window
            time.sleep(0.05)
        first = handshake(port, dev, pki.anchor, data=b"open the door", early=True)
        assert first.confirmed and first.of(ev.HandshakeComplete)[0].early_accepted
        m1 = first.sent[0]
        m3 = next(d for d in first.sent if d[0] >> 5 == codec.TYPE_M3)
        stamp = codec.decode_m1(m1, 8).timestamp
        b.stop(signal.SIGKILL)
        while int(time.time()) <= stamp:                 # B restarts after the m1's second
            time.sleep(0.05)
        b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-after", db=db,
                     port=port, window=3, accept_early=True)
        answers = exchange(port, m1, sock=first.sock)
        assert len(answers) == 1 and answers[0][0] >> 5 == codec.TYPE_M2
        assert not answers[0][0] & codec.M2_EARLY_OK
        assert exchange(port, m3, sock=first.sock, wait=0.3) == []
        m = b.metrics()
        assert metric(m, "airshake_datagrams_total", type="m1", result="ok") == 1
        assert metric(m, "airshake_handshakes_total", outcome="ok", reason="complete") == 0
        assert metric(m, "airshake_records_total", kind="early", result="ok") == 0
        b.db = db
        early = [row for row in b.records() if row[0] == dev.id_hex and row[3] == "early"]
        assert [row[4] for row in early] == [b"open the door"]
    finally:
        cs.stop()
        assert b.stop() == 0


# -- two core bugs the stateful test found, fixed in the core: kept as regressions -------

def test_m1_replayed_at_the_exact_end_of_its_replay_entry_is_refused():
    """(A 0-RTT m1: only those enter the replay cache now, core contract 5.)"""
    from testkit import hs_support
    from airshake.errors import ReplayError, StaleTimestamp
    from airshake.keys import ServerRef
    from airshake.responder import Responder
    ref = ServerRef(BACKEND, 0, hs_support.cert(0, "server_cert"))
    cfg = hs_support.config(BACKEND, (0,), accept_early=True)
    pair = hs_support.Pair(BACKEND, 0, ini=hs_support.initiator(BACKEND, 0, server=ref),
                           cfg=cfg)
    window = pair.cfg.window
    pair.ini.clock_offset = window          # A's clock ahead by the whole window: legal
    pair.run(b"x", early=True)
    assert any(isinstance(e, ev.EarlyData) for e in pair.b_events)
    late = pair.t + 2 * window              # the replay entry's expiry; the stamp is
    replayed = Responder(pair.cfg, late)    # exactly `window` behind: still acceptable
    replayed.receive(pair.wire[0][1], late)
    e = replayed.next_event()
    if isinstance(e, ev.NeedCredential):
        replayed.provide_credential(hs_support.cert(0, "device_cert"), late)
        e = replayed.next_event()
    assert isinstance(e, (ev.Dropped, ev.Refused)), e       # refused, never raised
    assert isinstance(e.error, (ReplayError, StaleTimestamp)), e.error


def test_zero_rtt_replayed_after_a_restart_from_a_device_whose_clock_is_ahead():
    from testkit import hs_support
    from airshake.keys import ServerRef
    from airshake.responder import Responder
    ref = ServerRef(BACKEND, 0, hs_support.cert(0, "server_cert"))
    ini = hs_support.initiator(BACKEND, 0, server=ref)
    ini.clock_offset = 30                   # within B's 120 s window
    pair = hs_support.Pair(BACKEND, 0, ini=ini,
                           cfg=hs_support.config(BACKEND, (0,), accept_early=True))
    pair.run(b"open the door", early=True)
    assert any(isinstance(e, ev.EarlyData) for e in pair.b_events)
    restarted = hs_support.config(BACKEND, (0,), accept_early=True)
    restarted.started = pair.t + 5          # B restarted 5 s after the m1 was sent
    res = Responder(restarted, pair.t + 6)
    res.receive(pair.wire[0][1], pair.t + 6)
    res.next_event()
    res.provide_credential(hs_support.cert(0, "device_cert"), pair.t + 6)
    assert not isinstance(res.next_event(), ev.EarlyData)
