# airshake.errors: the one error tree of the protocol core, and the one table of error
# codes (docs/PROTOCOL.md §6).
# Rules: every error caused by remote input derives from AirshakeError and carries a
# code. Codes 1..15 are wire codes that B may send in an error message (ERR_* below, named
# in WIRE_NAMES); codes 16 and up are local and never leave the process.
# Remote errors never escape the roles' public methods: Initiator/Responder turn them into
# events (events.Dropped, events.Refused). What the caller may still see raised is
# UsageError (API misuse, a separate root, so a caller can never confuse the two) and
# BackendError. Single inheritance only (MicroPython cannot subclass two built-in
# exceptions).

# wire codes of the error message (PROTOCOL.md §6)
ERR_STALE_TIME = 1
ERR_UNSUPPORTED_SUITE = 2
ERR_UNKNOWN_ID = 3
ERR_REVOKED = 4
ERR_TRY_LATER = 5
ERR_UNSUPPORTED_VERSION = 6
ERR_REJECTED = 7
# the label of each (logs, metrics, the device's log lines)
WIRE_NAMES = {ERR_STALE_TIME: "stale_time", ERR_UNSUPPORTED_SUITE: "unsupported_suite",
              ERR_UNKNOWN_ID: "unknown_id", ERR_REVOKED: "revoked",
              ERR_TRY_LATER: "try_later", ERR_UNSUPPORTED_VERSION: "unsupported_version",
              ERR_REJECTED: "rejected"}


class AirshakeError(Exception):
    """Root of every error caused by remote input."""
    code = 0


class DecodeError(AirshakeError):
    """Malformed bytes: wrong length, unknown type, bad field."""
    code = 16


class UnsupportedVersion(AirshakeError):
    code = ERR_UNSUPPORTED_VERSION


class UnsupportedSuite(AirshakeError):
    code = ERR_UNSUPPORTED_SUITE


# B's refusals of an m1, made on first use by the module's __getattr__ (PEP 562; MicroPython
# too), then kept here like any class: A only ever reads their codes from B's error message,
# and a class costs about 120 bytes of a device's RAM even when frozen.
_ON_FIRST_USE = {"StaleTimestamp": ERR_STALE_TIME, "UnknownIdentity": ERR_UNKNOWN_ID,
                 "RevokedIdentity": ERR_REVOKED, "TryLater": ERR_TRY_LATER}


def __getattr__(name):
    if name not in _ON_FIRST_USE:
        raise AttributeError(name)
    cls = type(name, (AirshakeError,), {"code": _ON_FIRST_USE[name]})
    globals()[name] = cls
    return cls


class AuthenticationFailed(AirshakeError):
    """A MAC, AEAD tag or signature did not verify."""
    code = 17


class InvalidPoint(AuthenticationFailed):
    """A public key that is not on the curve, or of low order."""
    code = 18


class CertificateError(AirshakeError):
    """A certificate that is malformed, expired, from the wrong CA or of the wrong key
    type. On the wire (B rejecting C_A) it is the code REJECTED."""
    code = ERR_REJECTED


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
