"""Certificate profiles for the TLS 1.3 measurement (host_server/competitors/tls13.py), made with
pyca `cryptography`, once per process.

Profiles: "minimal" = Ed25519 CAs and leaves, CNs of one letter, no extension but the CAs'
basicConstraints (OpenSSL refuses an issuer without it: "invalid CA certificate");
"minimal-p256" = the same with ECDSA P-256; "typical" = RSA-2048 CAs and leaves with C/O/CN
names, random serials, SAN, key usage, extended key usage, basic constraints, SKI and AKI.
"""

import datetime
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PROFILES = ("minimal", "minimal-p256", "typical")
PEM = serialization.Encoding.PEM
_START = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
_END = datetime.datetime(2035, 1, 1, tzinfo=datetime.timezone.utc)


def _name(cn, typical):
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if typical:
        attrs = [x509.NameAttribute(NameOID.COUNTRY_NAME, "FI"),
                 x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Airshake Example Oy")] + attrs
    return x509.Name(attrs)


def _new_key(profile):
    if profile == "minimal":
        return ed25519.Ed25519PrivateKey.generate()
    if profile == "minimal-p256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(65537, 2048)


def _hash_for(key):
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _builder(subject, issuer, pub, typical, serial):
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(pub).not_valid_before(_START).not_valid_after(_END)
            .serial_number(x509.random_serial_number() if typical else serial))


def _make_ca(key, typical, short_cn):
    name = _name("Airshake Example %s CA" % short_cn.upper() if typical else short_cn, typical)
    b = _builder(name, name, key.public_key(), typical, 1)
    b = b.add_extension(x509.BasicConstraints(ca=True, path_length=0 if typical else None),
                        critical=True)
    if typical:
        b = (b.add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                           False, False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                            critical=False))
    return b.sign(key, _hash_for(key))


def _issue(ca_key, ca_cert, pub, cn, typical, serial):
    b = _builder(_name(cn, typical), ca_cert.subject, pub, typical, serial)
    if typical:
        ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        b = (b.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
             .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
             .add_extension(x509.KeyUsage(True, False, True, False, False, False, False,
                                          False, False), critical=True)
             .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                   ExtendedKeyUsageOID.CLIENT_AUTH]),
                            critical=False)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
             .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                 ca_ski), critical=False))
    return b.sign(ca_key, _hash_for(ca_key))


def _pem_key(key):
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@lru_cache(maxsize=None)
def material(profile="minimal", shared_ca=False):
    """PEM material of one profile, made once per process: a dict with, for role in
    ("server", "client"), ROLE_cert and ROLE_key (PEM) and ROLE_ca (PEM of the CA that
    issued ROLE's leaf), the DER sizes ROLE_der and ROLE_ca_der, and the server's host name.
    By default the server's and the devices' leaves come from two CAs, so that each side's
    trust store lacks its own issuer and OpenSSL sends the leaf alone (with one shared CA,
    OpenSSL's automatic chain building finds the CA in the context's store and sends it
    after the leaf in both Certificate messages)."""
    if profile not in PROFILES:
        raise ValueError("unknown certificate profile %r" % profile)
    typical = profile == "typical"
    host = "server.airshake.example" if typical else "s"
    client_cn = "device-0001.airshake.example" if typical else "c"
    out = {"host": host}
    shared = None
    for role, cn, ca_cn, serial in (("server", host, "a", 2), ("client", client_cn, "b", 3)):
        if shared is None:
            ca_key = _new_key(profile)
            ca = _make_ca(ca_key, typical, ca_cn)
            if shared_ca:
                shared = (ca_key, ca)
        else:
            ca_key, ca = shared
        key = _new_key(profile)
        cert = _issue(ca_key, ca, key.public_key(), cn, typical, serial)
        out[role + "_cert"] = cert.public_bytes(PEM)
        out[role + "_key"] = _pem_key(key)
        out[role + "_der"] = len(cert.public_bytes(serialization.Encoding.DER))
        out[role + "_ca"] = ca.public_bytes(PEM)
        out[role + "_ca_der"] = len(ca.public_bytes(serialization.Encoding.DER))
    return out
