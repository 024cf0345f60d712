# airshake.crypto.ed25519: Ed25519 signatures (RFC 8032 §5.1) in pure Python.
# Owns: point encoding, extended twisted Edwards arithmetic (x = X/Z, y = Y/Z,
# T = XY/Z; formulas of Hisil-Wong-Carter-Dawson 2008 for a = -1), the fixed-base
# comb table and the verification double-scalar multiplication.
# Rules: runs unchanged on CPython and MicroPython; verify() returns a bool and never
# raises on bad input; S >= L, undecodable public keys and the public keys refused by
# acceptable_public_key() (small order, y >= p: the rule every backend applies) fail.
# Verification is cofactorless: it accepts iff encode([S]B - [k]A) == R byte for byte
# (so a non-canonical R never verifies), k = SHA-512(R || A || M) mod L.
#
# Field elements are reduced lazily as in x25519.py: a product is folded,
# (x & M) + 19*(x >> 255), to below 2^262, and only the coordinates leaving a point
# operation are reduced further by % p (cheap after the fold), so points hold [0, p).
# Side channels: signing runs the same operations for every scalar, but the comb
# looks its table up by secret index and Python integers are not constant-time
# (see x25519.py); a local timing attacker is out of reach of pure Python.

from airshake.crypto.sha512 import sha512
from airshake.crypto.x25519 import invert, pow_p58
from airshake.errors import UsageError

from airshake.const import const

_P = const(57896044618658097711785492504343953926634992332820282019728792003956564819949)
_M = const(57896044618658097711785492504343953926634992332820282019728792003956564819967)
_L = const(7237005577332262213973186563042994240857116359379907606001950938285454250989)
_D = const(37095705934669439343138083508754565189542113879843219016388785533085940283555)
_D2 = const(16295367250680780974490674513165176452449235426866156013048779062215315747161)
_SQRT_M1 = const(19681161376707505956807079304988542015446066515923890162744021073123829784752)
_BX = const(15112221349535400772501151409588531511454012693041857206046113283949847762202)
_BY = const(46316835694926478169428394003475163141307993866256225615783033603165251855960)

# y of an order-8 point; the y of the eight points of order dividing 8 are 1 (the
# identity), p - 1 (order 2), 0 (order 4) and _Y8, p - _Y8 (order 8).
_Y8 = const(2707385501144840649318225287225658788936804267575313519463743609750303402022)
_SMALL_ORDER_Y = (0, 1, _P - 1, _Y8, _P - _Y8)

# comb: 2^_TEETH table entries, _COLS doublings per base mult. 2 teeth, not 4: on the
# 32-bit twin a base mult with the 16-entry table needed a 20.8 KB heap, with 4 entries
# 11.5 KB, and a whole suite-0 handshake process 44.1 -> 39.5 KB; it costs about 2 ms
# per base mult + verify on the 64-bit binary (10.7 -> 13.2 ms, median of 7)
_TEETH = const(2)
_COLS = const(128)  # ceil(256 / _TEETH)

_IDENTITY = (0, 1, 1, 0)


# -- points ------------------------------------------------------------------------

def _double(p, want_t):
    """2p (dbl-2008-hwcd). T of the result is computed only if want_t."""
    m = _M
    X, Y, Z = p[0], p[1], p[2]
    A = X * X
    A = (A & m) + 19 * (A >> 255)
    B = Y * Y
    B = (B & m) + 19 * (B >> 255)
    C = Z * Z
    C = (C & m) + 19 * (C >> 255)
    C += C
    # H and F are the negatives of those in the paper: that negates all four
    # output coordinates, which is the same projective point.
    H = A + B
    E = X + Y
    E = E * E
    E = (E & m) + 19 * (E >> 255) - H
    G = B - A
    F = C - G
    x = E * F
    x = (x & m) + 19 * (x >> 255)
    y = G * H
    y = (y & m) + 19 * (y >> 255)
    z = F * G
    z = (z & m) + 19 * (z >> 255)
    t = 0
    if want_t:
        t = E * H
        t = ((t & m) + 19 * (t >> 255)) % _P
    return (x % _P, y % _P, z % _P, t)


def _add(p, ypx, ymx, D, t2d):
    """p + q for q given as (Y+X, Y-X, 2Z, 2dT) (add-2008-hwcd-3); when q is affine
    the caller passes D = 2*Z1 instead of Z1*2Z2."""
    m = _M
    X, Y, T = p[0], p[1], p[3]
    A = (Y - X) * ymx
    A = (A & m) + 19 * (A >> 255)
    B = (Y + X) * ypx
    B = (B & m) + 19 * (B >> 255)
    C = T * t2d
    C = (C & m) + 19 * (C >> 255)
    E = B - A
    F = D - C
    G = D + C
    H = B + A
    x = E * F
    x = (x & m) + 19 * (x >> 255)
    y = G * H
    y = (y & m) + 19 * (y >> 255)
    z = F * G
    z = (z & m) + 19 * (z >> 255)
    t = E * H
    t = (t & m) + 19 * (t >> 255)
    return (x % _P, y % _P, z % _P, t % _P)


def _add_cached(p, q):
    """p + q, q in cached form (Y+X, Y-X, 2Z, 2dT)."""
    D = p[2] * q[2]
    D = (D & _M) + 19 * (D >> 255)
    return _add(p, q[0], q[1], D, q[3])


def _sub_cached(p, q):
    """p - q, q in cached form: -(x, y) = (-x, y) swaps Y+X with Y-X, negates T."""
    D = p[2] * q[2]
    D = (D & _M) + 19 * (D >> 255)
    return _add(p, q[1], q[0], D, -q[3])


def _cached(p):
    X, Y, Z, T = p
    return (Y + X, Y - X, Z + Z, T * _D2 % _P)


def _encode(p):
    zi = invert(p[2])
    x = p[0] * zi % _P
    y = p[1] * zi % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode(b):
    """The point encoded by 32 bytes b (RFC 8032 §5.1.3), or None."""
    y = int.from_bytes(b, "little")
    sign = y >> 255
    y &= _M
    if y >= _P:
        return None
    yy = y * y % _P
    u = (yy - 1) % _P
    v = (_D * yy + 1) % _P
    v3 = v * v * v % _P
    x = u * v3 * pow_p58(u * v3 * v3 * v) % _P
    vxx = v * x * x % _P
    if vxx != u:
        if vxx != _P - u:
            return None
        x = x * _SQRT_M1 % _P
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = _P - x
    return (x, y, 1, x * y % _P)


# -- fixed base: comb (Lim-Lee) ------------------------------------------------------
# Entry i of the table is sum over set bits j of i of 2^(j*_COLS) * B, in affine cached
# form (y+x, y-x, 2dxy). [a]B is then _COLS - 1 doublings and _COLS additions.

_comb = None


def _comb_table():
    global _comb
    if _comb is not None:
        return _comb
    g = (_BX, _BY, 1, _BX * _BY % _P)
    points = [_IDENTITY]
    for j in range(_TEETH):
        if j:
            for _ in range(_COLS):
                g = _double(g, True)
        gj = _cached(g)
        points += [_add_cached(q, gj) for q in points]
    # one inversion for all Z (Montgomery's trick)
    prefix = []
    acc = 1
    for q in points:
        prefix.append(acc)
        acc = acc * q[2] % _P
    inv = invert(acc)
    table = [None] * len(points)
    for i in range(len(points) - 1, -1, -1):
        q = points[i]
        zi = inv * prefix[i] % _P
        inv = inv * q[2] % _P
        x = q[0] * zi % _P
        y = q[1] * zi % _P
        table[i] = ((y + x) % _P, (y - x) % _P, _D2 * x * y % _P)
    _comb = table
    return table


def _comb_indexes(a):
    """Column c of scalar a: bit j of the index is bit c + j*_COLS of a."""
    b = a.to_bytes(33, "little")
    out = []
    for c in range(_COLS):
        v = 0
        for j in range(_TEETH - 1, -1, -1):
            i = c + j * _COLS
            v = (v << 1) | ((b[i >> 3] >> (i & 7)) & 1)
        out.append(v)
    return out


def base_mult(a):
    """[a]B for 0 <= a < 2^256 as an extended point (X, Y, Z, T)."""
    table = _comb_table()
    p = _IDENTITY
    for c in reversed(_comb_indexes(a)):
        if p is not _IDENTITY:
            p = _double(p, True)
        e = table[c]  # identity entry (1, 1, 0) included: same operations for all c
        p = _add(p, e[0], e[1], p[2] + p[2], e[2])
    return p


def _radix16(k):
    """Signed base-16 digits of 0 <= k < L, least significant first, in [-8, 8)."""
    e = []
    for _ in range(64):
        e.append(k & 15)
        k >>= 4
    for i in range(63):
        if e[i] >= 8:
            e[i] -= 16
            e[i + 1] += 1
    return e


def _verify_mult(s, k, a):
    """[s]B - [k]a (public scalars, so branching on them is fine)."""
    table = _comb_table()
    cols = _comb_indexes(s)
    digits = _radix16(k)
    a1 = _cached(a)
    multiples = [a1]  # j*a for j = 1..8, cached
    q = _double(a, True)
    multiples.append(_cached(q))
    for _ in range(6):
        q = _add_cached(q, a1)
        multiples.append(_cached(q))
    p = _IDENTITY
    for i in range(255, -1, -1):
        d = digits[i >> 2] if i & 3 == 0 else 0
        c = cols[i] if i < _COLS else 0
        if p is not _IDENTITY:
            p = _double(p, d or c)
        if d > 0:
            p = _sub_cached(p, multiples[d - 1])
        elif d < 0:
            p = _add_cached(p, multiples[-d - 1])
        if c:
            e = table[c]
            p = _add(p, e[0], e[1], p[2] + p[2], e[2])
    return p


# -- RFC 8032 ------------------------------------------------------------------------

def acceptable_public_key(pub):
    """False if the 32 bytes pub are a public key that airshake refuses whatever the
    signature: y not canonical (y >= p), or a point of small order with either sign bit.
    Those are the 14 encodings of the 8 small-order points listed by Chalkias, Garillot
    and Nikolaenko, "Taming the many EdDSAs" (2020) and refused by libsodium: under such a
    key one signature verifies for many messages (any message, for the identity). Every
    backend calls this before it verifies, so that all refuse the same keys (OpenSSL
    accepts all 14). Mixed-order keys (full order plus a torsion part) pass."""
    if len(pub) != 32:
        return False
    y = int.from_bytes(pub, "little") & _M
    return y < _P and y not in _SMALL_ORDER_Y


def _expand(seed):
    if len(seed) != 32:
        raise UsageError("Ed25519 seed must be 32 bytes")
    h = sha512(seed)
    a = int.from_bytes(h[:32], "little")
    a = (a & ((1 << 254) - 8)) | (1 << 254)
    return a, h[32:]


def public_key(seed):
    """32-byte public key of a 32-byte seed (the RFC 8032 private key)."""
    a, _ = _expand(seed)
    return _encode(base_mult(a))


def sign(seed, msg):
    """64-byte signature R || S of msg (bytes) under the 32-byte seed."""
    msg = bytes(msg)
    a, prefix = _expand(seed)
    pub = _encode(base_mult(a))
    r = int.from_bytes(sha512(prefix + msg), "little") % _L
    R = _encode(base_mult(r))
    k = int.from_bytes(sha512(R + pub + msg), "little") % _L
    return R + ((r + k * a) % _L).to_bytes(32, "little")


def verify(pub, msg, sig):
    """True iff sig is a valid signature of msg under the 32-byte public key pub."""
    try:
        pub = bytes(pub)
        sig = bytes(sig)
        if len(pub) != 32 or len(sig) != 64:
            return False
        s = int.from_bytes(sig[32:], "little")
        if s >= _L or not acceptable_public_key(pub):
            return False
        a = _decode(pub)
        if a is None:
            return False
        k = int.from_bytes(sha512(sig[:32] + pub + bytes(msg)), "little") % _L
        return _encode(_verify_mult(s, k, a)) == sig[:32]
    except (TypeError, ValueError):
        return False

