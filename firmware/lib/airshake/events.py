# airshake.events: what the roles report to their caller through next_event().
# Rules: plain value objects; every event a role can emit is listed here. Remote input
# that the core refuses never raises out of receive() or provide_credential(): it becomes
# Dropped (nothing sent) or Refused (B queued an error message), so the caller learns
# what happened from the event, never from an exception's type.


class Event:
    def __repr__(self):
        return "<%s %r>" % (type(self).__name__, self.__dict__)


class HandshakeComplete(Event):
    """Keys are established. On A: after a valid m2 (m3 is on its way).
    On B: after a valid m3. early_accepted: whether B took the 0-RTT data."""

    def __init__(self, session, id_a, early_accepted=False):
        self.session = session
        self.id_a = id_a
        self.early_accepted = early_accepted


class HandshakeConfirmed(Event):
    """A: B's first record arrived, so B holds the session (m3 was received)."""

    def __init__(self, session):
        self.session = session


class DataReceived(Event):
    def __init__(self, data, seq):
        self.data = data
        self.seq = seq


# The events of a handshake that goes wrong or is not A's: made on first use by the
# module's __getattr__ (PEP 562; MicroPython too) and then kept here like the others, so
# `from airshake.events import Dropped` and `events.Dropped` give the one class. A class
# costs about 150 bytes of a device's RAM even when frozen; a device on a good wake emits
# only the three above (and ClockSet when B sets its clock), and B's are never A's.
def _on_first_use(name):
    if name == "ClockSet":
        class ClockSet(Event):
            """A: B's time, authenticated by MAC_2/SIG_2; the caller sets its RTC to it."""

            def __init__(self, server_time):
                self.server_time = server_time
        return ClockSet
    if name == "ServerRejected":
        class ServerRejected(Event):
            """A: B answered with an error message (unauthenticated; see PROTOCOL.md §6)."""

            def __init__(self, code, retry_after=None):
                self.code = code
                self.retry_after = retry_after
        return ServerRejected
    if name == "HandshakeFailed":
        class HandshakeFailed(Event):
            """The handshake ended without keys: retries exhausted, or a final error."""

            def __init__(self, reason, code=0):
                self.reason = reason
                self.code = code
        return HandshakeFailed
    if name == "Dropped":
        class Dropped(Event):
            """A datagram (or the credential step) was refused and nothing was sent: error
            is the AirshakeError saying why (error.code: airshake.errors), kind the
            message's log label ("m1", "m2", "record", ...). The role's state did not move,
            except where it ended the handshake (then the role's `ended` is true): an
            authenticated 0-RTT m1 seen before, or a G_X or 0-RTT tag that failed only once
            C_A was known."""

            def __init__(self, error, kind):
                self.error = error
                self.kind = kind
        return Dropped
    if name == "NeedCredential":
        class NeedCredential(Event):
            """B must find C_A for id_a and answer provide_credential / reject_credential."""

            def __init__(self, id_a, suite):
                self.id_a = id_a
                self.suite = suite
        return NeedCredential
    if name == "EarlyData":
        class EarlyData(Event):
            """B: 0-RTT data from m1, authenticated but not forward-secret (PROTOCOL.md §4.3)."""

            def __init__(self, id_a, data):
                self.id_a = id_a
                self.data = data
        return EarlyData
    if name == "Refused":
        class Refused(Event):
            """B: the handshake ended at m1 and an error message with wire code `code`
            (airshake.errors.ERR_*) is queued for A (PROTOCOL.md §6): a stale timestamp, a suite
            B does not select, a later version, or a C_A that the core rejected. error: the
            AirshakeError behind it (None when the caller chose it with reject_credential)."""

            def __init__(self, code, error=None):
                self.code = code
                self.error = error
        return Refused
    raise AttributeError(name)


def __getattr__(name):
    cls = _on_first_use(name)
    globals()[name] = cls
    return cls
