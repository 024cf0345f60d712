# airshake.crypto.x25519: the raw X25519 function of RFC 7748 §5 in pure Python.
# Owns: scalar clamping, the Montgomery ladder and the field arithmetic mod 2^255-19.
# Rules: runs unchanged on CPython and MicroPython; no zero check here (the backend
# rejects an all-zero shared secret); inputs are 32-byte strings, outputs 32 bytes.
#
# Speed: MicroPython integer operations cost mostly allocation, and % is a slow long
# division, so a product is first "folded": x = (x & M) + 19*(x >> 255) (as
# 2^255 = 19 mod p), which takes a product of two 256-bit values below 2^262. A
# value that is only added or multiplied once more stays folded; a value carried
# into the next ladder step is folded and then reduced by % p, which is cheap on a
# number below 2^290, and keeps the ladder variables in [0, p). Negative values are
# fine: & and >> act on the two's-complement form, so a fold keeps x mod p and
# shrinks |x|.
#
# Side channels: the ladder does the same sequence of operations for every scalar
# and chooses its operands by arithmetic on the key bits, never by branching. That
# is the most pure Python can do: Python integers are not constant-time (their
# operations take time that depends on the size of the values, and multiplying by
# 0 or 1 is faster than by other values), so a local attacker who can time this
# code precisely may learn key bits. Use a C backend where that attacker is in the
# threat model. The public key X25519(k, 9) comes from the same ladder (the backends'
# x25519_public), not from a table indexed by key bits.
# Imports go one way: ed25519 uses this module's field arithmetic, never the reverse.

from airshake import errors
from airshake.errors import UsageError

from airshake.const import const

_P = const(57896044618658097711785492504343953926634992332820282019728792003956564819949)
_MASK = const(57896044618658097711785492504343953926634992332820282019728792003956564819967)
_A24 = const(121665)  # (486662 - 2) / 4, RFC 7748 §5


def clamp(k):
    if len(k) != 32:
        raise UsageError("X25519 scalar must be 32 bytes")
    kb = bytearray(k)
    kb[0] &= 248
    kb[31] &= 127
    kb[31] |= 64
    return kb


def _ladder(kb, x1):
    """Montgomery ladder over bits 254..0 of the clamped scalar kb (little-endian
    bytes). Returns the projective (X, Z) of k*u."""
    m = _MASK
    x2 = 1
    z2 = 0
    x3 = x1
    z3 = 1
    # (x2, z2) and (x3, z3) are stored swapped when s == 1. The differential
    # addition is symmetric in the two points, so only the input of the doubling
    # has to be chosen; the result is stored as (double, sum) with s = bit.
    # Each value goes as soon as it has been used: its name is reused or set to 0, so that
    # about 8 big integers are live at a time rather than 17 (the heap's peak on a device
    # falls in this ladder); the operations, and their order on the key bits, are as before.
    s = 0
    for t in range(254, -1, -1):      # no list of bits: 2 KB of heap on the device
        bit = (kb[t >> 3] >> (t & 7)) & 1
        sel = bit ^ s
        s = bit
        a = x2 + z2
        b = x2 - z2
        c = x3 + z3
        d = x3 - z3
        x2 = z2 = x3 = z3 = 0
        da = d * a
        da = (da & m) + 19 * (da >> 255)
        cb = c * b
        cb = (cb & m) + 19 * (cb >> 255)
        # the doubling's input: (a, b) when sel == 0, else (c, d); chosen by arithmetic
        a += sel * (c - a)
        b += sel * (d - b)
        c = d = 0
        # sum: x3 = (DA + CB)^2, z3 = x1 * (DA - CB)^2
        x3 = da + cb
        z3 = da - cb
        da = cb = 0
        x3 = x3 * x3
        x3 = (x3 & m) + 19 * (x3 >> 255)
        x3 %= _P
        z3 = z3 * z3
        z3 = (z3 & m) + 19 * (z3 >> 255)
        z3 = x1 * z3
        z3 = (z3 & m) + 19 * (z3 >> 255)
        z3 %= _P
        # double: x2 = AA * BB, z2 = E * (AA + a24 * E), E = AA - BB
        a = a * a
        a = (a & m) + 19 * (a >> 255)
        b = b * b
        b = (b & m) + 19 * (b >> 255)
        x2 = a * b
        x2 = (x2 & m) + 19 * (x2 >> 255)
        x2 %= _P
        b = a - b
        z2 = b * (a + _A24 * b)
        a = b = 0
        z2 = (z2 & m) + 19 * (z2 >> 255)
        z2 %= _P
    x2 += s * (x3 - x2)
    z2 += s * (z3 - z2)
    return x2, z2


# -- field helpers, shared with ed25519.py --------------------------------------------
# Exponentiation by an addition chain of folded squarings: about twice as fast as
# pow(z, e, p) on MicroPython, whose pow also slows down badly in a fragmented heap.

def _sqn(x, n):
    """x^(2^n) mod p."""
    m = _MASK
    for _ in range(n):
        x = x * x
        x = ((x & m) + 19 * (x >> 255)) % _P
    return x


def _mul(a, b):
    x = a * b
    return ((x & _MASK) + 19 * (x >> 255)) % _P


def _pow_2_250_1(z):
    """(z^(2^250 - 1), z^11), the common head of the two chains below."""
    z2 = _sqn(z, 1)
    z9 = _mul(_sqn(z2, 2), z)
    z11 = _mul(z9, z2)
    t5 = _mul(_sqn(z11, 1), z9)  # z^(2^5 - 1)
    t10 = _mul(_sqn(t5, 5), t5)
    t20 = _mul(_sqn(t10, 10), t10)
    t40 = _mul(_sqn(t20, 20), t20)
    t50 = _mul(_sqn(t40, 10), t10)
    t100 = _mul(_sqn(t50, 50), t50)
    t200 = _mul(_sqn(t100, 100), t100)
    return _mul(_sqn(t200, 50), t50), z11


def invert(z):
    """z^(p-2) = 1/z mod p, in [0, p); 0 for z = 0 mod p. Any int z."""
    t, z11 = _pow_2_250_1(z % _P)
    return _mul(_sqn(t, 5), z11)


def pow_p58(z):
    """z^((p-5)/8) = z^(2^252 - 3) mod p, the square-root exponent of RFC 8032 §5.1.3."""
    z %= _P
    t, _ = _pow_2_250_1(z)
    return _mul(_sqn(t, 2), z)


def finish(x2, z2):
    # x2 / z2; 0 when z2 = 0, the all-zero output of RFC 7748 for low-order input.
    return _mul(x2, invert(z2)).to_bytes(32, "little")


def x25519(k, u):
    """RFC 7748 X25519(k, u): 32-byte scalar k (clamped here), 32-byte u-coordinate
    (top bit ignored, non-canonical values accepted). May return 32 zero bytes."""
    kb = clamp(k)
    if len(u) != 32:
        raise errors.DecodeError("X25519 u-coordinate must be 32 bytes")
    x1 = int.from_bytes(u, "little") & _MASK
    x2, z2 = _ladder(kb, x1)
    return finish(x2, z2)
