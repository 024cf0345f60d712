# airshake.crypto.aes: the AES block cipher, encryption direction only (all CCM needs).
# new_ecb(key) uses the firmware's cryptolib (C, hardware AES on ESP32) when present,
# else PureAes, a byte-oriented FIPS 197 implementation with 128/192/256-bit keys.
# Rules: one 16-byte block in, 16 bytes out; no decryption; the tables (aes_tables) are
# loaded on first use, so a device with cryptolib never loads them. PureAes indexes tables
# with secret bytes, so it is not constant-time: prefer cryptolib wherever it exists.

from airshake.errors import UsageError

try:
    import cryptolib as _cryptolib
except ImportError:
    _cryptolib = None

_MODE_ECB = 1

_SBOX = None
_XTIME = None


def _check_key(key):
    if len(key) not in (16, 24, 32):
        raise UsageError("AES key must be 16, 24 or 32 bytes")


def _rounds(key):
    return 6 + len(key) // 4     # FIPS 197 §5: 10, 12 or 14 rounds


def _load_tables():
    """S-box and multiply-by-x in GF(2^8): constants of airshake.crypto.aes_tables (in a
    frozen firmware's flash), loaded on first use."""
    global _SBOX, _XTIME
    from airshake.crypto.aes_tables import SBOX, XTIME
    _SBOX, _XTIME = SBOX, XTIME


def _expand_key(key):
    """Round keys, 16 * (rounds + 1) bytes in one bytearray (FIPS 197 §5.2): sized once,
    since growing it would need ever larger free blocks of a fragmented heap."""
    sbox = _SBOX
    nk = len(key) // 4
    w = bytearray(16 * (_rounds(key) + 1))
    for j in range(len(key)):
        w[j] = key[j]
    rcon = 1
    for i in range(nk, len(w) // 4):
        p = 4 * i - 4          # the previous word
        t0, t1, t2, t3 = w[p], w[p + 1], w[p + 2], w[p + 3]
        if i % nk == 0:
            t0, t1, t2, t3 = sbox[t1] ^ rcon, sbox[t2], sbox[t3], sbox[t0]
            rcon = _XTIME[rcon]
        elif nk > 6 and i % nk == 4:
            t0, t1, t2, t3 = sbox[t0], sbox[t1], sbox[t2], sbox[t3]
        b = 4 * (i - nk)
        w[p + 4] = w[b] ^ t0
        w[p + 5] = w[b + 1] ^ t1
        w[p + 6] = w[b + 2] ^ t2
        w[p + 7] = w[b + 3] ^ t3
    return w


class PureAes:
    """AES encryption of single blocks in pure Python (FIPS 197)."""

    def __init__(self, key):
        _check_key(key)
        if _SBOX is None:
            _load_tables()
        self._rounds = _rounds(key)
        self._rk = _expand_key(key)

    def encrypt_block(self, block):
        if len(block) != 16:
            raise UsageError("AES block must be 16 bytes")
        sbox = _SBOX
        xt = _XTIME
        rk = self._rk
        s = bytearray(16)
        for i in range(16):
            s[i] = block[i] ^ rk[i]
        t = bytearray(16)
        for r in range(1, self._rounds):
            off = 16 * r
            for c in range(4):
                # SubBytes + ShiftRows: row k of column c comes from column c + k.
                a0 = sbox[s[4 * c]]
                a1 = sbox[s[(4 * c + 5) & 15]]
                a2 = sbox[s[(4 * c + 10) & 15]]
                a3 = sbox[s[(4 * c + 15) & 15]]
                # MixColumns with one shared xor of the whole column.
                x = a0 ^ a1 ^ a2 ^ a3
                o = off + 4 * c
                t[4 * c] = a0 ^ x ^ xt[a0 ^ a1] ^ rk[o]
                t[4 * c + 1] = a1 ^ x ^ xt[a1 ^ a2] ^ rk[o + 1]
                t[4 * c + 2] = a2 ^ x ^ xt[a2 ^ a3] ^ rk[o + 2]
                t[4 * c + 3] = a3 ^ x ^ xt[a3 ^ a0] ^ rk[o + 3]
            s, t = t, s
        off = 16 * self._rounds
        for i in range(16):
            # Final round: no MixColumns. Byte i (row i % 4) comes from column + row.
            t[i] = sbox[s[(i + 4 * (i & 3)) & 15]] ^ rk[off + i]
        return bytes(t)


if _cryptolib is not None:    # the class only where it can serve (a class is RAM)
    class _CryptolibAes:
        """Adapter giving cryptolib's ECB object the encrypt_block interface."""

        def __init__(self, key):
            _check_key(key)
            self._aes = _cryptolib.aes(bytes(key), _MODE_ECB)

        def encrypt_block(self, block):
            if len(block) != 16:
                raise UsageError("AES block must be 16 bytes")
            return self._aes.encrypt(block)


def new_ecb(key):
    """A single-block AES encryptor for key, the fastest one this runtime offers.
    (MicroPython's cryptolib takes 16- and 32-byte keys only; 24 goes to PureAes.)"""
    if _cryptolib is not None and len(key) in (16, 32):
        return _CryptolibAes(key)
    return PureAes(key)


def have_cryptolib():
    return _cryptolib is not None
