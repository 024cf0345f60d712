"""The airshake CA: `airshake ca init` and `ca issue-server` through the real CLI, files
and modes, OpenSSL reads what it makes, and every certificate parses and verifies with
the device's own X.509 reader (airshake.x509) and the pyca backend."""
import datetime
import hashlib
import json
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
from testkit.cs_support import assert_one_line_error, openssl, run
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
    for args in (["ca", "--help"], ["ca", "init", "--help"], ["ca", "issue-server", "--help"],
                 ["ca", "renew-server", "--help"]):
        proc = run(*args)
        assert proc.returncode == 0 and "usage: airshake ca" in proc.stdout, proc.stderr


# -- the role profile (issue 11): server and device roles, RFC 5280, validity, renewal --

def _ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def _ca_ski(ca):
    return _ext(ca.cert, x509.SubjectKeyIdentifier).value.digest


DEVICE_KEYS = {"x25519": lambda: x25519.X25519PrivateKey.generate(),
               "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
               "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)}


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
def test_server_and_device_certificates_carry_their_roles(cas, tmp_path, alg):
    ca = CA.load(cas[alg])
    for suite in (0, 1, 2):
        _, der_path, _ = ca.issue_server(suite, "b.roles", tmp_path / "keys")
        der = der_path.read_bytes()
        py = x509.load_der_x509_certificate(der)
        eku = _ext(py, x509.ExtendedKeyUsage)
        assert not eku.critical and list(eku.value) == [x509.OID_SERVER_AUTH]
        ku = _ext(py, x509.KeyUsage)
        assert ku.critical
        assert (ku.value.key_agreement, ku.value.digital_signature, ku.value.key_encipherment) \
            == ((False, True, False) if suite == 1 else (True, False, False))
        assert _ext(py, x509.AuthorityKeyIdentifier).value.key_identifier == _ca_ski(ca)
        assert _ext(py, x509.BasicConstraints).critical
        cert = device_verify(der, ca.cert_der)
        ax509.check_role(cert, ax509.ROLE_SERVER)
        with pytest.raises(CertificateError):
            ax509.check_role(cert, ax509.ROLE_DEVICE)
    for kind, make in DEVICE_KEYS.items():
        der = ca.issue_device(make().public_key(), "dev-" + kind)
        py = x509.load_der_x509_certificate(der)
        assert list(_ext(py, x509.ExtendedKeyUsage).value) == [x509.OID_CLIENT_AUTH]
        ku = _ext(py, x509.KeyUsage).value
        assert (ku.key_agreement, ku.digital_signature, ku.key_encipherment) \
            == ((False, False, True) if kind == "rsa" else (True, False, False))
        assert _ext(py, x509.AuthorityKeyIdentifier).value.key_identifier == _ca_ski(ca)
        cert = device_verify(der, ca.cert_der)
        ax509.check_role(cert, ax509.ROLE_DEVICE)
        with pytest.raises(CertificateError):
            ax509.check_role(cert, ax509.ROLE_SERVER)


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
def test_every_issued_certificate_passes_openssl_x509_strict(cas, tmp_path, alg):
    ca_dir = cas[alg]
    ca = CA.load(ca_dir)
    pems = [ca_dir / "ca.crt"]               # the CA itself, as a root
    for suite in (0, 1, 2):
        proc = run("ca", "issue-server", "--ca-dir", ca_dir, "--suite", suite,
                   "--name", "b.strict", "--out", tmp_path / "keys")
        assert proc.returncode == 0, proc.stderr
        pems.append(tmp_path / "keys" / ("server-suite%d.crt" % suite))
    for kind, make in DEVICE_KEYS.items():
        der = ca.issue_device(make().public_key(), "strict-" + kind)
        pem = tmp_path / ("dev-%s.pem" % kind)
        pem.write_bytes(x509.load_der_x509_certificate(der).public_bytes(
            serialization.Encoding.PEM))
        pems.append(pem)
    renewed = run("ca", "renew-server", "--ca-dir", ca_dir, "--key-dir", tmp_path / "keys",
                  "--suite", 0, "--force")
    assert renewed.returncode == 0, renewed.stderr
    out = openssl("verify", "-x509_strict", "-CAfile", ca_dir / "ca.crt", *pems)
    assert out.count(": OK") == len(pems), out


def test_issued_validity_is_clipped_to_the_ca(tmp_path):
    proc = run("ca", "init", "--dir", tmp_path / "ca", "--days", 5)
    assert proc.returncode == 0, proc.stderr
    ca = CA.load(tmp_path / "ca")
    ca_end = ca.cert.not_valid_after_utc
    proc = run("ca", "issue-server", "--ca-dir", tmp_path / "ca", "--suite", 0,
               "--name", "b.short", "--out", tmp_path / "keys", "--days", 30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1 and "clipped to the CA's end" in proc.stderr
    c_b = x509.load_der_x509_certificate((tmp_path / "keys" / "server-suite0.der").read_bytes())
    assert c_b.not_valid_after_utc == ca_end
    der = ca.issue_device(x25519.X25519PrivateKey.generate().public_key(), "d", days=3650)
    assert ca.verify_issued(der).not_valid_after_utc == ca_end
    end, warning = ca.not_after(3650)
    assert end == ca_end and warning.startswith("warning: validity clipped")
    # a certificate made elsewhere that outlasts the CA is refused, not clipped
    long = _signed(ca, x25519.X25519PrivateKey.generate().public_key(), days=30)
    with pytest.raises(CAError, match="after its CA"):
        ca.verify_issued(long)


def _signed(ca, pub, days=30, eku=(x509.OID_CLIENT_AUTH,), ku="key_agreement",
            is_ca=False):
    """A certificate signed by ca's key, built here (as another tool would)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    flags = dict.fromkeys(("digital_signature", "content_commitment", "key_encipherment",
                           "data_encipherment", "key_agreement", "key_cert_sign",
                           "crl_sign", "encipher_only", "decipher_only"), False)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "outside")]))
         .issuer_name(ca.cert.subject).public_key(pub).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(hours=1))
         .not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), False))
    if ku:
        b = b.add_extension(x509.KeyUsage(**dict(flags, **{ku: True})), True)
    if eku:
        b = b.add_extension(x509.ExtendedKeyUsage(list(eku)), False)
    from cryptography.hazmat.primitives import hashes
    return b.sign(ca.key, None if ca.alg == "ed25519" else hashes.SHA256()).public_bytes(DER)


@pytest.mark.parametrize("alg", ["ed25519", "p256"])
def test_verify_issued_refuses_certificates_without_the_device_role(cas, alg):
    ca = CA.load(cas[alg])
    x = x25519.X25519PrivateKey.generate().public_key()
    r = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    ca.verify_issued(_signed(ca, x))                                  # the device profile
    ca.verify_issued(_signed(ca, r, ku="key_encipherment"))
    ca.verify_issued(_signed(ca, x, ku=None))                         # keyUsage is optional
    refused = [
        (_signed(ca, x, eku=(x509.OID_SERVER_AUTH,)), "server role"),
        (_signed(ca, x, eku=(x509.OID_CLIENT_AUTH, x509.OID_SERVER_AUTH)), "server role"),
        (_signed(ca, x, eku=None), "no extendedKeyUsage"),
        (_signed(ca, x, eku=(x509.OID_CODE_SIGNING,)), "lacks clientAuth"),
        (_signed(ca, x, ku="digital_signature"), "excludes key agreement"),
        (_signed(ca, r, ku="digital_signature"), "excludes key encipherment"),
        (_signed(ca, x, is_ca=True), "CA certificate"),
    ]
    for der, why in refused:
        with pytest.raises(CAError, match=why):
            ca.verify_issued(der)
    # and C_B itself is not a device certificate
    with pytest.raises(CAError, match="server role"):
        ca.verify_issued(ca._leaf(x, "b", b"12345678", 30, "server"))


def test_ca_refuses_device_names_of_servers(tmp_path):
    ca = CA.init(tmp_path / "ca", "ed25519", "names CA")
    assert ca.server_names() == set()
    ca.issue_server(0, "b.fleet.example", tmp_path / "keys")
    assert json.loads((tmp_path / "ca" / "servers.json").read_text()) == \
        {"names": ["b.fleet.example"]}
    assert CA.load(tmp_path / "ca").server_names() == {"b.fleet.example"}
    for name in ("b.fleet.example", "B.Fleet.Example"):
        with pytest.raises(CAError, match="name of a server certificate"):
            ca.issue_device(x25519.X25519PrivateKey.generate().public_key(), name)
    ca.issue_device(x25519.X25519PrivateKey.generate().public_key(), "sensor-b.fleet.example")


def test_renew_server_keeps_the_key_and_extends_validity(tmp_path):
    ca_dir, keys = tmp_path / "ca", tmp_path / "keys"
    assert run("ca", "init", "--dir", ca_dir).returncode == 0
    for suite in (0, 1):
        proc = run("ca", "issue-server", "--ca-dir", ca_dir, "--suite", suite, "--name",
                   "b.renew", "--out", keys, "--days", 3)
        assert proc.returncode == 0, proc.stderr
    before = {p.name: p.read_bytes() for p in keys.iterdir()}
    proc = run("ca", "renew-server", "--ca-dir", ca_dir, "--key-dir", keys)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count(": renewed") == 2, proc.stdout
    for suite in (0, 1):
        base = "server-suite%d" % suite
        assert (keys / (base + ".key")).read_bytes() == before[base + ".key"]   # same key
        assert mode(keys / (base + ".key")) == 0o600
        old = x509.load_der_x509_certificate(before[base + ".der"])
        new = x509.load_der_x509_certificate((keys / (base + ".der")).read_bytes())
        assert new.public_key().public_bytes(DER, SPKI) == old.public_key().public_bytes(DER,
                                                                                          SPKI)
        assert new.subject == old.subject and new.serial_number != old.serial_number
        assert new.not_valid_after_utc - old.not_valid_after_utc > datetime.timedelta(days=26)
        assert x509.load_pem_x509_certificate((keys / (base + ".crt")).read_bytes()) == new
        assert (keys / (base + ".der.prev")).read_bytes() == before[base + ".der"]
        assert (keys / (base + ".crt.prev")).read_bytes() == before[base + ".crt"]
        CA.load(ca_dir).verify_issued(new.public_bytes(DER), role="server")
    assert not list(keys.glob("*.tmp"))
    # idempotent: run again (cron), nothing is due, nothing changes
    after = {p.name: p.read_bytes() for p in keys.iterdir()}
    proc = run("ca", "renew-server", "--ca-dir", ca_dir, "--key-dir", keys)
    assert proc.returncode == 0 and proc.stdout.count(": not due") == 2, proc.stdout
    assert {p.name: p.read_bytes() for p in keys.iterdir()} == after
    proc = run("ca", "renew-server", "--ca-dir", ca_dir, "--key-dir", tmp_path / "none")
    assert_one_line_error(proc, "no server-suiteN.key")
