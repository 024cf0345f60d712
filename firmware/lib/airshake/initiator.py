# airshake.initiator: device A's side of the handshake, sans-I/O (docs/PROTOCOL.md §7.1).
# States: IDLE -> WAIT_M2 -> WAIT_ACK -> CONFIRMED, or FAILED. The retransmission timers
# live here: m1 is resent until m2 arrives, m3 until B's first record arrives.
# Rules: bad remote input leaves the state unchanged and becomes a Dropped event (the
# error boundary is endpoint.Endpoint; nothing from the peer raises out of receive());
# only authenticated input moves the state forward, except
# the error messages of PROTOCOL.md §6, which match the current m1 by reference and can
# only do what §6.1 allows an unauthenticated message: a new m1 that offers every suite A
# holds, a timestamp from B's stated time (never A's confirmed clock), a bounded wait.
# A accepts as C_B only a server certificate of the name it is pinned to (§2.3).
from airshake import codec, suites, transcript, schedule
from airshake.const import const
from airshake import events as ev
from airshake.suites import PREFERENCE
from airshake.keys import ServerRef
from airshake.session import Session, ROLE_INITIATOR
from airshake.consttime import equal
from airshake.endpoint import Endpoint
from airshake import errors
from airshake.errors import UsageError

__all__ = ("Initiator", "IDLE", "WAIT_M2", "WAIT_ACK", "CONFIRMED", "FAILED",
           "MAX_UNAUTH_RETRY_S")

IDLE = const(0)
WAIT_M2 = const(1)
WAIT_ACK = const(2)
CONFIRMED = const(3)
FAILED = const(4)

# the longest wait an unauthenticated TRY_LATER can impose on A (PROTOCOL.md §6.1)
MAX_UNAUTH_RETRY_S = 900


def _cert_der(flags, cert):
    """C_B's DER from m2 (§3.2): a C509 certificate is turned back into the exact DER it
    was made from. airshake.c509 is loaded only here and let go at once, before x509
    checks the DER: the two never share a device's heap."""
    if not flags & codec.M2_C509:
        return cert
    from airshake import c509
    try:
        return c509.decode(cert)
    finally:
        del c509
        from airshake.ram import release
        release("airshake.c509")


class Initiator(Endpoint):
    STATE_NAMES = ("IDLE", "WAIT_M2", "WAIT_ACK", "CONFIRMED", "FAILED")
    # by state number: a constant (the states are const), in a frozen firmware's flash
    TRANSITIONS = ((WAIT_M2,), (WAIT_ACK, FAILED), (CONFIRMED, FAILED), (), ())

    def __init__(self, backend, keys, anchor, server=None, id_len=8, rto=2.0,
                 max_retries=4, server_name=None, clock_trusted=True,
                 max_records=1000, max_age=7 * 86400, short_m1=True):
        """keys: DeviceKey list (one per suite A supports); anchor: the CA certificate
        (DER) that C_B must chain to; server_name: the pin, B's name (the CN of C_B, or
        its subject Name DER), required; server: a ServerRef A verified before, or None
        (one that fails the role or name check is dropped: C_B then comes by value).
        clock_trusted: A's clock was confirmed by an authenticated m2 (or is an RTC
        that A trusts); an unauthenticated STALE_TIME never moves a trusted clock.
        short_m1: send m1 in its short form (PROTOCOL.md §3.1: 3 bytes fewer) whenever it
        can say all: one suite offered, C_B held, the clock confirmed."""
        if not keys:
            raise UsageError("Initiator needs at least one DeviceKey")
        if server_name is None:
            raise UsageError("Initiator needs server_name, the name of its B (the pin)")
        if server is not None:
            try:
                server.check_pin(server_name)
            except errors.CertificateError:
                server = None
        self.backend = backend
        self.keys = dict((k.suite, k) for k in keys)
        self.anchor = anchor
        self.server = server
        self.id_len = id_len
        self.rto = rto
        self.max_retries = max_retries
        self.server_name = server_name
        self.clock_trusted = clock_trusted
        self.short_m1 = short_m1
        self.clock_offset = 0
        self._stamp_offset = None   # B's unauthenticated time, for m1 timestamps only
        self.limits = (max_records, max_age)
        Endpoint.__init__(self, IDLE)
        self.session = None
        self._retries = 0
        self._switches = 0
        self._suite = self._first_suite(0x0F)
        # the attributes the handshake sets later, set now: the instance's dict reaches its
        # size here, not mid-handshake (a 296-byte block at the peak of a device's heap)
        self._data = b""
        self._want_early = False
        self._eph = self._ref = self._th1 = self._m1 = self._m1_hash = self._m3 = None
        self._m1_flags = 0

    # -- public API -------------------------------------------------------------------
    @property
    def complete(self):
        """Keys are established (m3 is out): send() works."""
        return self._state in (WAIT_ACK, CONFIRMED)

    @property
    def confirmed(self):
        """B's first record arrived: B holds the session."""
        return self._state == CONFIRMED

    @property
    def ended(self):
        """The handshake failed (HandshakeFailed was emitted); nothing more will happen."""
        return self._state == FAILED

    def connect(self, now, data=b"", early=False):
        """Start the handshake. data is the first application data: it rides in m3,
        or in m1 as 0-RTT data when early=True and A holds C_B (PROTOCOL.md §4.3)."""
        if self._state != IDLE:
            raise UsageError("connect() called twice")
        self._data = data
        self._want_early = early
        self._start(now)

    def receive(self, datagram, now):
        """One datagram from B. Never raises for what B (or anyone) sent: refused input
        is a Dropped event; see airshake.endpoint for the whole contract."""
        self._guard(self._receive, datagram, now)

    def _receive(self, datagram, now):
        kind = codec.message_type(datagram)
        if kind == codec.TYPE_ERROR:
            self._on_error(codec.decode_error(datagram), now)
        elif kind == codec.TYPE_M2:
            if self._state == WAIT_M2:
                self._on_m2(datagram, now)
            elif not self.complete:
                raise errors.UnexpectedMessage("m2 when not waiting for it")
            # else: a duplicate m2 answering a retransmitted m1; m3 is already out
        elif kind == codec.TYPE_RECORD:
            self._on_record(datagram)
        else:
            raise errors.UnexpectedMessage("message type %d is not for A" % kind)

    def send(self, data, key_update=False):
        """Seal data as a record in the session (queued for datagrams_to_send)."""
        if not self.complete:
            raise UsageError("send() before the handshake completed")
        self._out.append(self.session.seal(data, key_update))

    def handle_timer(self, now):
        """Resend m1 (no m2 yet) or m3 (B has not confirmed it) when the timer is due, with
        exponential back-off; after max_retries the handshake fails."""
        if self._deadline is None or now < self._deadline:
            return
        self._retries += 1
        if self._retries > self.max_retries:
            what = "no m2 from B" if self._state == WAIT_M2 else "B never confirmed m3"
            self._fail(what + " after %d retries" % self.max_retries)
            return
        self._out.append(self._m1 if self._state == WAIT_M2 else self._m3)
        self._deadline = now + self.rto * (1 << min(self._retries, 4))  # at most 16 x rto

    # -- m1 (PROTOCOL.md §3.1) --------------------------------------------------------
    def _first_suite(self, mask):
        for s in PREFERENCE:
            if s in self.keys and mask & (1 << s):
                return s
        return None

    def _start(self, now):
        backend, suite = self.backend, self._suite
        key = self.keys[suite]
        server = self.server
        if server is not None and (server.suite != suite
                                   or server.not_after < now + self.clock_offset):
            server = None
        self._ref = server
        flags = codec.M1_CB_KNOWN if server else 0
        stamp = self.clock_offset
        if self._stamp_offset is not None:
            stamp = self._stamp_offset
        if not self.clock_trusted or self._stamp_offset is not None:
            flags |= codec.M1_WANT_TIME
        early = self._want_early and server is not None and suites.uses_static_dh(suite)
        if early:
            flags |= codec.M1_EARLY
        offered = 0
        for s in self.keys:
            offered |= 1 << s
        if early:
            offered = 1 << suite
        self._eph, g_x = suites.ephemeral(backend, suite)
        m1 = codec.M1(flags, suite, offered, key.id_a, int(now + stamp), g_x)
        # on the air the short form where it says all (§3.1); the transcript always hashes
        # the long one, with the full timestamp (§4.1)
        m1.short = self.short_m1 and codec.short_m1_allowed(m1)
        self._th1 = transcript.th1(backend, codec.encode_m1(m1, canonical=True))
        if early:
            m1.early = self._seal_early(key, server)
        self._m1 = codec.encode_m1(m1)
        self._m1_hash = (self._th1 if not early
                         else backend.sha256(codec.encode_m1(m1, canonical=True)))
        self._m1_flags = flags
        self._out.append(self._m1)
        self._goto(WAIT_M2)
        self._deadline = now + self.rto
        self._retries = 0

    def _seal_early(self, key, server):
        curve = suites.ephemeral_curve(key.suite)
        es = suites.dh(self.backend, curve, self._eph, server.public)
        ss = suites.dh(self.backend, curve, key.private, server.public)
        k0, iv0 = schedule.early_keys(self.backend, self._th1, es, ss)
        return self.backend.aes_ccm_encrypt(k0, iv0, self._th1, self._data)

    # -- error messages (PROTOCOL.md §6) --------------------------------------------------
    def _on_error(self, err, now):
        if self._state != WAIT_M2 or not equal(err.ref, transcript.error_ref(
                self.backend, self._m1, self._th1, self.id_len)):
            raise errors.DecodeError("error message for another handshake")
        code = err.code
        if code == codec.ERR_STALE_TIME and self._switches < self.max_retries:
            if self.clock_trusted:
                # unauthenticated time: only the next m1's timestamp uses it (with
                # WANT_TIME, so m2 brings B's time under MAC_2); A's clock stays
                self._stamp_offset = err.server_time() - now
            else:
                self.clock_offset = err.server_time() - now
            return self._restart(code, now)
        if code == codec.ERR_UNSUPPORTED_SUITE and self._switches < self.max_retries:
            # only the choice moves: the new m1 offers every suite A holds (_start), so B's
            # re-check against the full offer undoes a forged mask (§6.1)
            suite = self._first_suite(err.body[0])
            if suite is not None:
                self._suite = suite
                self._want_early = False
                return self._restart(code, now)
        retry = None
        if code == codec.ERR_TRY_LATER:
            retry = min(err.retry_after(), MAX_UNAUTH_RETRY_S)
        self._events.append(ev.ServerRejected(code, retry))
        self._fail("B refused the handshake (error %d)" % code, code)

    def _restart(self, code, now):
        self._switches += 1
        self._events.append(ev.ServerRejected(code))
        self._start(now)

    # -- m2 -> m3 (PROTOCOL.md §3.2, §3.3, §4.2) -------------------------------------------
    def _server_for(self, m2, now):
        if m2.flags & codec.M2_CB_VALUE:
            return ServerRef.verified(self.backend, self._suite, m2.cert, self.anchor,
                                      now + self.clock_offset, self.server_name)
        if self._ref is None:
            raise errors.DecodeError("m2 refers to a C_B that A does not hold")
        return self._ref

    def _decode_m2(self, datagram):
        """m2, with C_B (when by value) as DER: a C509 C_B is turned back once (§3.2)."""
        key = self.keys[self._suite]
        der = []        # suite 1: C_B's DER, made when its key gave SIG_2's length
        if self._suite != suites.SUITE_RSA:
            m2 = codec.decode_m2(datagram, 0, lambda cert: codec.MAC_LEN)
        else:
            def sig_len(cert):
                if cert is not None:
                    der.append(_cert_der(datagram[0], cert))
                    return ServerRef(self.backend, self._suite, der[0]).public.size()
                return self._ref.public.size() if self._ref else 0
            m2 = codec.decode_m2(datagram, key.public.size(), sig_len)
        if m2.flags & codec.M2_CB_VALUE:
            m2.cert = der[0] if der else _cert_der(m2.flags, m2.cert)
        return m2

    def _on_m2(self, datagram, now):
        backend, suite, key = self.backend, self._suite, self.keys[self._suite]
        m2 = self._decode_m2(datagram)
        if m2.flags & codec.M2_EARLY_OK and not self._m1_flags & codec.M1_EARLY:
            raise errors.DecodeError("m2 accepts 0-RTT data that was not sent")
        server = self._server_for(m2, now)
        curve = suites.ephemeral_curve(suite)
        ee = suites.dh(backend, curve, self._eph, m2.g_y)
        time_bytes = datagram[1 + codec.KEY_LEN:5 + codec.KEY_LEN] \
            if m2.flags & codec.M2_TIME else b""
        th2 = transcript.th2(backend, self._m1_hash, datagram[:1], m2.g_y, time_bytes,
                             server.cert_hash, key.spki_hash, m2.pms_ct)
        if suite == suites.SUITE_RSA:
            if not backend.rsa_pss_verify(server.public, transcript.SIG2_CONTEXT + th2,
                                          m2.proof):
                raise errors.AuthenticationFailed("SIG_2 does not verify")
            pms = backend.rsa_oaep_decrypt(key.private, m2.pms_ct)
            keys3 = transcript.after_sig2(backend, th2, ee, m2.proof, pms)
        else:
            es = suites.dh(backend, curve, self._eph, server.public)
            prk3e2m, mac2 = transcript.mac2_keys(backend, th2, ee, es, codec.MAC_LEN)
            if not equal(mac2, m2.proof):
                raise errors.AuthenticationFailed("MAC_2 does not verify")
            se = suites.dh(backend, curve, key.private, m2.g_y)
            keys3 = transcript.after_mac2(backend, th2, prk3e2m, mac2, se)
        self._send_m3(m2, server, keys3, now)

    def _send_m3(self, m2, server, keys3, now):
        backend = self.backend
        early_ok = bool(m2.flags & codec.M2_EARLY_OK)
        head = codec.encode_m3_head(codec.hint_of(m2.g_y))
        data = b"" if early_ok else self._data
        self._m3 = head + backend.aes_ccm_encrypt(keys3.k3, keys3.iv3, head + keys3.th3, data)
        if m2.flags & codec.M2_TIME:          # B's time, under MAC_2: A's clock from now on
            self.clock_offset = m2.time - now
            self.clock_trusted = True
            self._stamp_offset = None
            self._events.append(ev.ClockSet(m2.time))
        ab, ba, sid = transcript.session_secrets(backend, keys3, self._m3)
        self.session = Session(backend, ROLE_INITIATOR, self._suite, sid, ab, ba,
                               now + self.clock_offset, self.limits[0], self.limits[1])
        self._eph = None
        self.server = server
        self._out.append(self._m3)
        self._goto(WAIT_ACK)
        self._deadline = now + self.rto
        self._retries = 0
        self._events.append(ev.HandshakeComplete(self.session, self.keys[self._suite].id_a,
                                                 early_ok))

    # -- records (PROTOCOL.md §5) -------------------------------------------------------
    def _on_record(self, datagram):
        if not self.complete:
            raise errors.UnexpectedMessage("record before the handshake completed")
        seq, data = self.session.open(datagram)
        if self._state == WAIT_ACK:
            self._goto(CONFIRMED)
            self._deadline = None
            self._events.append(ev.HandshakeConfirmed(self.session))
        if data:
            self._events.append(ev.DataReceived(data, seq))

    def _fail(self, reason, code=0):
        self._goto(FAILED)
        self._deadline = None
        self._eph = None
        self._events.append(ev.HandshakeFailed(reason, code))
