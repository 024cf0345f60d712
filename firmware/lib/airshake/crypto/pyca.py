# airshake.crypto.pyca: the CPython backend on pyca/cryptography (OpenSSL).
# Rules: same contract as every backend; library exceptions are translated at this
# boundary (InvalidTag / decrypt errors -> AuthenticationFailed, bad public keys ->
# InvalidPoint, bad signatures -> False); local misuse (wrong key length) -> UsageError.
# Only imported on CPython: importing it on MicroPython raises ImportError.
# SHA-256 and HMAC-SHA-256 go through CPython's hashlib (OpenSSL, one C call each). Keys
# are loaded on every call; B's backend (host_server/server_b/backend.py) keeps its keys
# loaded, and forgets the ephemerals.

import hashlib
import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as pyca_hmac
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

from airshake.crypto.contract import Backend
from airshake.crypto.ed25519 import acceptable_public_key
from airshake.errors import AuthenticationFailed, InvalidPoint, UsageError

_CCM_TAG = 8
_P256_P = 2 ** 256 - 2 ** 224 + 2 ** 192 + 2 ** 96 - 1
_RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
_X962 = (serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def need(value, length, what):
    """UsageError unless value has the length (a key or nonce the caller passed)."""
    if len(value) != length:
        raise UsageError("%s must be %d bytes" % (what, length))


try:    # OpenSSL's HMAC object through hashlib: 0.6 us, pyca's HMAC class about 1 us
    from _hashlib import hmac_new as _hmac_new  # type: ignore[import-not-found]
except ImportError:
    _hmac_new = None


def _x25519_private(priv):
    need(priv, 32, "X25519 private key")
    return x25519.X25519PrivateKey.from_private_bytes(priv)


def p256_private(priv):
    """The pyca private key object of a 32-byte big-endian P-256 scalar."""
    need(priv, 32, "P-256 private key")
    try:
        return ec.derive_private_key(int.from_bytes(priv, "big"), ec.SECP256R1())
    except ValueError:
        raise UsageError("P-256 private key out of range")


def p256_point(data):
    """EllipticCurvePublicKey for a 65-byte point or a 32-byte compact x; InvalidPoint."""
    if len(data) == 32:
        if int.from_bytes(data, "big") >= _P256_P:
            raise InvalidPoint("P-256 x-coordinate out of range")
        data = b"\x02" + bytes(data)  # either root gives the same ECDH x-coordinate
    elif len(data) != 65 or data[0] != 4:
        raise InvalidPoint("P-256 point must be 65-byte uncompressed or 32-byte x")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(data))
    except ValueError:
        raise InvalidPoint("P-256 point is not on the curve")


def _ccm(key, nonce):
    need(key, 16, "AES-CCM key")
    if not 7 <= len(nonce) <= 13:
        raise UsageError("CCM nonce must be 7..13 bytes")
    return AESCCM(bytes(key), tag_length=_CCM_TAG)


def _rsa_public(pub):
    return rsa.RSAPublicNumbers(pub.e, pub.n).public_key()


_RSA_LOADED = {}    # modulus -> loaded key: OpenSSL validates a key as it loads (~70 ms)


def _rsa_private(priv):
    key = _RSA_LOADED.get(priv.n)
    if key is None:
        public = rsa.RSAPublicNumbers(priv.e, priv.n)
        numbers = rsa.RSAPrivateNumbers(priv.p, priv.q, priv.d, priv.dp, priv.dq, priv.qinv,
                                        public)
        key = numbers.private_key()
        if len(_RSA_LOADED) >= 8:
            _RSA_LOADED.clear()
        _RSA_LOADED[priv.n] = key
    return key


def _oaep():
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def _pss():
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


class PycaBackend(Backend):
    name = "pyca"

    # -- randomness and hashing --------------------------------------------------
    def random(self, n):
        return os.urandom(n)

    def sha256(self, data):
        return hashlib.sha256(data).digest()

    def sha512(self, data):
        return hashlib.sha512(data).digest()

    def hmac_sha256(self, key, data):
        if _hmac_new is not None:
            return _hmac_new(key, data, "sha256").digest()
        h = pyca_hmac.HMAC(bytes(key), hashes.SHA256())
        h.update(bytes(data))
        return h.finalize()

    # -- X25519 ---------------------------------------------------------------------
    def x25519_public(self, priv):
        return _x25519_private(bytes(priv)).public_key().public_bytes(*_RAW)

    def x25519(self, priv, peer):
        key = _x25519_private(bytes(priv))
        try:
            return key.exchange(x25519.X25519PublicKey.from_public_bytes(bytes(peer)))
        except ValueError:  # wrong length, or the all-zero result of a low-order point
            raise InvalidPoint("X25519 public key rejected")

    # -- Ed25519 --------------------------------------------------------------------
    def ed25519_public(self, seed):
        need(seed, 32, "Ed25519 seed")
        key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(seed))
        return key.public_key().public_bytes(*_RAW)

    def ed25519_sign(self, seed, msg):
        need(seed, 32, "Ed25519 seed")
        return ed25519.Ed25519PrivateKey.from_private_bytes(bytes(seed)).sign(bytes(msg))

    def ed25519_verify(self, pub, msg, sig):
        try:
            pub = bytes(pub)
            if not acceptable_public_key(pub):  # OpenSSL takes small-order and y >= p keys
                return False
            key = ed25519.Ed25519PublicKey.from_public_bytes(pub)
            key.verify(bytes(sig), bytes(msg))
        except (InvalidSignature, TypeError, ValueError):
            return False
        return True

    # -- P-256 ------------------------------------------------------------------------
    def p256_public(self, priv):
        return p256_private(priv).public_key().public_bytes(*_X962)

    def p256_ecdh(self, priv, peer):
        key = p256_private(priv)
        return key.exchange(ec.ECDH(), p256_point(peer))

    def ecdsa_p256_sign(self, priv, msg):
        der = p256_private(priv).sign(bytes(msg), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def ecdsa_p256_verify(self, point, msg, sig):
        if len(sig) != 64 or len(point) != 65:
            return False
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        try:
            p256_point(point).verify(der, bytes(msg), ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, InvalidPoint, ValueError):
            return False
        return True

    # -- AES-CCM-16-64-128 ----------------------------------------------------------------
    def aes_ccm_encrypt(self, key, nonce, aad, plaintext):
        return _ccm(key, nonce).encrypt(bytes(nonce), bytes(plaintext), bytes(aad or b""))

    def aes_ccm_decrypt(self, key, nonce, aad, data):
        cipher = _ccm(key, nonce)
        try:
            return cipher.decrypt(bytes(nonce), bytes(data), bytes(aad or b""))
        except (InvalidTag, ValueError):
            raise AuthenticationFailed("AES-CCM tag does not verify")

    # -- RSA (OAEP and PSS with SHA-256) ----------------------------------------------------
    def rsa_oaep_encrypt(self, pub, plaintext):
        return _rsa_public(pub).encrypt(bytes(plaintext), _oaep())

    def rsa_oaep_decrypt(self, priv, ciphertext):
        try:
            return _rsa_private(priv).decrypt(bytes(ciphertext), _oaep())
        except ValueError:
            raise AuthenticationFailed("RSA-OAEP decryption failed")

    def rsa_pss_sign(self, priv, msg):
        return _rsa_private(priv).sign(bytes(msg), _pss(), hashes.SHA256())

    def rsa_pss_verify(self, pub, msg, sig):
        try:
            _rsa_public(pub).verify(bytes(sig), bytes(msg), _pss(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True
