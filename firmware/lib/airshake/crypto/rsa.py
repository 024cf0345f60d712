# airshake.crypto.rsa: RSA per RFC 8017 with SHA-256 and MGF1-SHA-256: RSAES-OAEP
# (label empty unless given) and RSASSA-PSS (salt length 32), keys as contract.RsaPublic /
# RsaPrivate. Rules: nothing here draws randomness (callers pass the OAEP seed and PSS
# salt); private operations use the CRT and are checked by re-applying the public exponent;
# oaep_decrypt raises one uniform AuthenticationFailed for every failure and checks the
# padding without early exit; pss_verify returns bool and never raises.

import hashlib
from airshake import errors
from airshake.errors import UsageError

from airshake.const import const

_HLEN = const(32)  # SHA-256 output length
_SLEN = const(32)  # PSS salt length
_EMPTY_LABEL_HASH = hashlib.sha256(b"").digest()


# -- integers and octet strings (RFC 8017 section 4) ---------------------------------------

def _bit_length(n):
    # MicroPython ints have no bit_length(); the hex form gives it.
    digits = "%x" % n
    top = int(digits[0], 16)
    extra = 0
    while top:
        top >>= 1
        extra += 1
    return 4 * (len(digits) - 1) + extra


def _byte_length(n):
    return (_bit_length(n) + 7) // 8


def _i2osp(x, length):
    return x.to_bytes(length, "big")


def _os2ip(data):
    return int.from_bytes(data, "big")


def _sha256(data):
    return hashlib.sha256(data).digest()


def _xor(a, b):
    return bytes(a[i] ^ b[i] for i in range(len(a)))


def _mgf1(seed, length):
    out = b""
    counter = 0
    while len(out) < length:
        out += _sha256(seed + counter.to_bytes(4, "big"))
        counter += 1
    return out[:length]


def _private_op(priv, c):
    """c^d mod n by the CRT, or None if re-applying e does not give c back (fault)."""
    m1 = pow(c % priv.p, priv.dp, priv.p)
    m2 = pow(c % priv.q, priv.dq, priv.q)
    h = priv.qinv * (m1 - m2) % priv.p
    m = m2 + h * priv.q
    if m >= priv.n or pow(m, priv.e, priv.n) != c:
        return None
    return m


# -- RSAES-OAEP (RFC 8017 section 7.1) -----------------------------------------------------

def oaep_encrypt(pub, plaintext, seed32, label=b""):
    """Ciphertext (modulus length) of plaintext under pub, with the caller's random seed."""
    k = _byte_length(pub.n)
    if len(seed32) != _HLEN:
        raise UsageError("OAEP seed must be 32 bytes")
    if len(plaintext) > k - 2 * _HLEN - 2:
        raise UsageError("OAEP plaintext too long for this modulus")
    db = _sha256(label) + bytes(k - len(plaintext) - 2 * _HLEN - 2) + b"\x01" + plaintext
    masked_db = _xor(db, _mgf1(seed32, k - _HLEN - 1))
    masked_seed = _xor(seed32, _mgf1(masked_db, _HLEN))
    m = _os2ip(b"\x00" + masked_seed + masked_db)
    return _i2osp(pow(m, pub.e, pub.n), k)


def _oaep_unpad(em, label_hash):
    """(bad, message): bad is 0 only for a well-formed EM.
    Every byte is examined whatever the outcome (no early exit)."""
    masked_seed = em[1:1 + _HLEN]
    masked_db = em[1 + _HLEN:]
    seed = _xor(masked_seed, _mgf1(masked_db, _HLEN))
    db = _xor(masked_db, _mgf1(seed, len(masked_db)))
    bad = em[0]
    for i in range(_HLEN):
        bad |= db[i] ^ label_hash[i]
    found = 0
    start = 0
    for i in range(_HLEN, len(db)):
        b = db[i]
        is_zero = ((b - 1) >> 8) & 1
        is_one = (((b ^ 1) - 1) >> 8) & 1
        searching = 1 - found
        start |= (i + 1) * (is_one & searching)
        bad |= searching & (1 - is_zero) & (1 - is_one)
        found |= is_one
    bad |= 1 - found
    return bad, db[start:]


def oaep_decrypt(priv, ciphertext, label=b""):
    """Plaintext of an OAEP ciphertext; AuthenticationFailed (always the same) on any error."""
    k = _byte_length(priv.n)
    bad = 1
    em = bytes(k)
    if len(ciphertext) == k and k >= 2 * _HLEN + 2:
        c = _os2ip(ciphertext)
        m = _private_op(priv, c) if c < priv.n else None
        if m is not None:
            em = _i2osp(m, k)
            bad = 0
    label_hash = _sha256(label) if label else _EMPTY_LABEL_HASH
    pad_bad, message = _oaep_unpad(em, label_hash)
    if bad | pad_bad:
        raise errors.AuthenticationFailed("RSA-OAEP decryption failed")
    return message


# -- RSASSA-PSS (RFC 8017 section 8.1, EMSA-PSS section 9.1) -------------------------------

def _pss_hash(msg, salt):
    return _sha256(bytes(8) + _sha256(msg) + salt)


def _top_mask(em_bits, em_len):
    """Mask that clears the 8*em_len - em_bits leftmost bits of the first byte."""
    return 0xff >> (8 * em_len - em_bits)


def pss_sign(priv, msg, salt32):
    """Signature (modulus length) over SHA-256(msg) with the caller's random 32-byte salt."""
    if len(salt32) != _SLEN:
        raise UsageError("PSS salt must be 32 bytes")
    mod_bits = _bit_length(priv.n)
    em_bits = mod_bits - 1
    em_len = (em_bits + 7) // 8
    if em_len < _HLEN + _SLEN + 2:
        raise UsageError("RSA modulus too small for PSS with SHA-256")
    h = _pss_hash(msg, salt32)
    db = bytes(em_len - _SLEN - _HLEN - 2) + b"\x01" + salt32
    masked_db = bytearray(_xor(db, _mgf1(h, em_len - _HLEN - 1)))
    masked_db[0] &= _top_mask(em_bits, em_len)
    em = bytes(masked_db) + h + b"\xbc"
    s = _private_op(priv, _os2ip(em))
    if s is None:
        raise UsageError("RSA private key is inconsistent (CRT result check failed)")
    return _i2osp(s, (mod_bits + 7) // 8)


def _pss_check(pub, msg, sig):
    k = _byte_length(pub.n)
    if len(sig) != k:
        return False
    s = _os2ip(sig)
    if s >= pub.n:
        return False
    em_bits = _bit_length(pub.n) - 1
    em_len = (em_bits + 7) // 8
    m = pow(s, pub.e, pub.n)
    if em_len < _HLEN + _SLEN + 2 or m >> (8 * em_len) != 0:
        return False
    em = _i2osp(m, em_len)
    if em[-1] != 0xbc:
        return False
    mask = _top_mask(em_bits, em_len)
    masked_db = em[:em_len - _HLEN - 1]
    h = em[em_len - _HLEN - 1:-1]
    if masked_db[0] & ~mask & 0xff:
        return False
    db = bytearray(_xor(masked_db, _mgf1(h, len(masked_db))))
    db[0] &= mask
    ps_len = em_len - _HLEN - _SLEN - 2
    if any(db[:ps_len]) or db[ps_len] != 1:
        return False
    return _pss_hash(msg, bytes(db[-_SLEN:])) == h


def pss_verify(pub, msg, sig):
    """True if sig is a valid RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32) signature."""
    try:
        return _pss_check(pub, msg, sig)
    except Exception:
        return False
