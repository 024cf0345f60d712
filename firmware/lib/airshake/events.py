# airshake.events: what the roles report to their caller through next_event().
# Rules: plain value objects; every event a role can emit is listed here.


class Event:
    def __repr__(self):
        return "<%s %r>" % (type(self).__name__, self.__dict__)


class NeedCredential(Event):
    """B must find C_A for id_a and answer provide_credential / reject_credential."""

    def __init__(self, id_a, suite):
        self.id_a = id_a
        self.suite = suite


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


class EarlyData(Event):
    """B: 0-RTT data from m1, authenticated but not forward-secret (PROTOCOL.md §4.3)."""

    def __init__(self, id_a, data):
        self.id_a = id_a
        self.data = data


class DataReceived(Event):
    def __init__(self, data, seq):
        self.data = data
        self.seq = seq


class ClockSet(Event):
    """A: B's time, authenticated by MAC_2/SIG_2; the caller sets its RTC to it."""

    def __init__(self, server_time):
        self.server_time = server_time


class ServerRejected(Event):
    """A: B answered with an error message (unauthenticated; see PROTOCOL.md §6)."""

    def __init__(self, code, retry_after=None):
        self.code = code
        self.retry_after = retry_after


class HandshakeFailed(Event):
    """The handshake ended without keys: retries exhausted, or a final error."""

    def __init__(self, reason, code=0):
        self.reason = reason
        self.code = code
