# host_server.server_b.dispatch: routes every datagram B receives to the core's state machines.
# The parts: host_server.server_b.plumbing (shared state, sending), .admission (m1),
# .delivery (m3 and records); this module owns the entry point and the timers.
#   fragment / ack  -> the peer address's FragmentLink (PROTOCOL.md §3.6); a message
#                      that reassembles is routed as if it had arrived whole; with
#                      fragment_resend N, a long message leaves N fragments at a time
#                      (first send, then per ack); once m3 is in, m2's are forgotten
#   m1              -> by SHA-256 of the m1 bytes: a duplicate from ANY address reaches
#                      the same Responder (identical m2) or the error it was refused with,
#                      answered at most duplicate_answers times; a new m1 gets a new
#                      Responder (timestamp and suite checks in the core); an ID not in
#                      the CS's ID set is answered UNKNOWN_ID there, keeping nothing;
#                      else the credential pipeline; a CS lookup is a task
#   m3              -> the handshakes whose m2 went to this address with this 5-bit hint,
#                      trial-decrypted in turn
#   record          -> the sessions with this SID, trial-decrypted in turn
# Anything else, or anything that fails, is dropped silently and counted. Application
# data goes to the sink; its reply returns encrypted in the session. Owns the timers.
# Every datagram out passes the amplification bound (host_server.server_b.amplify). A
# revocation (Credentials.on_revoke -> Plumbing.revoke) drops the ID's sessions and handshakes.
from __future__ import annotations


from airshake import codec
from airshake.errors import AirshakeError
from host_server.server_b.tables import Addr

from host_server.server_b.admission import Admission
from host_server.server_b.delivery import Delivery
from host_server.server_b.plumbing import DONE_LINGER, ERROR_LINGER, SESSION_SWEEP, _drain  # noqa: F401


class Dispatcher(Admission, Delivery):
    # -- entry point ------------------------------------------------------------------
    def datagram(self, data: bytes, addr: Addr, relayed: bool = False) -> None:
        """One datagram from addr; relayed: forwarded by a sibling worker (never
        forwarded again)."""
        now = self.clock()
        if not data:
            self.metrics.datagram("empty", "dropped")
            return
        self.amp.received(addr, len(data))   # relayed too: this worker may answer it
        kind = codec.message_type(data)
        if kind == codec.TYPE_FRAGMENT or kind == codec.TYPE_FRAGMENT_ACK:
            try:
                message, back = self._link(addr).incoming(data, now)
            except AirshakeError:
                self.metrics.datagram(codec.kind_name(data), "dropped")
                return
            for frame in back:
                if self._allowed(addr, len(frame)):
                    self._sendto(frame, addr)
            self.metrics.datagram(codec.kind_name(data), "ok")
            if message is None:
                return
            if not message:
                self.metrics.datagram("reserved", "dropped")
                return
            data, kind = message, codec.message_type(message)
            if kind in (codec.TYPE_FRAGMENT, codec.TYPE_FRAGMENT_ACK):
                self.metrics.datagram("fragment", "dropped")
                return
        if kind == codec.TYPE_M1:
            self._on_m1(data, addr, now)
        elif kind == codec.TYPE_M3:
            self._on_m3(data, addr, now, relayed)
        elif kind == codec.TYPE_RECORD:
            self._on_record(data, addr, now, relayed)
        else:
            self.metrics.datagram(codec.kind_name(data), "dropped")

    # -- timers -----------------------------------------------------------------------
    def tick(self) -> None:
        now = self.clock()
        for hs in self.handshakes.due(now):
            res = hs.responder
            if res is not None and (res.waiting_credential or res.waiting_m3):
                reason = "no_m3" if res.waiting_m3 else "no_credential"
                res.handle_timer(now)
                _drain(res)
                self._outcome(hs, "failed", reason)
            self.handshakes.remove(hs)
        self.errors.expire(now)
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_every
            self.sessions.sweep(now)
