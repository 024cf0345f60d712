"""tests/host/udp_responder.py: a minimal UDP responder B on CPython for cross-runtime
tests: the core's Responder (pyca backend) answering with the fixture certificates.
Handshakes are keyed by peer address; records go to the session of that peer and are
answered "pong". The real server B (host_server/) replaces this in the server tests."""
from airshake import codec, events as ev
from airshake.crypto import load_backend
from airshake.responder import Responder

import hs_support
from udp_thread import UdpThread


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
        self.peers = {}
        self.completed = []

    def handle(self, data, addr):
        res = self.peers.get(addr)
        # a new (different) m1 from a peer starts a new handshake; a duplicate goes to
        # the pending one, which answers with the identical m2
        if res is None or (data[0] >> 5 == 0 and getattr(res, "_m1", None) != data):
            res = self.peers[addr] = Responder(self.config, self.now)
        try:
            res.receive(data, self.now)
        except Exception as e:  # the test inspects failures through completed/peers
            self.completed.append(("error", type(e).__name__))
        while (e := res.next_event()) is not None:
            if isinstance(e, ev.NeedCredential):
                if e.id_a in self.certs:
                    try:
                        res.provide_credential(self.certs[e.id_a], self.now)
                    except Exception as exc:  # a bad G_X: the core refuses, we record it
                        self.completed.append(("error", type(exc).__name__))
                else:
                    res.reject_credential(codec.ERR_UNKNOWN_ID)
            elif isinstance(e, ev.HandshakeComplete):
                self.completed.append(("ok", e.session.sid.hex()))
            elif isinstance(e, ev.DataReceived) and e.data == b"ping":
                res.send(b"pong")
        for out in res.datagrams_to_send(self.now):
            self.sock.sendto(out, addr)
