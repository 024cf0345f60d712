# tests/vectors/x509/make_fixtures.py: makes the X.509 fixtures of tests/portable/test_x509.py.
# Run ONCE from the project root with CPython and pyca cryptography:
#     .venv/bin/python tests/vectors/x509/make_fixtures.py
# The outputs are frozen as files; the tests never run this script. Keys come from fixed
# seeds (Ed25519, X25519, P-256 scalars, RSA primes from a seeded PRNG), ECDSA uses
# RFC 6979, so every file is reproducible except server_rsa_pss.der (random PSS salt).
# expected.json records what pyca reads from each certificate, for the parser tests.
import datetime
import hashlib
import json
import os
import random

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

OUT = os.path.dirname(os.path.abspath(__file__))
DER = serialization.Encoding.DER
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def seed(label):
    return hashlib.sha256(b"airshake x509 fixture: " + label.encode()).digest()


def utc(*args):
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "airshake test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


# -- deterministic keys -----------------------------------------------------------------

def ed_key(label):
    return ed25519.Ed25519PrivateKey.from_private_bytes(seed(label))


def x_key(label):
    return x25519.X25519PrivateKey.from_private_bytes(seed(label))


def p256_key(label):
    scalar = int.from_bytes(seed(label), "big") % (P256_N - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def _probable_prime(n, rng):
    if n % 2 == 0:
        return False
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for _ in range(40):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(rng, bits, e):
    p = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
    while not (_probable_prime(p, rng) and (p - 1) % e):
        p += 2
    return p


def rsa_key(label, bits=2048, e=65537):
    rng = random.Random(int.from_bytes(seed(label), "big"))
    p, q = _prime(rng, bits // 2, e), _prime(rng, bits // 2, e)
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = rsa.RSAPrivateNumbers(p, q, d, rsa.rsa_crt_dmp1(d, p), rsa.rsa_crt_dmq1(d, q),
                                    rsa.rsa_crt_iqmp(p, q), rsa.RSAPublicNumbers(e, p * q))
    return numbers.private_key()


# -- certificates -------------------------------------------------------------------------

def ski_ext(pub):
    return x509.SubjectKeyIdentifier.from_public_key(pub)


def ku(**bits):
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: bits.get(n, False) for n in names})


def build(subject, issuer, pub, serial, start, end, exts, signer, **sign_args):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(pub)
         .serial_number(serial).not_valid_before(start).not_valid_after(end))
    for ext, critical in exts:
        b = b.add_extension(ext, critical)
    algorithm = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return b.sign(signer, algorithm, **sign_args).public_bytes(DER)


def ca_cert(key, cn, serial, **sign_args):
    pub = key.public_key()
    exts = [(x509.BasicConstraints(ca=True, path_length=0), True),
            (ku(key_cert_sign=True, crl_sign=True), True), (ski_ext(pub), False)]
    return build(name(cn), name(cn), pub, serial, utc(2025, 1, 1), utc(2055, 1, 1, 0, 0, 0),
                 exts, key, **sign_args)


def leaf_cert(key_pub, cn, issuer_cn, issuer_key, serial, usage, start=None, end=None,
              extra=(), **sign_args):
    exts = [(x509.BasicConstraints(ca=False, path_length=None), True),
            (ku(**{usage: True}), True), (ski_ext(key_pub), False)] + list(extra)
    return build(name(cn), name(issuer_cn), key_pub, serial,
                 start or utc(2025, 6, 1), end or utc(2045, 6, 1, 12, 34, 56),
                 exts, issuer_key, **sign_args)


# -- a v1 certificate, assembled by hand (pyca only builds v3) ----------------------------

def _tlv(tag, value):
    n = len(value)
    size = (n.bit_length() + 7) // 8
    length = bytes([n]) if n < 0x80 else bytes([0x80 | size]) + n.to_bytes(size, "big")
    return bytes([tag]) + length + value


def v1_cert(ca_key, issuer_cn, pub):
    alg = _tlv(0x30, _tlv(0x06, b"\x2b\x65\x70"))
    validity = _tlv(0x30, _tlv(0x17, b"250601000000Z") + _tlv(0x17, b"450601000000Z"))
    spki = pub.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    tbs = _tlv(0x30, _tlv(0x02, b"\x07") + alg + name(issuer_cn).public_bytes()
               + validity + name("airshake test v1").public_bytes() + spki)
    return _tlv(0x30, tbs + alg + _tlv(0x03, b"\x00" + ca_key.sign(tbs)))


# -- what pyca reads ----------------------------------------------------------------------

def describe(data):
    c = x509.load_der_x509_certificate(data)
    pub = c.public_key()
    spki = pub.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if isinstance(pub, rsa.RSAPublicKey):
        key = {"n": "%x" % pub.public_numbers().n, "e": pub.public_numbers().e}
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        key = pub.public_bytes(DER.X962, serialization.PublicFormat.UncompressedPoint).hex()
    else:
        key = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    sig = c.signature
    if c.signature_algorithm_oid.dotted_string == "1.2.840.10045.4.3.2":
        r, s = decode_dss_signature(sig)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    try:
        ski = c.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest.hex()
    except x509.ExtensionNotFound:
        ski = None
    try:
        is_ca = c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return {"size": len(data), "serial": c.serial_number, "tbs": c.tbs_certificate_bytes.hex(),
            "issuer": c.issuer.public_bytes().hex(), "subject": c.subject.public_bytes().hex(),
            "not_before": int(c.not_valid_before_utc.timestamp()),
            "not_after": int(c.not_valid_after_utc.timestamp()),
            "spki": spki.hex(), "public_key": key, "signature": sig.hex(),
            "sig_alg_oid": c.signature_algorithm_oid.dotted_string, "ski": ski, "is_ca": is_ca}


def main():
    files = {}
    ca = ed_key("ca_ed25519")
    files["ca_ed25519"] = ca_cert(ca, "airshake test CA", 1)
    server_x = x_key("server_x25519")
    files["server_x25519"] = leaf_cert(server_x.public_key(), "airshake test server",
                                       "airshake test CA", ca, 2, "key_agreement")
    ca_p = p256_key("ca_p256")
    files["ca_p256"] = ca_cert(ca_p, "airshake test CA P-256", 3, ecdsa_deterministic=True)
    server_p = p256_key("server_p256")
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_p.public_key())
    files["server_p256"] = leaf_cert(server_p.public_key(), "airshake test server P-256",
                                     "airshake test CA P-256", ca_p, 4, "key_agreement",
                                     extra=[(aki, False)], ecdsa_deterministic=True)
    server_r = rsa_key("rsa_ed25519")
    files["rsa_ed25519"] = leaf_cert(server_r.public_key(), "airshake test server RSA",
                                     "airshake test CA", ca, 5, "key_encipherment")
    ca_r = rsa_key("ca_rsa")
    files["ca_rsa"] = ca_cert(ca_r, "airshake test CA RSA", 6, rsa_padding=padding.PKCS1v15())
    files["server_rsa_pkcs1"] = leaf_cert(server_x.public_key(), "airshake test server PKCS1",
                                          "airshake test CA RSA", ca_r, 7, "key_agreement",
                                          rsa_padding=padding.PKCS1v15())
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    files["server_rsa_pss"] = leaf_cert(server_x.public_key(), "airshake test server PSS",
                                        "airshake test CA RSA", ca_r, 8, "key_agreement",
                                        rsa_padding=pss)
    files["expired"] = leaf_cert(server_x.public_key(), "airshake test server", "airshake test CA",
                                 ca, 9, "key_agreement", start=utc(2020, 1, 1), end=utc(2021, 1, 1))
    other = ed_key("other_ca")  # another CA that took the same name
    files["other_ca"] = ca_cert(other, "airshake test CA", 10)
    files["other_server"] = leaf_cert(server_x.public_key(), "airshake test server",
                                      "airshake test CA", other, 11, "key_agreement")
    san = x509.SubjectAlternativeName([x509.DNSName("server.airshake.test")])
    files["critical_unknown"] = leaf_cert(server_x.public_key(), "airshake test server",
                                          "airshake test CA", ca, 12, "key_agreement",
                                          extra=[(san, True)])
    good = files["server_x25519"]
    files["tampered"] = good[:-1] + bytes([good[-1] ^ 0x01])
    files["v1"] = v1_cert(ca, "airshake test CA", server_x.public_key())
    files["truncated"] = good[:len(good) // 2]
    expected = {}
    for label, data in sorted(files.items()):
        with open(os.path.join(OUT, label + ".der"), "wb") as f:
            f.write(data)
        if label not in ("tampered", "v1", "truncated"):
            expected[label] = describe(data)
    expected["_now"] = int(utc(2026, 1, 1).timestamp())
    expected["_seeds"] = {k: seed(k).hex() for k in
                          ("ca_ed25519", "server_x25519", "ca_p256", "server_p256", "other_ca")}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
