# host_server.server_b.delivery: what B does with an m3 and with records (PROTOCOL.md §3.3, §5).
# m3 goes to the handshakes whose m2 went to this address with this 5-bit hint,
# trial-decrypted in turn; a completed handshake becomes a session, its data goes to the
# sink and the sink's reply rides in B's first record (the one that confirms m3). A record
# goes to the sessions with its SID, trial-decrypted in turn; its data to the sink, the
# reply back in the session. What no handshake or session takes may be a sibling
# worker's (host_server.server_b.relay) or is dropped and counted.
from __future__ import annotations


from collections.abc import Sequence

from airshake import codec
from airshake import events as ev
from airshake.errors import AirshakeError, ReplayError
from host_server.server_b.tables import (Addr, Conn, Handshake)

from host_server.server_b.plumbing import Plumbing, _drain


class Delivery(Plumbing):
    # -- m3 ---------------------------------------------------------------------------
    def _on_m3(self, m3: bytes, addr: Addr, now: float, relayed: bool = False) -> None:
        done = self.handshakes.duplicate(m3, addr)
        if done is not None:
            self.metrics.datagram("m3", "duplicate")
            if done.ack is not None:           # the identical first record again
                self.send(done.ack, addr)
            return
        for hs in self.handshakes.candidates(addr, codec.m3_hint(m3)):
            res = hs.responder
            if res is None or not res.waiting_m3:
                continue
            res.receive(m3, now)
            if not res.complete:               # another handshake's m3: Dropped
                _drain(res)
                continue
            self.metrics.datagram("m3", "ok")
            self._complete(hs, m3, addr, now)
            return
        if not relayed and self.relay is not None and self.relay.forward(m3, addr) > 0:
            self.metrics.datagram("m3", "relayed")    # a sibling may hold its handshake
            return
        self.metrics.datagram("m3", "dropped")

    def _complete(self, hs: Handshake, m3: bytes, addr: Addr, now: float) -> None:
        res = hs.responder
        assert res is not None
        self.handshakes.completed(hs, m3)
        hs.confirming = True
        data = b""
        done = None
        for e in _drain(res):
            if isinstance(e, ev.HandshakeComplete):
                done = e
            elif isinstance(e, ev.DataReceived):
                data = e.data
        assert done is not None
        self.amp.prove(addr)
        self.creds.proven.add(done.id_a, addr[0])
        conn = Conn(done.session, done.id_a, addr, now)
        evicted = self.sessions.add(conn)
        if evicted:
            self.log.warning("sessions_evicted", count=evicted)
        self.completed += 1
        self.handshakes.set_timer(hs, now + self.done_linger)
        self._forget_sent(hs.addrs)
        self._outcome(hs, "ok", "complete", early=done.early_accepted, data=len(data),
                      peer=addr)
        if data or hs.early is not None:
            self._spawn(self._confirm(hs, conn, data))
        else:
            self._send_first(hs, conn, [])

    # The table holds a new session until B's first record is sealed, and a session
    # across every await that ends in a seal (SessionTable: never frozen while held).

    def _forget_sent(self, addrs: Sequence[Addr]) -> None:
        """m3 is in, so A holds m2: B answers no more fragment acks for it (a late ack
        would put stale fragments ahead of B's confirming record). The addresses' links
        go, unless one holds part of an inbound message."""
        for addr in addrs:
            link = self.links.get(addr)
            if link is not None and not link.has_partial():
                del self.links[addr]

    async def _confirm(self, hs: Handshake, conn: Conn, data: bytes) -> None:
        replies: list[bytes] = []
        try:
            if hs.early is not None:
                reply = await hs.early
                if reply:
                    replies.append(reply)
            if data:
                reply = await self._store(conn.id_a, conn.session.sid, 0, data, "m3")
                if reply:
                    replies.append(reply)
        except BaseException:
            self.sessions.release(conn)
            raise
        self._send_first(hs, conn, replies)

    def _send_first(self, hs: Handshake, conn: Conn, replies: list[bytes]) -> None:
        res, now = hs.responder, self.clock()
        assert res is not None
        try:
            for reply in replies:
                res.send(reply)
            if res.confirm_due:
                res.send(b"")                  # B confirms m3 even with nothing to say
        finally:
            self.sessions.release(conn)
        hs.confirming = False
        out = self._flush(hs, [conn.addr], now)
        # while it lingers (done_linger) the handshake answers a retransmitted m3 with
        # this record and needs nothing else: the Responder and its Session go (the
        # session lives on in the SessionTable), so a lingering handshake is one object
        hs.ack = out[0] if out else None
        hs.responder = None
        hs.early = None
        hs.m1 = b""                    # only the shared replay cache used it, before m2

    # -- records ------------------------------------------------------------------------
    def _on_record(self, record: bytes, addr: Addr, now: float,
                   relayed: bool = False) -> None:
        try:
            _epoch, sid, _seq, _head, _body = codec.decode_record(record)
        except AirshakeError:
            self.metrics.datagram("record", "dropped")
            return
        for conn in self.sessions.get(sid):
            session = conn.session
            if now - session.created > session.max_age:
                self.sessions.remove(conn)
                continue
            try:
                seq, data = session.open(record)
            except ReplayError:
                self.metrics.datagram("record", "replay")
                return
            except AirshakeError:
                continue
            if conn.addr != addr:
                self.amp.prove(addr)
            conn.addr, conn.last = addr, now
            conn.records += 1
            self.sessions.touch(sid)
            self.metrics.datagram("record", "ok")
            if data:
                self.sessions.hold(conn)
                self._spawn(self._deliver(conn, seq, data))
            return
        if not relayed and self.relay is not None and self.relay.forward(record, addr) > 0:
            self.metrics.datagram("record", "relayed")  # a sibling may hold the session
            return
        self.metrics.datagram("record", "dropped")

    async def _deliver(self, conn: Conn, seq: int, data: bytes) -> None:
        try:
            reply = await self._store(conn.id_a, conn.session.sid, seq, data, "record")
            if reply and not conn.session.expired(self.clock()):
                self.send(conn.session.seal(reply), conn.addr)
        finally:
            self.sessions.release(conn)
