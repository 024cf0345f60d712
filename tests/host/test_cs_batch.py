# B's cold path to the certificate store (issue 16 item 4): the CS's POST /certs/batch
# (the real `airshake cs serve`), B's CSClient batching concurrent lookups into it over
# one keep-alive pool (counted by the CS's own request metrics) and falling back to
# GET /certs/{id} against a CS without it, and the Verifier parsing and checking the CA's
# signature once per distinct DER while every other check still runs on every call.
import asyncio
import base64
import hashlib
import time

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from host_server.ca import CA
from host_server.server_b import cs_client
from host_server.server_b.cache import RevokedSet
from host_server.server_b.keyfiles import load_ca
from host_server.server_b.verify import Rejected, Verifier
from testkit.cs_support import ADMIN_HEADERS, READER_HEADERS, READER_TOKEN, CSProcess
from testkit.metrics import parse_metrics

SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _id_of(der):
    spki = x509.load_der_x509_certificate(der).public_key().public_bytes(*SPKI)
    return hashlib.sha256(spki).digest()[:8]


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("batch-ca") / "ca"
    CA.init(d, "ed25519", "batch CA").issue_server(0, "b.batch", d.parent / "keys")
    return d


@pytest.fixture(scope="module")
def cs(tmp_path_factory, ca_dir):
    server = CSProcess(tmp_path_factory.mktemp("batch-cs"), ca_dir)
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def enrolled(cs):
    """40 enrolled IDs (hex), the first of them revoked."""
    ids = []
    for n in range(40):
        pub = x25519.X25519PrivateKey.generate().public_key().public_bytes(*SPKI)
        r = httpx.post(cs.url + "/enroll", headers=ADMIN_HEADERS,
                       json={"name": "batch-%d" % n, "public_key": base64.b64encode(pub).decode()})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    assert httpx.post(cs.url + "/revoke/" + ids[0], headers=ADMIN_HEADERS,
                      json={"reason": "test"}).status_code == 200
    return ids


def _requests(cs, endpoint):
    m = parse_metrics(httpx.get(cs.url + "/metrics").text)
    return sum(v for (n, labels), v in m.items()
               if n == "cs_requests_total" and ("endpoint", endpoint) in labels)


def test_batch_answers_each_id_as_the_single_lookup_does(cs, enrolled):
    unknown = "00" * 8
    asked = enrolled[:5] + [unknown, enrolled[1]]          # a duplicate is answered once
    r = httpx.post(cs.url + "/certs/batch", headers=READER_HEADERS, json={"ids": asked})
    assert r.status_code == 200
    body = r.json()
    assert body["revoked"] == [enrolled[0]] and body["absent"] == [unknown]
    assert sorted(body["certs"]) == sorted(enrolled[1:5])
    for i in enrolled[1:5]:
        single = httpx.get(cs.url + "/certs/" + i, headers=READER_HEADERS)
        assert base64.b64decode(body["certs"][i]) == single.content


def test_batch_needs_the_reader_token_and_a_bounded_list_of_ids(cs, enrolled):
    url = cs.url + "/certs/batch"
    assert httpx.post(url, json={"ids": enrolled[:1]}).status_code == 401
    for body in ({"ids": []}, {"ids": "ab"}, {"ids": [1]}, {}, {"ids": ["zz"]},
                 {"ids": ["00" * 8] * 257}):
        r = httpx.post(url, headers=READER_HEADERS, json=body)
        assert r.status_code == 400, body
        assert len(r.json()["error"].splitlines()) == 1


def test_concurrent_lookups_share_batch_requests(cs, enrolled):
    async def go():
        client = cs_client.CSClient(cs.url, 10.0, READER_TOKEN)
        try:
            return await asyncio.gather(*(client.lookup(i) for i in enrolled + ["00" * 8]))
        finally:
            await client.close()
    before = _requests(cs, "/certs/batch"), _requests(cs, "/certs/{id}")
    results = asyncio.run(go())
    after = _requests(cs, "/certs/batch"), _requests(cs, "/certs/{id}")
    assert [r.status for r in results] == (
        [cs_client.REVOKED] + [cs_client.OK] * 39 + [cs_client.ABSENT])
    assert all(_id_of(r.der).hex() == i for r, i in zip(results[1:40], enrolled[1:]))
    # 41 lookups: the first batch leaves at once, the rest wait for it and share one or two
    assert 1 <= after[0] - before[0] <= cs_client.MAX_BATCHES_IN_FLIGHT + 1
    assert after[1] == before[1]


def test_a_cs_without_the_batch_endpoint_is_asked_one_id_at_a_time(ca_dir):
    der = (ca_dir.parent / "keys" / "server-suite0.der").read_bytes()
    asked = []

    async def one(request):
        asked.append(request.path_params["id"])
        return Response(der, media_type="application/pkix-cert")
    old_cs = Starlette(routes=[Route("/certs/{id}", one, methods=["GET"])])

    async def go():
        client = cs_client.CSClient("http://old-cs", 5.0)
        await client._client.aclose()
        client._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=old_cs),
                                           base_url="http://old-cs")
        try:
            first = await asyncio.gather(*(client.lookup("%016x" % n) for n in range(3)))
            again = await client.lookup("%016x" % 9)
        finally:
            await client.close()
        return first + [again]
    results = asyncio.run(go())
    assert [r.status for r in results] == [cs_client.OK] * 4
    assert sorted(asked) == ["%016x" % n for n in (0, 1, 2, 9)]


def test_the_verifier_checks_the_signature_once_per_der_and_the_rest_every_time(ca_dir):
    ca = CA.load(ca_dir)
    der = ca.issue_device(x25519.X25519PrivateKey.generate().public_key(), "memo")
    id_a = _id_of(der)
    v = Verifier(load_ca(ca_dir / "ca.crt"), 8)
    now = time.time()
    assert v.verify(der, id_a, now).cert.der == der
    assert len(v._memo) == 1
    assert v.verify(der, id_a, now).cert.der == der          # from the memo
    assert len(v._memo) == 1
    not_after = x509.load_der_x509_certificate(der).not_valid_after_utc.timestamp()
    checks = [(lambda: v.verify(der, id_a, not_after + 1), "expired"),
              (lambda: v.verify(der, bytes(8), now), "id_mismatch"),
              (lambda: v.verify(der, id_a[:7], now), "id_mismatch")]
    revoked = RevokedSet()
    revoked.add(id_a, now)
    checks.append((lambda: v.verify(der, id_a, now, revoked), "revoked"))
    for call, reason in checks:
        with pytest.raises(Rejected) as e:
            call()
        assert e.value.reason == reason


def test_a_certificate_whose_signature_fails_is_never_memoized(ca_dir, tmp_path):
    other = CA.init(tmp_path / "other", "ed25519", "other CA")
    der = other.issue_device(x25519.X25519PrivateKey.generate().public_key(), "stranger")
    v = Verifier(load_ca(ca_dir / "ca.crt"), 8)
    for _ in range(2):
        with pytest.raises(Rejected) as e:
            v.verify(der, _id_of(der), time.time())
        assert e.value.reason == "wrong_ca"
    assert len(v._memo) == 0
