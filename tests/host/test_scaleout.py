"""Scale-out with real servers (tests/host/servers.py starts PostgreSQL, Redis and slapd on
loopback): several B instances on one PostgreSQL store and one Redis. Revocations pushed
to every B by LISTEN/NOTIFY, including one cut off from PostgreSQL; replay of a 0-RTT m1
to another instance; an instance killed mid-handshake; Redis down (0-RTT
refused, full handshakes go on); `airshake server --workers 3` on one port with 1,000
devices and a worker killed mid-run; and a device whose certificate lives only in an LDAP
directory."""
import asyncio
import os
import signal
import time
from types import SimpleNamespace

import httpx
import pytest
from cryptography import x509

from airshake import codec
from airshake import events as ev
from airshake import shell
from airshake.keys import DeviceKey
from b_support import (BACKEND, SERVER_NAME, BProcess, Device, exchange, handshake, make_pki,
                       metric, wait_for)
from testkit.cs_support import ADMIN_HEADERS, CSProcess
from host_server.server_b import fleet
from host_server.udp_link import UdpLink
from host_server.cert_store.service import ServeConfig
from testkit.servers import Redis, b64ldif


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pki")
    ca_dir, key_dir = make_pki(tmp)
    return SimpleNamespace(ca_dir=ca_dir, key_dir=key_dir,
                           anchor=(ca_dir / "ca.der").read_bytes())


@pytest.fixture
def pg_url(postgres):
    return postgres.url(postgres.create_db("scale"))


@pytest.fixture
def cs(tmp_path, pki, pg_url):
    """The CS on PostgreSQL: enrollment and revocation go through it."""
    d = tmp_path / "cs"
    d.mkdir()
    server = CSProcess(d, pki.ca_dir, db=pg_url, instance="cs-pg")
    yield server
    server.stop()


def start_bs(tmp_path, pki, cs, names, **flags):
    """One B per name, started together. With 0-RTT on, waits until each accepts it: B
    refuses 0-RTT data stamped up to its start + window (PROTOCOL.md §8.5), and a short
    window keeps that wait short."""
    flags.setdefault("reply", "ack")
    flags.setdefault("log_level", os.environ.get("B_LOG_LEVEL", "warning"))
    flags.setdefault("window", 5)
    bs = [BProcess(tmp_path, pki.ca_dir, pki.key_dir, cs.url, name=name, **flags)
          for name in names]
    if flags.get("accept_early"):
        started = max(x.get("started", 0) for b in bs for x in b.log_lines()
                      if x.get("event") == "ready")
        time.sleep(max(0.0, started + flags["window"] + 1.05 - time.time()))
    return bs


def start_b(tmp_path, pki, cs, name, **flags):
    return start_bs(tmp_path, pki, cs, [name], **flags)[0]


def health(b, worker=0):
    return httpx.get("http://127.0.0.1:%d/health" % (b.metrics_port + worker), timeout=5).json()


def enroll(cs, n=1, suite=0):
    return [Device(suite).enroll(cs.url) for _ in range(n)]


def pg_rows(postgres, pg_url, sql):
    db = pg_url.rsplit("/", 1)[1]
    out = postgres.psql(db, sql).stdout.strip()
    return [line.split("|") for line in out.splitlines() if line]


def early_accepted(res):
    done = res.of(ev.HandshakeComplete)
    return bool(done) and done[0].early_accepted


# -- revocation across instances ------------------------------------------------------

def _within(bounded, t0, limit, what):
    """The latency bound, asserted only in the soak variant (its margin is measured on a
    quiet machine; `make test` checks that the thing happens)."""
    took = time.monotonic() - t0
    assert not bounded or took < limit, "%s took %.2f s (bound %.1f s)" % (what, took, limit)


@pytest.mark.parametrize("bounded", [False, pytest.param(True, marks=pytest.mark.soak)],
                         ids=["eventually", "within_one_second"])
def test_revocation_reaches_three_instances(tmp_path, pki, cs, pg_url, postgres, bounded):
    """Pushed by NOTIFY to every B reading the store; one B whose LISTEN connection was
    cut when it happened catches up from the revocation log; one B kept out of
    PostgreSQL for a while catches up as soon as it is let back in. The soak variant
    bounds each step: 1 s for the push and the log, 1.5 s for the catch-up."""
    wait = 10 if not bounded else 3
    postgres.psql("postgres", "DO $$ BEGIN CREATE ROLE b3 LOGIN SUPERUSER; "
                              "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    b3_url = pg_url.replace("airshake@", "b3@")
    bs = start_bs(tmp_path, pki, cs, ("b1", "b2"), store=pg_url, db=pg_url)
    bs.append(start_b(tmp_path, pki, cs, "b3", store=b3_url, db=b3_url))
    try:
        devices = enroll(cs, 2)
        for b in bs:            # every B has both devices in its cache
            for d in devices:
                assert handshake(b.port, d, pki.anchor, data=b"n=1").confirmed
        assert all(wait_for(lambda b=b: health(b)["store_connected"]) for b in bs)

        def seqs():
            return [health(b)["revocation_seq"] for b in bs]

        # 1) B3's LISTEN connection is killed; the revocation happens while it is gone
        postgres.psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE application_name = 'airshake-b b3-listen'")
        t0 = time.monotonic()
        r = httpx.post(cs.url + "/revoke/" + devices[0].id_hex, json={"reason": "keyCompromise"},
                       headers=ADMIN_HEADERS)
        assert r.json()["seq"] == 1
        assert wait_for(lambda: seqs() == [1, 1, 1], timeout=wait, step=0.01), seqs()
        _within(bounded, t0, 1.0, "a revocation")
        for b in bs:
            assert handshake(b.port, devices[0], pki.anchor).code == codec.ERR_UNKNOWN_ID

        # 2) B3 cannot reach PostgreSQL at all for a while
        postgres.psql("postgres", "ALTER ROLE b3 NOLOGIN")
        postgres.psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE usename = 'b3'")
        t0 = time.monotonic()
        httpx.post(cs.url + "/revoke/" + devices[1].id_hex, headers=ADMIN_HEADERS)
        assert wait_for(lambda: seqs()[:2] == [2, 2], timeout=wait, step=0.01), seqs()
        _within(bounded, t0, 1.0, "a revocation")
        time.sleep(1.5)
        assert seqs()[2] == 1 and not health(bs[2])["store_connected"]
        postgres.psql("postgres", "ALTER ROLE b3 LOGIN")
        t0 = time.monotonic()
        assert wait_for(lambda: seqs()[2] == 2, timeout=wait + 2, step=0.01), seqs()
        _within(bounded, t0, 1.5, "the catch-up")
        assert handshake(bs[2].port, devices[1], pki.anchor).code == codec.ERR_UNKNOWN_ID
    finally:
        postgres.psql("postgres", "ALTER ROLE b3 LOGIN", check=False)
        for b in bs:
            assert b.stop() == 0


# -- replay across instances (Redis) ---------------------------------------------------

def test_0rtt_replayed_to_another_instance_is_refused(tmp_path, pki, cs, pg_url,
                                                      redis_server, postgres):
    """A full-handshake m1 is not a replay risk (an answer is useless without eA), so
    only 0-RTT m1s are shared: b1 accepts one, its replay to b2 gets nothing."""
    b1, b2 = start_bs(tmp_path, pki, cs, ("r1", "r2"), store=pg_url, db=pg_url,
                      redis=redis_server.url, accept_early=True)
    try:
        assert health(b1)["redis"] == "up" and health(b2)["status"] == "ok"
        dev = enroll(cs)[0]
        # 0-RTT: accepted once by b1, its replay to b2 refused; stored once
        assert handshake(b1.port, dev, pki.anchor, data=b"n=1 full").confirmed
        res = handshake(b1.port, dev, pki.anchor, data=b"n=2 early", early=True,
                        wait_replies=1)
        assert res.confirmed and early_accepted(res)
        m1_early = res.sent[0]
        assert m1_early[0] & codec.M1_EARLY
        assert exchange(b2.port, m1_early, wait=0.4) == []
        assert wait_for(lambda: metric(b2.metrics(), "airshake_datagrams_total",
                                       type="m1", result="replay") == 1)
        rows = pg_rows(postgres, pg_url, "SELECT kind, convert_from(data, 'UTF8') FROM "
                                         "records ORDER BY received_at")
        assert ["early", "n=2 early"] in rows and len([r for r in rows if r[0] == "early"]) == 1
    finally:
        for b in (b1, b2):
            assert b.stop() == 0


def test_instance_killed_mid_handshake_another_takes_over(tmp_path, pki, cs, pg_url,
                                                        redis_server, postgres):
    """The device's retransmitted m1 reaches another instance (as after the kernel
    rehashes): refused while the owner is alive, taken over once its liveness key
    expires; the takeover refuses the 0-RTT data, the device resends it in m3, and the
    reading is stored once."""
    b1, b2 = start_bs(tmp_path, pki, cs, ("k1", "k2"), store=pg_url, db=pg_url,
                      redis=redis_server.url, accept_early=True)
    try:
        dev = enroll(cs)[0]
        assert handshake(b2.port, dev, pki.anchor, data=b"n=1").confirmed   # learn C_B
        from airshake.initiator import Initiator
        ini = Initiator(BACKEND, [dev.key], pki.anchor, server=dev.server, rto=0.5,
                        server_name=SERVER_NAME)
        ini.connect(time.time(), b"n=2 early", early=True)
        m1 = ini.datagrams_to_send(time.time())[0]
        assert exchange(b1.port, m1)[0][0] >> 5 == codec.TYPE_M2    # b1 has it (and its data)
        assert wait_for(lambda: len(pg_rows(postgres, pg_url, "SELECT 1 FROM records "
                                                              "WHERE kind = 'early'")) == 1)
        b1.stop(signal.SIGKILL)
        events: list = []
        tries = []                                             # m1 retransmitted to b2

        def on_send(message: bytes) -> None:
            if codec.message_type(message) == codec.TYPE_M1:     # short or long
                tries.append(message)

        async def device() -> None:                            # the device retransmits
            link = await UdpLink.open(("127.0.0.1", b2.port))
            try:
                await shell.drive(ini, link, time.time, idle=2.0, deadline=time.time() + 10,
                                  on_event=events.append, on_send=on_send,
                                  until=lambda e: isinstance(e, ev.DataReceived))
            finally:
                link.close()
        asyncio.run(device())
        done = [e for e in events if isinstance(e, ev.HandshakeComplete)]
        assert done, "no instance took the handshake over"
        assert len(tries) > 1, "b2 answered while the owner's liveness key (1.5 s) still lived"
        assert not done[0].early_accepted                      # 0-RTT refused on takeover
        # m3 carried the data now: B's first record acknowledges it
        assert any(isinstance(e, ev.HandshakeConfirmed) for e in events)
        assert any(isinstance(e, ev.DataReceived) and e.data == b"ack:0" for e in events)
        rows = pg_rows(postgres, pg_url, "SELECT kind FROM records WHERE "
                                         "convert_from(data, 'UTF8') = 'n=2 early'")
        assert rows == [["early"]]                             # stored once, by b1
        m = b2.metrics()
        assert metric(m, "airshake_early_refused_total", reason="taken_over") == 1
        assert metric(m, "airshake_replay_shared_total", result="taken_over") == 1
    finally:
        for b in (b1, b2):
            b.stop()


def test_redis_down_refuses_0rtt_and_keeps_full_handshakes(tmp_path, pki, cs, pg_url):
    redis = Redis()
    b = start_b(tmp_path, pki, cs, "rd", store=pg_url, db=pg_url, redis=redis.url,
                redis_timeout=0.1, accept_early=True)
    try:
        dev = enroll(cs)[0]
        assert handshake(b.port, dev, pki.anchor, data=b"n=1").confirmed
        assert early_accepted(handshake(b.port, dev, pki.anchor, data=b"n=2", early=True))
        assert metric(b.metrics(), "airshake_redis_up") == 1    # the gauge exists ...
        redis.stop()
        assert wait_for(lambda: health(b)["redis"] == "down", timeout=3)
        h = health(b)
        assert h["status"] == "degraded" and h["early_data"] == "refused"
        assert metric(b.metrics(), "airshake_redis_up") == 0    # ... and falls
        res = handshake(b.port, dev, pki.anchor, data=b"n=3", wait_replies=1)
        assert res.confirmed and res.replies == [b"ack:0"]          # full handshake works
        res = handshake(b.port, dev, pki.anchor, data=b"n=4", early=True, wait_replies=1)
        assert res.confirmed and not early_accepted(res)             # 0-RTT refused ...
        assert res.replies == [b"ack:0"]                             # ... data came in m3
        assert metric(b.metrics(), "airshake_early_refused_total", reason="redis_down") >= 1
        redis.start()
        assert wait_for(lambda: health(b)["redis"] == "up", timeout=3)
        assert early_accepted(handshake(b.port, dev, pki.anchor, data=b"n=5", early=True))
    finally:
        assert b.stop() == 0
        redis.close()


# -- several workers on one port ---------------------------------------------------------

def _enroll_direct(pg_url, ca_dir, keys):
    """Enroll many device keys straight into the PostgreSQL store (as the CS would)."""
    from host_server.ca import CA, identifier, spki_der
    from host_server.cert_store.backends import open_store
    from host_server.cert_store.store import CertRecord
    from cryptography.hazmat.primitives.asymmetric import x25519
    ca = CA.load(ca_dir)

    async def go():
        store = open_store(pg_url)
        await store.connect()
        for k in keys:
            pub = x25519.X25519PublicKey.from_public_bytes(k.public)
            der = ca.issue_device(pub, "fleet", 8, 365)
            cert = x509.load_der_x509_certificate(der)
            await store.enroll(CertRecord(identifier(spki_der(pub), 8), "fleet", der,
                                          int(cert.not_valid_after_utc.timestamp()),
                                          cert.serial_number, int(time.time())))
        await store.close()
    asyncio.run(go())


@pytest.mark.soak       # a load run (1,000 devices, 90 s): make soak, one test at a time
def test_1000_devices_through_three_workers_one_killed(tmp_path, pki, cs, pg_url,
                                                       redis_server, postgres):
    """`airshake server --workers 3`: 1,000 devices each deliver two readings (one in m3,
    one as a record) until acknowledged; a worker is SIGKILLed when 30% are done. Every
    acknowledged reading is in PostgreSQL exactly once, and nothing is stored twice."""
    keys = [DeviceKey.generate(BACKEND, 0) for _ in range(1000)]
    _enroll_direct(pg_url, pki.ca_dir, keys)
    b = start_b(tmp_path, pki, cs, "fleet", store=pg_url, db=pg_url, redis=redis_server.url,
                workers=3, rate_per_id="100:100")
    ready = wait_for(lambda: [x for x in b.log_lines()
                              if x.get("event") == "ready" and "pids" in x], timeout=20)
    assert ready, "the supervisor never logged ready"
    pids = ready[0]["pids"]
    try:
        hs = [health(b, i) for i in range(3)]
        assert [h["worker"] for h in hs] == [0, 1, 2]
        assert len({h["instance"] for h in hs}) == 3 and all(h["status"] == "ok" for h in hs)
        done, killed = [], []

        def on_done(run):
            done.append(run)
            if len(done) == 300 and not killed:
                os.kill(pids[1], signal.SIGKILL)
                killed.append(time.monotonic())

        t0 = time.monotonic()
        runs = asyncio.run(fleet.deliver(b.port, keys, pki.anchor, readings=2,
                                         concurrency=150, duration=90, on_done=on_done,
                                         server_name=SERVER_NAME))
        elapsed = time.monotonic() - t0
        assert killed, "the worker was never killed"
        acked = {(r.id_hex, n) for r in runs for n in r.acked}
        incomplete = [r for r in runs if len(r.acked) < 2]
        assert not incomplete, "%d devices unfinished" % len(incomplete)
        rows = pg_rows(postgres, pg_url, "SELECT id_a, reading, instance FROM records")
        stored = [(i, int(n)) for i, n, _w in rows]
        assert len(stored) == len(set(stored)), "a reading was stored twice"
        assert acked <= set(stored), "an acknowledged reading is missing"
        assert len(stored) == 2000
        instances = {w for _i, _n, w in rows}
        assert len(instances) == 3          # all three workers stored records
        retried = sum(1 for r in runs if r.handshakes > 1)
        survivors = [i for i in range(3) if i != 1]
        relayed = sum(metric(b_metrics(b, i), "airshake_relay_total", direction="in",
                             result="ok") for i in survivors)
        print("\n1000 devices x 2 readings in %.1f s; %d devices needed another handshake; "
              "%d datagrams relayed between workers" % (elapsed, retried, relayed))
        sup = [x for x in b.log_lines() if x.get("event") == "worker_exited"]
        assert sup and sup[0]["worker"] == 1
    finally:
        b.stop()


def b_metrics(b, worker):
    from b_support import parse_metrics
    return parse_metrics(httpx.get("http://127.0.0.1:%d/metrics" % (b.metrics_port + worker),
                                   timeout=5).text)


# -- the X.509 directory -----------------------------------------------------------------

def test_device_only_in_ldap_completes_a_handshake(tmp_path, pki, slapd, monkeypatch):
    """B reads C_A from slapd (userCertificate;binary) and revocations from the CA
    entry's certificateRevocationList;binary."""
    from host_server.ca import CA
    ca = CA.load(pki.ca_dir)
    base = "ou=b-devices," + slapd.suffix
    slapd.add("dn: %s\nobjectClass: organizationalUnit\nou: b-devices\n" % base)
    dev = Device(0)
    from cryptography.hazmat.primitives.asymmetric import x25519
    der = ca.issue_device(x25519.X25519PublicKey.from_public_bytes(dev.key.public),
                          "ldap-only", 8, 365)
    slapd.add("dn: cn=%s,%s\nobjectClass: device\nobjectClass: pkiUser\ncn: %s\n%s" % (
        dev.id_hex, base, dev.id_hex, b64ldif("userCertificate;binary", der)))
    slapd.add("dn: cn=b CA,%s\nobjectClass: cRLDistributionPoint\nobjectClass: pkiCA\n"
              "cn: b CA\n%s%s" % (base, b64ldif("cACertificate;binary", ca.cert_der),
                                  b64ldif("certificateRevocationList;binary", ca.crl([]))))
    monkeypatch.setenv("AIRSHAKE_LDAP_CRL_REFRESH", "0")
    url = "ldap://127.0.0.1:%d/%s" % (slapd.port, base)
    b = BProcess(tmp_path, pki.ca_dir, pki.key_dir, "http://127.0.0.1:9", name="bl",
                 store=url, reply="ack", revocation_poll=1)
    try:
        res = handshake(b.port, dev, pki.anchor, data=b"n=1 from ldap", wait_replies=1)
        assert res.confirmed and res.replies == [b"ack:0"]
        assert health(b)["store"] == "ldap"
        stranger = Device(0)
        assert handshake(b.port, stranger, pki.anchor).code == codec.ERR_UNKNOWN_ID
        serial = x509.load_der_x509_certificate(der).serial_number
        slapd.modify("dn: cn=b CA,%s\nchangetype: modify\nreplace: "
                     "certificateRevocationList;binary\n%s" % (
                         base, b64ldif("certificateRevocationList;binary",
                                       ca.crl([(serial, int(time.time()), "keyCompromise")]))))
        assert wait_for(lambda: health(b)["revocation_seq"] == 1, timeout=5)
        assert handshake(b.port, dev, pki.anchor).code == codec.ERR_UNKNOWN_ID
    finally:
        assert b.stop() == 0


def test_database_password_never_reaches_the_logs(tmp_path, pki, postgres):
    """A PostgreSQL URL with a password (this test server trusts loopback, so any password
    connects): the CS's start line and B's ready line show it as ***."""
    db = postgres.create_db("pw")
    url = postgres.url(db).replace("://%s@" % postgres.user, "://%s:s3cret-pw@" % postgres.user)
    d = tmp_path / "cs"
    d.mkdir()
    cs = CSProcess(d, pki.ca_dir, db=url, instance="cs-pw")
    try:
        b = start_b(tmp_path, pki, cs, "bpw", store=url, db=url)
        try:
            ready = [x for x in b.log_lines() if x.get("event") == "ready"]
            assert ready and ":***@" in ready[0]["db"]
            assert "s3cret-pw" not in b.stderr_path.read_text()
        finally:
            b.stop()
    finally:
        cs.stop()
    assert "s3cret-pw" not in cs.stderr_path.read_text()
    assert "s3cret-pw" not in repr(ServeConfig(db=url, ca_dir=str(pki.ca_dir)))
