# tests/host/test_server_b_defences.py: server B's defences of issue 11 against the real
# processes (`airshake cs serve`, `airshake server`), with forged datagrams on loopback:
#   item 10  revoked and unknown IDs get the same answer;
#   item 11  forged m1s carrying a victim's ID from other addresses do not lock it out;
#   item 13  B sends an address that completed no handshake at most `amplification`
#            times what it received from it, and answers copies of one m1 at most 3 times;
#   item 7   a flood of junk 0-RTT m1s cannot push an accepted one out of the replay
#            cache (one B, and two B sharing Redis); a full cache refuses 0-RTT;
#   item 14  B's receive buffer comes from its settings and kernel drops are counted;
#   item 4   a renewed C_B (same key) is served without a restart.
from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
from collections import Counter
from types import SimpleNamespace

import httpx
import pytest

from airshake import codec
from airshake import events as ev
from b_support import (CS, BProcess, Device, error_code, exchange, first_m1, handshake,
                       make_pki, metric, parse_metrics, wait_for)
from testkit.cs_support import ADMIN_HEADERS, free_port, run


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("defences-pki")
    ca_dir, key_dir = make_pki(tmp)
    return SimpleNamespace(ca_dir=ca_dir, key_dir=key_dir,
                           anchor=(ca_dir / "ca.der").read_bytes())


@pytest.fixture(scope="module")
def cs(pki, tmp_path_factory):
    cs = CS(tmp_path_factory.mktemp("defences-cs"), pki.ca_dir)
    yield cs
    cs.stop()


def cs_lookups(cs):
    m = parse_metrics(httpx.get(cs.url + "/metrics", timeout=5).text)
    return sum(v for k, v in m.items() if k[0] == "cs_lookups_total")


def revoke(cs, dev):
    r = httpx.post(cs.url + "/revoke/" + dev.id_hex, json={"reason": "keyCompromise"},
                   headers=ADMIN_HEADERS, timeout=5)
    assert r.status_code == 200, r.text


def flipped(m1, i):
    """m1 with bits of one G_X byte flipped (8,160 distinct ones): the same ID and
    timestamp, another handshake."""
    at = 2 + 8 + 4 + i % 32
    return m1[:at] + bytes((m1[at] ^ (i // 32 % 255 + 1),)) + m1[at + 1:]


# -- item 10 ------------------------------------------------------------------------

def test_revoked_and_unknown_ids_get_the_same_answer(pki, cs, tmp_path):
    """Probing B with m1s cannot tell a revoked device from one never enrolled: both get
    UNKNOWN_ID, of the same size, from the same check (the ID set), with no CS request."""
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-probe")
    try:
        revoked, unknown = Device(0).enroll(cs.url), Device(0)
        assert handshake(b.port, revoked, pki.anchor).confirmed     # B caches it
        revoke(cs, revoked)
        assert wait_for(lambda: any(x.get("event") == "revocation_applied"
                                    for x in b.log_lines()))
        before, lookups = b.metrics(), cs_lookups(cs)
        answers = {}
        for name, dev in (("revoked", revoked), ("unknown", unknown)):
            dev.server = None
            _ini, m1 = first_m1(dev, pki.anchor)
            got = exchange(b.port, m1)
            assert len(got) == 1, (name, got)
            answers[name] = got[0]
        assert {error_code(a) for a in answers.values()} == {codec.ERR_UNKNOWN_ID}
        assert len(answers["revoked"]) == len(answers["unknown"])
        assert answers["revoked"][0] == answers["unknown"][0]         # same header byte
        after = b.metrics()
        assert metric(after, "airshake_datagrams_total", type="m1", result="unknown_id") == \
            metric(before, "airshake_datagrams_total", type="m1", result="unknown_id") + 2
        assert cs_lookups(cs) == lookups
    finally:
        assert b.stop() == 0


def test_until_b_holds_the_id_set_it_looks_ids_up(pki, tmp_path):
    """B started while the CS is down has no ID set: it says so (metric, log) and looks
    each ID up (TRY_LATER while the CS is unreachable); once the CS is up it reads the
    set and answers unknown IDs itself."""
    port = free_port()
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, "http://127.0.0.1:%d" % port,
                 name="b-before-cs", cs_timeout=0.5)
    cs = None
    try:
        assert metric(b.metrics(), "airshake_ids_synced") == 0
        assert wait_for(lambda: any(x.get("event") == "ids_unsynced" for x in b.log_lines()))
        stranger = Device(0)
        assert handshake(b.port, stranger, pki.anchor).code == codec.ERR_TRY_LATER
        cs = CS(tmp_path, pki.ca_dir, port=port)
        assert wait_for(lambda: metric(b.metrics(), "airshake_ids_synced") == 1, timeout=15)
        lookups = cs_lookups(cs)
        stranger = Device(0)
        assert handshake(b.port, stranger, pki.anchor).code == codec.ERR_UNKNOWN_ID
        assert cs_lookups(cs) == lookups
    finally:
        assert b.stop() == 0
        if cs is not None:
            cs.stop()


# -- item 11 ------------------------------------------------------------------------

FORGED_RATE = float(os.environ.get("FORGED_M1_RATE", "50"))   # forged m1s/s with the ID
FORGERS = 25                 # source addresses they come from (127.0.0.10 ...)
FLOOD_SECONDS = 8.0


class Forger(threading.Thread):
    """Sends bit-flipped and replayed copies of the victim's real m1 from FORGERS
    addresses at FORGED_RATE, and counts what B answers them."""

    def __init__(self, port, m1):
        super().__init__(daemon=True)
        self.port, self.m1 = port, m1
        self.stop = threading.Event()
        self.sent = 0
        self.answers = Counter()
        self.socks = []
        for i in range(FORGERS):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.%d" % (10 + i), 0))
            s.setblocking(False)
            self.socks.append(s)

    def run(self):
        t0 = time.monotonic()
        while not self.stop.is_set():
            s = self.socks[self.sent % FORGERS]
            m = self.m1 if self.sent % 4 == 0 else flipped(self.m1, self.sent)
            s.sendto(m, ("127.0.0.1", self.port))
            self.sent += 1
            for sock in self.socks:
                try:
                    while True:
                        d = sock.recv(4096)
                        self.answers[error_code(d) or ("m2" if d[0] >> 5 == codec.TYPE_M2
                                                       else "other")] += 1
                except BlockingIOError:
                    pass
            time.sleep(max(0.0, t0 + self.sent / FORGED_RATE - time.monotonic()))

    def close(self):
        self.stop.set()
        self.join()
        for s in self.socks:
            s.close()


def test_forged_m1s_carrying_a_victims_id_do_not_lock_it_out(pki, cs, tmp_path):
    """50 forged m1/s with the victim's ID (bit-flipped and replayed copies of its real
    m1) from 25 other addresses, under B's default limits: the victim, handshaking
    about once a second from the address where it completed a handshake before,
    completes every handshake; the forgeries run into the ID's bucket for unproven
    sources."""
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-victim",
                 rate_per_source="20:40", rate_per_id="2:5", log_level="warning")
    try:
        victim = Device(0).enroll(cs.url)
        assert handshake(b.port, victim, pki.anchor).confirmed      # proven from 127.0.0.1
        victim.server = None                 # its m1s ask for C_B by value (the larger m2)
        _ini, real_m1 = first_m1(victim, pki.anchor)
        forger = Forger(b.port, real_m1)
        forger.start()
        results = Counter()
        t0 = time.monotonic()
        try:
            time.sleep(1.0)                  # the flood has emptied the ID's shared bucket
            while time.monotonic() - t0 < FLOOD_SECONDS:
                res = handshake(b.port, victim, pki.anchor, data=b"reading", timeout=3)
                res.sock.close()
                results["confirmed" if res.confirmed else "refused %s" % res.code] += 1
                time.sleep(0.5)
        finally:
            forger.close()
        m = b.metrics()
        print("\nforged m1s: sent %d at %.0f/s from %d addresses, B's answers %r; victim %r"
              % (forger.sent, FORGED_RATE, FORGERS, dict(forger.answers), dict(results)))
        assert forger.sent >= FORGED_RATE * (FLOOD_SECONDS - 1)
        assert results["confirmed"] >= 5 and set(results) == {"confirmed"}, results
        assert metric(m, "airshake_handshakes_total", outcome="refused",
                      reason="rate_id_all") > 0           # the flood did hit the ID's limit
    finally:
        assert b.stop() == 0


# -- item 13 ------------------------------------------------------------------------

def test_b_is_not_an_amplifier_towards_an_address_that_never_completed_a_handshake(
        pki, cs, tmp_path):
    """With --amplification 3: a forged copy of a device's real m1 sent with a victim's
    address earns the victim at most 3 x the bytes received from it (the m2 by value,
    about 240 bytes with C_B as C509, needs two copies of the 46-byte m1), and copies
    of one m1 are answered at most 3 more times. A real device without C_B still
    completes (it retransmits its m1); with the default factor of 10 one m1 is enough."""
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-amp", amplification=3)
    time.sleep(0.2)
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim.bind(("127.0.0.5", 0))
    try:
        dev = Device(0).enroll(cs.url)
        _ini, m1 = first_m1(dev, pki.anchor)
        sent = received = 0
        per_copy = []
        for _ in range(10):
            got = exchange(b.port, m1, sock=victim, wait=0.3)
            sent += len(m1)
            received += sum(len(d) for d in got)
            per_copy.append(len(got))
            assert received <= 3 * sent, (received, sent, per_copy)
        print("\nanswers to 10 copies of one m1 (%d B) from one address: %r, %d B sent, "
              "%d B received" % (len(m1), per_copy, sent, received))
        assert per_copy[:3] == [0, 1, 0]                     # 3 x 2 x 46 B >= m2
        assert sum(per_copy) <= 3                            # at most 3 answers to copies
        m = b.metrics()
        assert metric(m, "airshake_amplification_withheld_total", reason="amplification") >= 1
        assert metric(m, "airshake_amplification_withheld_total", reason="duplicate") >= 1
        # bit-flipped copies (new handshakes, each an m2 by value): the bound holds too
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.0.6", 0))
        sent = received = 0
        for i in range(12):
            sent += len(m1)
            received += sum(len(d) for d in exchange(b.port, flipped(m1, i), sock=other,
                                                     wait=0.2))
        other.close()
        assert received <= 3 * sent, (received, sent)
        # a real device holding no C_B gets its m2 after its retransmissions
        fresh = Device(0).enroll(cs.url)
        res = handshake(b.port, fresh, pki.anchor, data=b"first contact")
        assert res.confirmed
        assert sum(1 for d in res.sent if codec.message_type(d) == codec.TYPE_M1) >= 2
    finally:
        victim.close()
        assert b.stop() == 0


# -- item 7 -------------------------------------------------------------------------

def junk_early_m1s(dev, n):
    """0-RTT m1s carrying an enrolled ID whose early data does not authenticate."""
    now = int(time.time())
    return [codec.encode_m1(codec.M1(codec.M1_EARLY | codec.M1_CB_KNOWN, 0, 0b101, dev.key.id_a,
                                     now, os.urandom(32), os.urandom(24)))
            for _ in range(n)]


def junk_flood(port, m1s):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.7", 0))
    for i, m in enumerate(m1s):
        s.sendto(m, ("127.0.0.1", port))
        if i % 50 == 49:
            time.sleep(0.01)
    s.close()


# B runs with window 10 and session_max_age 3: it keeps a completed handshake (which
# answers a copy of its m1 by itself) for 3 s only, so a replay 4 s later meets the
# replay cache; the 0-RTT m1s are stamped 9 s ahead, past B's start + window and still
# inside the window when replayed
WINDOW, AHEAD = 10, 9


def wait_for_early(b):
    """Until m1s stamped AHEAD are past B's start + window (PROTOCOL.md §8.5)."""
    started = next(x["started"] for x in b.log_lines() if x.get("event") == "ready")
    time.sleep(max(0.0, started + WINDOW - AHEAD + 1.05 - time.time()))


def _replay_flood_scenario(pki, cs, bs):
    """On bs[0]: a 0-RTT reading is accepted; a flood of junk; the replay of that m1 to
    every B gets nothing; the reading is stored once; a full cache refuses 0-RTT."""
    dev = Device(0).enroll(cs.url)
    assert handshake(bs[0].port, dev, pki.anchor, data=b"n=1").confirmed    # learn C_B
    res = handshake(bs[0].port, dev, pki.anchor, data=b"n=2 early", early=True,
                    now=time.time() + AHEAD)
    assert res.confirmed and res.of(ev.HandshakeComplete)[0].early_accepted
    m1_early = res.sent[0]
    junk_flood(bs[0].port, junk_early_m1s(dev, 3000))
    time.sleep(4)                       # past the completed handshake's linger
    for b in bs:
        assert exchange(b.port, m1_early, wait=0.4) == []
    early_rows = [r for b in bs for r in b.records() if r[4] == b"n=2 early"]
    # a full cache (16 entries): 0-RTT refused, the data comes in m3, the metric counts it
    others = [Device(0).enroll(cs.url) for _ in range(4)]
    for d in others:
        assert handshake(bs[0].port, d, pki.anchor).confirmed
    accepted = refused = 0
    for i in range(5):
        for d in others:
            r = handshake(bs[0].port, d, pki.anchor, data=b"r%d" % i, early=True,
                          now=time.time() + AHEAD)
            assert r.confirmed
            if r.of(ev.HandshakeComplete)[0].early_accepted:
                accepted += 1
            else:
                refused += 1
    return early_rows, accepted, refused


def test_a_flood_of_junk_m1s_cannot_reopen_0rtt_for_a_replay(pki, cs, tmp_path):
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-replay", window=WINDOW,
                 session_max_age=3, accept_early=True, replay_size=16)
    try:
        wait_for_early(b)
        rows, accepted, refused = _replay_flood_scenario(pki, cs, [b])
        assert rows == [rows[0]] and rows[0][3] == "early"      # stored once
        assert accepted == 15 and refused == 5                   # 16 entries: one was n=2
        assert metric(b.metrics(), "airshake_replay_full_total") == refused
    finally:
        assert b.stop() == 0


def test_a_flood_of_junk_m1s_cannot_reopen_0rtt_for_a_replay_with_redis(pki, cs, tmp_path):
    from testkit.servers import Redis
    redis = Redis()
    bs = []
    try:
        bs = [BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-redis%d" % i,
                       window=WINDOW, session_max_age=3, accept_early=True, replay_size=16,
                       redis=redis.url)
              for i in (1, 2)]
        for b in bs:
            wait_for_early(b)
        rows, accepted, refused = _replay_flood_scenario(pki, cs, bs)
        assert len(rows) == 1 and rows[0][3] == "early"
        assert accepted == 15 and refused == 5
        m = bs[0].metrics()
        assert metric(m, "airshake_replay_full_total") == refused
        assert metric(m, "airshake_replay_shared_total", result="full") == refused
    finally:
        for b in bs:
            b.stop()
        redis.close()


# -- item 14 ------------------------------------------------------------------------

def test_receive_buffer_is_configured_and_kernel_drops_are_counted(pki, cs, tmp_path):
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-small", rcvbuf=65536)
    default = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-default")
    try:
        ready = next(x for x in b.log_lines() if x.get("event") == "ready")
        assert ready["rcvbuf_asked"] == 65536 and 65536 <= ready["rcvbuf"] <= 2 * 65536
        ready = next(x for x in default.log_lines() if x.get("event") == "ready")
        assert ready["rcvbuf"] >= 4 * 1024 * 1024            # the default is 4 MiB
        assert metric(b.metrics(), "airshake_udp_drops_total") == 0
        b.proc.send_signal(signal.SIGSTOP)                   # B reads nothing ...
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            for _ in range(2000):                           # ... while 2 MB arrive
                s.sendto(b"\xe0" + bytes(999), ("127.0.0.1", b.port))
            s.close()
        finally:
            b.proc.send_signal(signal.SIGCONT)
        drops = wait_for(lambda: metric(b.metrics(), "airshake_udp_drops_total"), timeout=5)
        print("\nkernel drops counted with a %d-byte buffer: %d of 2000" % (65536, drops))
        assert 0 < drops < 2000
        assert any(x.get("event") == "udp_drops" for x in b.log_lines())
    finally:
        assert b.stop() == 0
        assert default.stop() == 0


# -- item 4 -------------------------------------------------------------------------

def test_a_renewed_server_certificate_is_served_without_a_restart(pki, cs, tmp_path):
    key_dir = tmp_path / "keys"
    shutil.copytree(pki.key_dir, key_dir)
    b = BProcess(tmp_path, pki.ca_dir, key_dir, cs.url, name="b-renew")
    try:
        dev = Device(0).enroll(cs.url)
        assert handshake(b.port, dev, pki.anchor).confirmed
        old = (key_dir / "server-suite0.der").read_bytes()
        assert dev.server.der == old
        out = run("ca", "renew-server", "--ca-dir", pki.ca_dir, "--key-dir", key_dir,
                  "--suite", 0, "--force")
        assert out.returncode == 0, out.stderr
        new = (key_dir / "server-suite0.der").read_bytes()
        assert new != old
        assert wait_for(lambda: any(x.get("event") == "server_keys_reloaded"
                                    for x in b.log_lines()), timeout=6)
        fresh = Device(0).enroll(cs.url)
        res = handshake(b.port, fresh, pki.anchor)
        assert res.confirmed and fresh.server.der == new
    finally:
        assert b.stop() == 0
