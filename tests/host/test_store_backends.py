"""The certificate store's storage interface (host_server.cert_store.store.CertStore) on every
writable backend: each test runs on SQLite and on a real PostgreSQL (tests/host/servers.py
starts one on loopback), so the two behave the same. Then what only PostgreSQL does:
versioned migrations, enrollment races decided by the constraint, LISTEN/NOTIFY with
catch-up, and two CS processes sharing one database. Last, the read-only LDAP adapter
against a real slapd."""
import asyncio
import base64
import dataclasses
import json
import threading
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import x25519

from testkit.cs_support import ADMIN_HEADERS, CSProcess, assert_one_line_error, free_port, run
from host_server.ca import CA, identifier, spki_der
from host_server.cert_store.backends import open_store
from host_server.cert_store.store import (CertRecord, IdCollision, NotFound, ReadOnly, SerialInUse,
                                  StoreUnavailable, cert_index)
from testkit.servers import b64ldif

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return CA.init(tmp_path_factory.mktemp("store-ca") / "ca", "ed25519", "store test CA")


def record(ca, name="sensor", key=None, now=None):
    pub = (key or x25519.X25519PrivateKey.generate()).public_key()
    der = ca.issue_device(pub, name, 8, 365)
    cert = x509.load_der_x509_certificate(der)
    return CertRecord(id=identifier(spki_der(pub), 8), name=name, der=der,
                      not_after=int(cert.not_valid_after_utc.timestamp()),
                      serial=cert.serial_number, enrolled_at=now or int(time.time()))


def store_url(backend, tmp_path, request):
    if backend == "sqlite":
        return str(tmp_path / "cs.db")
    pg = request.getfixturevalue("postgres")
    return pg.url(pg.create_db("store"))


def get(url, **kw):
    """GET from a test CS with its admin token (which reads too)."""
    return httpx.get(url, headers=ADMIN_HEADERS, **kw)


def post(url, **kw):
    return httpx.post(url, headers=ADMIN_HEADERS, **kw)


def run_async(coro):
    return asyncio.run(coro)


async def opened(url):
    store = open_store(url)
    await store.connect()
    return store


@pytest.fixture(params=BACKENDS)
def url(request, tmp_path):
    return store_url(request.param, tmp_path, request)


# -- the same contract on every backend ------------------------------------------------

def test_enroll_then_lookups(url, ca):
    async def go():
        store = await opened(url)
        try:
            rec = record(ca, "sensor-1")
            await store.enroll(rec)
            got = await store.get(rec.id)
            assert got == rec
            ix = cert_index(rec)
            assert await store.find_by_ski_sha1(ix.ski_sha1) == rec
            assert await store.find_by_cert_sha1(ix.cert_sha1) == rec
            assert await store.get(b"\x00" * 8) is None
            assert await store.find_by_ski_sha1(b"\x00" * 20) is None
            assert await store.find_by_cert_sha1(b"\x00" * 20) is None
            assert store.kind in ("sqlite", "postgresql") and not store.read_only
        finally:
            await store.close()
    run_async(go())


def test_collisions_are_refused(url, ca):
    async def go():
        store = await opened(url)
        try:
            key = x25519.X25519PrivateKey.generate()
            first = record(ca, "a", key)
            await store.enroll(first)
            with pytest.raises(IdCollision) as e:          # the very same key again
                await store.enroll(record(ca, "b", key))
            assert e.value.same_key and e.value.id == first.id
            other = record(ca, "c")                        # another key, same ID
            with pytest.raises(IdCollision) as e:
                await store.enroll(dataclasses.replace(other, id=first.id))
            assert not e.value.same_key
            with pytest.raises(SerialInUse):               # another key, same serial
                await store.enroll(dataclasses.replace(other, serial=first.serial))
            assert [r.id for r in await store.list_certs()] == [first.id]
        finally:
            await store.close()
    run_async(go())


def test_concurrent_enrollments_of_one_id_one_wins(url, ca):
    """The constraint decides, not a read before the write."""
    async def go():
        stores = [await opened(url) for _ in range(3)]
        try:
            base = record(ca, "race")
            recs = [dataclasses.replace(record(ca, "race-%d" % i), id=base.id)
                    for i in range(12)]
            results = await asyncio.gather(
                *(stores[i % 3].enroll(r) for i, r in enumerate(recs)), return_exceptions=True)
            assert sum(r is None for r in results) == 1
            assert all(isinstance(r, IdCollision) for r in results if r is not None)
            assert len(await stores[0].list_certs()) == 1
        finally:
            for s in stores:
                await s.close()
    run_async(go())


def test_revocations_log(url, ca):
    async def go():
        store = await opened(url)
        try:
            recs = [record(ca, "r%d" % i, now=1000 + i) for i in range(4)]
            for r in recs:
                await store.enroll(r)
            assert await store.last_seq() == 0
            assert await store.revocations_since(0) == []
            r1 = await store.revoke(recs[2].id, "keyCompromise", 5000)
            r2 = await store.revoke(recs[0].id, "superseded", 5001)
            assert (r1.seq, r2.seq) == (1, 2)
            again = await store.revoke(recs[2].id, "other", 6000)   # unchanged
            assert again == r1
            with pytest.raises(NotFound):
                await store.revoke(b"\x01" * 8, "x", 1)
            r3 = await store.revoke(recs[1].id, "unspecified", 5002)
            assert r3.seq == 3                       # no gap after a repeat or a refusal
            assert await store.revocations_since(0) == [r1, r2, r3]
            assert await store.revocations_since(1) == [r2, r3]
            assert await store.revocations_since(3) == []
            assert await store.last_seq() == 3
            got = await store.get(recs[2].id)
            assert got.revocation == r1
            listed = await store.list_certs()
            assert [r.id for r in listed] == [r.id for r in recs]   # enrollment order
            assert [r.revocation is not None for r in listed] == [True, True, True, False]
        finally:
            await store.close()
    run_async(go())


def test_enrolled_ids_are_the_non_revoked_ones(url, ca):
    async def go():
        store = await opened(url)
        try:
            assert await store.enrolled_ids() == []
            recs = [record(ca, "e%d" % i) for i in range(4)]
            for r in recs:
                await store.enroll(r)
            await store.revoke(recs[1].id, "superseded", 5000)
            assert sorted(await store.enrolled_ids()) == sorted(
                r.id for r in recs if r is not recs[1])
        finally:
            await store.close()
    run_async(go())


def test_concurrent_revocations_have_distinct_gapless_seqs(url, ca):
    async def go():
        stores = [await opened(url) for _ in range(3)]
        try:
            recs = [record(ca, "c%d" % i) for i in range(15)]
            for r in recs:
                await stores[0].enroll(r)
            revs = await asyncio.gather(*(stores[i % 3].revoke(r.id, "x", 1)
                                          for i, r in enumerate(recs)))
            assert sorted(r.seq for r in revs) == list(range(1, 16))
            log = await stores[1].revocations_since(0)
            assert [r.seq for r in log] == list(range(1, 16))
        finally:
            for s in stores:
                await s.close()
    run_async(go())


def test_reopen_keeps_everything(url, ca):
    """Migrations are idempotent: opening again finds the same records and log."""
    async def go():
        store = await opened(url)
        rec = record(ca, "keep")
        await store.enroll(rec)
        rev = await store.revoke(rec.id, "superseded", 7)
        await store.close()
        for _ in range(2):
            store = await opened(url)
            got = await store.get(rec.id)
            assert got.der == rec.der and got.revocation == rev
            assert await store.last_seq() == 1
            await store.close()
    run_async(go())


# -- PostgreSQL only -------------------------------------------------------------------

def test_postgres_schema_is_versioned(postgres, ca):
    db = postgres.create_db("schema")
    url = postgres.url(db)

    async def go():
        stores = await asyncio.gather(*(opened(url) for _ in range(4)))   # migrate at once
        for s in stores:
            await s.close()
    run_async(go())
    out = postgres.psql(db, "SELECT component, version FROM airshake_schema").stdout
    assert out.strip() == "certstore|1"
    postgres.psql(db, "UPDATE airshake_schema SET version = 99")
    proc = run("cs", "serve", "--db", url, "--ca-dir", ca_dir_of(ca), "--port", free_port(),
               timeout=20)
    assert_one_line_error(proc, "version 99", "upgrade airshake")


def ca_dir_of(ca):
    for name in ("ca_dir", "dir", "path"):
        if hasattr(ca, name):
            return getattr(ca, name)
    raise AssertionError("CA has no directory attribute")


def test_postgres_unreachable_is_one_line(tmp_path, ca):
    url = "postgresql://airshake@127.0.0.1:%d/nowhere" % free_port()
    proc = run("cs", "serve", "--db", url, "--ca-dir", ca_dir_of(ca), "--port", free_port(),
               timeout=20)
    assert_one_line_error(proc, "cannot connect to PostgreSQL at postgresql://airshake@127.0.0.1")
    proc = run("cs", "serve", "--db", "postgresql://host", "--ca-dir", ca_dir_of(ca),
               "--port", free_port(), timeout=20)
    assert_one_line_error(proc, "bad PostgreSQL URL")


def test_postgres_follow_catches_up_after_a_lost_connection(postgres, ca, timing):
    """A revocation is pushed to a follower (the soak variant bounds the push at 1 s); a
    follower whose LISTEN connection died resumes from the log, missing nothing."""
    url = postgres.url(postgres.create_db("follow"))

    async def go():
        writer, reader = await opened(url), await opened(url)
        recs = [record(ca, "f%d" % i) for i in range(4)]
        for r in recs:
            await writer.enroll(r)
        await writer.revoke(recs[0].id, "x", 1)
        seen = []
        it = reader.follow(0)
        seen.append(await it.__anext__())                  # catch-up from the log
        await writer.revoke(recs[1].id, "x", 2)
        timing.start()
        seen.append(await asyncio.wait_for(it.__anext__(), 10))  # pushed
        timing.within(1.0, "the push through LISTEN/NOTIFY")
        # the listener's connection dies; a revocation happens while it is gone
        postgres.psql("postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE application_name = 'airshake-listen'")
        await writer.revoke(recs[2].id, "x", 3)
        with pytest.raises(StoreUnavailable):
            while True:
                seen.append(await asyncio.wait_for(it.__anext__(), 5))
        await it.aclose()
        it = reader.follow(seen[-1].seq)                   # resume from the last seq
        seen.append(await asyncio.wait_for(it.__anext__(), 2))
        await it.aclose()
        assert [r.seq for r in seen] == [1, 2, 3]
        await writer.close()
        await reader.close()
    run_async(go())


def _sse_reader(url, out, stop, kind="revoked"):
    """Append (time, data) of each `kind` event of url's /events to out."""
    with httpx.stream("GET", url + "/events", headers={"Last-Event-ID": "0", **ADMIN_HEADERS},
                      timeout=10) as r:
        event = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:]
            if line.startswith("data: ") and event == kind:
                out.append((time.monotonic(), json.loads(line[6:])))
            if stop.is_set():
                return


def test_two_cs_instances_share_postgres(tmp_path, postgres, ca, timing):
    """Enroll through one CS, look up through the other; a revocation recorded by one is
    pushed (NOTIFY) to the SSE subscribers of the other (the soak variant: within 1 s)."""
    url = postgres.url(postgres.create_db("twocs"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with CSProcess(tmp_path / "a", ca_dir_of(ca), db=url, instance="cs-a") as one, \
            CSProcess(tmp_path / "b", ca_dir_of(ca), db=url, instance="cs-b") as two:
        assert get(two.url + "/health").json() == {
            "status": "ok", "store": "postgresql", "instance": "cs-b"}
        pub = x25519.X25519PrivateKey.generate().public_key()
        r = post(one.url + "/enroll", json={
            "name": "shared", "public_key": base64.b64encode(spki_der(pub)).decode()})
        assert r.status_code == 201
        ident = r.json()["id"]
        assert get(two.url + "/certs/" + ident).status_code == 200
        got, stop = [], threading.Event()
        t = threading.Thread(target=_sse_reader, args=(two.url, got, stop), daemon=True)
        t.start()
        deadline = time.monotonic() + 5
        while "cs_sse_subscribers 1.0" not in get(two.url + "/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        t0 = time.monotonic()
        assert post(one.url + "/revoke/" + ident).json()["seq"] == 1
        while not got:
            assert time.monotonic() - t0 < 15, "no push through PostgreSQL"
            time.sleep(0.01)
        assert got[0][1]["id"] == ident
        timing.within(1.0, "the push from one CS to the other's subscriber", got[0][0] - t0)
        assert get(two.url + "/certs/" + ident).status_code == 410
        assert get(two.url + "/revocations").json()["last_seq"] == 1
        # an enrollment through one is announced by the other too (NOTIFY), once each
        seen = {one.url: [], two.url: []}
        for cs_url, out in seen.items():
            threading.Thread(target=_sse_reader, args=(cs_url, out, stop, "enrolled"),
                             daemon=True).start()
        deadline = time.monotonic() + 5
        while "cs_sse_subscribers 2.0" not in get(two.url + "/metrics").text or \
                "cs_sse_subscribers 1.0" not in get(one.url + "/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        other = x25519.X25519PrivateKey.generate().public_key()
        new_id = post(one.url + "/enroll", json={
            "name": "announced", "public_key": base64.b64encode(spki_der(other)).decode()}
        ).json()["id"]
        deadline = time.monotonic() + 2
        while not all(seen.values()):
            assert time.monotonic() < deadline, "the enrollment was not announced by both"
            time.sleep(0.01)
        time.sleep(0.2)
        assert [d for _, d in seen[one.url]] == [{"id": new_id}]
        assert [d for _, d in seen[two.url]] == [{"id": new_id}]
        stop.set()
        # the same key again through the other instance: the constraint refuses it
        r = post(two.url + "/enroll", json={
            "name": "again", "public_key": base64.b64encode(spki_der(pub)).decode()})
        assert r.status_code == 409 and "already enrolled" in r.json()["error"]


def test_cs_answers_503_while_postgres_is_down(tmp_path, postgres, ca):
    url = postgres.url(postgres.create_db("down"))
    with CSProcess(tmp_path, ca_dir_of(ca), db=url) as cs:
        postgres.stop()
        try:
            r = get(cs.url + "/certs/" + "00" * 8, timeout=10)
            assert r.status_code == 503 and "unavailable" in r.json()["error"]
            assert get(cs.url + "/health", timeout=10).status_code == 503
        finally:
            postgres.start()
        deadline = time.monotonic() + 10
        while get(cs.url + "/certs/" + "00" * 8, timeout=10).status_code != 404:
            assert time.monotonic() < deadline
            time.sleep(0.1)


# -- LDAP (read-only X.509 directory) ---------------------------------------------------

def ldap_device(slapd, ca, name="ldap-dev", key=None):
    """An entry ou=devices/cn=<ID hex> with userCertificate;binary; returns the record."""
    rec = record(ca, name, key)
    slapd.add("dn: cn=%s,ou=devices,%s\nobjectClass: device\nobjectClass: pkiUser\n"
              "cn: %s\ndescription: %s\n%s" % (rec.id.hex(), slapd.suffix, rec.id.hex(), name,
                                               b64ldif("userCertificate;binary", rec.der)))
    return rec


def publish_crl(slapd, ca, revoked, first=False):
    crl = ca.crl(revoked)
    if first:
        slapd.add("dn: cn=store test CA,%s\nobjectClass: cRLDistributionPoint\n"
                  "objectClass: pkiCA\ncn: store test CA\n%s%s%s" % (
                      slapd.suffix, b64ldif("cACertificate;binary", ca.cert_der),
                      b64ldif("certificateRevocationList;binary", crl),
                      b64ldif("authorityRevocationList;binary", crl)))
    else:
        slapd.modify("dn: cn=store test CA,%s\nchangetype: modify\nreplace: "
                     "certificateRevocationList;binary\n%s" % (
                         slapd.suffix, b64ldif("certificateRevocationList;binary", crl)))


@pytest.fixture(scope="module")
def directory(slapd, ca):
    slapd.add("dn: ou=devices,%s\nobjectClass: organizationalUnit\nou: devices\n"
              % slapd.suffix)
    publish_crl(slapd, ca, [], first=True)
    return slapd


def test_ldap_store_reads_certificates_and_crl(directory, ca, monkeypatch):
    monkeypatch.setenv("AIRSHAKE_LDAP_CRL_REFRESH", "0")
    rec = ldap_device(directory, ca, "ldap-1")
    other = ldap_device(directory, ca, "ldap-2")

    async def go():
        store = await opened(directory.url)
        try:
            assert store.kind == "ldap" and store.read_only
            got = await store.get(rec.id)
            assert got.der == rec.der and got.serial == rec.serial and got.name == "ldap-1"
            assert got.revocation is None and got.enrolled_at > 0
            assert await store.get(b"\x02" * 8) is None
            assert await store.last_seq() == 0
            with pytest.raises(ReadOnly):
                await store.enroll(rec)
            with pytest.raises(ReadOnly):
                await store.revoke(rec.id, "x", 1)
            publish_crl(directory, ca, [(rec.serial, 1700000000, "keyCompromise")])
            revs = await store.revocations_since(0)
            assert [(r.seq, r.id, r.reason) for r in revs] == [(1, rec.id, "keyCompromise")]
            assert (await store.get(rec.id)).revocation == revs[0]
            ids = {r.id for r in await store.list_certs()}
            assert {rec.id, other.id} <= ids
            enrolled = set(await store.enrolled_ids())        # GET /ids: not the revoked
            assert other.id in enrolled and rec.id not in enrolled
        finally:
            await store.close()
    run_async(go())


def test_ldap_bad_urls_are_one_line(ca):
    for url, needle in (("ldap://127.0.0.1:1", "no base DN"),
                        ("ldap://u:p@127.0.0.1:1/dc=x", "no credentials"),
                        ("ldap://127.0.0.1:1/dc=x??sub?(cn=x)", "must contain {id}")):
        proc = run("cs", "serve", "--db", url, "--ca-dir", ca_dir_of(ca), "--port",
                   free_port(), timeout=20)
        assert_one_line_error(proc, needle)


def test_cs_serves_a_directory_read_only(tmp_path, directory, ca):
    rec = ldap_device(directory, ca, "ldap-cs")
    with CSProcess(tmp_path, ca_dir_of(ca), db=directory.url, instance="cs-ldap") as cs:
        assert get(cs.url + "/health").json()["store"] == "ldap"
        r = get(cs.url + "/certs/" + rec.id.hex())
        assert r.status_code == 200 and r.content == rec.der
        assert get(cs.url + "/certs/" + "03" * 8).status_code == 404
        r = post(cs.url + "/revoke/" + rec.id.hex())
        assert r.status_code == 405 and "read-only" in r.json()["error"]
