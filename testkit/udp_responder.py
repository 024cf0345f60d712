"""testkit/udp_responder.py: a minimal UDP responder B on CPython for cross-runtime
tests: the core's Responder (pyca backend) answering with the fixture certificates.
Handshakes are keyed by peer address; records go to the session of that peer and are
answered "pong". The real server B (host_server/) replaces this in the server tests."""
from airshake import codec, events as ev
from airshake.crypto import load_backend
from airshake.responder import Responder

from testkit import hs_support
from testkit.udp_thread import UdpThread


class FixtureResponder(UdpThread):
    def __init__(self, now, **config):
        """config: ResponderConfig settings (accept_early=True for 0-RTT: off by default)."""
        self.backend = load_backend("pyca")
        self.now = now
        self.config = hs_support.config(self.backend, **config)
        self.certs = {}
        for suite in (0, 1, 2):
            key = hs_support.device_key(self.backend, suite)
            self.certs[key.id_a] = hs_support.cert(suite, "device_cert")
        UdpThread.__init__(self, timeout=0.2)
        self.peers = {}        # addr -> (m1 bytes, Responder)
        self.completed = []

    def handle(self, data, addr):
        m1, res = self.peers.get(addr, (None, None))
        # a new (different) m1 from a peer starts a new handshake; a duplicate goes to
        # the pending one, which answers with the identical m2
        if res is None or (codec.message_type(data) == codec.TYPE_M1 and m1 != data):
            res = Responder(self.config, self.now)
            self.peers[addr] = (data, res)
        res.receive(data, self.now)
        while (e := res.next_event()) is not None:
            if isinstance(e, ev.NeedCredential):
                if e.id_a in self.certs:
                    res.provide_credential(self.certs[e.id_a], self.now)
                else:
                    res.reject_credential(codec.ERR_UNKNOWN_ID)
            elif isinstance(e, (ev.Dropped, ev.Refused)):
                # the test inspects refusals (a bad G_X, a stale m1) through completed
                self.completed.append(("error", type(e.error).__name__))
            elif isinstance(e, ev.HandshakeComplete):
                self.completed.append(("ok", e.session.sid.hex()))
            elif isinstance(e, ev.DataReceived) and e.data == b"ping":
                res.send(b"pong")
        if res.confirm_due:
            res.send(b"")                     # B confirms m3 with its first record
        for out in res.datagrams_to_send(self.now):
            self.sock.sendto(out, addr)
