"""The certificate store, end to end: the real `airshake cs serve` as a subprocess on a
free loopback port, driven over HTTP and through the `airshake cs` CLI. Enrollment,
lookups (by ID and RFC 4387), ID collisions, certificates made with OpenSSL, revocation
with the CRL and the SSE push channel, the admin token, metrics, structured logs, and
one-line errors for bad configuration."""
import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import sqlite3
import threading
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, x25519

import airshake.x509 as ax509
from airshake.crypto import load_backend
from testkit.cs_support import (ADMIN_HEADERS, ADMIN_TOKEN, READER_HEADERS, READER_TOKEN, CSProcess,
                        assert_one_line_error, free_port, openssl, run)
from host_server.ca import CA

DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
TOKEN = ADMIN_TOKEN
ADMIN = ADMIN_HEADERS
SERVER_NAME = "b.test"   # the CA issued a server certificate of this name
ENV_ADMIN = {"AIRSHAKE_ADMIN_TOKEN": ADMIN_TOKEN}


def get(url, **kw):
    """GET with B's reader token unless headers are given."""
    return httpx.get(url, headers=kw.pop("headers", READER_HEADERS), **kw)


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cs-ca") / "ca"
    CA.init(d, "ed25519", "airshake CA").issue_server(0, SERVER_NAME, d.parent / "keys")
    return d


@pytest.fixture(scope="module")
def cs(tmp_path_factory, ca_dir):
    server = CSProcess(tmp_path_factory.mktemp("cs"), ca_dir)
    yield server
    assert server.stop() == 0
    text = server.stderr_path.read_text()
    assert TOKEN not in text and READER_TOKEN not in text
    events = server.log_lines()  # every line is one JSON object, whichever tests ran
    assert events[0]["event"] == "start" and events[-1]["event"] == "stop"


def new_key():
    return x25519.X25519PrivateKey.generate().public_key()


def spki(pub):
    return pub.public_bytes(DER, SPKI)


def enroll(cs, pub, name="sensor", headers=ADMIN):
    return httpx.post(cs.url + "/enroll", headers=headers,
                      json={"name": name, "public_key": base64.b64encode(spki(pub)).decode()})


def b64sha1(data):
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


# -- enrollment and lookup ---------------------------------------------------------------

def test_health_and_help(cs):
    assert get(cs.url + "/health").json() == {"status": "ok", "store": "sqlite",
                                                    "instance": "test-cs"}
    for args in (["cs", "--help"], ["cs", "serve", "--help"], ["cs", "enroll", "--help"],
                 ["cs", "revoke", "--help"], ["cs", "list", "--help"]):
        proc = run(*args)
        assert proc.returncode == 0 and "usage: airshake cs" in proc.stdout, proc.stderr


def test_enroll_then_lookup_by_id_and_rfc4387(cs, ca_dir):
    pub = new_key()
    r = enroll(cs, pub, "sensor-1")
    assert r.status_code == 201, r.text
    body = r.json()
    ident = hashlib.sha256(spki(pub)).digest()[:8]
    assert body["id"] == ident.hex()
    der = base64.b64decode(body["certificate"])

    got = get(cs.url + "/certs/" + ident.hex())
    assert got.status_code == 200 and got.headers["content-type"] == "application/pkix-cert"
    assert got.content == der
    cert = ax509.parse_certificate(der)
    assert cert.ski == ident and cert.spki == spki(pub)
    ax509.verify_certificate(cert, ax509.parse_certificate((ca_dir / "ca.der").read_bytes()),
                             load_backend("pyca"), int(time.time()))
    assert body["not_after"] == cert.not_after

    for query in ({"sKIDHash": b64sha1(ident)}, {"certHash": b64sha1(der)}):
        r = get(cs.url + "/search.cgi", params=query)
        assert r.status_code == 200 and r.content == der, r.text
        assert r.headers["content-type"] == "application/pkix-cert"
    listed = {c["id"]: c for c in get(cs.url + "/certs").json()["certs"]}
    assert listed[ident.hex()] == {"id": ident.hex(), "name": "sensor-1",
                                   "not_after": body["not_after"], "revoked": False}

    again = enroll(cs, pub, "sensor-1 again")
    assert again.status_code == 409 and "already enrolled" in again.json()["error"]


def test_absent_and_malformed_lookups(cs):
    r = get(cs.url + "/certs/0123456789abcdef")
    assert r.status_code == 404 and "no certificate" in r.json()["error"]
    r = get(cs.url + "/search.cgi", params={"sKIDHash": b64sha1(b"nothing")})
    assert r.status_code == 404
    assert get(cs.url + "/certs/not-hex").status_code == 400
    for params in ({}, {"sKIDHash": "!!!"}, {"sKIDHash": base64.b64encode(b"short").decode()},
                   {"name": "x"}, [("sKIDHash", b64sha1(b"a")), ("certHash", b64sha1(b"b"))]):
        r = get(cs.url + "/search.cgi", params=params)
        assert r.status_code == 400 and r.json()["error"], params


def test_admin_token_enforced(cs, tmp_path):
    pub = new_key()
    assert enroll(cs, pub, headers={}).status_code == 401
    assert enroll(cs, pub, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.post(cs.url + "/revoke/00").status_code == 401
    pem = tmp_path / "dev.pub"
    pem.write_bytes(pub.public_bytes(serialization.Encoding.PEM, SPKI))
    proc = run("cs", "enroll", "--cs-url", cs.url, "--name", "d", "--public-key", pem,
               "--state-dir", tmp_path)
    assert_one_line_error(proc, "no CS admin token", "--state-dir", "AIRSHAKE_ADMIN_TOKEN")
    proc = run("cs", "enroll", "--cs-url", cs.url, "--name", "d", "--public-key", pem,
               "--admin-token", READER_TOKEN)
    assert_one_line_error(proc, "not the admin token")
    proc = run("cs", "enroll", "--cs-url", cs.url, "--name", "cli-dev", "--public-key", pem,
               env={"AIRSHAKE_ADMIN_TOKEN": TOKEN})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == hashlib.sha256(spki(pub)).digest()[:8].hex()
    proc = run("cs", "list", "--cs-url", cs.url, "--state-dir", tmp_path,
               env={"AIRSHAKE_CS_TOKEN": READER_TOKEN})
    assert proc.returncode == 0 and "cli-dev" in proc.stdout


def test_bad_enrollments_refused(cs):
    post = lambda **kw: httpx.post(cs.url + "/enroll", headers=ADMIN, **kw)  # noqa: E731
    assert post(content=b"not json").status_code == 400
    assert post(json=["a"]).status_code == 400
    assert post(json={"name": "x"}).status_code == 400
    assert post(json={"name": "x", "public_key": "%%%"}).status_code == 400
    assert post(json={"name": "x", "public_key": "AAAA"}).status_code == 400
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    r = post(json={"name": "x", "public_key": base64.b64encode(spki(ed)).decode()})
    assert r.status_code == 400 and "not used by airshake" in r.json()["error"]
    r = post(json={"public_key": base64.b64encode(spki(new_key())).decode()})
    assert r.status_code == 400 and "name" in r.json()["error"]


# -- certificates made with OpenSSL -------------------------------------------------------

DEVICE_EXT = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyAgreement\n"
              "extendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\n"
              "authorityKeyIdentifier=keyid\n")


def openssl_cert(tmp_path, ca_dir, name, extensions=True, days=365):
    """A P-256 certificate made and signed with the openssl CLI; extensions: True for the
    device profile, False for none (v1), or the text of an extension file."""
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", tmp_path / (name + ".key"))
    openssl("req", "-new", "-key", tmp_path / (name + ".key"), "-subj", "/CN=" + name,
            "-out", tmp_path / (name + ".csr"))
    ext = tmp_path / "ext.cnf"
    ext.write_text(extensions if isinstance(extensions, str) else DEVICE_EXT)
    args = ["x509", "-req", "-in", tmp_path / (name + ".csr"), "-CA", ca_dir / "ca.crt",
            "-CAkey", ca_dir / "ca.key", "-set_serial", "0x" + os.urandom(8).hex(),
            "-days", str(days), "-out", tmp_path / (name + ".crt")]
    openssl(*args, *(["-extfile", ext] if extensions else []))
    return tmp_path / (name + ".crt")


def test_enroll_openssl_certificate(cs, ca_dir, tmp_path):
    crt = openssl_cert(tmp_path, ca_dir, "ossl-device")
    proc = run("cs", "enroll", "--cs-url", cs.url, "--cert", crt, "--admin-token", TOKEN)
    assert proc.returncode == 0, proc.stderr
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    ident = hashlib.sha256(spki(cert.public_key())).hexdigest()[:16]
    assert proc.stdout.strip() == ident
    got = get(cs.url + "/certs/" + ident)
    assert got.status_code == 200 and got.content == cert.public_bytes(DER)
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    r = get(cs.url + "/search.cgi", params={"sKIDHash": b64sha1(ski)})
    assert r.content == cert.public_bytes(DER)
    names = {c["id"]: c["name"] for c in get(cs.url + "/certs").json()["certs"]}
    assert names[ident] == "ossl-device"


def test_enroll_certificate_of_another_ca_refused(cs, ca_dir, tmp_path):
    other = tmp_path / "other"
    CA.init(other, "ed25519", "airshake CA")  # same name: only the signature tells
    crt = openssl_cert(tmp_path, other, "impostor")
    proc = run("cs", "enroll", "--cs-url", cs.url, "--cert", crt, "--admin-token", TOKEN)
    assert_one_line_error(proc, "refused", "signature")
    # signed by the right CA, but an X.509 v1 certificate: no extensions, no device role
    v1 = openssl_cert(tmp_path, ca_dir, "v1", extensions=False)
    der = x509.load_pem_x509_certificate(v1.read_bytes()).public_bytes(DER)
    r = httpx.post(cs.url + "/enroll", headers=ADMIN,
                   json={"certificate": base64.b64encode(der).decode()})
    assert r.status_code == 400 and "extendedKeyUsage" in r.json()["error"], r.text


# -- revocation ----------------------------------------------------------------------------

def test_log_names_enrollments_and_lookups_of_revoked_ids(tmp_path, ca_dir):
    """One JSON line per enrollment (with its ID and duration) and per lookup (with its
    result), checked on a CS of its own (the module's `cs` serves whichever tests run)."""
    with CSProcess(tmp_path, ca_dir) as server:
        ident = enroll(server, new_key(), "logged").json()["id"]
        assert httpx.post(server.url + "/revoke/" + ident, headers=ADMIN).status_code == 200
        assert get(server.url + "/certs/" + ident).status_code == 410
        assert server.stop() == 0
        events = server.log_lines()
    enrolled = [e for e in events if e["event"] == "enroll" and e["result"] == "ok"]
    assert [e["id"] for e in enrolled] == [ident] and {"id", "ms"} <= set(enrolled[0])
    assert any(e["event"] == "lookup" and e["result"] == "revoked" for e in events)


def test_revocation_recorded_served_and_listed_in_crl(cs, ca_dir):
    body = enroll(cs, new_key(), "to-revoke").json()
    ident = body["id"]
    serial = x509.load_der_x509_certificate(base64.b64decode(body["certificate"])).serial_number
    before = int(time.time())
    r = httpx.post(cs.url + "/revoke/" + ident, headers=ADMIN, json={"reason": "keyCompromise"})
    assert r.status_code == 200, r.text
    rev = r.json()
    assert rev["id"] == ident and rev["reason"] == "keyCompromise" and rev["seq"] >= 1
    assert before <= rev["time"] <= int(time.time())
    again = httpx.post(cs.url + "/revoke/" + ident, headers=ADMIN, json={"reason": "other"})
    assert again.status_code == 200 and again.json() == rev

    gone = get(cs.url + "/certs/" + ident)
    assert gone.status_code == 410
    assert gone.json() == {"id": ident, "revoked_at": rev["time"], "reason": "keyCompromise"}

    feed = get(cs.url + "/revocations", params={"since": rev["seq"] - 1}).json()
    assert feed["revocations"][0] == rev and feed["last_seq"] >= rev["seq"]
    later = get(cs.url + "/revocations", params={"since": feed["last_seq"]}).json()
    assert later == {"revocations": [], "last_seq": feed["last_seq"]}
    assert get(cs.url + "/revocations", params={"since": "x"}).status_code == 400

    crl = x509.load_der_x509_crl(get(cs.url + "/crl").content)
    assert crl.is_signature_valid(CA.load(ca_dir).cert.public_key())
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert int(entry.revocation_date_utc.timestamp()) == rev["time"]

    assert httpx.post(cs.url + "/revoke/" + "ab" * 8, headers=ADMIN).status_code == 404
    proc = run("cs", "revoke", "--cs-url", cs.url, "ab" * 8, "--admin-token", TOKEN)
    assert_one_line_error(proc, "no certificate enrolled")
    listed = {c["id"]: c for c in get(cs.url + "/certs").json()["certs"]}
    assert listed[ident]["revoked"] is True


class SSE:
    """Reads one text/event-stream response: comments and events."""

    def __init__(self, response):
        self.lines = response.aiter_lines()

    async def next(self, kind="revoked"):
        event = {}
        async for line in self.lines:
            if line.startswith(":"):
                if kind == "connected" and "connected" in line:
                    return line
                continue
            if line:
                field, _, value = line.partition(":")
                event[field] = value[1:] if value.startswith(" ") else value
            elif event.get("event") == kind:
                return event
            else:
                event = {}
        raise AssertionError("stream ended")


async def subscribe(client, stack, headers=None, params=None):
    response = await stack.enter_async_context(
        client.stream("GET", "/events", headers=headers, params=params))
    assert response.headers["content-type"].startswith("text/event-stream")
    stream = SSE(response)
    await asyncio.wait_for(stream.next("connected"), 5)
    return stream


def test_sse_pushes_to_every_subscriber_at_once(cs, timing):
    """A revocation reaches both subscribers; the soak variant bounds it at 1 s."""
    from contextlib import AsyncExitStack

    async def main():
        async with httpx.AsyncClient(base_url=cs.url, timeout=10,
                                     headers=READER_HEADERS) as client, \
                AsyncExitStack() as stack:
            a = await subscribe(client, stack)
            b = await subscribe(client, stack)
            ident = (await client.post("/enroll", headers=ADMIN, json={
                "name": "pushed", "public_key": base64.b64encode(spki(new_key())).decode()}
            )).json()["id"]
            timing.start()
            rev = (await client.post("/revoke/" + ident, headers=ADMIN,
                                     json={"reason": "superseded"})).json()
            got = await asyncio.wait_for(asyncio.gather(a.next(), b.next()), 10)
            timing.within(1.0, "the push to two subscribers")
            for event in got:
                assert event["id"] == str(rev["seq"])
                assert json.loads(event["data"]) == rev
            metrics = (await client.get("/metrics")).text
            assert "cs_sse_subscribers 2.0" in metrics
    asyncio.run(main())


def test_sse_reconnect_replays_what_was_missed(cs):
    from contextlib import AsyncExitStack

    async def revoke_new(client, reason):
        ident = (await client.post("/enroll", headers=ADMIN, json={
            "name": "r", "public_key": base64.b64encode(spki(new_key())).decode()})).json()["id"]
        return (await client.post("/revoke/" + ident, headers=ADMIN,
                                  json={"reason": reason})).json()

    async def main():
        async with httpx.AsyncClient(base_url=cs.url, timeout=10,
                                     headers=READER_HEADERS) as client:
            async with AsyncExitStack() as stack:
                s = await subscribe(client, stack)
                first = await revoke_new(client, "first")
                seen = await asyncio.wait_for(s.next(), 2)
                assert json.loads(seen["data"]) == first
            # disconnected: two revocations happen meanwhile
            missed = [await revoke_new(client, "missed %d" % i) for i in range(2)]
            async with AsyncExitStack() as stack:
                s = await subscribe(client, stack, headers={"Last-Event-ID": seen["id"]})
                replay = [json.loads((await asyncio.wait_for(s.next(), 2))["data"])
                          for _ in missed]
                assert replay == missed
                live = await revoke_new(client, "live")
                assert json.loads((await asyncio.wait_for(s.next(), 2))["data"]) == live
            async with AsyncExitStack() as stack:  # ?since= works the same way
                s = await subscribe(client, stack, params={"since": first["seq"]})
                got = json.loads((await asyncio.wait_for(s.next(), 2))["data"])
                assert got == missed[0]
    asyncio.run(main())


def test_metrics_endpoint(cs):
    get(cs.url + "/certs/" + "cd" * 8)
    text = get(cs.url + "/metrics").text
    for needle in ('cs_lookups_total{result="absent"}', 'cs_lookups_total{result="found"}',
                   'cs_enrollments_total{result="ok"}', "cs_revocations_total",
                   "cs_sse_subscribers", 'cs_requests_total{endpoint="/certs/{id}",status="404"}'):
        assert needle in text, needle
    deadline = time.monotonic() + 3  # the SSE tests' subscribers are gone
    while "cs_sse_subscribers 0.0" not in get(cs.url + "/metrics").text:
        assert time.monotonic() < deadline
        time.sleep(0.05)


# -- collisions, shutdown, configuration ---------------------------------------------------

def test_id_collision_refused(tmp_path, ca_dir):
    with CSProcess(tmp_path, ca_dir, id_len=1) as small:  # 256 IDs: a birthday collision
        with httpx.Client(base_url=small.url, headers=ADMIN) as client:
            for _ in range(400):
                pub = new_key()
                r = client.post("/enroll", json={
                    "name": "d", "public_key": base64.b64encode(spki(pub)).decode()})
                if r.status_code == 409:
                    break
                assert r.status_code == 201 and len(r.json()["id"]) == 2
            else:
                pytest.fail("no collision among 400 keys with 1-byte IDs")
        ident = hashlib.sha256(spki(pub)).digest()[:1].hex()
        assert r.json()["error"].startswith("ID %s collides with an enrolled key" % ident)
        pem = tmp_path / "colliding.pub"
        pem.write_bytes(pub.public_bytes(serialization.Encoding.PEM, SPKI))
        proc = run("cs", "enroll", "--cs-url", small.url, "--name", "d", "--public-key", pem,
                   env={"AIRSHAKE_ADMIN_TOKEN": TOKEN})
        assert_one_line_error(proc, "collides with an enrolled key", ident)


def test_graceful_shutdown_with_open_subscriber(tmp_path, ca_dir, timing):
    """SIGTERM with a subscriber open: exit 0, the stream ends, the last log line says
    why; the soak variant bounds the exit at 3 s (uvicorn's graceful timeout is 5 s)."""
    server = CSProcess(tmp_path, ca_dir)
    ended = threading.Event()

    def listen():
        with httpx.stream("GET", server.url + "/events", timeout=10,
                          headers=READER_HEADERS) as r:
            for _ in r.iter_lines():
                pass
        ended.set()

    threading.Thread(target=listen, daemon=True).start()
    deadline = time.monotonic() + 5
    while "cs_sse_subscribers 1.0" not in get(server.url + "/metrics").text:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    timing.start()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) == 0
    timing.within(3.0, "the exit on SIGTERM")
    assert ended.wait(10)
    server.stop()
    last = server.log_lines()[-1]
    assert last["event"] == "stop" and last["signal"] == "SIGTERM"


def serve_error(*args, config=None, tmp_path=None):
    if config is not None:
        path = tmp_path / ("bad-%s.toml" % hashlib.sha1(config.encode()).hexdigest()[:8])
        path.write_text(config)
        args = ("--config", path) + args
    return run("cs", "serve", *args, timeout=20)


def test_bad_configuration_is_one_line(tmp_path, ca_dir):
    from concurrent.futures import ThreadPoolExecutor

    db = tmp_path / "cs.db"
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    port = lambda: str(free_port())  # noqa: E731  (one each: the cases run at once)
    cases = [
        (("--ca-dir", tmp_path / "no-ca", "--db", db, "--port", port()), None,
         ["no CA in", "airshake ca init"]),
        (("--db", db, "--port", port()), None, ["no CA directory"]),
        (("--ca-dir", ca_dir, "--db", tmp_path / "nodir" / "cs.db", "--port", port()), None,
         ["cannot create the certificate database", "does not exist"]),
        (("--ca-dir", ca_dir, "--db", tmp_path, "--port", port()), None, ["is a directory"]),
        (("--ca-dir", ca_dir, "--db", junk, "--port", port()), None, ["cannot be used"]),
        (("--ca-dir", ca_dir, "--db", "postgresql://127.0.0.1:1/cs", "--port", port()), None,
         ["cannot connect to PostgreSQL"]),
        ((), "[cs\nport = ", ["not valid TOML"]),
        ((), "[cs]\nprot = 1\n", ["unknown key 'prot'"]),
        ((), '[cs]\nport = "x"\n', ["port must be an integer"]),
        (("--ca-dir", ca_dir, "--db", db, "--port", "70000"), None, ["port must be"]),
    ]
    with ThreadPoolExecutor(len(cases)) as pool:
        procs = list(pool.map(lambda c: serve_error(*c[0], config=c[1], tmp_path=tmp_path),
                              cases))
    for proc, (_, _, needles) in zip(procs, cases):
        assert_one_line_error(proc, *needles)


def test_port_in_use_is_one_line(tmp_path, ca_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = serve_error("--ca-dir", ca_dir, "--db", tmp_path / "cs.db", "--port", port)
    assert_one_line_error(proc, "port %d" % port, "in use")


def test_free_port_slices_never_meet_and_stay_out_of_the_ephemeral_range(monkeypatch):
    """Two xdist workers hand out ports from disjoint slices below the kernel's ephemeral
    range (where bind(0) and outgoing connections land), so neither can take the other's
    between free_port() and the server's bind."""
    from testkit import cs_support
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    seen = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
        monkeypatch.setattr(cs_support, "_PORTS", None)
        seen[worker] = {cs_support.free_port() for _ in range(300)}
        assert len(seen[worker]) == 300                       # no port twice in a row
        assert all(1024 < p < ephemeral_low for p in seen[worker])
    assert max(seen["gw0"]) < min(seen["gw1"])


def test_cs_process_starts_again_when_its_port_was_taken(tmp_path, ca_dir, monkeypatch):
    """The port free_port() gave is taken (by another program) before the CS binds it:
    CSProcess starts it on the next port instead of failing."""
    from testkit import cs_support
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", free_port()))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = iter([taken, free_port()])
        monkeypatch.setattr(cs_support, "free_port", lambda: next(ports))
        with CSProcess(tmp_path, ca_dir) as server:
            assert server.port != taken
            assert get(server.url + "/health").status_code == 200


def test_unreachable_store_is_one_line(tmp_path):
    url = "http://127.0.0.1:%d" % free_port()
    proc = run("cs", "list", "--cs-url", url, env=ENV_ADMIN)
    assert_one_line_error(proc, "cannot reach the certificate store at " + url,
                          "airshake cs serve")
    key = tmp_path / "k.pub"
    key.write_bytes(ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, SPKI))
    proc = run("cs", "enroll", "--cs-url", url, "--name", "d", "--public-key", key, env=ENV_ADMIN)
    assert_one_line_error(proc, "cannot reach")
    proc = run("cs", "enroll", "--cs-url", url, "--name", "d", "--public-key", tmp_path / "x",
               env=ENV_ADMIN)
    assert_one_line_error(proc, "does not exist")


def test_store_reopens_and_keeps_records(tmp_path, ca_dir):
    """Schema migrations are idempotent: a second start on the same file keeps it all."""
    with CSProcess(tmp_path, ca_dir) as first:
        ident = enroll(first, new_key()).json()["id"]
        httpx.post(first.url + "/revoke/" + ident, json={"reason": "superseded"}, headers=ADMIN)
    with CSProcess(tmp_path, ca_dir) as second:
        assert get(second.url + "/certs/" + ident).status_code == 410
        assert get(second.url + "/revocations").json()["last_seq"] == 1
    with sqlite3.connect(tmp_path / "cs.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sse_pings_an_idle_stream(tmp_path, ca_dir, timing):
    """The same app, served by uvicorn in a thread with a short ping interval (0.2 s);
    the soak variant bounds the first ping at 2 s."""
    import uvicorn

    from host_server.cert_store.app import CSApp, Settings
    from host_server.cert_store.service import bind
    from host_server.cert_store.backends import open_store

    store = open_store(str(tmp_path / "ping.db"))
    app = CSApp(store, CA.load(ca_dir), Settings(ping_s=0.2, admin_token=TOKEN,
                                                 reader_token=READER_TOKEN))
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app.asgi(), log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        url = "http://127.0.0.1:%d/events" % sock.getsockname()[1]
        timing.start()
        pinged = False
        with httpx.stream("GET", url, timeout=10, headers=READER_HEADERS) as r:
            for line in r.iter_lines():
                if line == ": ping":
                    pinged = True
                    break
        assert pinged
        timing.within(2.0, "the first ping")
    finally:
        server.should_exit = True
        thread.join(5)
        asyncio.run(store.close())
    assert not thread.is_alive()


def test_settings_precedence_and_relative_paths(tmp_path, monkeypatch):
    """Flags over the environment over the file; file paths are relative to the file."""
    import argparse

    from host_server.cert_store.service import resolve

    conf = tmp_path / "etc" / "cs.toml"
    conf.parent.mkdir()
    conf.write_text('[cs]\ndb = "data/cs.db"\nca_dir = "ca"\nport = 9000\nid_len = 4\n'
                    'admin_token = "from-file-0123456789"\n')
    monkeypatch.delenv("AIRSHAKE_ADMIN_TOKEN", raising=False)
    flags = argparse.Namespace(config=str(conf), db=None, ca_dir=None, host=None, port=9100,
                               id_len=None, cert_days=None, instance=None)
    cfg = resolve(flags)
    assert cfg.db == str(conf.parent / "data" / "cs.db")
    assert cfg.ca_dir == str(conf.parent / "ca")
    assert (cfg.port, cfg.id_len, cfg.host, cfg.admin_token) == (9100, 4, "127.0.0.1",
                                                                 "from-file-0123456789")
    assert "from-file" not in repr(cfg)
    assert cfg.state_dir == str(conf.parent / "data")   # the SQLite db's directory
    monkeypatch.setenv("AIRSHAKE_ADMIN_TOKEN", "from-env-0123456789")
    assert resolve(flags).admin_token == "from-env-0123456789"


# -- the closed store (issue 11): tokens, /ids, enrolled events, the device role -----------

READS = ["/certs/" + "ab" * 8, "/certs", "/search.cgi?sKIDHash=" + b64sha1(b"x"), "/ids",
         "/revocations"]


def test_cs_refuses_requests_without_the_right_token(cs):
    wrong = {"Authorization": "Bearer " + "w" * 40}
    for path in READS:
        for headers in ({}, wrong, {"Authorization": "Basic " + TOKEN}):
            r = get(cs.url + path, headers=headers)
            assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", path
            assert "reader token" in r.json()["error"]
        for headers in (READER_HEADERS, ADMIN):
            assert get(cs.url + path, headers=headers).status_code in (200, 404), path
    for headers in ({}, wrong):
        with httpx.stream("GET", cs.url + "/events", headers=headers) as r:
            assert r.status_code == 401
    for path in ("/health", "/metrics", "/crl"):
        assert get(cs.url + path, headers={}).status_code == 200, path
    body = {"name": "x", "public_key": base64.b64encode(spki(new_key())).decode()}
    for headers, status in (({}, 401), (wrong, 401), (READER_HEADERS, 403)):
        r = httpx.post(cs.url + "/enroll", headers=headers, json=body)
        assert r.status_code == status and "admin token" in r.json()["error"], r.text
        r = httpx.post(cs.url + "/revoke/" + "ab" * 8, headers=headers)
        assert r.status_code == status, r.text
    assert httpx.post(cs.url + "/enroll", headers=ADMIN, json=body).status_code == 201


def test_tokens_made_at_first_start_are_0600_and_reused(tmp_path, ca_dir):
    state = tmp_path / "state"
    with CSProcess(tmp_path, ca_dir, admin_token=None, reader_token=None,
                   state_dir=str(state)) as first:
        admin, reader = ((state / f).read_text().strip() for f in ("admin.token",
                                                                    "reader.token"))
        for f in ("admin.token", "reader.token"):
            assert os.stat(state / f).st_mode & 0o777 == 0o600
        assert len(admin) >= 40 and len(reader) >= 40 and admin != reader
        made = [e for e in first.log_lines() if e["event"] == "tokens_made"]
        assert len(made) == 1 and len(made[0]["files"]) == 2
        r = enroll(first, new_key(), "first", headers={"Authorization": "Bearer " + admin})
        assert r.status_code == 201, r.text
        ident = r.json()["id"]
        assert get(first.url + "/certs/" + ident,
                   headers={"Authorization": "Bearer " + reader}).status_code == 200
        proc = run("cs", "list", "--cs-url", first.url, "--state-dir", state)
        assert proc.returncode == 0 and "first" in proc.stdout, proc.stderr
        proc = run("cs", "revoke", ident, "--cs-url", first.url, "--state-dir", tmp_path)
        assert_one_line_error(proc, "no CS admin token", "--state-dir")
    assert admin not in first.stderr_path.read_text()
    assert reader not in first.stderr_path.read_text()
    with CSProcess(tmp_path, ca_dir, admin_token=None, reader_token=None,
                   state_dir=str(state)) as second:
        assert (state / "admin.token").read_text().strip() == admin
        assert not [e for e in second.log_lines() if e["event"] == "tokens_made"]
        assert get(second.url + "/certs/" + ident,
                   headers={"Authorization": "Bearer " + reader}).status_code == 200
        proc = run("cs", "revoke", ident, "--cs-url", second.url, "--state-dir", state)
        assert proc.returncode == 0 and "revoked " + ident in proc.stdout, proc.stderr


def test_ids_lists_enrolled_non_revoked_ids(tmp_path, ca_dir):
    with CSProcess(tmp_path, ca_dir) as server:
        r = get(server.url + "/ids")
        assert r.status_code == 200 and r.content == b""
        ids = [enroll(server, new_key(), "d%d" % i).json()["id"] for i in range(5)]
        httpx.post(server.url + "/revoke/" + ids[1], headers=ADMIN)
        r = get(server.url + "/ids")
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["x-airshake-id-len"] == "8" and len(r.content) == 4 * 8
        got = {r.content[i:i + 8].hex() for i in range(0, len(r.content), 8)}
        assert got == set(ids) - {ids[1]}


def test_sse_announces_enrollments(cs):
    from contextlib import AsyncExitStack

    async def main():
        async with httpx.AsyncClient(base_url=cs.url, timeout=10,
                                     headers=READER_HEADERS) as client, \
                AsyncExitStack() as stack:
            s = await subscribe(client, stack)
            ident = (await client.post("/enroll", headers=ADMIN, json={
                "name": "announced", "public_key": base64.b64encode(spki(new_key())).decode()}
            )).json()["id"]
            event = await asyncio.wait_for(s.next("enrolled"), 1.0)
            assert json.loads(event["data"]) == {"id": ident} and "id" not in event
    asyncio.run(main())


SERVER_EXT = DEVICE_EXT.replace("clientAuth", "serverAuth")


def test_enroll_refuses_device_certificates_with_server_role_or_server_name(cs, ca_dir,
                                                                            tmp_path):
    def enroll_cert(path):
        der = x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(DER)
        return httpx.post(cs.url + "/enroll", headers=ADMIN,
                          json={"certificate": base64.b64encode(der).decode()})

    r = enroll_cert(openssl_cert(tmp_path, ca_dir, "fake-b", extensions=SERVER_EXT))
    assert r.status_code == 400 and "server role" in r.json()["error"], r.text
    both = DEVICE_EXT.replace("clientAuth", "clientAuth,serverAuth")
    r = enroll_cert(openssl_cert(tmp_path, ca_dir, "both", extensions=both))
    assert r.status_code == 400 and "server role" in r.json()["error"], r.text
    r = enroll_cert(openssl_cert(tmp_path, ca_dir, SERVER_NAME))        # device profile
    assert r.status_code == 400 and "name of a server" in r.json()["error"], r.text
    r = enroll(cs, new_key(), SERVER_NAME.upper())
    assert r.status_code == 400 and "name of a server" in r.json()["error"], r.text
    c_b = (ca_dir.parent / "keys" / "server-suite0.crt")                # B's own C_B
    r = enroll_cert(c_b)
    assert r.status_code == 400 and "server role" in r.json()["error"], r.text
    proc = run("cs", "enroll", "--cs-url", cs.url, "--cert", c_b, "--admin-token", TOKEN)
    assert_one_line_error(proc, "server role")


def test_enroll_refuses_wrong_key_usage_and_validity_beyond_the_ca(cs, ca_dir, tmp_path):
    def enroll_cert(path):
        der = x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(DER)
        return httpx.post(cs.url + "/enroll", headers=ADMIN,
                          json={"certificate": base64.b64encode(der).decode()})

    signing = DEVICE_EXT.replace("keyAgreement", "digitalSignature")
    r = enroll_cert(openssl_cert(tmp_path, ca_dir, "signer", extensions=signing))
    assert r.status_code == 400 and "excludes key agreement" in r.json()["error"], r.text
    r = enroll_cert(openssl_cert(tmp_path, ca_dir, "no-eku",
                                 extensions=DEVICE_EXT.replace("extendedKeyUsage=clientAuth\n",
                                                               "")))
    assert r.status_code == 400 and "no extendedKeyUsage" in r.json()["error"], r.text
    r = enroll_cert(openssl_cert(tmp_path, ca_dir, "forever", days=7300 + 30))
    assert r.status_code == 400 and "after its CA" in r.json()["error"], r.text


def test_issued_validity_is_clipped_with_a_warning(tmp_path, ca_dir):
    with CSProcess(tmp_path, ca_dir, cert_days=36500) as server:
        r = enroll(server, new_key(), "long-lived")
        assert r.status_code == 201, r.text
        assert r.json()["warning"].startswith("warning: validity clipped to the CA's end")
        der = base64.b64decode(r.json()["certificate"])
        ca = CA.load(ca_dir)
        assert x509.load_der_x509_certificate(der).not_valid_after_utc == \
            ca.cert.not_valid_after_utc
        assert any(e.get("warning") for e in server.log_lines() if e["event"] == "enroll")


def test_b_reads_the_closed_store_with_its_reader_token_and_serves_a_renewed_c_b(tmp_path):
    """The whole chain with the tokens the CS made itself: B reads with reader.token (the
    environment's token is wrong, so only the file can work), a device enrolled with
    admin.token completes its handshake; `ca renew-server` while B runs: B serves the new
    C_B (same key) to the next device that has none."""
    from b_support import BProcess, Device, handshake, make_pki, wait_for

    ca_dir, key_dir = make_pki(tmp_path)
    state = tmp_path / "state"
    with CSProcess(tmp_path, ca_dir, admin_token=None, reader_token=None,
                   state_dir=str(state)) as server:
        admin = {"Authorization": "Bearer " + (state / "admin.token").read_text().strip()}
        b = BProcess(tmp_path, ca_dir, key_dir, server.url,
                     cs_token_file=state / "reader.token")
        try:
            anchor = (ca_dir / "ca.der").read_bytes()
            devices = []
            for _ in range(2):
                dev = Device()
                r = httpx.post(server.url + "/enroll", headers=admin, json={
                    "name": "dev-" + dev.id_hex,
                    "public_key": base64.b64encode(dev.key.spki).decode()})
                assert r.status_code == 201, r.text
                devices.append(dev)
            first = handshake(b.port, devices[0], anchor, data=b"hello")
            assert first.confirmed, first.events
            old_der = (key_dir / "server-suite0.der").read_bytes()
            assert devices[0].server.der == old_der
            proc = run("ca", "renew-server", "--ca-dir", ca_dir, "--key-dir", key_dir,
                       "--force")
            assert proc.returncode == 0, proc.stderr
            new_der = (key_dir / "server-suite0.der").read_bytes()
            assert new_der != old_der
            assert wait_for(lambda: any(e["event"] == "server_keys_reloaded"
                                        for e in b.log_lines()), timeout=10)
            second = handshake(b.port, devices[1], anchor, data=b"after renewal")
            assert second.confirmed, second.events
            assert devices[1].server.der == new_der
            assert not [e for e in b.log_lines() if "401" in json.dumps(e)]
        finally:
            b.stop()


def test_issue_server_refuses_the_name_of_an_enrolled_device(cs, ca_dir, tmp_path):
    enroll(cs, new_key(), "gateway-7")
    proc = run("ca", "issue-server", "--ca-dir", ca_dir, "--suite", 0, "--name", "Gateway-7",
               "--out", tmp_path / "keys", "--cs-url", cs.url, env=ENV_ADMIN)
    assert_one_line_error(proc, "is enrolled as 'Gateway-7'", "another name")
    assert not (tmp_path / "keys").exists()
    proc = run("ca", "issue-server", "--ca-dir", ca_dir, "--suite", 0, "--name", "b.free",
               "--out", tmp_path / "keys", "--cs-url", cs.url, env=ENV_ADMIN)
    assert proc.returncode == 0, proc.stderr
