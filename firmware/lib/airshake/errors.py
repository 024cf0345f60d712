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

from airshake.const import const

# wire codes of the error message (PROTOCOL.md §6)
ERR_STALE_TIME = const(1)
ERR_UNSUPPORTED_SUITE = const(2)
ERR_UNKNOWN_ID = const(3)
ERR_REVOKED = const(4)
ERR_TRY_LATER = const(5)
ERR_UNSUPPORTED_VERSION = const(6)
ERR_REJECTED = const(7)


class AirshakeError(Exception):
    """Root of every error caused by remote input."""
    code = 0


class UsageError(Exception):
    """The local caller used the API wrongly (not caused by remote input)."""


class BackendError(Exception):
    """A crypto backend failed its known-answer self-tests or lacks a primitive."""


# The typed errors of remote input: each class is made on first use by the module's
# __getattr__ (PEP 562; MicroPython too) and then kept here like any class, so that
# `from airshake.errors import DecodeError`, `errors.DecodeError` and pickling all give
# the one class. A class costs about 130 bytes of a device's RAM even when frozen, and a
# device that meets no bad input never needs these: the core names them where it raises
# or catches them (errors.DecodeError), not at import. (name, base ("": AirshakeError),
# code):
_ON_FIRST_USE = (
    # malformed bytes: wrong length, unknown type, bad field
    ("DecodeError", "", 16),
    ("UnsupportedVersion", "", ERR_UNSUPPORTED_VERSION),
    ("UnsupportedSuite", "", ERR_UNSUPPORTED_SUITE),
    # a MAC, AEAD tag or signature did not verify
    ("AuthenticationFailed", "", 17),
    # a public key that is not on the curve, or of low order
    ("InvalidPoint", "AuthenticationFailed", 18),
    # a certificate that is malformed, expired, from the wrong CA or of the wrong key
    # type; on the wire (B rejecting C_A) it is the code REJECTED
    ("CertificateError", "", ERR_REJECTED),
    # a record or 0-RTT message seen before, or outside the replay window
    ("ReplayError", "", 19),
    # a well-formed message that the state machine does not expect now
    ("UnexpectedMessage", "", 20),
    # B's refusals of an m1: A only ever reads their codes from B's error message
    ("StaleTimestamp", "", ERR_STALE_TIME),
    ("UnknownIdentity", "", ERR_UNKNOWN_ID),
    ("RevokedIdentity", "", ERR_REVOKED),
    ("TryLater", "", ERR_TRY_LATER),
)


def __getattr__(name):
    if name == "WIRE_NAMES":
        # the label of each wire code (logs, metrics, the device's log lines)
        made = {ERR_STALE_TIME: "stale_time", ERR_UNSUPPORTED_SUITE: "unsupported_suite",
                ERR_UNKNOWN_ID: "unknown_id", ERR_REVOKED: "revoked",
                ERR_TRY_LATER: "try_later", ERR_UNSUPPORTED_VERSION: "unsupported_version",
                ERR_REJECTED: "rejected"}
    else:
        for known, base, code in _ON_FIRST_USE:
            if known == name:
                break
        else:
            raise AttributeError(name)
        base = (globals().get(base) or __getattr__(base)) if base else AirshakeError
        made = type(name, (base,), {"code": code})
    globals()[name] = made
    return made
