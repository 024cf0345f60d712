"""Makes tests/vectors/handshake/fixtures.json: CAs, server and device keys with their
certificates for every suite, for the portable handshake tests (which cannot run pyca
on MicroPython). Run once with CPython: python tests/vectors/handshake/make_fixtures.py
The keys are test keys, published here; never use them anywhere else."""

import datetime
import hashlib
import json
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
DER = serialization.Encoding.DER
RAW = serialization.Encoding.Raw
START = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
END = datetime.datetime(2035, 1, 1, tzinfo=datetime.timezone.utc)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def sign_alg(ca_key):
    return None if isinstance(ca_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def make_ca(key, cn):
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(name(cn))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(START)
        .not_valid_after(END)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, sign_alg(key))
    )
    return cert


def key_usage(pub, role):
    # the airshake role profile (docs/PROTOCOL.md §2.3): DH keys agree; an RSA server
    # key signs m2, an RSA device key decrypts the PMS
    agree = not isinstance(pub, rsa.RSAPublicKey)
    return x509.KeyUsage(
        digital_signature=not agree and role == "server", content_commitment=False,
        key_encipherment=not agree and role == "device", data_encipherment=False,
        key_agreement=agree, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False)


ROLE_EKU = {"server": [ExtendedKeyUsageOID.SERVER_AUTH],
            "device": [ExtendedKeyUsageOID.CLIENT_AUTH]}


def issue(ca_key, ca_cert, pub, cn, serial, role, ski=None, start=START, end=END):
    spki = pub.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ski = ski or hashlib.sha256(spki).digest()[:8]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(pub)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(pub, role), critical=True)
        .add_extension(x509.ExtendedKeyUsage(ROLE_EKU[role]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier(ski), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
        .sign(ca_key, sign_alg(ca_key))
    )
    return cert.public_bytes(DER)


def priv_hex(key):
    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        return {
            "n": hex(n.public_numbers.n),
            "e": n.public_numbers.e,
            "d": hex(n.d),
            "p": hex(n.p),
            "q": hex(n.q),
            "dp": hex(n.dmp1),
            "dq": hex(n.dmq1),
            "qinv": hex(n.iqmp),
        }
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.private_numbers().private_value.to_bytes(32, "big").hex()
    return key.private_bytes(
        RAW, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    ).hex()


def main():
    out = {}
    ca_ed = ed25519.Ed25519PrivateKey.generate()
    ca_ec = ec.generate_private_key(ec.SECP256R1())
    other = ed25519.Ed25519PrivateKey.generate()
    ca_ed_cert, ca_ec_cert = (
        make_ca(ca_ed, "airshake test CA"),
        make_ca(ca_ec, "airshake test CA P-256"),
    )
    other_cert = make_ca(other, "another CA")
    out["ca_ed25519"] = ca_ed_cert.public_bytes(DER).hex()
    out["ca_p256"] = ca_ec_cert.public_bytes(DER).hex()
    out["ca_other"] = other_cert.public_bytes(DER).hex()
    makers = {
        0: lambda: x25519.X25519PrivateKey.generate(),
        1: lambda: rsa.generate_private_key(65537, 2048),
        2: lambda: ec.generate_private_key(ec.SECP256R1()),
    }
    cas = {0: (ca_ed, ca_ed_cert), 1: (ca_ed, ca_ed_cert), 2: (ca_ec, ca_ec_cert)}
    serial = 100
    for suite, make in makers.items():
        ca_key, ca_cert = cas[suite]
        server, device = make(), make()
        entry = {"server_key": priv_hex(server), "device_key": priv_hex(device)}
        serial += 1
        entry["server_cert"] = issue(
            ca_key, ca_cert, server.public_key(), "b.airshake.test", serial, "server"
        ).hex()
        serial += 1
        entry["device_cert"] = issue(
            ca_key, ca_cert, device.public_key(), "device-%d" % suite, serial, "device"
        ).hex()
        # an enrolled device that impersonates B: its own key, B's name, the device role
        rogue = make()
        entry["rogue_key"] = priv_hex(rogue)
        serial += 1
        entry["rogue_cert_device_role"] = issue(
            ca_key, ca_cert, rogue.public_key(), "b.airshake.test", serial, "device"
        ).hex()
        serial += 1
        entry["rogue_cert_other_name"] = issue(
            ca_key, ca_cert, rogue.public_key(), "b2.airshake.test", serial, "server"
        ).hex()
        serial += 1
        entry["device_cert_server_role"] = issue(
            ca_key, ca_cert, device.public_key(), "device-%d" % suite, serial, "server"
        ).hex()
        serial += 1
        entry["server_cert_expired"] = issue(
            ca_key,
            ca_cert,
            server.public_key(),
            "b.airshake.test",
            serial,
            "server",
            start=START,
            end=datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc),
        ).hex()
        serial += 1
        entry["server_cert_other_ca"] = issue(
            other, other_cert, server.public_key(), "b.airshake.test", serial, "server"
        ).hex()
        impostor = make()
        serial += 1
        entry["device_cert_wrong_key"] = issue(
            ca_key, ca_cert, impostor.public_key(), "device-%d" % suite, serial, "device"
        ).hex()
        out["suite%d" % suite] = entry
    out["now"] = int(datetime.datetime(2026, 11, 27, tzinfo=datetime.timezone.utc).timestamp())
    with open(os.path.join(HERE, "fixtures.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
