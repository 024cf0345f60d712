# host_server.server_b.verify: checks a device certificate C_A fetched from the CS before B
# hands it to the core: issued by the configured CA (issuer name and signature, with
# pyca), valid now, not a CA, of the device role (airshake.x509.check_role: clientAuth,
# not serverAuth, keyUsage allowing the key's use), not revoked, of the key type the
# chosen suite needs, and its full SPKI hash starting with ID_A. The core re-checks the
# last two; the rest is B's job (PROTOCOL.md §7.2 WAIT_CRED).
from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509 as pyx509
from cryptography.exceptions import InvalidSignature

from airshake import codec, suites
from airshake import x509 as core_x509
from airshake.errors import CertificateError
from airshake.keys import identifier
from host_server.server_b.cache import RevokedSet


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
    def __init__(self, ca: pyx509.Certificate, id_len: int) -> None:
        self.ca = ca
        self.id_len = id_len
        self._ca_not_before = ca.not_valid_before_utc.timestamp()
        self._ca_not_after = ca.not_valid_after_utc.timestamp()

    def verify(self, der: bytes, id_a: bytes, now: float,
               revoked: RevokedSet | None = None) -> VerifiedCert:
        """VerifiedCert, or Rejected. The suite is checked per handshake (key_suites)."""
        if revoked is not None and id_a in revoked:
            raise Rejected(codec.ERR_UNKNOWN_ID, "revoked")   # as unknown (item 10)
        try:
            core = core_x509.parse_certificate(der)
            cert = pyx509.load_der_x509_certificate(der)
        except (CertificateError, ValueError) as e:
            raise Rejected(codec.ERR_REJECTED, "malformed", str(e)) from None
        if len(id_a) != self.id_len or identifier(core.spki, self.id_len) != id_a:
            raise Rejected(codec.ERR_REJECTED, "id_mismatch",
                           "the certificate's key does not hash to the ID")
        try:
            cert.verify_directly_issued_by(self.ca)
        except (ValueError, TypeError, InvalidSignature) as e:
            raise Rejected(codec.ERR_REJECTED, "wrong_ca", str(e) or type(e).__name__) from None
        if not self._ca_not_before <= now <= self._ca_not_after:
            raise Rejected(codec.ERR_REJECTED, "ca_expired", "the CA certificate is not valid now")
        not_before = cert.not_valid_before_utc.timestamp()
        not_after = cert.not_valid_after_utc.timestamp()
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
