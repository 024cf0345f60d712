# airshake.crypto.hmac256: HMAC-SHA256 (RFC 2104) on hashlib.sha256, the one hash every
# MicroPython firmware has. HKDF is built on this in the protocol core, not here.
# Rules: keys longer than the 64-byte block are hashed first; the full 32-byte tag is
# returned (callers truncate, and compare with airshake.consttime.equal).

import hashlib

_BLOCK = 64


def _pad(key, byte):
    pad = bytearray(_BLOCK)
    pad[:len(key)] = key
    for i in range(_BLOCK):
        pad[i] ^= byte
    return pad


def hmac_sha256(key, data):
    """32-byte HMAC-SHA256 of data under key."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    inner = hashlib.sha256(_pad(key, 0x36))
    inner.update(data)
    outer = hashlib.sha256(_pad(key, 0x5C))
    outer.update(inner.digest())
    return outer.digest()
