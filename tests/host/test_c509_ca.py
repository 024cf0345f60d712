"""C_B as C509 (PROTOCOL.md §3.2) for every certificate the airshake CA issues: each C_B
(suites 0, 1, 2) and C_A from an Ed25519 and a P-256 CA (host_server.ca), and C_B from an
RSA CA (PKCS#1 v1.5 and PSS, made here with pyca), re-encodes and comes back to the same DER,
which verifies against its CA; a C_B outside the profile (a second name attribute) goes by
value as DER, and the handshake completes with it."""
from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from airshake import c509, codec
from airshake.c509_encoder import encode
from airshake.crypto import load_backend
from airshake.errors import CertificateError
from airshake.initiator import CONFIRMED, Initiator
from airshake.keys import ServerKey, ServerRef
from airshake.responder import ResponderConfig
from host_server.ca import CA
from testkit.hs_support import Pair, device_key

BACKEND = load_backend()
NAME = "b.c509.example"


def _now() -> int:
    return int(datetime.datetime.now(datetime.timezone.utc).timestamp())


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
def test_every_certificate_the_ca_issues_round_trips(tmp_path: Path, alg: str) -> None:
    ca = CA.init(tmp_path / "ca", alg, "c509 test CA")
    assert c509.decode(encode(ca.cert_der)) == ca.cert_der     # self-signed: null issuer
    for suite in (0, 1, 2):
        _, der_path, _ = ca.issue_server(suite, NAME, tmp_path / f"keys{suite}")
        der = der_path.read_bytes()
        small = encode(der)
        assert c509.decode(small) == der
        assert len(small) <= len(der) - (120 if suite == 1 else 140)
        ref = ServerRef.verified(BACKEND, suite, c509.decode(small), ca.cert_der, _now(),
                                 NAME)
        assert ref.der == der
    for name in ("device-1", "deadbeef", "zürich sensor 7"):   # text, hex bytes, UTF-8
        key = x25519.X25519PrivateKey.generate().public_key()
        der = ca.issue_device(key, name)
        assert c509.decode(encode(der)) == der


def _rsa_ca(pss: bool) -> tuple[rsa.RSAPrivateKey, bytes, x509.Certificate]:
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "RSA CA")])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7)
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256(), rsa_padding=_pss() if pss else None))
    return key, cert.public_bytes(serialization.Encoding.DER), cert


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def _leaf(ca_key, ca_cert, public_key, names, pss=False) -> bytes:
    start = ca_cert.not_valid_before_utc
    agree = not isinstance(public_key, rsa.RSAPublicKey)
    usage = x509.KeyUsage(digital_signature=not agree, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=agree,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False)
    ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (x509.CertificateBuilder().subject_name(x509.Name(names))
               .issuer_name(ca_cert.subject).public_key(public_key).serial_number(2**63 + 5)
               .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=20))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
               .add_extension(usage, True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                   ski), False))
    hash_alg = None if isinstance(ca_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    cert = builder.sign(ca_key, hash_alg, rsa_padding=_pss() if pss else None)
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize("pss", [False, True])
def test_c_b_from_an_rsa_ca_round_trips(pss: bool) -> None:
    ca_key, ca_der, ca_cert = _rsa_ca(pss)
    assert c509.decode(encode(ca_der)) == ca_der
    for suite, key in ((0, x25519.X25519PrivateKey.generate()),
                       (1, rsa.generate_private_key(65537, 2048))):
        cn = [x509.NameAttribute(NameOID.COMMON_NAME, NAME)]
        der = _leaf(ca_key, ca_cert, key.public_key(), cn, pss)
        small = encode(der)
        assert c509.decode(small) == der
        ServerRef.verified(BACKEND, suite, c509.decode(small), ca_der, _now(), NAME)


def test_c_b_outside_the_profile_goes_as_der_and_the_handshake_completes(tmp_path: Path) -> None:
    ca_key = ed25519.Ed25519PrivateKey.generate()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge CA")])
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    ca_cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(ca_key.public_key()).serial_number(3)
               .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                              False)
               .sign(ca_key, None))
    ca_der = ca_cert.public_bytes(serialization.Encoding.DER)
    b_key = x25519.X25519PrivateKey.generate()
    names = [x509.NameAttribute(NameOID.COMMON_NAME, NAME),
             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example")]
    der = _leaf(ca_key, ca_cert, b_key.public_key(), names)
    with pytest.raises(CertificateError):
        encode(der)
    raw = b_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                              serialization.NoEncryption())
    cfg = ResponderConfig(BACKEND, [ServerKey(BACKEND, 0, raw, der)])
    subject = x509.load_der_x509_certificate(der).subject.public_bytes()
    ini = Initiator(BACKEND, [device_key(BACKEND, 0)], ca_der, server_name=subject)
    pair = Pair(BACKEND, 0, ini=ini, cfg=cfg, t=_now())
    assert pair.run() == [46, 43 + len(der), 9]
    m2 = pair.wire[1][1]
    assert m2[0] & codec.M2_CB_VALUE and not m2[0] & codec.M2_C509
    assert pair.ini.state == CONFIRMED and pair.ini.server.der == der
