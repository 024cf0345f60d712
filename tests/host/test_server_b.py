"""Server B with real processes: `airshake ca` makes the PKI, `airshake cs serve` is the
certificate store over HTTP, `airshake server` is B over UDP, and device A is the core's
Initiator on a UDP socket in the test. Covers the happy path (data stored once, replies,
0-RTT), revocation reaching two B processes (within 1 s: soak), a CS outage, replay (stale and
duplicate m1s), bad device certificates, and bad configuration."""
import asyncio
import concurrent.futures
import datetime
import hashlib
import signal
import socket
import struct
import time
from types import SimpleNamespace

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.x509.oid import NameOID

from airshake import codec
from airshake import events as ev
from b_support import (BACKEND, CS, BProcess, Device, error_code, exchange, first_m1, handshake,
                       make_pki, metric, parse_metrics, wait_for)
from testkit.cs_support import ADMIN_HEADERS, READER_TOKEN, assert_one_line_error, run
from airshake.keys import DeviceKey
from host_server.ca import CA
from host_server.cert_store.store import CertRecord
from host_server.cert_store.sqlite_store import SqliteStore


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")
    ca_dir, key_dir = make_pki(tmp)
    return SimpleNamespace(ca_dir=ca_dir, key_dir=key_dir, anchor=(ca_dir / "ca.der").read_bytes())


@pytest.fixture(scope="module")
def cs(pki, tmp_path_factory):
    cs = CS(tmp_path_factory.mktemp("cs"), pki.ca_dir)
    yield cs
    cs.stop()


@pytest.fixture(scope="module")
def b1(pki, cs, tmp_path_factory):
    b = BProcess(tmp_path_factory.mktemp("b1"), pki.ca_dir, pki.key_dir, cs.url, name="b1",
                 reply="ack")
    yield b
    assert b.stop() == 0
    assert not [line for line in b.log_lines() if line.get("event") == "NOT JSON"]


@pytest.fixture(scope="module")
def b2(pki, cs, tmp_path_factory):
    b = BProcess(tmp_path_factory.mktemp("b2"), pki.ca_dir, pki.key_dir, cs.url, name="b2",
                 reply="ack")
    yield b
    assert b.stop() == 0


def cs_metrics(cs):
    return parse_metrics(httpx.get(cs.url + "/metrics", timeout=5).text)


# -- happy path --------------------------------------------------------------------

def test_handshake_stores_data_exactly_once_and_replies(pki, cs, b1):
    dev = Device(0).enroll(cs.url)
    r = handshake(b1.port, dev, pki.anchor, data=b"temp=21.5", records=[b"r1", b"r2"],
                  wait_replies=3)
    assert r.confirmed, r.events
    assert sorted(r.replies) == [b"ack:0", b"ack:0", b"ack:1"]
    sid = r.initiator.session.sid.hex()
    # a duplicated m3 gets the identical first record; a duplicated record is refused
    m3 = next(d for d in r.sent if d[0] >> 5 == codec.TYPE_M3)
    first = next(d for d in r.received if d[0] >> 5 == codec.TYPE_RECORD)
    assert exchange(b1.port, m3, sock=r.sock) == [first]
    exchange(b1.port, r.sent[-1], sock=r.sock, wait=0.2)
    want = [(dev.id_hex, sid, 0, "m3", b"temp=21.5"), (dev.id_hex, sid, 0, "record", b"r1"),
            (dev.id_hex, sid, 1, "record", b"r2")]
    assert wait_for(lambda: len(b1.records()) >= 3)
    time.sleep(0.2)
    assert sorted(row for row in b1.records() if row[0] == dev.id_hex) == sorted(want)
    log = [x for x in b1.log_lines() if x.get("event") == "handshake" and x.get("id") == dev.id_hex]
    assert log and log[0]["outcome"] == "ok" and log[0]["cache"] == "cs"
    text = b1.stderr_path.read_text()
    assert "temp=21.5" not in text and "r1" not in text.replace('"r1"', "")


def test_suite2_then_zero_rtt_with_cached_server_cert(pki, cs, tmp_path):
    # a B of its own with a 3 s window: after a start B refuses 0-RTT stamped up to
    # start + window (its replay cache is new; PROTOCOL.md §8.5)
    b1 = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-0rtt", window=3,
                  accept_early=True)
    dev = Device(2).enroll(cs.url)
    first = handshake(b1.port, dev, pki.anchor, data=b"hello")
    assert first.confirmed and dev.server is not None
    started = next(x["started"] for x in b1.log_lines() if x.get("event") == "ready")
    while int(time.time()) <= started + 3:
        time.sleep(0.05)
    again = handshake(b1.port, dev, pki.anchor, data=b"early bird", early=True)
    assert again.confirmed
    assert again.of(ev.HandshakeComplete)[0].early_accepted
    assert len(again.sent[0]) == 43 + len(b"early bird") + 8      # 0-RTT short m1
    assert len(again.received[0]) == 41                           # m2 by reference
    kinds = wait_for(lambda: {row[3] for row in b1.records() if row[0] == dev.id_hex} >=
                     {"m3", "early"} and {row[3] for row in b1.records() if row[0] == dev.id_hex})
    assert kinds == {"m3", "early"}
    m = b1.metrics()
    assert metric(m, "airshake_cache_total", cache="mem", result="hit") >= 1
    b1.stop()


def test_zero_rtt_data_is_refused_unless_the_operator_turns_it_on(pki, cs, tmp_path):
    """0-RTT data is not protected against the compromise of B's static key (whoever
    holds S_B can make it as any device): B refuses it by default; the device's data
    then goes in m3 and is stored once (issue 11 item 8)."""
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-no0rtt", window=1,
                 reply="ack")
    try:
        dev = Device(0).enroll(cs.url)
        assert handshake(b.port, dev, pki.anchor, data=b"n=1").confirmed
        time.sleep(2.1)                           # past start + window
        res = handshake(b.port, dev, pki.anchor, data=b"n=2 early?", early=True,
                        wait_replies=1)
        assert res.confirmed and res.sent[0][0] & codec.M1_EARLY
        assert not res.of(ev.HandshakeComplete)[0].early_accepted
        assert res.replies == [b"ack:0"]          # the data came in m3
        assert wait_for(lambda: [(r[3], r[4]) for r in b.records()
                                 if r[4] == b"n=2 early?"] == [("m3", b"n=2 early?")])
        ready = next(x for x in b.log_lines() if x.get("event") == "ready")
        assert ready["accept_early"] is False
    finally:
        assert b.stop() == 0


def test_unknown_id_is_refused_without_asking_the_cs(pki, b1):
    """B holds the CS's set of enrolled IDs: an ID outside it is answered UNKNOWN_ID
    with no CS request (issue 11 item 12)."""
    assert wait_for(lambda: metric(b1.metrics(), "airshake_ids_synced") == 1)
    dev = Device(0)                                    # never enrolled
    before = b1.metrics()
    assert handshake(b1.port, dev, pki.anchor).code == codec.ERR_UNKNOWN_ID
    assert handshake(b1.port, dev, pki.anchor).code == codec.ERR_UNKNOWN_ID
    after = b1.metrics()
    for result in ("ok", "absent", "revoked", "error"):
        assert metric(after, "airshake_cs_requests_total", result=result) == \
            metric(before, "airshake_cs_requests_total", result=result)
    assert metric(after, "airshake_handshakes_total", outcome="refused",
                  reason="unknown_id") == metric(before, "airshake_handshakes_total",
                                                 outcome="refused", reason="unknown_id") + 2


# -- replay ------------------------------------------------------------------------

def test_stale_m1_refused_before_any_cs_lookup(pki, cs, b1):
    dev = Device(0).enroll(cs.url)                     # enrolled, never looked up
    cs_before, b_before = cs_metrics(cs), b1.metrics()
    _ini, m1 = first_m1(dev, pki.anchor, now=time.time() - 1000)
    answers = exchange(b1.port, m1)
    assert len(answers) == 1 and error_code(answers[0]) == codec.ERR_STALE_TIME
    (b_time,) = struct.unpack(">I", codec.decode_error(answers[0]).body)
    assert abs(b_time - time.time()) < 5
    def lookups(m):
        return sum(v for k, v in m.items() if k[0] == "cs_lookups_total")
    assert lookups(cs_metrics(cs)) == lookups(cs_before)          # the CS was not asked
    b_after = b1.metrics()
    assert sum(v for k, v in b_after.items() if k[0] == "airshake_cs_requests_total") == \
        sum(v for k, v in b_before.items() if k[0] == "airshake_cs_requests_total")
    assert metric(b_after, "airshake_handshakes_total", outcome="refused",
                  reason="stale_time") >= 1


def test_duplicate_m1_answered_identically_from_any_address(pki, cs, b1):
    dev = Device(0).enroll(cs.url)
    ini, m1 = first_m1(dev, pki.anchor)
    a, b = socket.socket(type=socket.SOCK_DGRAM), socket.socket(type=socket.SOCK_DGRAM)
    m2a = exchange(b1.port, m1, sock=a)
    m2b = exchange(b1.port, m1, sock=b)                # another address, the same m2
    assert len(m2a) == 1 and m2a == m2b and m2a[0][0] >> 5 == codec.TYPE_M2
    ini.receive(m2a[0], time.time())
    m3 = ini.datagrams_to_send(time.time())[0]
    # m3 is routed by (address, hint): from an address that never sent the m1 it is
    # dropped; from either address that did, it completes the handshake
    assert exchange(b1.port, m3, wait=0.3) == []
    ack = exchange(b1.port, m3, sock=b)
    assert len(ack) == 1 and ack[0][0] >> 5 == codec.TYPE_RECORD
    assert exchange(b1.port, m3, sock=a) == ack        # duplicate m3: the same record
    # the handshake is over: the same m1 again is a replay and gets nothing
    assert exchange(b1.port, m1, sock=a, wait=0.3) == []


# -- revocation --------------------------------------------------------------------

def test_revocation_ends_sessions_and_handshakes_on_every_b(pki, cs, b1, b2, timing):
    """A revocation drops, on every B, the device's sessions (its next record gets no
    reply and is not stored), its pending handshakes (m3 gets nothing) and its cached
    certificate (its next handshake is refused, as an unknown ID): issue 11 item 3. The
    soak variant bounds it: both Bs have dropped them within 1 s."""
    dev = Device(0).enroll(cs.url)
    sessions = {}
    for b in (b1, b2):                                 # both cache the certificate
        res = handshake(b.port, dev, pki.anchor, data=b"n=1", records=[b"n=2"],
                        wait_replies=2)
        assert res.confirmed and res.replies == [b"ack:0", b"ack:0"]
        sessions[b] = res
    pending, m1 = first_m1(dev, pki.anchor)            # a handshake waiting for m3 on b1
    (m2,) = exchange(b1.port, m1)
    pending.receive(m2, time.time())
    m3 = pending.datagrams_to_send(time.time())[0]
    r = httpx.post(cs.url + "/revoke/" + dev.id_hex, json={"reason": "keyCompromise"}, timeout=5,
                   headers=ADMIN_HEADERS)
    assert r.status_code == 200, r.text
    timing.start()

    def dropped_on(b):
        return [x for x in b.log_lines() if x.get("event") == "revoked_dropped"
                and x.get("id") == dev.id_hex]
    assert wait_for(lambda: dropped_on(b1) and dropped_on(b2), timeout=15, step=0.01)
    timing.within(1.0, "the revocation reaching both Bs")
    for b, res in sessions.items():
        ini, sock = res.initiator, res.sock
        ini.send(b"n=3 after the revocation")
        for d in ini.datagrams_to_send(time.time()):
            assert exchange(b.port, d, sock=sock, wait=0.3) == []
        assert handshake(b.port, dev, pki.anchor, timeout=10).code == codec.ERR_UNKNOWN_ID
    assert exchange(b1.port, m3, wait=0.3) == []
    for b in (b1, b2):
        assert not [row for row in b.records() if row[0] == dev.id_hex and b"n=3" in row[4]]
        applied = [x for x in b.log_lines() if x.get("event") == "revocation_applied"
                   and x.get("id") == dev.id_hex]
        assert applied and applied[0]["was_cached"] is True
        dropped = dropped_on(b)
        assert dropped and dropped[0]["sessions"] == 1
        assert metric(b.metrics(), "airshake_revocations_applied_total") >= 1
    assert dropped[0]["handshakes"] == 1                # b2: the completed one (kept for m3)
    b1_dropped = [x for x in b1.log_lines() if x.get("event") == "revoked_dropped"]
    assert b1_dropped[-1]["handshakes"] == 2            # b1: that and the pending one


# -- CS outage ---------------------------------------------------------------------

def test_cs_down_serves_cached_devices_and_asks_others_to_try_later(pki, tmp_path):
    cs = CS(tmp_path, pki.ca_dir)
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-outage",
                 try_later_s=7, cs_timeout=0.5)
    try:
        cached = Device(0).enroll(cs.url)
        other = Device(2).enroll(cs.url)
        assert handshake(b.port, cached, pki.anchor).confirmed
        # the CS hangs: lookups time out
        cs.proc.send_signal(signal.SIGSTOP)
        assert handshake(b.port, cached, pki.anchor, data=b"cs hangs").confirmed
        refused = handshake(b.port, other, pki.anchor)
        assert refused.code == codec.ERR_TRY_LATER
        assert refused.of(ev.ServerRejected)[0].retry_after == 7
        cs.proc.send_signal(signal.SIGCONT)
        # the CS dies: connections are refused
        cs.stop(signal.SIGKILL)
        assert handshake(b.port, cached, pki.anchor, data=b"cs dead").confirmed
        assert handshake(b.port, other, pki.anchor).code == codec.ERR_TRY_LATER
        assert b.proc.poll() is None
        m = b.metrics()
        assert metric(m, "airshake_handshakes_total", outcome="refused",
                      reason="cs_unavailable") == 2
        assert metric(m, "airshake_cs_requests_total", result="error") == 2
        assert metric(m, "airshake_handshakes_total", outcome="ok", reason="complete") == 3
        # the CS comes back on its port: TRY_LATER was never negative-cached
        cs = CS(tmp_path, pki.ca_dir, port=cs.port)
        assert handshake(b.port, other, pki.anchor).confirmed
        assert wait_for(lambda: len([x for x in b.log_lines()
                                     if x.get("event") == "cs_stream_connected"]) >= 2)
        assert {r[4] for r in b.records()} >= {b"cs hangs", b"cs dead"}
    finally:
        cs.stop()
        assert b.stop() == 0


# -- bad device certificates -------------------------------------------------------
# The CS only enrolls certificates that chain to its CA and match their key, so these
# are written straight into its SQLite database (through its own store class) while it
# runs: B must refuse them on its own checks.

def _cert(issuer_key, issuer_name, public_key, days=(-1, 365), name="bad device"):
    now = datetime.datetime.now(datetime.timezone.utc)
    spki = public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(issuer_name).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days[0]))
            .not_valid_after(now + datetime.timedelta(days=days[1]))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(x509.SubjectKeyIdentifier(hashlib.sha256(spki).digest()[:8]), False)
            .sign(issuer_key, None))
    return cert.public_bytes(serialization.Encoding.DER)


def _store_raw(db_path, records):
    async def go():
        store = SqliteStore.open(str(db_path))
        try:
            for rec in records:
                await store.enroll(rec)
        finally:
            await store.close()
    asyncio.run(go())


def _record(id_a, der, serial):
    cert = x509.load_der_x509_certificate(der)
    return CertRecord(id=id_a, name="bad-" + id_a.hex(), der=der,
                      not_after=int(cert.not_valid_after_utc.timestamp()),
                      serial=cert.serial_number, enrolled_at=int(time.time()))


def _pyca_public(device):
    return x25519.X25519PublicKey.from_public_bytes(device.key.public)


def test_expired_wrong_ca_mismatched_key_and_server_role_certificates_are_refused(pki, cs,
                                                                                  tmp_path):
    """Certificates the CS would not issue, written into its database by hand: B checks
    each one itself. A server certificate (serverAuth) of the same CA is not a C_A."""
    ca = CA.load(pki.ca_dir)
    impostor_ca = ed25519.Ed25519PrivateKey.generate()    # same CA name, another key
    expired, wrong_ca, mismatched = Device(0), Device(0), Device(0)
    other_key = Device(0)
    records = [
        _record(expired.key.id_a, _cert(ca.key, ca.cert.subject, _pyca_public(expired),
                                        days=(-400, -30)), 1),
        _record(wrong_ca.key.id_a, _cert(impostor_ca, ca.cert.subject,
                                         _pyca_public(wrong_ca)), 2),
        # a genuine certificate of this CA, but for another key, stored under this ID
        _record(mismatched.key.id_a, ca.issue_device(_pyca_public(other_key), "other"), 3),
    ]
    server_key = serialization.load_pem_private_key(
        (pki.key_dir / "server-suite0.key").read_bytes(), None)
    as_device = Device(0, DeviceKey(BACKEND, 0, server_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
        serialization.NoEncryption())))                    # B's own key, as a device
    records.append(_record(as_device.key.id_a,
                           (pki.key_dir / "server-suite0.der").read_bytes(), 4))
    _store_raw(cs.db, records)
    b1 = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-badcerts")
    for dev in (expired, wrong_ca, mismatched, as_device):
        assert httpx.get(cs.url + "/certs/" + dev.id_hex, timeout=5,
                         headers=ADMIN_HEADERS).status_code == 200
        res = handshake(b1.port, dev, pki.anchor)
        assert res.code == codec.ERR_REJECTED, (dev.id_hex, res.events)
    m = b1.metrics()
    for reason in ("expired", "wrong_ca", "id_mismatch", "not_device_role"):
        assert metric(m, "airshake_handshakes_total", outcome="refused", reason=reason) == 1
    # refused certificates are negative-cached: a retry does not reach the CS again
    before = metric(m, "airshake_cs_requests_total", result="ok")
    assert handshake(b1.port, expired, pki.anchor).code == codec.ERR_REJECTED
    assert metric(b1.metrics(), "airshake_cs_requests_total", result="ok") == before
    assert b1.stop() == 0


# -- bad configuration: one line, non-zero exit, no traceback ------------------------

def test_bad_configuration_gives_one_clear_line(pki, tmp_path):
    base = ["server", "--ca-cert", pki.ca_dir / "ca.crt", "--key-dir", pki.key_dir,
            "--port", "0", "--metrics-port", "0", "--db", tmp_path / "b.db"]
    (tmp_path / "junk.crt").write_text("not a certificate")
    (tmp_path / "junk.db").write_bytes(b"this is not an SQLite database" * 100)
    (tmp_path / "b.toml").write_text("[server]\nwindow = \"long\"\n")
    (tmp_path / "c.toml").write_text("[server]\ncolour = 3\n")
    swapped = "0:%s:%s" % (pki.key_dir / "server-suite0.key", pki.key_dir / "server-suite2.der")
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    cases = [  # (arguments, words the one line must contain)
        (["server", "--port", "abc"], ["--port", "abc"]),
        (base + ["--rate-per-id", "fast"], ["rate_per_id", "RATE:BURST"]),
        (base + ["--window", "0"], ["window", "out of range"]),
        (["server", "--key-dir", pki.key_dir], ["--ca-cert"]),
        (base + ["--ca-cert", tmp_path / "nope.crt"], ["CA certificate", "does not exist"]),
        (base + ["--ca-cert", tmp_path / "junk.crt"], ["is not an X.509 certificate"]),
        (base + ["--key-dir", tmp_path], ["holds no server-suite"]),
        (base[:3] + ["--key", swapped] + base[5:], ["suite 0"]),
        (base + ["--db", tmp_path / "junk.db"], ["database", "junk.db"]),
        (base + ["--db", tmp_path], ["database"]),
        (base + ["--db", tmp_path / "no" / "such" / "dir.db"], ["database"]),
        (base + ["--config", tmp_path / "b.toml"], ["window"]),
        (base + ["--config", tmp_path / "c.toml"], ["colour"]),
        (base + ["--port", port], ["in use", str(port)]),
        (base + ["--rcvbuf", "-1"], ["rcvbuf", "out of range"]),
    ]
    token = {"AIRSHAKE_CS_TOKEN": READER_TOKEN}
    try:
        with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
            procs = list(pool.map(lambda case: run(*case[0], env=token), cases))
        procs.append(run(*base))                   # no token for the CS
        cases.append((base, ["token", "--cs-token-file"]))
    finally:
        taken.close()
    for (args, words), proc in zip(cases, procs):
        assert_one_line_error(proc, *words)


def test_config_file_and_help(pki, cs, tmp_path):
    (tmp_path / "b.toml").write_text(
        "[server]\n"
        f"ca_cert = \"{pki.ca_dir / 'ca.crt'}\"\n"
        f"cs_url = \"{cs.url}\"\n"
        "port = 0\nmetrics_port = 0\nwindow = 60\nrate_per_id = \"5:10\"\n"
        "keys = [{suite = 0, key = \"%s\", cert = \"%s\"}]\n" % (
            pki.key_dir / "server-suite0.key", pki.key_dir / "server-suite0.crt"))
    proc = BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name="b-toml",
                    config=tmp_path / "b.toml")
    try:
        ready = next(x for x in proc.log_lines() if x.get("event") == "ready")
        assert ready["window"] == 60 and ready["suites"] == [0, 2]
    finally:
        assert proc.stop() == 0
    out = run("server", "--help")
    assert out.returncode == 0 and "--rate-per-source" in out.stdout and "[server]" in out.stdout
