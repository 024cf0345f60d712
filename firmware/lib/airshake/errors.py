# airshake.errors: the one error tree of the protocol core.
# Rules: every error caused by remote input derives from AirshakeError and carries a
# code. Codes 1..15 are wire codes that B may send in an error message
# (docs/PROTOCOL.md §6); codes 16 and up are local and never leave the process.
# API misuse by the local caller is UsageError, a separate root, so a caller can
# never confuse the two.
# Single inheritance only (MicroPython cannot subclass two built-in exceptions).


class AirshakeError(Exception):
    """Root of every error caused by remote input."""
    code = 0


class DecodeError(AirshakeError):
    """Malformed bytes: wrong length, unknown type, bad field."""
    code = 16


class UnsupportedVersion(AirshakeError):
    code = 6


class UnsupportedSuite(AirshakeError):
    code = 2


class StaleTimestamp(AirshakeError):
    code = 1


class UnknownIdentity(AirshakeError):
    code = 3


class RevokedIdentity(AirshakeError):
    code = 4


class TryLater(AirshakeError):
    code = 5


class AuthenticationFailed(AirshakeError):
    """A MAC, AEAD tag or signature did not verify."""
    code = 17


class InvalidPoint(AuthenticationFailed):
    """A public key that is not on the curve, or of low order."""
    code = 18


class CertificateError(AirshakeError):
    """A certificate that is malformed, expired, from the wrong CA or of the wrong key
    type. On the wire (B rejecting C_A) it is the code REJECTED."""
    code = 7


class ReplayError(AirshakeError):
    """A record or 0-RTT message seen before, or outside the replay window."""
    code = 19


class UnexpectedMessage(AirshakeError):
    """A well-formed message that the state machine does not expect now."""
    code = 20


class UsageError(Exception):
    """The local caller used the API wrongly (not caused by remote input)."""


class BackendError(Exception):
    """A crypto backend failed its known-answer self-tests or lacks a primitive."""
