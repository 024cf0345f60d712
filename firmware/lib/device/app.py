# device.app: owns one wake cycle of device A (Cycle); device.wakes runs the cycles and
# the sleeps between them.
#
# One wake: board, config and state from flash -> key and the pin of B, config
# "server_name" (either missing: tell the user to provision, stop) -> reading, queued in
# flash with the earlier ones B has not acknowledged (device.outbox) -> radio -> the
# queue, oldest first, as records on the saved session, each until B's reply, at most
# outbox_per_wake of them; or (no session, expired, corrupt, or too many unanswered
# records) a full handshake with the core's Initiator carrying the oldest reading in m3
# (or as 0-RTT data in m1 with early_data and a cached C_B), then the rest as records ->
# session, clock and C_B saved -> sleep. A reading leaves the queue only when B's
# authenticated reply (or its confirmation of m3) says it arrived.
# Crypto: device.backend chooses it (ucrypto where the firmware has ucryptography, else
# pure) and runs the self-tests only when this code has no record of them passing.
# C_B: the core accepts only a server certificate of the pinned name, chained and valid
# (PROTOCOL.md §2.3); only such a C_B is ever written to flash, and a held one that fails
# the pin is deleted. The clock moves only by B's authenticated time (§8.4).
# Every exception in a cycle is caught here: one log line, and the device still sleeps.
#
# Log lines (what `airshake device monitor` shows), one per step, never a secret:
#   airshake: <step> [key=value ...]
# steps: boot, wake, selftest, outbox, session, handshake, send, recv, clock, cached,
# complete, confirmed, reply, record, noreply, rejected, failed, acks, drop, wait, radio,
# error, sleep, stop, lock
# (firmware/README.md shows a sample).
import gc
import sys
import time

from airshake import ram
from device import files, keystore, entropy, session_store, sensor, outbox
from device import backend as backend_mod
from device import config as config_mod
from device.clock import Clock

_RECORD_PRIMS = ("sha256", "hmac_sha256", "aes_ccm")


def log(step, *parts):
    print("airshake:", step, *parts)


def _radio_log(text):
    log("radio", text)


def _kind(message):
    from airshake.codec import kind_name
    return kind_name(message)


def load_board():
    """board.py from the current directory, re-read on every wake."""
    sys.modules.pop("board", None)
    import board
    return board


class Cycle:
    """Everything one wake needs; run() never raises."""

    def __init__(self):
        self.cpu_us = 0
        self.selftest_ms = 0

    def _measure(self, t0):
        # CPU time spent inside the core (handshake and record crypto), not in I/O waits
        self.cpu_us += time.ticks_diff(time.ticks_us(), t0)

    async def run(self):
        """One wake. Returns the seconds to sleep, or None to stop (no key)."""
        board = load_board()
        if not keystore.exists():
            log("stop", "no device key: run `airshake device provision`")
            return None
        cfg = config_mod.load()
        state = files.read_json(files.STATE) or {}
        state["wakes"] = state.get("wakes", 0) + 1
        clock = Clock(state)
        self.board, self.cfg, self.state, self.clock = board, cfg, state, clock
        from radios import radio_kind
        log("wake", "n=%d" % state["wakes"], "board=%s" % board.NAME,
            "radio=%s" % radio_kind(board, cfg), "crypto=%s" % backend_mod.choose(),
            "t=%d" % clock.now())
        if cfg.get("_defaults"):
            log("error", "%s missing or corrupt: using defaults" % files.CONFIG)
        if not _pinned(cfg):
            log("stop", "no server pin: run airshake device provision --server-name NAME")
            return None
        try:
            await self._work()
        except Exception as e:       # the device must sleep whatever happened
            log("error", "%s: %s" % (type(e).__name__, e))
        try:
            clock.commit()
            files.write_json(files.STATE, state)
        except Exception as e:
            log("error", "state not saved: %s" % e)
        entropy.forget()
        return cfg.get("interval_s", 60)

    async def _work(self):
        cfg, state, clock = self.cfg, self.state, self.clock
        queue = self._queue_reading()
        if state.get("not_before", 0) > clock.now():
            log("wait", "B asked to retry after t=%d" % state["not_before"])
            return
        suite = keystore.suite()
        binding = keystore.binding()
        from radios import open_radio
        radio = open_radio(self.board, cfg, _radio_log if cfg.get("radio_log") else None,
                           state.get("airtime"))
        from device.link import Link
        try:
            await radio.open()
            link = Link(radio)          # after open(): a driver may settle its MTU there
            self.budget = max(1, int(cfg.get("outbox_per_wake", 8)))
            session = self._saved_session(binding)
            if session is not None:
                ram.loaded()            # a record wake's code is in: no early collections
                if await self._drain(link, session, queue, binding):
                    state["misses"] = 0
                    if not len(queue) or not self.budget or not session.expired(clock.now()):
                        return
                    session_store.clear()  # used up with readings left: a new one now
                else:
                    state["misses"] = state.get("misses", 0) + 1
                    if state["misses"] < cfg.get("max_missed", 2):
                        return
                    log("session", "dropped", "misses=%d" % state["misses"])
                    session_store.clear()
                ram.loading()           # a handshake's code loads next (see _handshake)
            session = None
            gc.collect()
            if await self._handshake(link, suite, queue, binding):
                await self._drain(link, self.session, queue, binding)
        finally:
            await radio.close()
            if hasattr(radio, "airtime_state"):    # raw LoRa: the duty-cycle budget
                state["airtime"] = radio.airtime_state()

    def _queue_reading(self):
        """This wake's reading joins the unacknowledged ones in flash, before anything
        goes out; the counter that numbers it is saved with it."""
        state = self.state
        queue = outbox.Outbox.load()
        if queue.damaged:
            log("error", "%s damaged: its readings are lost" % files.OUTBOX)
        queue.add(sensor.read(state), int(self.cfg.get("outbox_max", outbox.MAX)))
        queue.save()
        files.write_json(files.STATE, state)
        if queue.dropped:
            state["outbox_dropped"] = state.get("outbox_dropped", 0) + queue.dropped
            log("outbox", "full", "dropped n=%d" % queue.dropped)
        if len(queue) > 1:
            log("outbox", "queued n=%d" % len(queue))
        return queue

    def _saved_session(self, binding):
        clock = self.clock
        session = session_store.load(self._backend(_RECORD_PRIMS), binding)
        if session is None:
            log("session", "none")
        elif session.expired(clock.now()):
            log("session", "expired", "sent=%d" % session.send_seq,
                "age=%d" % (clock.now() - session.created))
            session_store.clear()
            session = None
        return session

    def _backend(self, prims):
        backend, ms = backend_mod.load(prims, log)
        self.selftest_ms += ms
        return backend

    async def _drain(self, link, session, queue, binding):
        """The queued readings, oldest first, one record each until B's reply, while the
        session and this wake's budget last. False: a record went unanswered."""
        now = self.clock.now
        while len(queue) and self.budget and not session.expired(now()):
            reading = queue.head()
            self.budget -= 1
            if not await self._uplink(link, session, reading, binding):
                return False
            queue.done(reading)
            queue.save()
        return True

    # -- one record on the saved session ------------------------------------------------
    async def _uplink(self, link, session, reading, binding):
        from airshake.errors import AirshakeError
        t0 = time.ticks_us()
        record = session.seal(reading)
        self._measure(t0)
        session_store.save(session, binding)      # before it leaves: never reuse a nonce
        log("record", "seq=%d" % (session.send_seq - 1), "%dB" % len(record))
        await link.send_message(record)
        timeout = self.cfg.get("reply_timeout_s", 5.0)
        start = time.ticks_ms()
        while True:
            left = timeout - time.ticks_diff(time.ticks_ms(), start) / 1000
            message = await link.recv_message(left) if left > 0 else None
            if message is None:
                log("noreply", "after=%.1fs" % timeout)
                return False
            try:
                t0 = time.ticks_us()
                seq, data = session.open(message)
                self._measure(t0)
            except AirshakeError as e:
                log("drop", _kind(message), type(e).__name__)
                continue
            session_store.save(session, binding)
            if not _acknowledges(data, session.send_seq - 1):
                log("drop", "reply", "seq=%d" % seq, "not the ack of this record")
                continue
            log("reply", "seq=%d" % seq, "%dB" % len(data), "cpu_ms=%.1f" % (self.cpu_us / 1000))
            return True

    # -- full handshake -------------------------------------------------------------------
    async def _handshake(self, link, suite, queue, binding):
        """A handshake carrying the oldest queued reading; True when B confirmed it (the
        reading then leaves the queue and self.session holds the new session)."""
        from airshake import shell
        reading = queue.head()
        self.budget -= 1
        cfg, clock = self.cfg, self.clock
        anchor = files.read(files.ANCHOR)
        if anchor is None:
            raise OSError("no trust anchor %s: run `airshake device provision`" % files.ANCHOR)
        cached = files.read(files.SERVER)
        backend = self._handshake_backend(suite, cached is not None)
        ref = self._held_server(backend, suite, cached)
        ini = self._initiator(backend, anchor, ref)
        if ref is not None and ini.server is None:
            # the core re-checks a held C_B (role, pin): one an older firmware cached
            # without the pin goes, and C_B comes by value
            ref = None
            files.remove(files.SERVER)
            log("cached", "C_B dropped: not the pinned server")
        early = bool(cfg.get("early_data")) and ref is not None
        log("handshake", "id=%s" % ini.keys[suite].id_a.hex(),
            "c_b=%s" % ("ref" if ref else "value"), "early=%d" % early,
            "clock=%s" % ("ok" if clock.trusted() else "unsure"))
        gc.collect()
        ram.loaded()      # the code is in (main.py's ram.loading()): no more early collections
        self._core(ini.connect, clock.raw(), reading, early)
        self.reply = self.session = None
        self.clock_set = False
        self.bad_m2 = 0
        started = time.ticks_ms()
        await shell.drive(ini, link, clock.raw, until=_is_reply,
                          idle=cfg.get("reply_timeout_s", 5.0),
                          on_event=lambda e: self._event(e, ini, ref, binding),
                          on_send=_log_send, on_receive=_log_recv,
                          on_acks=lambda n: log("acks", "n=%d" % n), core=self._core)
        self._handshake_done(ref, link, time.ticks_diff(time.ticks_ms(), started))
        if self.session is None:
            return False
        queue.done(reading)            # B's confirmation of m3: the reading arrived
        queue.save()
        return True

    def _handshake_backend(self, suite, holds_server):
        """The backend, with the self-tests of what this handshake uses: by reference,
        the anchor's signature algorithm is never needed, so its KAT is skipped."""
        from airshake.crypto import handshake_primitives
        backend = self._backend(handshake_primitives(suite, holds_server))
        entropy.seed_entropy()
        backend.use_random(entropy.random)     # every ephemeral mixes in the seed
        return backend

    def _held_server(self, backend, suite, cached):
        """The C_B held in flash as a ServerRef (None: C_B comes by value)."""
        if cached is None:
            return None
        from airshake.keys import ServerRef
        from airshake import errors
        try:
            ref = ServerRef(backend, suite, cached)
        except Exception:
            log("cached", "C_B unreadable, dropped")
            files.remove(files.SERVER)
            return None
        try:
            ref.check_pin(self.cfg["server_name"])  # a pass is remembered by ref
        except errors.CertificateError:
            pass        # the Initiator checks again, drops it and says so (_handshake)
        # C_B is held: the certificate parser's RAM goes back before the Initiator loads
        from airshake.ram import release
        release("airshake.x509", "airshake.der")
        return ref

    def _initiator(self, backend, anchor, ref):
        from airshake.initiator import Initiator
        cfg, clock = self.cfg, self.clock
        key = keystore.load_device_key(backend, cfg.get("id_len", 8))
        ini = Initiator(backend, [key], anchor, server=ref, id_len=cfg.get("id_len", 8),
                        rto=cfg.get("rto_s", 3.0), max_retries=cfg.get("retries", 4),
                        server_name=cfg["server_name"], clock_trusted=clock.trusted(),
                        max_records=cfg.get("max_records", 100),
                        max_age=cfg.get("max_age_s", 86400))
        ini.clock_offset = clock.offset
        return ini

    def _core(self, fn, *args):
        # CPU time spent inside the core (handshake and record crypto), not in I/O waits
        t0 = time.ticks_us()
        out = fn(*args)
        self._measure(t0)
        return out

    def _handshake_done(self, ref, link, wall_ms):
        state = self.state
        if self.session is not None:
            log("confirmed", "cpu_ms=%.1f" % (self.cpu_us / 1000),
                "selftest_ms=%d" % self.selftest_ms, "wall_ms=%d" % wall_ms,
                "frames_out=%d" % link.sent_frames, "bytes_out=%d" % link.sent_bytes)
            state["misses"] = 0
            state["handshakes"] = state.get("handshakes", 0) + 1
            state.pop("not_before", None)
        elif ref is not None and self.bad_m2:
            # B's certificate changed (new key): m2 by reference cannot verify against the
            # cached C_B and B has no way to say so. Forget it: next time C_B comes by value,
            # where the core accepts only a C_B that passes every check (role, pin, chain,
            # validity), so a forged m2 that got us here gains nothing but one more m2.
            files.remove(files.SERVER)
            log("cached", "C_B dropped: m2 did not verify against it")

    def _event(self, e, ini, ref, binding):
        from airshake import events as ev
        from airshake import errors
        clock, state = self.clock, self.state
        # a good wake's events first (ClockSet: when B sets the clock): airshake.events
        # makes the others' classes on first use, and a device never refused never holds them
        if isinstance(e, ev.HandshakeComplete):
            if not self.clock_set and ini.clock_trusted:
                # m2 without TIME: A's stamp was within B's slack, and the core's offset
                # is the confirmed one it started with (unauthenticated time never
                # moves it); an unconfirmed clock stays unconfirmed
                clock.adopt(ini.clock_offset)
            server = ini.server
            if server is not None and (ref is None or server.der != ref.der):
                # only a C_B that passed every check of the core gets here
                files.write(files.SERVER, server.der)
                log("cached", "C_B replaced" if ref is not None else "C_B",
                    "%dB" % len(server.der))
            log("complete", "sid=%s" % e.session.sid.hex(),
                "early=%s" % ("accepted" if e.early_accepted else "no"))
        elif isinstance(e, ev.HandshakeConfirmed):
            self.session = e.session
            session_store.save(e.session, binding)
        elif isinstance(e, ev.DataReceived):
            self.reply = e.data
            if self.session is not None:
                session_store.save(self.session, binding)
            log("reply", "seq=%d" % e.seq, "%dB" % len(e.data))
        elif isinstance(e, ev.ClockSet):
            clock.adopt(ini.clock_offset)
            self.clock_set = True
            log("clock", "set", "offset=%d" % clock.offset)
        elif isinstance(e, ev.Dropped):
            if e.kind == "m2" and isinstance(e.error, errors.AuthenticationFailed):
                self.bad_m2 += 1
            log("drop", e.kind, type(e.error).__name__)
        elif isinstance(e, ev.ServerRejected):
            log("rejected", "code=%d" % e.code,
                errors.WIRE_NAMES.get(e.code, "?"), "retry_after=%s" % e.retry_after)
            if e.code == errors.ERR_TRY_LATER and e.retry_after:
                state["not_before"] = int(clock.now()) + e.retry_after
        elif isinstance(e, ev.HandshakeFailed):
            log("failed", e.reason)


def _is_reply(e):
    from airshake import events as ev
    return isinstance(e, ev.DataReceived)


def _log_send(datagram):
    log("send", _kind(datagram), "%dB" % len(datagram))


def _log_recv(message):
    log("recv", _kind(message), "%dB" % len(message))


def _acknowledges(data, seq):
    """B's reply acknowledges the record of this seq: B's "ack:<seq>" of it, or any other
    reply (an application's own answer comes back one record later)."""
    if not data.startswith(b"ack:"):
        return True
    tail = data[4:]
    if not tail or not all(48 <= c <= 57 for c in tail):
        return True
    return int(tail) == seq


def _pinned(cfg):
    name = cfg.get("server_name")
    return isinstance(name, str) and 0 < len(name.encode()) <= 64
