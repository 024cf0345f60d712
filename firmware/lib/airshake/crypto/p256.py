# airshake.crypto.p256: NIST P-256 (SEC 1, FIPS 186-4) in pure Python for CPython and
# MicroPython: public keys, ECDH, ECDSA-SHA-256 with RFC 6979 nonces, DER signature parsing.
# Rules: every peer point is decoded and checked on the curve before use (InvalidPoint
# otherwise); verify returns bool and never raises; nothing here draws randomness.
# Arithmetic: Jacobian coordinates with the a = -3 doubling, affine precomputed tables and
# mixed addition; a signed comb for the generator and a regular signed-window recoding for
# other points (every column or window adds, so the operation sequence does not depend on
# the scalar), Shamir interleaving for verification; inversion of secret-derived values
# and square roots by fixed addition chains (the same steps for every input); Euclid's
# variable-time inversion only for public values (tables of public points, verification).
# Not constant-time at the big-int level: interpreted arbitrary-precision ints cannot be.

import hashlib
from airshake import errors

from airshake.const import const

# Generator: a signed comb, 4 teeth 65 bits apart (_COMB_D): k*G as sum over 65 columns
# i of 2^i * (+-G_0 +-G_1 +-G_2 +-G_3), G_j = 2^(65j) G, every sign +-1 (so every column
# adds), from an 8-entry table (the column's top sign fixes the other half by negation):
# 64 doublings per k*G where a width-4 window over G took 256, in the same 8 entries.
# A variable base: width-3 signed windows (4-entry table built per call): on the 32-bit
# twin the smallest heap of a suite-2 handshake process went 40.1 -> 36.5 KB from width 4
# (8 entries; widths 5 and 6 took 16 and 32 entries and 59.4 KB), for 21 more additions
# per multiplication, within the noise of a handshake's CPU on the 64-bit binary (14 ms).
# Suite-2 handshake (1 keygen, 3 ECDH) with the comb, the chains and the written-out
# loop: 20.4 -> 14.0 ms on the 64-bit binary, twin heap_total 47.2 -> 44 KB.
_W_VAR = const(3)  # window width for a variable base (table built per call)
_COMB_D = const(65)  # comb spacing: 4 teeth * 65 = 260 signed bits cover k + N < 2^257

P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffff
N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551
B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b
GX = 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296
GY = 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5

_gen_table = None


# -- field and group arithmetic (Jacobian (X, Y, Z); Z == 0 is the point at infinity) ------

def _squares(t, n, m):
    """t^(2^n) * m mod P: n squarings then one multiplication."""
    p = P
    for _ in range(n):
        t = t * t % p
    return t * m % p


def _x32(v):
    """(v^(2^32 - 1), v^(2^30 - 1)) mod P: the start of the chains for P - 2 and
    (P + 1) / 4, whose exponents begin with 32 one bits."""
    x2 = _squares(v, 1, v)
    x3 = _squares(x2, 1, v)
    x6 = _squares(x3, 3, x3)
    x15 = _squares(_squares(x6, 6, x6), 3, x3)
    x30 = _squares(x15, 15, x15)
    return _squares(x30, 2, x2), x30


def _inverse_p(v):
    """v^(P - 2) mod P by an addition chain (255 squarings, 11 multiplications; pow() with
    this exponent does about 380 steps of the same cost)."""
    x32, x30 = _x32(v)
    # P - 2 = ffffffff 00000001 00000000 00000000 00000000 ffffffff ffffffff fffffffd
    t = _squares(_squares(x32, 32, v), 96, 1)
    t = _squares(_squares(t, 32, x32), 32, x32)
    return _squares(_squares(t, 30, x30), 2, v)


def _sqrt_candidate(v):
    """v^((P + 1) / 4) mod P, a square root of v if there is one (P = 3 mod 4);
    (P + 1) / 4 = 2^254 - 2^222 + 2^190 + 2^94."""
    x32 = _x32(v)[0]
    return _squares(_squares(_squares(x32, 32, v), 96, v), 94, 1)


def _double(pt):
    # dbl-2001-b (a = -3); shifts for the small constants, a little faster than products
    x, y, z = pt
    zz = z * z % P
    yy = y * y % P
    m = (x - zz) * (x + zz) * 3 % P
    s = (x * yy << 2) % P
    x3 = (m * m - (s << 1)) % P
    return (x3, (m * (s - x3) - (yy * yy << 3)) % P, (y * z << 1) % P)


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


def _inverse_n(v):
    return pow(v, N - 2, N)  # N is prime; MicroPython's pow has no negative exponent


def _inverse_public(v, m):
    """v^-1 mod m by Euclid's algorithm: about 5x faster than the chains here, but its
    steps depend on v, so only for public values (tables of a peer's point or G, a
    signature being verified), never a value derived from a secret scalar."""
    x0, x1, r0, r1 = 0, 1, m, v % m
    while r1:
        q, r = divmod(r0, r1)
        r0, r1 = r1, r
        x0, x1 = x1, x0 - q * x1
    return x0 % m


def _to_affine(pt):
    # results of secret scalars: the fixed chain, not _inverse_public
    zi = _inverse_p(pt[2])
    zi2 = zi * zi % P
    return (pt[0] * zi2 % P, pt[1] * zi2 * zi % P)


def _normalize_all(pts):
    """Affine forms of Jacobian points (none at infinity) with one inversion, of a
    public value: only for the tables of public points."""
    prefix = []
    acc = 1
    for pt in pts:
        prefix.append(acc)
        acc = acc * pt[2] % P
    inv = _inverse_public(acc, P)
    out = [None] * len(pts)
    for i in range(len(pts) - 1, -1, -1):
        x, y, z = pts[i]
        zi = inv * prefix[i] % P
        inv = inv * z % P
        zi2 = zi * zi % P
        out[i] = (x * zi2 % P, y * zi2 * zi % P)
    return out


def _odd_multiples(ax, ay, w):
    """Affine [1P, 3P, 5P, ..., (2^w - 1)P] for an affine point P of order N. With
    2P = (X, Y, Z), the map (x, y) -> (x Z^2, y Z^3) makes 2P affine on an isomorphic
    curve, where mixed additions (which do not use the curve's a or b) give the odd
    multiples; a point (X', Y', Z') there is (X', Y', Z' Z) here. Mixed additions of 2P
    there, where adding P each time here took twice as many."""
    dx, dy, dz = _double((ax, ay, 1))
    zz = dz * dz % P
    acc = (ax * zz % P, ay * zz * dz % P, 1)
    pts = [acc]
    for _ in range((1 << (w - 1)) - 1):
        acc = _add_affine(acc, dx, dy)  # never doubles: (2i + 1)P != +-2P for P of order N
        pts.append(acc)
    for i in range(len(pts)):  # in place: no second list of points
        x, y, z = pts[i]
        pts[i] = (x, y, z * dz % P)
    return _normalize_all(pts)


def _generator_table():
    """Affine G_3 + s_0 G_0 + s_1 G_1 + s_2 G_2 (G_j = 2^(65j) G), entry m with s_j = +1
    where bit j of m is set and -1 elsewhere; built once and cached."""
    global _gen_table
    if _gen_table is None:
        teeth = [(GX, GY, 1)]
        for _ in range(3):
            pt = teeth[-1]
            for _ in range(_COMB_D):
                pt = _double(pt)
            teeth.append(pt)
        teeth = _normalize_all(teeth)
        sums = []
        for m in range(8):
            acc = (teeth[3][0], teeth[3][1], 1)
            for j in range(3):
                x, y = teeth[j]
                acc = _add_affine(acc, x, y if m >> j & 1 else P - y)
            sums.append(acc)
        teeth = None  # freed before the normalization's own lists
        _gen_table = _normalize_all(sums)
    return _gen_table


def _odd(k):
    """k or k + N, whichever is odd (the same point)."""
    return k + N if k & 1 == 0 else k


def _recode(k, w):
    """Odd signed digits d_i in [-(2^w - 1), 2^w - 1], low first, with sum d_i 2^(wi)
    equal to k or k + N. Always ceil(257/w) digits."""
    k = _odd(k)
    count = (257 + w - 1) // w
    digits = [0] * count  # sized once, as in _comb
    mod = 1 << (w + 1)
    half = 1 << w
    for i in range(count - 1):
        d = (k & (mod - 1)) - half
        digits[i] = d
        k = (k - d) >> w
    digits[count - 1] = k
    return digits


def _comb(k):
    """The generator's 65 column digits, low first, as odd signed digits like _recode's:
    +-(2m + 1) for table entry m. The odd k' (k or k + N) is sum of s_i 2^i over 260
    signs s_i = 2 b_i - 1, b_i the bits of t = (k' + 2^260 - 1) / 2; column i holds
    s_i, s_(i+65), s_(i+130), s_(i+195), the last one giving the sign."""
    t = (_odd(k) + (1 << 260) - 1) >> 1
    mask = (1 << _COMB_D) - 1
    t0 = t & mask
    t1 = (t >> _COMB_D) & mask
    t2 = (t >> (2 * _COMB_D)) & mask
    t3 = t >> (3 * _COMB_D)
    digits = [0] * _COMB_D  # sized once: appends would grow it through larger blocks
    for i in range(_COMB_D):
        top = t3 & 1
        # top sign -1: the entry with the other three signs flipped (m ^ 7), negated;
        # computed without a branch
        m = ((t0 & 1) | (t1 & 1) << 1 | (t2 & 1) << 2) ^ (7 - 7 * top)
        digits[i] = (2 * m + 1) * (2 * top - 1)
        t0 >>= 1
        t1 >>= 1
        t2 >>= 1
        t3 >>= 1
    return digits


def _multi_mul(w, terms):
    """Sum of digit * 2^(w*pos) * table point over terms (table, digits, step), digit i of
    a term at pos = i * step, as a Jacobian point. The doubling (the same as _double's)
    and the common case of the addition (_add_affine's) are written out here: a call
    and a tuple per step cost about a third of the work."""
    p = P
    top = max((len(d) - 1) * s for _, d, s in terms)
    x, y, z = 1, 1, 0
    for pos in range(top, -1, -1):
        if pos != top:
            for _ in range(w):
                zz = z * z % p
                yy = y * y % p
                z = (y * z << 1) % p
                m = (x - zz) * (x + zz) * 3 % p
                s = (x * yy << 2) % p
                x = (m * m - (s << 1)) % p
                y = (m * (s - x) - (yy * yy << 3)) % p
        for table, digits, step in terms:
            if pos % step or pos // step >= len(digits):
                continue
            d = digits[pos // step]
            ax, ay = table[(d if d > 0 else -d) >> 1]
            if d < 0:
                ay = p - ay
            if z == 0:
                x, y, z = ax, ay, 1
                continue
            zz = z * z % p
            h = (ax * zz - x) % p
            r = (ay * zz * z - y) % p
            if h == 0:
                x, y, z = _double((ax, ay, 1)) if r == 0 else (1, 1, 0)
                continue
            hh = h * h % p
            hhh = h * hh % p
            v = x * hh % p
            z = z * h % p
            x = (r * r - hhh - (v << 1)) % p
            y = (r * (v - x) - y * hhh) % p
    return (x, y, z)


def _mul_base(k):
    return _multi_mul(1, [(_generator_table(), _comb(k), 1)])


def _mul_point(k, x, y):
    return _multi_mul(_W_VAR, [(_odd_multiples(x, y, _W_VAR), _recode(k, _W_VAR), 1)])


# -- encodings -----------------------------------------------------------------------------

def _scalar(priv32):
    if len(priv32) != 32:
        raise errors.InvalidPoint("P-256 private key must be 32 bytes")
    k = int.from_bytes(priv32, "big")
    if k == 0 or k >= N:
        raise errors.InvalidPoint("P-256 private scalar out of range")
    return k


def _curve_rhs(x):
    return (x * x * x - 3 * x + B) % P


def decode_point(data):
    """(x, y) from 04||x||y or a bare 32-byte x (either y); InvalidPoint if not on curve."""
    if len(data) == 65 and data[0] == 4:
        x = int.from_bytes(data[1:33], "big")
        y = int.from_bytes(data[33:], "big")
        if x >= P or y >= P or y * y % P != _curve_rhs(x):
            raise errors.InvalidPoint("P-256 point is not on the curve")
        return (x, y)
    if len(data) == 32:
        x = int.from_bytes(data, "big")
        if x >= P:
            raise errors.InvalidPoint("P-256 x-coordinate out of range")
        rhs = _curve_rhs(x)
        y = _sqrt_candidate(rhs)
        if y * y % P != rhs:
            raise errors.InvalidPoint("P-256 x-coordinate has no point on the curve")
        return (x, y)
    raise errors.InvalidPoint("P-256 point must be 65 bytes (04||x||y) or a 32-byte x-coordinate")


def _encode_point(pt):
    if pt[2] == 0:
        raise errors.InvalidPoint("P-256 result is the point at infinity")
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
        s = _inverse_n(k) * (e + r * d) % N
        if s != 0:
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def _verify_with(x, y, e, r, s):
    w = _inverse_public(s, N)
    u1 = e * w % N
    u2 = r * w % N
    pt = _multi_mul(1, [(_generator_table(), _comb(u1), 1),
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
        raise errors.DecodeError("ECDSA signature: INTEGER expected")
    length = data[pos + 1]
    body = data[pos + 2:pos + 2 + length]
    if length == 0 or length > 33 or len(body) != length:
        raise errors.DecodeError("ECDSA signature: bad INTEGER length")
    if body[0] & 0x80:
        raise errors.DecodeError("ECDSA signature: negative INTEGER")
    if length > 1 and body[0] == 0 and not body[1] & 0x80:
        raise errors.DecodeError("ECDSA signature: non-minimal INTEGER")
    if length == 33:
        if body[0] != 0:
            raise errors.DecodeError("ECDSA signature: INTEGER too large")
        body = body[1:]
    return bytes(32 - len(body)) + body, pos + 2 + length


def ecdsa_der_to_raw(der):
    """64-byte r||s from a strict DER ECDSA-Sig-Value; DecodeError if malformed."""
    if len(der) < 2 or der[0] != 0x30 or der[1] & 0x80 or der[1] != len(der) - 2:
        raise errors.DecodeError("ECDSA signature: bad SEQUENCE header")
    r, pos = _der_uint(der, 2)
    s, pos = _der_uint(der, pos)
    if pos != len(der):
        raise errors.DecodeError("ECDSA signature: trailing bytes")
    return r + s
