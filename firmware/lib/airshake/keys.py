# airshake.keys: the long-term credentials the two roles hold (docs/PROTOCOL.md §2.2).
#   DeviceKey  A's static private key and its identifier ID_A (A never holds C_A).
#   ServerKey  B's static private key and its certificate C_B.
#   ServerRef  what A keeps of a C_B it verified: enough to send C_B by reference.
# Rules: ID_A = SHA-256(SubjectPublicKeyInfo DER)[:id_len]; private keys never appear in
# repr() or exports from this module.
# RAM: airshake.x509 (with airshake.der, 4.5 KB of a 32-bit device's heap) is imported
# where used, and a ServerRef keeps plain values, no x509 object: a device that holds C_B
# can let both modules go (airshake.ram.release) before its handshake.
from airshake import suites
from airshake import errors
from airshake.errors import UsageError

DEFAULT_ID_LEN = 8

# The SubjectPublicKeyInfo DER of a raw key is a fixed prefix and the key (x509.spki_for
# builds the same bytes; tests/portable/test_release.py checks they agree): a device
# derives ID_A without loading the certificate code.
_SPKI_X25519 = b"\x30\x2a\x30\x05\x06\x03\x2b\x65\x6e\x03\x21\x00"
_SPKI_P256 = (b"\x30\x59\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01"
              b"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\x03\x42\x00")


def spki(kind, public):
    """SubjectPublicKeyInfo DER of a public key: a 32-byte X25519 key or a 65-byte
    uncompressed P-256 point by its fixed prefix; anything else (RSA, misuse) through
    airshake.x509, which builds or refuses it."""
    if kind == "x25519" and len(public) == 32:
        return _SPKI_X25519 + bytes(public)
    if kind == "p256" and len(public) == 65 and public[0] == 4:
        return _SPKI_P256 + bytes(public)
    from airshake import x509
    return x509.spki_for(kind, public)


def identifier(spki, id_len=DEFAULT_ID_LEN):
    """ID_A: the first id_len bytes of SHA-256 over the SubjectPublicKeyInfo DER. The one
    derivation of a device identifier: the device, B, the CA, the store and the tools all
    call this (hashlib's SHA-256 exists on MicroPython and CPython alike)."""
    import hashlib
    return hashlib.sha256(spki).digest()[:id_len]


class DeviceKey:
    """A's static key for one suite."""

    def __init__(self, backend, suite, private, id_len=DEFAULT_ID_LEN):
        suites.check(suite)
        self.suite = suite
        self.private = private
        kind = suites.STATIC_KEY_TYPE[suite]
        if kind == "rsa":
            from airshake.crypto.contract import RsaPrivate
            if not isinstance(private, RsaPrivate):
                raise UsageError("suite 1 needs an RsaPrivate key")
            self.public = private.public()
        elif kind == "p256":
            self.public = backend.p256_public(private)
        else:
            self.public = backend.x25519_public(private)
        self.spki = spki(kind, self.public)
        self.spki_hash = backend.sha256(self.spki)
        self.id_a = self.spki_hash[:id_len]

    @classmethod
    def generate(cls, backend, suite, id_len=DEFAULT_ID_LEN):
        if suite == suites.SUITE_RSA:
            raise UsageError("RSA device keys are generated on the host and provisioned")
        curve = suites.STATIC_KEY_TYPE[suite]
        return cls(backend, suite, suites.new_scalar(backend, curve), id_len)

    def __repr__(self):
        return "<DeviceKey suite=%d id=%s>" % (self.suite, self.id_a.hex())


class ServerRef:
    """A verified C_B, as A keeps it: its DER and hash, public key, expiry, and the fields
    the server-name pin and the role check read (subject, is_ca, eku, key_usage, key_type),
    as plain values."""

    def __init__(self, backend, suite, cert_der):
        from airshake import x509
        cert = x509.parse_certificate(cert_der)
        if cert.key_type != suites.STATIC_KEY_TYPE[suite]:
            raise errors.CertificateError("C_B key type %s does not fit suite %d"
                                   % (cert.key_type, suite))
        self.suite = suite
        self.der = bytes(cert_der)
        self.cert_hash = backend.sha256(self.der)
        self.public = cert.public_key
        self.not_after = cert.not_after
        self.subject = cert.subject
        self.key_type = cert.key_type
        self.is_ca = cert.is_ca
        self.eku = cert.eku
        self.key_usage = cert.key_usage
        self.pinned_to = None        # the name check_pin last passed for

    @classmethod
    def verified(cls, backend, suite, cert_der, anchor_der, now, name):
        """Parse C_B and check everything A requires of it (PROTOCOL.md §2.3): chained to
        the trust anchor, valid at now, the server role, and the subject A is pinned to
        (name: the CN string, or the subject Name DER). CertificateError if not."""
        from airshake import x509
        ref = cls(backend, suite, cert_der)
        ref.check_pin(name)
        anchor = x509.parse_certificate(anchor_der)
        x509.verify_certificate(x509.parse_certificate(ref.der), anchor, backend, now)
        return ref

    def check_pin(self, name):
        """The checks that need no signature: the server role and the pinned name. A runs
        them on a C_B it held from before, too (an older firmware may have cached one
        that fails them). A pass is remembered (pinned_to), so that checking the same
        name again needs no certificate code: a device checks when it loads C_B, then
        releases airshake.x509 before its Initiator checks again."""
        if name is None:
            raise UsageError("A needs the name of its B (the server-name pin)")
        if self.pinned_to is not None and self.pinned_to == name:
            return
        from airshake import x509
        x509.check_role(self, x509.ROLE_SERVER)
        subject = x509.cn_name(name) if isinstance(name, str) else bytes(name)
        if self.subject != subject:
            raise errors.CertificateError("C_B names another server than the one A is pinned to")
        self.pinned_to = name


class ServerKey:
    """B's static key for one suite, with its certificate C_B."""

    def __init__(self, backend, suite, private, cert_der):
        self.suite = suite
        self.private = private
        self.ref = ServerRef(backend, suite, cert_der)
        kind = suites.STATIC_KEY_TYPE[suite]
        if kind == "x25519":
            mine = backend.x25519_public(private)
        elif kind == "p256":
            mine = backend.p256_public(private)
        else:
            mine = (private.n, private.e)
        theirs = self.ref.public
        if kind == "rsa":
            theirs = (theirs.n, theirs.e)
        if mine != theirs:
            raise UsageError("B's private key does not match the key in C_B")

    def __repr__(self):
        return "<ServerKey suite=%d>" % self.suite
