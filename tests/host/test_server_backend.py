# tests/host/test_server_backend.py: B's crypto backend (host_server.server_b.backend) gives
# exactly the core pyca backend's answers, with its caches of loaded and parsed keys:
# X25519 and P-256 agreement, HMAC and SHA-256; bad peer keys are InvalidPoint even when
# a good key was parsed just before; forget() drops what one handshake loaded.
import os

import pytest

from airshake.crypto import load_backend
from airshake.errors import InvalidPoint
from host_server.server_b.backend import load_server_backend

CORE = load_backend("pyca")
LOW_ORDER = bytes(32)                       # the all-zero point: an all-zero secret
SHORT = bytes(31)


@pytest.fixture
def b():
    return load_server_backend((0, 2))


def test_x25519_agrees_with_the_core_backend_with_keys_reused_in_a_handshake(b):
    static, eph, g_x, peer = (os.urandom(32) for _ in range(4))
    b.pin(static, "x25519")
    g_x_pub = CORE.x25519_public(g_x)
    peer_pub = CORE.x25519_public(peer)
    assert b.x25519_public(eph) == CORE.x25519_public(eph)
    for priv, pub in ((eph, g_x_pub), (static, g_x_pub), (eph, peer_pub), (eph, g_x_pub)):
        assert b.x25519(priv, pub) == CORE.x25519(priv, pub)
    assert b.x25519(bytearray(eph), bytearray(g_x_pub)) == CORE.x25519(eph, g_x_pub)
    b.forget()
    assert not b._peers and not b._recent and b._pinned


def test_bad_x25519_peer_keys_are_invalid_points(b):
    eph = os.urandom(32)
    b.x25519(eph, CORE.x25519_public(os.urandom(32)))        # a good one parsed first
    for bad in (LOW_ORDER, SHORT):
        with pytest.raises(InvalidPoint):
            b.x25519(eph, bad)


def test_p256_hmac_and_sha256_agree_with_the_core_backend(b):
    k1, k2 = bytes(range(1, 33)), bytes(range(2, 34))
    assert b.p256_public(k1) == CORE.p256_public(k1)
    assert b.p256_ecdh(k1, CORE.p256_public(k2)) == CORE.p256_ecdh(k1, CORE.p256_public(k2))
    for key, data in ((b"k" * 32, b"data"), (b"x" * 100, b""), (bytearray(16), b"d" * 300)):
        assert b.hmac_sha256(key, data) == CORE.hmac_sha256(key, data)
    assert b.sha256(b"abc") == CORE.sha256(b"abc")
