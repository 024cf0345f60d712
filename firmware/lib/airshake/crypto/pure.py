# airshake.crypto.pure: the pure-Python backend, for stock MicroPython firmware (hashlib
# sha256 and cryptolib AES are the only C it relies on) and as the fallback of "ucrypto".
# Rules: every method delegates to one pure module; the heavy ones (X25519, Ed25519,
# SHA-512, P-256, RSA) are imported inside the method so a device loads only the code
# of the primitives its suite uses. Randomness comes only from random() (os.urandom):
# RSA seeds and salts are drawn there and handed to the deterministic pure modules.
# It implements every method of the contract (airshake.crypto.contract.Backend, checked
# by tests/portable/test_backends.py) without subclassing it, as CompositeBackend does: a
# device then never loads the contract's stub methods (1 KB of RAM frozen).

import hashlib
import os

from airshake import errors
from airshake.errors import UsageError

_CCM_TAG = 8
# u = 9, X25519's base point (RFC 7748 §4.1), a literal: frozen, it stays in flash
_BASE_U = (b"\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
           b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")


def _need(value, length, what):
    if len(value) != length:
        raise UsageError("%s must be %d bytes" % (what, length))


def _all_zero(data):
    acc = 0
    for b in data:
        acc |= b
    return acc == 0


class PureBackend:
    name = "pure"

    # -- randomness and hashing --------------------------------------------------
    def random(self, n):
        return os.urandom(n)

    def use_random(self, source):
        """As contract.Backend.use_random: every random byte from source(n) from now on."""
        self.random = source

    def sha256(self, data):
        return hashlib.sha256(data).digest()

    def sha512(self, data):
        from airshake.crypto.sha512 import sha512
        return sha512(data)

    def hmac_sha256(self, key, data):
        from airshake.crypto.hmac256 import hmac_sha256
        return hmac_sha256(key, data)

    # -- X25519 ---------------------------------------------------------------------
    def x25519_public(self, priv):
        _need(priv, 32, "X25519 private key")
        # X25519(k, 9) by the ladder, not Ed25519's fixed-base comb: about 1 ms slower
        # per key on the 32-bit twin, but suite 0 by reference then never loads ed25519
        # and sha512 (1.8 KB of RAM frozen, 6.8 KB of .mpy code) nor the comb's table
        # indexed by key bits; the x25519 known-answer test covers both methods
        from airshake.crypto.x25519 import x25519
        return x25519(priv, _BASE_U)

    def x25519(self, priv, peer):
        _need(priv, 32, "X25519 private key")
        if len(peer) != 32:
            raise errors.InvalidPoint("X25519 public key must be 32 bytes")
        from airshake.crypto.x25519 import x25519
        shared = x25519(priv, peer)
        if _all_zero(shared):
            raise errors.InvalidPoint("X25519 shared secret is all zero (low-order point)")
        return shared

    # -- Ed25519 --------------------------------------------------------------------
    def ed25519_public(self, seed):
        _need(seed, 32, "Ed25519 seed")
        from airshake.crypto.ed25519 import public_key
        return public_key(seed)

    def ed25519_sign(self, seed, msg):
        _need(seed, 32, "Ed25519 seed")
        from airshake.crypto.ed25519 import sign
        return sign(seed, msg)

    def ed25519_verify(self, pub, msg, sig):
        if len(pub) != 32 or len(sig) != 64:
            return False
        from airshake.crypto.ed25519 import verify
        return verify(pub, msg, sig) is True

    # -- P-256 ------------------------------------------------------------------------
    def p256_public(self, priv):
        _need(priv, 32, "P-256 private key")
        from airshake.crypto.p256 import public_key
        return public_key(priv)

    def p256_ecdh(self, priv, peer):
        _need(priv, 32, "P-256 private key")
        from airshake.crypto.p256 import ecdh
        return ecdh(priv, peer)

    def ecdsa_p256_sign(self, priv, msg):
        _need(priv, 32, "P-256 private key")
        from airshake.crypto.p256 import ecdsa_sign
        return ecdsa_sign(priv, msg)

    def ecdsa_p256_verify(self, point, msg, sig):
        if len(sig) != 64:
            return False
        from airshake.crypto.p256 import ecdsa_verify
        return ecdsa_verify(point, msg, sig) is True

    # -- AES-CCM-16-64-128 ----------------------------------------------------------------
    def aes_ccm_encrypt(self, key, nonce, aad, plaintext):
        _need(key, 16, "AES-CCM key")
        from airshake.crypto.ccm import encrypt
        return encrypt(key, nonce, aad, plaintext, _CCM_TAG)

    def aes_ccm_decrypt(self, key, nonce, aad, data):
        _need(key, 16, "AES-CCM key")
        from airshake.crypto.ccm import decrypt
        return decrypt(key, nonce, aad, data, _CCM_TAG)

    # -- RSA (OAEP and PSS with SHA-256) ----------------------------------------------------
    def rsa_oaep_encrypt(self, pub, plaintext):
        from airshake.crypto.rsa import oaep_encrypt
        return oaep_encrypt(pub, plaintext, self.random(32))

    def rsa_oaep_decrypt(self, priv, ciphertext):
        from airshake.crypto.rsa import oaep_decrypt
        return oaep_decrypt(priv, ciphertext)

    def rsa_pss_sign(self, priv, msg):
        from airshake.crypto.rsa import pss_sign
        return pss_sign(priv, msg, self.random(32))

    def rsa_pss_verify(self, pub, msg, sig):
        from airshake.crypto.rsa import pss_verify
        return pss_verify(pub, msg, sig) is True
