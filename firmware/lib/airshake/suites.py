# airshake.suites: the cipher suites and the Diffie-Hellman operations each one uses
# (docs/PROTOCOL.md §2). Rules: suite numbers are wire values; every suite uses a
# 32-byte ephemeral key on the wire, AES-CCM-16-64-128 and SHA-256.
#   0: X25519 ephemeral and static keys, Ed25519-signed certificates.
#   1: RSA-2048 key transport (the patent's claim 6) with an X25519 ephemeral exchange;
#      B signs with RSA-PSS, A proves it decrypted the pre-master secret.
#   2: P-256 ephemeral and static keys (x-coordinate on the wire), ECDSA certificates.
from airshake.errors import UsageError

SUITE_X25519 = 0
SUITE_RSA = 1
SUITE_P256 = 2

NAMES = {0: "X25519/Ed25519/AES-CCM-16-64-128/SHA-256",
         1: "RSA-OAEP-2048+X25519/RSA-PSS/AES-CCM-16-64-128/SHA-256",
         2: "P-256/ECDSA-P256/AES-CCM-16-64-128/SHA-256"}

# the order in which both roles choose among the suites both hold (A offers, B selects)
PREFERENCE = (0, 2, 1)

# the static key type each suite certifies, as airshake.x509 names it
STATIC_KEY_TYPE = {0: "x25519", 1: "rsa", 2: "p256"}

_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def check(suite):
    if suite not in NAMES:
        raise UsageError("unknown suite %r (known: 0, 1, 2)" % (suite,))


def uses_static_dh(suite):
    return suite != SUITE_RSA


def ephemeral_curve(suite):
    return "p256" if suite == SUITE_P256 else "x25519"


def new_scalar(backend, curve):
    """A fresh private scalar for curve, drawn from the backend's random()."""
    while True:
        k = backend.random(32)
        if curve != "p256":
            return k
        v = int.from_bytes(k, "big")
        if 0 < v < _P256_N:
            return k


def public_of(backend, curve, priv):
    """The wire form of priv's public key: 32 bytes (P-256: the x-coordinate)."""
    if curve == "p256":
        return backend.p256_public(priv)[1:33]
    return backend.x25519_public(priv)


def ephemeral(backend, suite):
    curve = ephemeral_curve(suite)
    priv = new_scalar(backend, curve)
    return priv, public_of(backend, curve, priv)


def dh(backend, curve, priv, peer):
    """Shared secret; peer is a 32-byte wire key or (P-256) a 65-byte point.
    Raises InvalidPoint for bad or low-order peers."""
    if curve == "p256":
        return backend.p256_ecdh(priv, peer)
    return backend.x25519(priv, peer)
