# airshake.endpoint: the sans-I/O plumbing both roles share (after aioquic's connection
# API): an outbound datagram queue, an event queue and one timer deadline. The roles
# add receive(), handle_timer() and their state machines.


class Endpoint:
    def __init__(self):
        self._events = []
        self._out = []
        self._deadline = None

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
