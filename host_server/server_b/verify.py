# host_server.server_b.verify: checks a device certificate C_A fetched from the CS before B
# hands it to the core: issued by the configured CA (issuer name and signature, with
# pyca), valid now, not a CA, of the device role (airshake.x509.check_role: clientAuth,
# not serverAuth, keyUsage allowing the key's use), not revoked, of the key type the
# chosen suite needs, and its full SPKI hash starting with ID_A. The core re-checks the
# last two; the rest is B's job (PROTOCOL.md §7.2 WAIT_CRED).
# What depends only on the certificate's bytes is computed once per distinct DER (by its
# SHA-256, the last MEMO_SIZE of them): the two parses, the ID its key hashes to and the
# CA's signature over it (memoized only once it verified). Every check above still runs
# on every call, on the values of those exact bytes.
from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

from cryptography import x509 as pyx509
from cryptography.exceptions import InvalidSignature

from airshake import codec, suites
from airshake import x509 as core_x509
from airshake.errors import CertificateError
from airshake.keys import identifier
from host_server.server_b.cache import RevokedSet


MEMO_SIZE = 4096


@dataclass(frozen=True)
class _Signed:
    """What a DER whose CA signature verified parses to."""
    core: core_x509.Certificate
    key_id: bytes              # identifier(core.spki, id_len)
    not_before: float
    not_after: float


@dataclass(frozen=True)
class VerifiedCert:
    cert: core_x509.Certificate   # parsed once, handed to the core on every handshake
    not_after: float


class Rejected(Exception):
    """C_A is refused: code is the wire error for the device, reason a metrics label."""

    def __init__(self, code: int, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.code = code
        self.reason = reason


class Verifier:
    def __init__(self, ca: pyx509.Certificate, id_len: int, memo_size: int = MEMO_SIZE) -> None:
        self.ca = ca
        self.id_len = id_len
        self.memo_size = memo_size
        self._ca_not_before = ca.not_valid_before_utc.timestamp()
        self._ca_not_after = ca.not_valid_after_utc.timestamp()
        self._memo: OrderedDict[bytes, _Signed] = OrderedDict()   # SHA-256(DER) ->

    def _signed(self, der: bytes, id_a: bytes) -> _Signed:
        """Parse der and verify the CA's signature over it, once per distinct DER."""
        digest = hashlib.sha256(der).digest()
        signed = self._memo.get(digest)
        if signed is not None:
            self._memo.move_to_end(digest)
            return signed
        try:
            core = core_x509.parse_certificate(der)
            cert = pyx509.load_der_x509_certificate(der)
        except (CertificateError, ValueError) as e:
            raise Rejected(codec.ERR_REJECTED, "malformed", str(e)) from None
        key_id = identifier(core.spki, self.id_len)
        if key_id != id_a:        # before the signature: the cheaper check refuses first
            raise Rejected(codec.ERR_REJECTED, "id_mismatch",
                           "the certificate's key does not hash to the ID")
        try:
            cert.verify_directly_issued_by(self.ca)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise Rejected(codec.ERR_REJECTED, "wrong_ca", str(e) or type(e).__name__) from None
        signed = _Signed(core, key_id, cert.not_valid_before_utc.timestamp(),
                         cert.not_valid_after_utc.timestamp())
        if self.memo_size > 0:
            self._memo[digest] = signed
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        return signed

    def verify(self, der: bytes, id_a: bytes, now: float,
               revoked: RevokedSet | None = None) -> VerifiedCert:
        """VerifiedCert, or Rejected. The suite is checked per handshake (key_suites)."""
        if revoked is not None and id_a in revoked:
            raise Rejected(codec.ERR_UNKNOWN_ID, "revoked")   # as unknown (item 10)
        signed = self._signed(der, id_a)
        core = signed.core
        if signed.key_id != id_a:
            raise Rejected(codec.ERR_REJECTED, "id_mismatch",
                           "the certificate's key does not hash to the ID")
        if not self._ca_not_before <= now <= self._ca_not_after:
            raise Rejected(codec.ERR_REJECTED, "ca_expired", "the CA certificate is not valid now")
        not_before, not_after = signed.not_before, signed.not_after
        if now < not_before:
            raise Rejected(codec.ERR_REJECTED, "not_yet_valid")
        if now > not_after:
            raise Rejected(codec.ERR_REJECTED, "expired")
        if core.is_ca:
            raise Rejected(codec.ERR_REJECTED, "is_ca", "a CA certificate is not a device's")
        try:
            core_x509.check_role(core, core_x509.ROLE_DEVICE)
        except CertificateError as e:
            raise Rejected(codec.ERR_REJECTED, "not_device_role", str(e)) from None
        if core.key_type not in suites.STATIC_KEY_TYPE.values():
            raise Rejected(codec.ERR_REJECTED, "key_type",
                           "key type %s serves no suite" % core.key_type)
        return VerifiedCert(core, not_after)


def fits_suite(key_type: str, suite: int) -> bool:
    return suites.STATIC_KEY_TYPE.get(suite) == key_type
