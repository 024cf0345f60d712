"""The airshake CA: `airshake ca init` and `ca issue-server` through the real CLI, files
and modes, OpenSSL reads what it makes, and every certificate parses and verifies with
the device's own X.509 reader (airshake.x509) and the pyca backend."""
import datetime
import hashlib
import os
import stat
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

import airshake.x509 as ax509
from airshake.crypto import load_backend
from airshake.crypto.contract import RsaPrivate
from airshake.errors import CertificateError
from airshake.keys import ServerKey
from cs_support import assert_one_line_error, openssl, run
from host_server.ca import CA, CAError, identifier, load_private_key, load_public_key
from host_server.errors import UserError

DER = serialization.Encoding.DER
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
KEY_TYPE = {0: "x25519", 1: "rsa", 2: "p256"}


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    """One CA of each algorithm, made with the CLI."""
    made = {}
    for alg in ("ed25519", "p256"):
        d = tmp_path_factory.mktemp("ca-" + alg)
        proc = run("ca", "init", "--dir", d / "ca", "--alg", alg, "--name", "test CA " + alg)
        assert proc.returncode == 0, proc.stderr
        made[alg] = d / "ca"
    return made


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def device_verify(cert_der, ca_der):
    cert = ax509.parse_certificate(cert_der)
    ax509.verify_certificate(cert, ax509.parse_certificate(ca_der), load_backend("pyca"),
                             int(time.time()))
    return cert


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
def test_init_makes_key_and_certificate(cas, alg):
    d = cas[alg]
    assert sorted(os.listdir(d)) == ["ca.crt", "ca.der", "ca.key"]
    assert mode(d / "ca.key") == 0o600
    pem = (d / "ca.key").read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    key = load_private_key(d / "ca.key")
    assert isinstance(key, ed25519.Ed25519PrivateKey if alg == "ed25519"
                      else ec.EllipticCurvePrivateKey)
    cert = x509.load_pem_x509_certificate((d / "ca.crt").read_bytes())
    assert cert.public_bytes(DER) == (d / "ca.der").read_bytes()
    bc = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    cert.verify_directly_issued_by(cert)
    anchor = ax509.parse_certificate((d / "ca.der").read_bytes())  # the device's anchor
    assert anchor.is_ca and anchor.key_type == alg
    text = openssl("x509", "-text", "-noout", "-in", d / "ca.crt")
    assert "CA:TRUE" in text and "Certificate Sign" in text


def test_init_refuses_to_overwrite(cas):
    d = cas["ed25519"]
    before = {f: (d / f).read_bytes() for f in os.listdir(d)}
    proc = run("ca", "init", "--dir", d, "--alg", "p256")
    assert_one_line_error(proc, "already exists", str(d))
    assert {f: (d / f).read_bytes() for f in os.listdir(d)} == before


def test_init_bad_alg_and_missing_ca(tmp_path):
    proc = run("ca", "init", "--dir", tmp_path / "x", "--alg", "rsa")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    proc = run("ca", "issue-server", "--ca-dir", tmp_path / "none", "--suite", "0",
               "--name", "b", "--out", tmp_path / "out")
    assert_one_line_error(proc, "no CA in", "airshake ca init --dir")


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
@pytest.mark.parametrize("suite", [0, 1, 2])
def test_issue_server_certificates(cas, tmp_path, alg, suite):
    ca_dir = cas[alg]
    out = tmp_path / "b"
    proc = run("ca", "issue-server", "--ca-dir", ca_dir, "--suite", suite,
               "--name", "b.example.net", "--out", out)
    assert proc.returncode == 0, proc.stderr
    key_path, crt_path, der_path = (out / ("server-suite%d%s" % (suite, ext))
                                    for ext in (".key", ".crt", ".der"))
    assert mode(key_path) == 0o600
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    der = der_path.read_bytes()
    assert x509.load_pem_x509_certificate(crt_path.read_bytes()).public_bytes(DER) == der

    cert = device_verify(der, (ca_dir / "ca.der").read_bytes())
    assert cert.key_type == KEY_TYPE[suite]
    assert not cert.is_ca
    want = ax509.KU_KEY_AGREEMENT if suite != 1 else ax509.KU_DIGITAL_SIGNATURE
    assert cert.key_usage & want
    py = x509.load_der_x509_certificate(der)
    assert py.subject.rfc4514_string() == "CN=b.example.net"
    assert all(not e.critical or e.oid in (x509.OID_BASIC_CONSTRAINTS, x509.OID_KEY_USAGE)
               for e in py.extensions)
    # B can load the pair into the protocol core
    backend = load_backend("pyca")
    ServerKey(backend, suite, core_private(load_private_key(key_path)), der)
    if suite == 0:  # a second run never overwrites B's key
        again = run("ca", "issue-server", "--ca-dir", ca_dir, "--suite", suite,
                    "--name", "b.example.net", "--out", out)
        assert_one_line_error(again, "already exists")
    if alg == "ed25519" and suite == 1:
        assert "Public-Key: (2048 bit)" in openssl("x509", "-text", "-noout", "-in", crt_path)


def core_private(key):
    """The protocol core's form of a pyca private key."""
    if isinstance(key, x25519.X25519PrivateKey):
        return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.private_numbers().private_value.to_bytes(32, "big")
    n = key.private_numbers()
    return RsaPrivate(n.public_numbers.n, n.public_numbers.e, n.d, n.p, n.q, n.dmp1, n.dmq1,
                      n.iqmp)


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
def test_issue_device_certificates(cas, tmp_path, alg):
    ca = CA.load(cas[alg])
    keys = [x25519.X25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1()),
            rsa.generate_private_key(public_exponent=65537, key_size=2048)]
    for key in keys:
        pub = key.public_key()
        spki = pub.public_bytes(DER, SPKI)
        der = ca.issue_device(pub, "sensor-17", id_len=8, days=30)
        cert = device_verify(der, ca.cert_der)
        assert cert.ski == identifier(spki, 8) == hashlib.sha256(spki).digest()[:8]
        assert cert.spki == spki
        py = ca.verify_issued(der)
        assert py.subject.rfc4514_string() == "CN=sensor-17"
        assert 0 < py.serial_number < 2 ** 64
        days = (py.not_valid_after_utc - datetime.datetime.now(datetime.timezone.utc)).days
        assert 29 <= days <= 30
    (tmp_path / "dev.der").write_bytes(der)
    text = openssl("x509", "-inform", "DER", "-text", "-noout", "-in", tmp_path / "dev.der")
    assert "CN=sensor-17" in text.replace(" = ", "=") and "Subject Key Identifier" in text
    # id_len is honoured
    short = ca.issue_device(keys[0].public_key(), "s", id_len=4)
    assert len(ax509.parse_certificate(short).ski) == 4


def test_issue_device_refuses_unusable_keys(cas):
    ca = CA.load(cas["ed25519"])
    with pytest.raises(CAError, match="not used by airshake"):
        ca.issue_device(ed25519.Ed25519PrivateKey.generate().public_key(), "d")
    with pytest.raises(CAError, match="P-256"):
        ca.issue_device(ec.generate_private_key(ec.SECP384R1()).public_key(), "d")
    with pytest.raises(CAError, match="empty"):
        ca.issue_device(x25519.X25519PrivateKey.generate().public_key(), " ")


def test_verify_issued_refuses_another_ca(cas):
    mine, other = CA.load(cas["ed25519"]), CA.load(cas["p256"])
    der = other.issue_device(x25519.X25519PrivateKey.generate().public_key(), "d")
    with pytest.raises(CAError, match="not by this CA"):
        mine.verify_issued(der)
    with pytest.raises(CertificateError):
        device_verify(der, mine.cert_der)
    with pytest.raises(CAError, match="not a DER"):
        mine.verify_issued(b"\x30\x03\x02\x01\x01")


def test_crl_lists_serials(cas):
    for alg in ("ed25519", "p256"):
        ca = CA.load(cas[alg])
        now = int(time.time())
        der = ca.crl([(12345, now, "keyCompromise"), (2 ** 63 + 7, now - 60, "lost it")])
        crl = x509.load_der_x509_crl(der)
        assert crl.is_signature_valid(ca.cert.public_key())
        entry = crl.get_revoked_certificate_by_serial_number(12345)
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason \
            == x509.ReasonFlags.key_compromise
        assert crl.get_revoked_certificate_by_serial_number(2 ** 63 + 7) is not None


def test_key_file_helpers(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    pub = key.public_key()
    spki = pub.public_bytes(DER, SPKI)
    files = {
        "pub.pem": pub.public_bytes(serialization.Encoding.PEM, SPKI),
        "pub.der": spki,
        "key.pem": key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        assert load_public_key(tmp_path / name).public_bytes(DER, SPKI) == spki
    (tmp_path / "junk").write_bytes(b"not a key")
    with pytest.raises(UserError, match="not a public key"):
        load_public_key(tmp_path / "junk")
    with pytest.raises(UserError, match="does not exist"):
        load_public_key(tmp_path / "missing")


def test_help_on_every_ca_command():
    for args in (["ca", "--help"], ["ca", "init", "--help"], ["ca", "issue-server", "--help"]):
        proc = run(*args)
        assert proc.returncode == 0 and "usage: airshake ca" in proc.stdout, proc.stderr
