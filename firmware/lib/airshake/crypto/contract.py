# airshake.crypto.contract: the narrow contract every crypto backend implements.
# One method per primitive (after lakers' crypto trait). All values are bytes except
# RSA keys, which are RsaPublic / RsaPrivate below. A backend may lack a primitive:
# it then raises BackendError, and the backend selector fills the gap from another one.
# Rules: no backend draws randomness except in random(); verify functions return bool
# and never raise on a bad signature; decrypt functions raise AuthenticationFailed;
# DH functions raise InvalidPoint for off-curve or low-order input.

from airshake.errors import BackendError


def byte_length(n):
    """Bytes needed for the positive int n (MicroPython ints lack bit_length())."""
    return (len("%x" % n) + 1) // 2


class RsaPublic:
    def __init__(self, n, e):
        self.n = n
        self.e = e

    def size(self):
        return byte_length(self.n)


class RsaPrivate:
    """RSA private key with the CRT parameters (all ints)."""

    def __init__(self, n, e, d, p, q, dp, dq, qinv):
        self.n = n
        self.e = e
        self.d = d
        self.p = p
        self.q = q
        self.dp = dp
        self.dq = dq
        self.qinv = qinv

    def public(self):
        return RsaPublic(self.n, self.e)

    def size(self):
        return byte_length(self.n)


def _missing(name):
    raise BackendError("primitive not provided by this backend: " + name)


class Backend:
    """Base class listing the contract. Subclasses override what they implement."""

    name = "abstract"

    # -- randomness and hashing --------------------------------------------------
    def random(self, n):
        """n bytes from a cryptographically secure source."""
        _missing("random")

    def use_random(self, source):
        """Draw every random byte from source(n) from now on: the device's entropy pool,
        which mixes os.urandom with a persisted seed (firmware/lib/device/entropy.py)."""
        self.random = source

    def sha256(self, data):
        _missing("sha256")

    def sha512(self, data):
        _missing("sha512")

    def hmac_sha256(self, key, data):
        _missing("hmac_sha256")

    # -- X25519 (RFC 7748) ----------------------------------------------------------
    def x25519_public(self, priv):
        """32-byte public key for a 32-byte private scalar (clamped inside)."""
        _missing("x25519_public")

    def x25519(self, priv, peer):
        """32-byte shared secret; InvalidPoint if it is all zero (low-order peer)."""
        _missing("x25519")

    # -- Ed25519 (RFC 8032) ---------------------------------------------------------
    def ed25519_public(self, seed):
        _missing("ed25519_public")

    def ed25519_sign(self, seed, msg):
        _missing("ed25519_sign")

    def ed25519_verify(self, pub, msg, sig):
        """True iff sig (R || S) verifies msg under pub, cofactorless (RFC 8032 §5.1.7:
        encode([S]B - [k]A) == R byte for byte, so a non-canonical R fails). False, never
        an exception, for S >= L and for every key that ed25519.acceptable_public_key
        refuses (small order in any encoding, y >= p): backends apply that rule before
        their own code, so all of them refuse the same keys."""
        _missing("ed25519_verify")

    # -- P-256 (SEC 1, RFC 6090 compact form) ----------------------------------------
    def p256_public(self, priv):
        """65-byte uncompressed point 04||x||y for a 32-byte private scalar."""
        _missing("p256_public")

    def p256_ecdh(self, priv, peer):
        """x-coordinate of priv*peer (32 bytes). peer is a 32-byte x-coordinate
        (compact, either y accepted) or a 65-byte uncompressed point. InvalidPoint if
        peer is not on the curve."""
        _missing("p256_ecdh")

    def ecdsa_p256_sign(self, priv, msg):
        """64-byte r||s signature with SHA-256 over msg."""
        _missing("ecdsa_p256_sign")

    def ecdsa_p256_verify(self, point, msg, sig):
        """point: 65-byte uncompressed; sig: 64-byte r||s; SHA-256 over msg."""
        _missing("ecdsa_p256_verify")

    # -- AES-CCM-16-64-128 (RFC 3610: 13-byte nonce, 8-byte tag) ----------------------
    def aes_ccm_encrypt(self, key, nonce, aad, plaintext):
        """ciphertext || 8-byte tag."""
        _missing("aes_ccm_encrypt")

    def aes_ccm_decrypt(self, key, nonce, aad, data):
        """plaintext; AuthenticationFailed if the tag does not verify."""
        _missing("aes_ccm_decrypt")

    # -- RSA (RFC 8017; SHA-256, MGF1-SHA-256, PSS salt 32) ---------------------------
    def rsa_oaep_encrypt(self, pub, plaintext):
        _missing("rsa_oaep_encrypt")

    def rsa_oaep_decrypt(self, priv, ciphertext):
        """plaintext; AuthenticationFailed on any decryption or padding error."""
        _missing("rsa_oaep_decrypt")

    def rsa_pss_sign(self, priv, msg):
        _missing("rsa_pss_sign")

    def rsa_pss_verify(self, pub, msg, sig):
        _missing("rsa_pss_verify")
