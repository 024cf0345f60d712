# airshake.crypto.ccm: AES-CCM authenticated encryption (RFC 3610, NIST SP 800-38C).
# The suite uses AES-CCM-16-64-128 (13-byte nonce so L = 2, 8-byte tag), but the nonce
# may be 7..13 bytes (L = 15 - len(nonce)) and the tag 4..16 bytes, even.
# Rules: decrypt computes the tag over the recovered plaintext and compares it with
# consttime.equal before anything is returned; on a mismatch the recovered plaintext is
# wiped and AuthenticationFailed raised. Bad parameters from the local caller (key, nonce
# or tag length, oversize message to encrypt) raise UsageError; anything wrong with the
# data being decrypted raises AuthenticationFailed.

from airshake.consttime import equal
from airshake.crypto.aes import new_ecb
from airshake import errors
from airshake.errors import UsageError


def _check_params(nonce, tag_len):
    if not 7 <= len(nonce) <= 13:
        raise UsageError("CCM nonce must be 7..13 bytes")
    if tag_len < 4 or tag_len > 16 or tag_len & 1:
        raise UsageError("CCM tag length must be 4, 6, ..., 16")
    return 15 - len(nonce)


def _aad_header(n):
    """Length prefix of the associated data (RFC 3610 §2.2)."""
    if n < 0xFF00:
        return n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\xff\xfe" + n.to_bytes(4, "big")
    return b"\xff\xff" + n.to_bytes(8, "big")


def _mac(aes, nonce, aad, msg, tag_len, lsize):
    """CBC-MAC T over B0 || encoded aad || msg, each part zero-padded to blocks."""
    flags = (0x40 if aad else 0) | (((tag_len - 2) // 2) << 3) | (lsize - 1)
    x = bytearray(aes.encrypt_block(bytes((flags,)) + nonce + len(msg).to_bytes(lsize, "big")))
    if aad:
        x = _absorb(aes, x, _aad_header(len(aad)) + bytes(aad))
    if msg:
        x = _absorb(aes, x, msg)
    return x


def _absorb(aes, x, data):
    n = len(data)
    for start in range(0, n, 16):
        end = min(start + 16, n)
        for i in range(start, end):
            x[i - start] ^= data[i]
        x = bytearray(aes.encrypt_block(x))
    return x


def _ctr(aes, nonce, lsize, data):
    """data xor S1 || S2 || ..., as a bytearray (counter blocks A_i, RFC 3610 §2.3)."""
    prefix = bytes((lsize - 1,)) + nonce
    out = bytearray(data)
    n = len(out)
    counter = 1
    for start in range(0, n, 16):
        s = aes.encrypt_block(prefix + counter.to_bytes(lsize, "big"))
        for i in range(start, min(start + 16, n)):
            out[i] ^= s[i - start]
        counter += 1
    return out


def _first_key_block(aes, nonce, lsize, tag_len):
    """S0 truncated to the tag length: the mask applied to T."""
    return aes.encrypt_block(bytes((lsize - 1,)) + nonce + bytes(lsize))[:tag_len]


def _mask(t, s0, tag_len):
    return bytes(t[i] ^ s0[i] for i in range(tag_len))


def encrypt(key, nonce, aad, plaintext, tag_len=8):
    """ciphertext || tag for plaintext under key and nonce, authenticating aad."""
    nonce = bytes(nonce)
    lsize = _check_params(nonce, tag_len)
    aad = aad or b""
    if len(plaintext) >= 1 << (8 * lsize):
        raise UsageError("CCM message too long for this nonce length")
    aes = new_ecb(key)
    t = _mac(aes, nonce, aad, plaintext, tag_len, lsize)
    tag = _mask(t, _first_key_block(aes, nonce, lsize, tag_len), tag_len)
    return bytes(_ctr(aes, nonce, lsize, plaintext)) + tag


def decrypt(key, nonce, aad, data, tag_len=8):
    """plaintext of ciphertext || tag; AuthenticationFailed unless the tag verifies."""
    nonce = bytes(nonce)
    lsize = _check_params(nonce, tag_len)
    aad = aad or b""
    aes = new_ecb(key)
    n = len(data) - tag_len
    if n < 0 or n >= 1 << (8 * lsize):
        raise errors.AuthenticationFailed("CCM data has an impossible length")
    plaintext = _ctr(aes, nonce, lsize, memoryview(data)[:n])
    t = _mac(aes, nonce, aad, plaintext, tag_len, lsize)
    expected = _mask(t, _first_key_block(aes, nonce, lsize, tag_len), tag_len)
    if not equal(expected, bytes(memoryview(data)[n:])):
        for i in range(n):
            plaintext[i] = 0
        raise errors.AuthenticationFailed("CCM tag does not verify")
    return bytes(plaintext)
