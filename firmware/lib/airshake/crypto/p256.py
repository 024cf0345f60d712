# airshake.crypto.p256: NIST P-256 (SEC 1, FIPS 186-4) in pure Python for CPython and
# MicroPython: public keys, ECDH, ECDSA-SHA-256 with RFC 6979 nonces, DER signature parsing.
# Rules: every peer point is decoded and checked on the curve before use (InvalidPoint
# otherwise); verify returns bool and never raises; nothing here draws randomness.
# Arithmetic: Jacobian coordinates with the a = -3 doubling, affine precomputed tables and
# mixed addition, a regular signed-window recoding (every window adds, so the operation
# sequence does not depend on the scalar), Shamir interleaving for verification.
# Not constant-time at the big-int level: interpreted arbitrary-precision ints cannot be.

import hashlib
from airshake.errors import InvalidPoint, DecodeError

from airshake.const import const

# Window widths: 4 for both (8-entry tables), not 5 and 6 (16 and 32 entries): on the
# 32-bit twin the smallest heap of a suite-2 handshake process went 59.4 -> 50.3 KB;
# on the 64-bit binary keygen + ECDH + sign + verify took 24.8 ms (5/6) against 25.4 ms
# (4/4), medians of 7 within each other's spread.
_W_VAR = const(4)  # window width for a variable base (table built per call)
_W_GEN = const(4)  # window width for the generator (table built once, cached)

P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff
N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b
GX = 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296
GY = 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5
_SQRT_EXP = (P + 1) // 4  # P = 3 mod 4, so a square root of v is v^((P+1)/4)

_gen_table = None


# -- field and group arithmetic (Jacobian (X, Y, Z); Z == 0 is the point at infinity) ------

def _double(pt):
    x, y, z = pt
    delta = z * z % P
    gamma = y * y % P
    beta = x * gamma % P
    alpha = 3 * (x - delta) * (x + delta) % P
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = 2 * y * z % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return (x3, y3, z3)


def _add_affine(pt, ax, ay):
    """Jacobian pt + affine (ax, ay); handles infinity, doubling and inverse points."""
    x1, y1, z1 = pt
    if z1 == 0:
        return (ax, ay, 1)
    zz = z1 * z1 % P
    h = (ax * zz - x1) % P
    r = (ay * zz * z1 - y1) % P
    if h == 0:
        return _double((ax, ay, 1)) if r == 0 else (1, 1, 0)
    hh = h * h % P
    hhh = h * hh % P
    v = x1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - y1 * hhh) % P
    return (x3, y3, z1 * h % P)


def _inverse(v, m):
    return pow(v, m - 2, m)  # m is prime; MicroPython's pow has no negative exponent


def _to_affine(pt):
    zi = _inverse(pt[2], P)
    zi2 = zi * zi % P
    return (pt[0] * zi2 % P, pt[1] * zi2 * zi % P)


def _normalize_all(pts):
    """Affine forms of Jacobian points (none at infinity) with one inversion."""
    prefix = []
    acc = 1
    for pt in pts:
        prefix.append(acc)
        acc = acc * pt[2] % P
    inv = _inverse(acc, P)
    out = [None] * len(pts)
    for i in range(len(pts) - 1, -1, -1):
        x, y, z = pts[i]
        zi = inv * prefix[i] % P
        inv = inv * z % P
        zi2 = zi * zi % P
        out[i] = (x * zi2 % P, y * zi2 * zi % P)
    return out


def _odd_multiples(ax, ay, w):
    """Affine [1P, 3P, 5P, ..., (2^w - 1)P] for an affine point P of order N."""
    acc = (ax, ay, 1)
    pts = [acc]
    for i in range(2, 1 << w):
        acc = _add_affine(acc, ax, ay)
        if i & 1:
            pts.append(acc)
    return _normalize_all(pts)


def _generator_table():
    global _gen_table
    if _gen_table is None:
        _gen_table = _odd_multiples(GX, GY, _W_GEN)
    return _gen_table


def _recode(k, w):
    """Odd signed digits d_i in [-(2^w - 1), 2^w - 1], low first, with sum d_i 2^(wi)
    equal to k or k + N (whichever is odd: the same point). Always ceil(257/w) digits."""
    if k & 1 == 0:
        k += N
    count = (257 + w - 1) // w
    digits = []
    mod = 1 << (w + 1)
    half = 1 << w
    for _ in range(count - 1):
        d = (k & (mod - 1)) - half
        digits.append(d)
        k = (k - d) >> w
    digits.append(k)
    return digits


def _multi_mul(terms):
    """Sum of k_j * P_j as a Jacobian point; terms are (table, digits, w) triples."""
    top = max((len(d) - 1) * w for _, d, w in terms)
    acc = (1, 1, 0)
    for pos in range(top, -1, -1):
        if pos != top:
            acc = _double(acc)
        for table, digits, w in terms:
            if pos % w == 0:
                d = digits[pos // w]
                x, y = table[(d if d > 0 else -d) >> 1]
                acc = _add_affine(acc, x, y if d > 0 else P - y)
    return acc


def _mul_base(k):
    return _multi_mul([(_generator_table(), _recode(k, _W_GEN), _W_GEN)])


def _mul_point(k, x, y):
    return _multi_mul([(_odd_multiples(x, y, _W_VAR), _recode(k, _W_VAR), _W_VAR)])


# -- encodings -----------------------------------------------------------------------------

def _scalar(priv32):
    if len(priv32) != 32:
        raise InvalidPoint("P-256 private key must be 32 bytes")
    k = int.from_bytes(priv32, "big")
    if k == 0 or k >= N:
        raise InvalidPoint("P-256 private scalar out of range")
    return k


def _curve_rhs(x):
    return (x * x * x - 3 * x + B) % P


def decode_point(data):
    """(x, y) from 04||x||y or a bare 32-byte x (either y); InvalidPoint if not on curve."""
    if len(data) == 65 and data[0] == 4:
        x = int.from_bytes(data[1:33], "big")
        y = int.from_bytes(data[33:], "big")
        if x >= P or y >= P or y * y % P != _curve_rhs(x):
            raise InvalidPoint("P-256 point is not on the curve")
        return (x, y)
    if len(data) == 32:
        x = int.from_bytes(data, "big")
        if x >= P:
            raise InvalidPoint("P-256 x-coordinate out of range")
        rhs = _curve_rhs(x)
        y = pow(rhs, _SQRT_EXP, P)
        if y * y % P != rhs:
            raise InvalidPoint("P-256 x-coordinate has no point on the curve")
        return (x, y)
    raise InvalidPoint("P-256 point must be 65 bytes (04||x||y) or a 32-byte x-coordinate")


def _encode_point(pt):
    if pt[2] == 0:
        raise InvalidPoint("P-256 result is the point at infinity")
    x, y = _to_affine(pt)
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")


# -- public API ----------------------------------------------------------------------------

def public_key(priv32):
    """65-byte uncompressed public point for a 32-byte private scalar in [1, N-1]."""
    return _encode_point(_mul_base(_scalar(priv32)))


def ecdh(priv32, peer):
    """32-byte x-coordinate of priv * peer; peer is 04||x||y or a bare 32-byte x."""
    k = _scalar(priv32)
    x, y = decode_point(peer)
    return _encode_point(_mul_point(k, x, y))[1:33]


def _hmac(key, data):
    # Private HMAC-SHA256 (RFC 2104) for RFC 6979; keys here are always 32 bytes.
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + data).digest()
    return hashlib.sha256(bytes(b ^ 0x5c for b in key) + inner).digest()


def rfc6979_nonces(d, h1):
    """Candidate nonces k in [1, N-1] per RFC 6979 section 3.2 (HMAC-SHA256, qlen 256)."""
    x = d.to_bytes(32, "big")
    e = (int.from_bytes(h1, "big") % N).to_bytes(32, "big")
    v = b"\x01" * 32
    k = bytes(32)
    k = _hmac(k, v + b"\x00" + x + e)
    v = _hmac(k, v)
    k = _hmac(k, v + b"\x01" + x + e)
    v = _hmac(k, v)
    while True:
        v = _hmac(k, v)
        t = int.from_bytes(v, "big")
        if 1 <= t < N:
            yield t
        k = _hmac(k, v + b"\x00")
        v = _hmac(k, v)


def ecdsa_sign(priv32, msg):
    """64-byte r||s over SHA-256(msg) with the deterministic nonce of RFC 6979."""
    d = _scalar(priv32)
    h = hashlib.sha256(msg).digest()
    e = int.from_bytes(h, "big")
    for k in rfc6979_nonces(d, h):
        r = _to_affine(_mul_base(k))[0] % N
        if r == 0:
            continue
        s = _inverse(k, N) * (e + r * d) % N
        if s != 0:
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _verify_with(x, y, e, r, s):
    w = _inverse(s, N)
    u1 = e * w % N
    u2 = r * w % N
    pt = _multi_mul([(_generator_table(), _recode(u1, _W_GEN), _W_GEN),
                     (_odd_multiples(x, y, _W_VAR), _recode(u2, _W_VAR), _W_VAR)])
    if pt[2] == 0:
        return False
    # x(R) mod N == r, checked projectively: X == x * Z^2 for x in {r, r + N} below P.
    zz = pt[2] * pt[2] % P
    cand = r
    while cand < P:
        if cand * zz % P == pt[0]:
            return True
        cand += N
    return False


def ecdsa_verify(point, msg, sig):
    """True if sig (64-byte r||s) is valid for SHA-256(msg) under point (04||x||y, or a
    bare x: then either y is accepted). False for any malformed input."""
    try:
        x, y = decode_point(point)
        if len(sig) != 64:
            return False
        r = int.from_bytes(sig[:32], "big")
        s = int.from_bytes(sig[32:], "big")
        if not (0 < r < N and 0 < s < N):
            return False
        e = int.from_bytes(hashlib.sha256(msg).digest(), "big")
        if _verify_with(x, y, e, r, s):
            return True
        return len(point) == 32 and _verify_with(x, P - y, e, r, s)
    except Exception:
        return False


# -- DER (X.509 ECDSA-Sig-Value: SEQUENCE { INTEGER r, INTEGER s }) -------------------------

def _der_uint(data, pos):
    """(value bytes as 32, next pos) of a minimal non-negative DER INTEGER at pos."""
    if pos + 2 > len(data) or data[pos] != 0x02:
        raise DecodeError("ECDSA signature: INTEGER expected")
    length = data[pos + 1]
    body = data[pos + 2:pos + 2 + length]
    if length == 0 or length > 33 or len(body) != length:
        raise DecodeError("ECDSA signature: bad INTEGER length")
    if body[0] & 0x80:
        raise DecodeError("ECDSA signature: negative INTEGER")
    if length > 1 and body[0] == 0 and not body[1] & 0x80:
        raise DecodeError("ECDSA signature: non-minimal INTEGER")
    if length == 33:
        if body[0] != 0:
            raise DecodeError("ECDSA signature: INTEGER too large")
        body = body[1:]
    return bytes(32 - len(body)) + body, pos + 2 + length


def ecdsa_der_to_raw(der):
    """64-byte r||s from a strict DER ECDSA-Sig-Value; DecodeError if malformed."""
    if len(der) < 2 or der[0] != 0x30 or der[1] & 0x80 or der[1] != len(der) - 2:
        raise DecodeError("ECDSA signature: bad SEQUENCE header")
    r, pos = _der_uint(der, 2)
    s, pos = _der_uint(der, pos)
    if pos != len(der):
        raise DecodeError("ECDSA signature: trailing bytes")
    return r + s
