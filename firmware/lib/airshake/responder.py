# airshake.responder: server B's side of one handshake, sans-I/O (docs/PROTOCOL.md §7.2).
# States: START -> WAIT_CRED -> WAIT_M3 -> DONE, or FAILED / EXPIRED.
# B is reactive: it never retransmits on its own. A duplicate m1 gets the identical
# cached m2, a duplicate m3 the identical cached first record.
# Rules: checks run cheapest first (timestamp, suite) before any public-key work;
# garbage queues nothing and becomes a Dropped event; the error messages of §6 are queued
# only for well-formed m1s, each with a Refused event. Nothing the peer sends raises out of
# receive() or provide_credential() (the boundary: airshake.endpoint). C_A is looked up by
# the caller (NeedCredential), which also checks its role. Only an m1 whose 0-RTT data
# authenticated enters the replay cache, and a full cache refuses 0-RTT data, never
# evicts (§8.5). B confirms m3 with its first record: the caller calls send() (with its
# reply, or b"") after HandshakeComplete.
import struct
from airshake import codec, replay, suites, transcript, schedule, x509
from airshake import events as ev
from airshake.session import Session, ROLE_RESPONDER
from airshake.consttime import equal
from airshake.endpoint import Endpoint
from airshake.errors import (AirshakeError, CertificateError, ReplayError, StaleTimestamp,
                             UnexpectedMessage, UnsupportedSuite, UnsupportedVersion,
                             UsageError, ERR_REJECTED, ERR_STALE_TIME, ERR_TRY_LATER,
                             ERR_UNSUPPORTED_SUITE, ERR_UNSUPPORTED_VERSION)
from airshake.replay import ReplayCache
from airshake.suites import PREFERENCE

__all__ = ("Responder", "ResponderConfig", "START", "WAIT_CRED", "WAIT_M3", "DONE",
           "FAILED", "EXPIRED")

START = 0
WAIT_CRED = 1
WAIT_M3 = 2
DONE = 3
FAILED = 4
EXPIRED = 5


class ResponderConfig:
    """Settings shared by every handshake of one server B."""

    def __init__(self, backend, keys, id_len=8, window=120, replay=None,
                 accept_early=False, time_slack=2, max_records=1000, max_age=7 * 86400,
                 cert_by_value=False):
        """accept_early: take 0-RTT data (off by default: 0-RTT data is replayable in
        principle and not protected against key-compromise impersonation, §8.2).
        cert_by_value: send C_B by value even to an A that says it holds it (after B's
        certificate changed, so every device learns the new one at its next handshake)."""
        self.backend = backend
        self.keys = dict((k.suite, k) for k in keys)
        self.id_len = id_len
        self.window = window
        self.replay = replay if replay is not None else ReplayCache()
        self.replay_full = 0      # 0-RTT data refused because the replay cache was full
        self.accept_early = accept_early
        self.cert_by_value = cert_by_value
        self.time_slack = time_slack
        self.started = None
        self.limits = (max_records, max_age)
        self._on_air = {}         # H(C_B DER) -> (m2 flag, C_B as sent by value)

    def cert_on_air(self, skey):
        """(flag, bytes) of C_B by value (PROTOCOL.md §3.2): its C509 with M2_C509 when the
        certificate re-encodes without loss, else its DER; computed once per C_B (a
        reloaded C_B gets its own entry)."""
        ref = skey.ref
        got = self._on_air.get(ref.cert_hash)
        if got is None:
            from airshake import c509_encoder
            try:
                got = (codec.M2_C509, c509_encoder.encode(ref.der))
            except CertificateError:
                got = (0, ref.der)
            if len(self._on_air) >= 8:     # a few renewals in a long-running B
                self._on_air.clear()
            self._on_air[ref.cert_hash] = got
        return got

    def suite_mask(self):
        mask = 0
        for s in self.keys:
            mask |= 1 << s
        return mask


class Responder(Endpoint):
    STATE_NAMES = ("START", "WAIT_CRED", "WAIT_M3", "DONE", "FAILED", "EXPIRED")
    TRANSITIONS = {START: (WAIT_CRED, FAILED, EXPIRED), WAIT_CRED: (WAIT_M3, FAILED, EXPIRED),
                   WAIT_M3: (DONE, EXPIRED), DONE: (), FAILED: (), EXPIRED: ()}

    def __init__(self, config, now):
        self.config = config
        self.backend = config.backend
        self.id_a = None
        self.hint = None
        self.session = None
        self._m1 = None
        self._m3 = None
        self._ack = None
        self._refusal = None
        Endpoint.__init__(self, START)
        self._deadline = now + 2 * config.window

    # -- public API ---------------------------------------------------------------------
    @property
    def waiting_credential(self):
        """NeedCredential was emitted: provide_credential() or reject_credential() next."""
        return self._state == WAIT_CRED

    @property
    def waiting_m3(self):
        """m2 is out; the handshake waits for A's m3."""
        return self._state == WAIT_M3

    @property
    def complete(self):
        """m3 verified: the session exists (HandshakeComplete was emitted)."""
        return self._state == DONE

    @property
    def confirm_due(self):
        """m3 verified and B has sent no record yet: its first send() confirms m3."""
        return self._state == DONE and self._ack is None

    @property
    def ended(self):
        """Refused, dropped for good or expired: nothing more will happen."""
        return self._state in (FAILED, EXPIRED)

    def receive(self, datagram, now):
        """One datagram from A. Never raises for what A (or anyone) sent: refused input
        is a Dropped or Refused event; see airshake.endpoint for the whole contract."""
        self._guard(self._receive, datagram, now)

    def _receive(self, datagram, now):
        kind = codec.message_type(datagram)
        if kind == codec.TYPE_M1:
            if self._state == START:
                return self._on_m1(datagram, now)
            if datagram != self._m1:
                raise UnexpectedMessage("a second, different m1")
            if self._state == WAIT_M3:
                self._out.append(self._m2)     # retransmitted m1: the identical m2
            elif self._state == FAILED and self._refusal is not None:
                self._out.append(self._refusal)  # ... or the identical error
        elif kind == codec.TYPE_M3:
            if self._state == WAIT_M3:
                return self._on_m3(datagram, now)
            if self._state == DONE and datagram == self._m3:
                if self._ack is not None:      # retransmitted m3: the identical record
                    self._out.append(self._ack)
                return                         # else the first record is not sent yet
            raise UnexpectedMessage("m3 when not waiting for it")
        elif kind == codec.TYPE_RECORD and self._state == DONE:
            seq, data = self.session.open(datagram)
            if data:
                self._events.append(ev.DataReceived(data, seq))
        else:
            raise UnexpectedMessage("message type %d now" % kind)

    def provide_credential(self, cert, now, refuse_early=False):
        """Answer NeedCredential with C_A, already checked by the caller against the CA
        and revocation: its DER bytes, or the x509.Certificate that parse_certificate()
        made of them (a server that caches parsed certificates skips the parse). The
        core checks its key type and that it hashes to ID_A: a C_A that fails ends the
        handshake with ERR_REJECTED queued (a Refused event). A bad G_X or 0-RTT tag, or
        an authenticated 0-RTT m1 seen before, ends it silently (a Dropped event). Else
        m2 is queued and the state is WAIT_M3. refuse_early: do not take m1's 0-RTT data
        whatever the config says (m2 without EARLY_OK: A resends the data in m3)."""
        if self._state != WAIT_CRED:
            raise UsageError("provide_credential() without a pending NeedCredential")
        try:
            peer = self._peer_key(cert)
        except CertificateError as e:
            self._reject(ERR_REJECTED, b"", e)
            return
        try:
            self._answer(peer, now, refuse_early)
        except AirshakeError as e:
            self._goto(FAILED)
            self._deadline = None
            self._eph = None
            self._events.append(ev.Dropped(e, "m1"))

    def reject_credential(self, code, retry_after=0):
        """Answer NeedCredential with an error message: ERR_UNKNOWN_ID, ERR_REVOKED,
        ERR_REJECTED or ERR_TRY_LATER (with retry_after seconds)."""
        if self._state != WAIT_CRED:
            raise UsageError("reject_credential() without a pending NeedCredential")
        body = struct.pack(">H", retry_after) if code == ERR_TRY_LATER else b""
        self._reject(code, body, None)

    def send(self, data, key_update=False):
        """Seal data as a record in the session. The first record B sends is the one that
        confirms m3 (PROTOCOL.md §3.3): call send(reply) or send(b"") once the handshake
        is complete; a retransmitted m3 is answered with that same record."""
        if self._state != DONE:
            raise UsageError("send() before the handshake completed")
        record = self.session.seal(data, key_update)
        if self._ack is None:
            self._ack = record
        self._out.append(record)

    def handle_timer(self, now):
        """The handshake expires when A is silent for 2 x window (no m3, or the caller
        never answered NeedCredential)."""
        if self._deadline is not None and now >= self._deadline and self._state < DONE:
            self._goto(EXPIRED)
            self._deadline = None
            self._eph = None
            self._events.append(ev.HandshakeFailed("handshake expired"))

    # -- m1 (PROTOCOL.md §3.1, checks of §7.2) -----------------------------------------------
    def _reject(self, code, body, error, ref=None):
        """End this handshake with an error message for A; identical retransmissions of
        m1 get the same answer."""
        ref = ref or transcript.error_ref(self.backend, self._m1, self._th1, self.config.id_len)
        self._refusal = codec.encode_error(code, ref, body)
        self._out.append(self._refusal)
        self._goto(FAILED)
        self._deadline = None
        self._events.append(ev.Refused(code, error))

    def _on_m1(self, datagram, now):
        cfg, backend = self.config, self.backend
        try:
            m = codec.decode_m1(datagram, cfg.id_len)
        except UnsupportedVersion as e:
            if (codec.m1_version(datagram) < codec.VERSION
                    or len(datagram) < codec.m1_prefix_len(cfg.id_len)):
                # version 0 is reserved, and an answer must never outweigh its question
                # (a 1-byte datagram would earn 4 bytes from a spoofed address): garbage
                raise
            # a later version's layout is unknown: the reference is H(m1) (§6)
            self._m1 = bytes(datagram)
            return self._reject(ERR_UNSUPPORTED_VERSION, bytes((codec.VERSION,)), e,
                                backend.sha256(datagram)[:codec.REF_LEN])
        # the transcript hashes the long form with the full timestamp, whichever came (§4.1)
        canonical = codec.long_form(m, now) if m.short else datagram
        self._th1 = transcript.th1(backend, canonical[:codec.m1_prefix_len(cfg.id_len)])
        self._m1 = bytes(datagram)
        self.id_a = m.id_a               # unauthenticated until m3: for logs and lookup
        if abs(m.timestamp - now) > cfg.window:
            return self._reject(ERR_STALE_TIME, struct.pack(">I", int(now + 0.5)),
                                StaleTimestamp("m1 timestamp %d is outside the window"
                                               % m.timestamp))
        selected = None
        for s in PREFERENCE:
            if s in cfg.keys and m.offered & (1 << s):
                selected = s
                break
        if selected != m.suite:
            return self._reject(ERR_UNSUPPORTED_SUITE, bytes((cfg.suite_mask(),)),
                                UnsupportedSuite("m1 chose suite %d, B selects %s"
                                                 % (m.suite, selected)))
        self._m1_hash = backend.sha256(canonical) if m.early else self._th1
        self._req = m
        self._goto(WAIT_CRED)
        self._events.append(ev.NeedCredential(m.id_a, m.suite))

    def _peer_key(self, cert):
        if not isinstance(cert, x509.Certificate):
            cert = x509.parse_certificate(cert)
        if cert.key_type != suites.STATIC_KEY_TYPE[self._req.suite]:
            raise CertificateError("C_A key type %s does not fit suite %d"
                                   % (cert.key_type, self._req.suite))
        spki_hash = self.backend.sha256(cert.spki)
        if not equal(spki_hash[:self.config.id_len], self.id_a):
            raise CertificateError("C_A's key does not hash to ID_A")
        self._spki_hash = spki_hash
        return cert.public_key

    # -- m2 (PROTOCOL.md §3.2, §4) ------------------------------------------------------------
    def _open_early(self, skey, peer, now, refuse_early):
        m, backend = self._req, self.backend
        curve = suites.ephemeral_curve(m.suite)
        es = suites.dh(backend, curve, skey.private, m.g_x)
        ss = suites.dh(backend, curve, skey.private, peer)
        k0, iv0 = schedule.early_keys(backend, self._th1, es, ss)
        data = backend.aes_ccm_decrypt(k0, iv0, self._th1, m.early)
        cfg = self.config
        started = cfg.started
        # after a restart B's replay cache is empty: the old B may have accepted any m1
        # stamped up to started + window, so 0-RTT stamped before then is refused (§8.5)
        if refuse_early or not cfg.accept_early or (started is not None
                                    and m.timestamp <= started + cfg.window):
            return False
        # authenticated (ss): only now does this m1 take a place in the replay cache
        seen = cfg.replay.add(self._m1_hash, now + 2 * cfg.window, now)
        if seen == replay.SEEN:
            raise ReplayError("0-RTT m1 seen before")   # provide_credential ends it
        if seen == replay.FULL:
            cfg.replay_full += 1
            return False
        self._events.append(ev.EarlyData(self.id_a, data))
        return True

    def _answer(self, peer, now, refuse_early):
        cfg, backend, m = self.config, self.backend, self._req
        skey = cfg.keys[m.suite]
        curve = suites.ephemeral_curve(m.suite)
        early_ok = self._open_early(skey, peer, now, refuse_early) if m.early else False
        eph, g_y = suites.ephemeral(backend, m.suite)
        ee = suites.dh(backend, curve, eph, m.g_x)
        flags = codec.M2_CB_VALUE
        if m.flags & codec.M1_CB_KNOWN and not cfg.cert_by_value:
            flags = 0
        if m.flags & codec.M1_WANT_TIME or abs(m.timestamp - now) > cfg.time_slack:
            flags |= codec.M2_TIME
        if early_ok:
            flags |= codec.M2_EARLY_OK
        cert = None
        if flags & codec.M2_CB_VALUE:
            c509_flag, cert = cfg.cert_on_air(skey)
            flags |= c509_flag
        m2 = codec.M2(flags, g_y, int(now + 0.5), cert)
        head = codec.encode_m2_head(m2)
        time_bytes = struct.pack(">I", m2.time) if flags & codec.M2_TIME else b""
        if m.suite == suites.SUITE_RSA:
            pms = backend.random(32)
            m2.pms_ct = backend.rsa_oaep_encrypt(peer, pms)
            th2 = transcript.th2(backend, self._m1_hash, head[:1], g_y, time_bytes,
                                 skey.ref.cert_hash, self._spki_hash, m2.pms_ct)
            m2.proof = backend.rsa_pss_sign(skey.private, transcript.SIG2_CONTEXT + th2)
            self._keys3 = transcript.after_sig2(backend, th2, ee, m2.proof, pms)
        else:
            th2 = transcript.th2(backend, self._m1_hash, head[:1], g_y, time_bytes,
                                 skey.ref.cert_hash, self._spki_hash)
            es = suites.dh(backend, curve, skey.private, m.g_x)
            prk3e2m, m2.proof = transcript.mac2_keys(backend, th2, ee, es, codec.MAC_LEN)
            se = suites.dh(backend, curve, eph, peer)
            self._keys3 = transcript.after_mac2(backend, th2, prk3e2m, m2.proof, se)
        self._early_ok = early_ok
        self._m2 = codec.encode_m2(m2)
        self.hint = codec.hint_of(g_y)
        self._out.append(self._m2)
        self._goto(WAIT_M3)
        self._deadline = now + 2 * cfg.window

    # -- m3 (PROTOCOL.md §3.3) ----------------------------------------------------------------
    def _on_m3(self, datagram, now):
        backend, keys3 = self.backend, self._keys3
        hint, body = codec.decode_m3(datagram)
        if hint != self.hint:
            raise UnexpectedMessage("m3 for another handshake")
        data = backend.aes_ccm_decrypt(keys3.k3, keys3.iv3, datagram[:1] + keys3.th3, body)
        ab, ba, sid = transcript.session_secrets(backend, keys3, datagram)
        cfg = self.config
        self.session = Session(backend, ROLE_RESPONDER, self._req.suite, sid, ba, ab, now,
                               cfg.limits[0], cfg.limits[1])
        self._keys3 = None
        self._m3 = bytes(datagram)
        self._ack = None
        # what only m2 and m3 needed; B keeps a completed handshake a while (for m3
        # retransmissions), so it should hold no more than it answers them with
        self._m2 = self._req = self._th1 = self._m1_hash = self._spki_hash = None
        self._goto(DONE)
        self._deadline = None
        self._events.append(ev.HandshakeComplete(self.session, self.id_a, self._early_ok))
        if data:
            self._events.append(ev.DataReceived(data, -1))
