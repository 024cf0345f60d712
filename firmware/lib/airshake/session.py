# airshake.session: post-handshake records (docs/PROTOCOL.md §5).
# Owns sequence numbers, the 64-record replay window, key updates (a 3-bit epoch in the
# record head: a record under epoch n+1 *is* the key update, so it rides on
# application data), session limits, and export to bytes for deep sleep.
# Rules: a record is accepted at most once; state changes only after the tag verifies;
# the nonce is IV XOR seq, and a (key, seq) pair is never used twice: export after
# every seal() if the session must survive a power loss.
import struct
from airshake import codec, schedule
from airshake import errors
from airshake.errors import UsageError

ROLE_INITIATOR = 0
ROLE_RESPONDER = 1
WINDOW = 64
_NO_SEQ = 0xFFFFFFFF
_EXPORT_VERSION = 1
_EXPORT_FMT = ">BBBB4sIIII32sBIQ32s"
_EXPORT_LEN = struct.calcsize(_EXPORT_FMT)


def _nonce(iv, seq):
    tail = int.from_bytes(iv[9:], "big") ^ seq
    return iv[:9] + struct.pack(">I", tail)


class Session:
    def __init__(self, backend, role, suite, sid, send_secret, recv_secret, created,
                 max_records=1000, max_age=7 * 86400):
        self.backend = backend
        self.role = role
        self.suite = suite
        self.sid = sid
        self.created = int(created)
        self.max_records = max_records
        self.max_age = max_age
        self.send_epoch = 0
        self.send_seq = 0
        self.recv_epoch = 0
        self.recv_top = _NO_SEQ
        self.recv_bitmap = 0
        self._send_secret = send_secret
        self._recv_secret = recv_secret
        self._send_keys = schedule.traffic_keys(backend, send_secret)
        self._recv_keys = schedule.traffic_keys(backend, recv_secret)

    def __repr__(self):
        return "<Session sid=%s role=%d sent=%d>" % (self.sid.hex(), self.role, self.send_seq)

    # -- limits ---------------------------------------------------------------------
    def expired(self, now):
        return self.send_seq >= self.max_records or now - self.created > self.max_age

    # -- sending --------------------------------------------------------------------
    def update_keys(self):
        """Advance the send key; the next record carries the new epoch (PROTOCOL.md §5.3)."""
        self._send_secret = schedule.next_secret(self.backend, self._send_secret)
        self._send_keys = schedule.traffic_keys(self.backend, self._send_secret)
        self.send_epoch = (self.send_epoch + 1) & 7

    def seal(self, data, key_update=False):
        """One record carrying data; with key_update=True the record also switches
        this direction to the next key."""
        if self.send_seq >= _NO_SEQ:
            raise UsageError("sequence numbers exhausted: handshake again")
        if key_update:
            self.update_keys()
        seq = self.send_seq
        head = codec.encode_record_head(self.send_epoch, self.sid, seq)
        key, iv = self._send_keys
        body = self.backend.aes_ccm_encrypt(key, _nonce(iv, seq), head, data)
        self.send_seq = seq + 1
        return head + body

    # -- receiving ------------------------------------------------------------------
    def _check_window(self, seq):
        if self.recv_top == _NO_SEQ or seq > self.recv_top:
            return
        age = self.recv_top - seq
        if age >= WINDOW or self.recv_bitmap & (1 << age):
            raise errors.ReplayError("record %d replayed or too old" % seq)

    def _mark(self, seq):
        if self.recv_top == _NO_SEQ:
            self.recv_top, self.recv_bitmap = seq, 1
        elif seq > self.recv_top:
            shift = seq - self.recv_top
            self.recv_bitmap = ((self.recv_bitmap << shift) | 1) & ((1 << WINDOW) - 1) \
                if shift < WINDOW else 1
            self.recv_top = seq
        else:
            self.recv_bitmap |= 1 << (self.recv_top - seq)

    def open(self, record):
        """Returns (seq, plaintext). Raises DecodeError, AuthenticationFailed or
        ReplayError; the session is unchanged by a record that fails."""
        epoch, sid, seq, head, body = codec.decode_record(record)
        if sid != self.sid:
            raise errors.DecodeError("record for another session")
        self._check_window(seq)
        steps = (epoch - self.recv_epoch) & 7
        secret = self._recv_secret
        keys = self._recv_keys
        for _ in range(steps):
            secret = schedule.next_secret(self.backend, secret)
        if steps:
            keys = schedule.traffic_keys(self.backend, secret)
        plaintext = self.backend.aes_ccm_decrypt(keys[0], _nonce(keys[1], seq), head, body)
        if steps:
            self._recv_secret, self._recv_keys, self.recv_epoch = secret, keys, epoch
        self._mark(seq)
        return seq, plaintext

    # -- deep sleep -----------------------------------------------------------------
    def export(self):
        """The whole session as bytes, secrets included: store it where the private
        key is stored (PROTOCOL.md §5.4)."""
        body = struct.pack(_EXPORT_FMT, _EXPORT_VERSION, self.role, self.suite,
                           self.send_epoch, self.sid, self.created, self.max_age,
                           self.max_records, self.send_seq, self._send_secret,
                           self.recv_epoch, self.recv_top, self.recv_bitmap,
                           self._recv_secret)
        return body + self.backend.sha256(body)[:4]

    @classmethod
    def from_bytes(cls, backend, data):
        """Inverse of export(); DecodeError if the bytes are corrupt or foreign."""
        if len(data) != _EXPORT_LEN + 4:
            raise errors.DecodeError("session export has the wrong length")
        body = bytes(data[:_EXPORT_LEN])
        if backend.sha256(body)[:4] != bytes(data[_EXPORT_LEN:]):
            raise errors.DecodeError("session export is corrupt")
        (version, role, suite, send_epoch, sid, created, max_age, max_records,
         send_seq, send_secret, recv_epoch, recv_top, bitmap,
         recv_secret) = struct.unpack(_EXPORT_FMT, body)
        if version != _EXPORT_VERSION or role > 1 or send_epoch > 7 or recv_epoch > 7:
            raise errors.DecodeError("session export of an unknown version")
        s = cls(backend, role, suite, sid, send_secret, recv_secret, created,
                max_records, max_age)
        s.send_epoch, s.send_seq = send_epoch, send_seq
        s.recv_epoch, s.recv_top, s.recv_bitmap = recv_epoch, recv_top, bitmap
        return s

