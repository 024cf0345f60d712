# airshake.endpoint: the sans-I/O plumbing both roles share (after aioquic's connection
# API): an outbound datagram queue, an event queue, one timer deadline, the state
# variable and the one error boundary.
# Rules (the contract of every role):
#   receive(datagram, now)  feeds one datagram from the peer. It never raises for what
#                           the peer sent: refused input becomes an event (Dropped,
#                           Refused); UsageError only for misuse of the API.
#   datagrams_to_send(now)  every datagram to put on the link now, in order. It only
#                           empties the queue: no state changes, nothing sealed here.
#   send(data)              application data in the session (UsageError before keys).
#   timer(), handle_timer(now)
#                           when handle_timer() is due (same clock as now), and the
#                           retransmission or expiry it does then.
#   next_event()            the oldest event not yet taken (airshake.events), or None.
# The state moves only through _goto(), which checks it against the role's table of
# transitions (a move the table does not list is a bug in the core: AssertionError).
from airshake import codec
from airshake import events as ev
from airshake.errors import AirshakeError


class Endpoint:
    STATE_NAMES = ()        # each role names its states, by number
    TRANSITIONS = {}        # state -> the states it may move to (a dict, or a tuple by state)

    def __init__(self, state):
        self._events = []
        self._out = []
        self._deadline = None
        self._state = state

    @property
    def state(self):
        """The state number (the role's module constants name them)."""
        return self._state

    def state_name(self):
        return self.STATE_NAMES[self._state]

    def _goto(self, state):
        if state != self._state and state not in self.TRANSITIONS[self._state]:
            raise AssertionError("%s: %s -> %s is not a transition"
                                 % (type(self).__name__, self.STATE_NAMES[self._state],
                                    self.STATE_NAMES[state]))
        self._state = state

    def _guard(self, fn, datagram, now):
        """The error boundary: run fn(datagram, now); an AirshakeError (remote input the
        core refuses) becomes a Dropped event."""
        try:
            fn(datagram, now)
        except AirshakeError as e:
            self._events.append(ev.Dropped(e, codec.kind_name(datagram)))

    def datagrams_to_send(self, now):
        """Every datagram to put on the link now, in order."""
        out, self._out = self._out, []
        return out

    def next_event(self):
        """The oldest event not yet taken, or None."""
        return self._events.pop(0) if self._events else None

    def timer(self):
        """When handle_timer() must be called next (same clock as `now`), or None."""
        return self._deadline
