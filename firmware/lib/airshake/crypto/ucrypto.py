# airshake.crypto.ucrypto: the "ucrypto" backend for custom firmware that includes the
# ucryptography C module (github.com/dmazzella/ucryptography, imported as `cryptography`),
# and build_composite, the general per-primitive selection it relies on.
# Rules: ucryptography is trusted per primitive, never wholesale: a primitive comes from it
# only if its known-answer tests pass on this very firmware, run at the primitive's first
# use (or taken from a record of an earlier boot: CompositeBackend.assume); everything else
# comes from PureBackend. docs/CRYPTO.md says what is refused and why (Ed25519 wrong from
# 64-byte messages and accepting S + L, no X25519, no AES-CCM). Nothing random is taken
# from ucryptography, whose RNG is libc rand() seeded with the time (an ECDSA nonce from it
# leaks the key): RSA encryption and signing use the pure code, ECDSA signing derives its
# RFC 6979 nonce here with only the point multiplication in C; verification, decryption,
# ECDH and hashing are C. Peer points are checked on the curve here, not by the module.

import sys

from airshake.crypto.contract import Backend
from airshake import errors
from airshake.errors import UsageError

_P = 2 ** 256 - 2 ** 224 + 2 ** 192 + 2 ** 96 - 1
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_ED_L = 2 ** 252 + 27742317777372353535851937790883648493  # Ed25519's group order


class CompositeBackend:
    """A backend assembled method by method from others (see build_composite). Not a
    contract.Backend subclass: a method not yet decided is missing from the instance, so
    __getattr__ sees its first use (no per-method stub objects in RAM)."""

    def __init__(self, name, candidate, fallback):
        self.name = name
        self.sources = {}  # primitive name -> name of the backend serving it (decided)
        self._candidate = candidate
        self._fallback = fallback

    def decide(self, primitive, methods):
        """Route primitive's methods to the candidate if its known-answer tests pass
        there, else to the fallback; returns the chosen backend."""
        from airshake.crypto import selftest  # imported here so it can be unloaded after boot
        ok = selftest.check(self._candidate, primitive) == "ok"
        source = self._candidate if ok else self._fallback
        for method in methods:
            setattr(self, method, getattr(source, method))
        self.sources[primitive] = source.name
        return source

    def assume(self, sources):
        """Route without testing, as a record of earlier decisions on this very code says
        ({primitive: backend name}, what .sources held then; device.backend keeps such a
        record): a later boot then runs no known-answer test for them at first use."""
        loaded = "airshake.crypto.selftest" in sys.modules
        from airshake.crypto.selftest import PRIMITIVES
        if not loaded:    # only its table was needed: give the module's RAM back
            sys.modules.pop("airshake.crypto.selftest", None)
        for primitive, methods in PRIMITIVES:
            name = sources.get(primitive)
            if name is None or primitive in self.sources:
                continue
            source = self._candidate if name == self._candidate.name else self._fallback
            if name != source.name:
                continue          # a record of other backends: decide by testing instead
            for method in methods:
                setattr(self, method, getattr(source, method))
            self.sources[primitive] = name

    def source_of(self, primitive):
        """The name of the backend serving primitive (deciding it now if not yet)."""
        if primitive not in self.sources:
            from airshake.crypto.selftest import PRIMITIVES
            self.decide(primitive, dict(PRIMITIVES)[primitive])
        return self.sources[primitive]

    def __getattr__(self, method):
        # the first use of an undecided contract method decides its primitive
        from airshake.crypto.selftest import PRIMITIVES
        for primitive, methods in PRIMITIVES:
            if method in methods:
                return getattr(self.decide(primitive, methods), method)
        raise AttributeError(method)

    def use_random(self, source):
        """As contract.Backend.use_random: every random byte from source(n) from now on."""
        self.random = source


def build_composite(candidate, fallback, name=None, lazy=False):
    """A backend whose methods for each primitive come from candidate if that primitive
    passes its known-answer tests on candidate, else from fallback. lazy: each primitive
    is decided at its first use (a device tests only what its suite uses: the RSA tests
    cost a suite-0 device heap and time for nothing)."""
    composite = CompositeBackend(name or "%s+%s" % (candidate.name, fallback.name),
                                 candidate, fallback)
    if not lazy:
        from airshake.crypto import selftest  # imported here so it can be unloaded after boot
        for primitive, methods in selftest.PRIMITIVES:
            composite.decide(primitive, methods)
    return composite


# -- P-256 point handling done here, since ucryptography does not validate points --------

def _on_curve(x, y):
    return x < _P and y < _P and (y * y - (x * x * x - 3 * x + _B)) % _P == 0


def _p256_xy(data):
    """(x, y) of a 65-byte uncompressed point; InvalidPoint."""
    if len(data) != 65 or data[0] != 4:
        raise errors.InvalidPoint("P-256 point must be 65-byte uncompressed")
    x = int.from_bytes(data[1:33], "big")
    y = int.from_bytes(data[33:], "big")
    if not _on_curve(x, y):
        raise errors.InvalidPoint("P-256 point is not on the curve")
    return x, y


def _pad32(value):
    return b"\x00" * (32 - len(value)) + value


class UcryptoPart(Backend):
    """The primitives ucryptography could serve; selftest decides which it may."""

    name = "ucrypto"

    def __init__(self, module):
        self._c = module
        self._pure = None
        # the last two P-256 private keys as the module's objects: deriving one computes
        # its public point, work an ECDH with the same key (the device key, the
        # ephemeral of p256_public) need not repeat; they hold what the caller holds
        self._ec_keys = []

    def _fallback(self):
        if self._pure is None:
            from airshake.crypto.pure import PureBackend
            self._pure = PureBackend()
        return self._pure

    def _hash(self, algorithm, data):
        h = self._c.hashes.Hash(algorithm)
        h.update(bytes(data))
        return h.finalize()

    def sha256(self, data):
        return self._hash(self._c.hashes.SHA256(), data)

    def sha512(self, data):
        return self._hash(self._c.hashes.SHA512(), data)

    def hmac_sha256(self, key, data):
        h = self._c.hmac.HMAC(bytes(key), self._c.hashes.SHA256())
        h.update(bytes(data))
        return h.finalize()

    # -- Ed25519 --------------------------------------------------------------------
    def _ed_private(self, seed):
        if len(seed) != 32:
            raise UsageError("Ed25519 seed must be 32 bytes")
        return self._c.ed25519.Ed25519PrivateKey.from_private_bytes(bytes(seed))

    def ed25519_public(self, seed):
        # keywords: ucryptography's public_bytes takes encoding and format keyword-only
        # (a positional call raises TypeError there; pyca accepts both)
        enc = self._c.serialization
        raw = self._ed_private(seed).public_key().public_bytes(
            encoding=enc.Encoding.Raw, format=enc.PublicFormat.Raw)
        return bytes(raw)

    def ed25519_sign(self, seed, msg):
        return bytes(self._ed_private(seed).sign(bytes(msg)))

    def ed25519_verify(self, pub, msg, sig):
        from airshake.crypto.ed25519 import acceptable_public_key  # the rule of every backend
        if len(sig) != 64 or not acceptable_public_key(pub):
            return False
        if int.from_bytes(sig[32:], "little") >= _ED_L:
            return False   # c25519 reduces S: it accepts S + L (RFC 8032 §5.1.7 refuses it)
        try:
            key = self._c.ed25519.Ed25519PublicKey.from_public_bytes(bytes(pub))
            key.verify(bytes(sig), bytes(msg))
        except Exception:
            return False
        return True

    # -- P-256 ------------------------------------------------------------------------
    def _ec_private(self, priv):
        priv = bytes(priv)
        for known, key in self._ec_keys:
            if known == priv:
                return key
        d = int.from_bytes(priv, "big")
        if len(priv) != 32 or not 0 < d < _N:
            raise UsageError("P-256 private key out of range")
        key = self._c.ec.derive_private_key(d, self._c.ec.SECP256R1())
        self._ec_keys = [(priv, key)] + self._ec_keys[:1]
        return key

    def _ec_public(self, x, y):
        ec = self._c.ec
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()

    def _ec_peer(self, data):
        """The module's public key for a 65-byte point or a 32-byte compact x, checked on
        the curve here (the module ignores its own decoding errors: an x without a point
        comes back with a y that is not on the curve)."""
        if len(data) == 65:
            return self._ec_public(*_p256_xy(data))
        if len(data) != 32:
            raise errors.InvalidPoint("P-256 point must be 65-byte uncompressed or 32-byte x")
        ec = self._c.ec
        try:   # Mbed TLS takes the square root (either y: ECDH's x is the same)
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                               b"\x02" + bytes(data))
            numbers = key.public_numbers()
        except ValueError:   # pyca refuses an x without a point
            raise errors.InvalidPoint("P-256 x-coordinate has no point on the curve")
        if numbers.x != int.from_bytes(data, "big") or not _on_curve(numbers.x, numbers.y):
            raise errors.InvalidPoint("P-256 x-coordinate has no point on the curve")
        return key

    def p256_public(self, priv):
        numbers = self._ec_private(priv).public_key().public_numbers()
        return b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")

    def p256_ecdh(self, priv, peer):
        peer_key = self._ec_peer(peer)
        shared = self._ec_private(priv).exchange(self._c.ec.ECDH(), peer_key)
        if not shared or len(shared) > 32 or int.from_bytes(shared, "big") == 0:
            raise errors.InvalidPoint("P-256 key agreement failed")
        return _pad32(bytes(shared))

    def ecdsa_p256_sign(self, priv, msg):
        """RFC 6979, nothing from the module's RNG: the nonce is derived here (HMAC-SHA256
        on hashlib), R = kG is the module's fixed-base multiplication, s = k^-1 (e + r d)
        is computed here; the same signature as the pure code, without its Python
        scalar multiplication."""
        from airshake.crypto.p256 import rfc6979_nonces
        self._ec_private(priv)                           # the range check
        d = int.from_bytes(priv, "big")
        h = self.sha256(msg)
        e = int.from_bytes(h, "big")
        ec = self._c.ec
        for k in rfc6979_nonces(d, h):
            r = ec.derive_private_key(k, ec.SECP256R1()).public_key().public_numbers().x % _N
            if r == 0:
                continue
            s = pow(k, _N - 2, _N) * (e + r * d) % _N
            if s != 0:
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def ecdsa_p256_verify(self, point, msg, sig):
        if len(sig) != 64 or len(point) != 65:
            return False
        r = int.from_bytes(sig[:32], "big")
        s = int.from_bytes(sig[32:], "big")
        if not (0 < r < _N and 0 < s < _N):
            return False
        c = self._c
        try:
            x, y = _p256_xy(point)
            der = c.utils.encode_dss_signature(r, s)
            self._ec_public(x, y).verify(der, bytes(msg), c.ec.ECDSA(c.hashes.SHA256()))
        except Exception:
            return False
        return True

    # -- RSA --------------------------------------------------------------------------
    def _rsa_private(self, priv):
        rsa = self._c.rsa
        public = rsa.RSAPublicNumbers(priv.e, priv.n)
        return rsa.RSAPrivateNumbers(priv.p, priv.q, priv.d, priv.dp, priv.dq, priv.qinv,
                                     public).private_key()

    def _mgf1(self):
        return self._c.padding.MGF1(self._c.hashes.SHA256())

    def rsa_oaep_encrypt(self, pub, plaintext):
        return self._fallback().rsa_oaep_encrypt(pub, plaintext)  # random seed: pure

    def rsa_oaep_decrypt(self, priv, ciphertext):
        c = self._c
        oaep = c.padding.OAEP(mgf=self._mgf1(), algorithm=c.hashes.SHA256(), label=None)
        try:
            return bytes(self._rsa_private(priv).decrypt(bytes(ciphertext), oaep))
        except Exception:
            raise errors.AuthenticationFailed("RSA-OAEP decryption failed")

    def rsa_pss_sign(self, priv, msg):
        return self._fallback().rsa_pss_sign(priv, msg)  # random salt: pure

    def rsa_pss_verify(self, pub, msg, sig):
        c = self._c
        pss = c.padding.PSS(mgf=self._mgf1(), salt_length=32)
        try:
            key = c.rsa.RSAPublicNumbers(pub.e, pub.n).public_key()
            key.verify(bytes(sig), bytes(msg), pss, c.hashes.SHA256())
        except Exception:
            return False
        return True


def make_ucrypto_backend():
    """The composite ucryptography+pure backend; ImportError where it cannot exist."""
    if sys.implementation.name != "micropython":
        raise ImportError("the ucrypto backend runs on MicroPython only")
    try:
        import cryptography  # the ucryptography C module, in custom firmware only
    except ImportError:
        raise ImportError("this firmware has no ucryptography module")
    if not hasattr(cryptography, "ec"):
        raise ImportError("the cryptography module here is not ucryptography")
    from airshake.crypto.pure import PureBackend
    return build_composite(UcryptoPart(cryptography), PureBackend(), "ucrypto", lazy=True)

