# airshake.fragments: the adaptation layer between whole messages and radio frames
# (docs/PROTOCOL.md §3.6). A message that fits the link's MTU goes out unchanged; a
# larger one is cut into FRAGMENT frames. The receiver reassembles, and can answer a
# partial message with a FRAGMENT_ACK bitmap so the sender repeats only what was lost.
# Rules: bounded memory (max_message bytes per message, max_pending messages, oldest
# evicted first); malformed frames raise DecodeError; no crypto: whatever reassembles
# is authenticated by the layer above, so a forged fragment costs a retransmission at
# worst, never a session.
from airshake import codec
from airshake import errors
from airshake.errors import UsageError

FRAGMENT_OVERHEAD = 4      # head, tag, index, count
_FRAG_HEAD = codec.TYPE_FRAGMENT << 5
_ACK_HEAD = codec.TYPE_FRAGMENT_ACK << 5


def message_tag(message):
    """8-bit tag of a message (FNV-1a, folded): identical retransmissions share it, so
    their fragments merge at the receiver without sender state."""
    h = 0x811C9DC5
    for b in message:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return (h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24)) & 0xFF


def split(message, mtu):
    """The frames that carry message over a link with this MTU."""
    if len(message) <= mtu:
        return [bytes(message)]
    chunk = mtu - FRAGMENT_OVERHEAD
    if chunk < 1:
        raise UsageError("MTU %d is too small to fragment" % mtu)
    count = (len(message) + chunk - 1) // chunk
    if count > 255:
        raise UsageError("message of %d bytes needs more than 255 fragments" % len(message))
    tag = message_tag(message)
    return [bytes((_FRAG_HEAD, tag, i, count)) + message[i * chunk:(i + 1) * chunk]
            for i in range(count)]


def decode_fragment(frame):
    """Returns (tag, index, count, payload)."""
    if len(frame) < FRAGMENT_OVERHEAD + 1 or frame[0] != _FRAG_HEAD:
        raise errors.DecodeError("not a fragment")
    tag, index, count = frame[1], frame[2], frame[3]
    if count < 2 or index >= count:
        raise errors.DecodeError("fragment index %d of %d" % (index, count))
    return tag, index, count, bytes(frame[FRAGMENT_OVERHEAD:])


def encode_ack(tag, count, received):
    """received: set of indices held. The bitmap is little-endian by index."""
    bitmap = bytearray((count + 7) // 8)
    for i in received:
        bitmap[i >> 3] |= 1 << (i & 7)
    return bytes((_ACK_HEAD, tag, count)) + bytes(bitmap)


def decode_ack(frame):
    """Returns (tag, count, set of received indices)."""
    if len(frame) < 4 or frame[0] != _ACK_HEAD:
        raise errors.DecodeError("not a fragment ack")
    tag, count = frame[1], frame[2]
    if count < 2 or len(frame) != 3 + (count + 7) // 8:
        raise errors.DecodeError("fragment ack has the wrong length")
    got = set()
    for i in range(count):
        if frame[3 + (i >> 3)] & (1 << (i & 7)):
            got.add(i)
    return tag, count, got


class _Partial:
    def __init__(self, count, now):
        self.count = count
        self.parts = {}
        self.size = 0
        self.started = now


class FragmentLink:
    """Sans-I/O fragmentation for one peer: outgoing() turns a message into frames,
    incoming() turns frames back into messages (and answers acks with resends)."""

    def __init__(self, mtu, max_message=4096, max_pending=4, keep_sent=4, resend_limit=0):
        self.mtu = mtu
        self.resend_limit = resend_limit   # fragments repeated per ack; 0 = every missing one
        self.max_message = max_message
        self.max_pending = max_pending
        self.keep_sent = keep_sent
        self._pending = {}        # (tag, count) -> _Partial
        self._sent = []           # recent [(tag, frames)] for answering acks

    def outgoing(self, message):
        frames = split(message, self.mtu)
        if len(frames) > 1:
            tag = frames[0][1]
            self._sent = [e for e in self._sent if e[0] != tag][-(self.keep_sent - 1):]
            self._sent.append((tag, frames))
        return frames

    def incoming(self, frame, now):
        """Returns (message or None, frames to send back)."""
        kind = codec.message_type(frame)
        if kind == codec.TYPE_FRAGMENT_ACK:
            return None, self._resend(frame)
        if kind != codec.TYPE_FRAGMENT:
            return bytes(frame), []
        tag, index, count, payload = decode_fragment(frame)
        key = (tag, count)
        part = self._pending.get(key)
        if part is None:
            if count * (self.mtu - FRAGMENT_OVERHEAD) > self.max_message + self.mtu:
                raise errors.DecodeError("fragmented message would exceed %d bytes"
                                         % self.max_message)
            if len(self._pending) >= self.max_pending:
                oldest = min(self._pending, key=lambda k: self._pending[k].started)
                del self._pending[oldest]
            part = self._pending[key] = _Partial(count, now)
        if index in part.parts:
            return None, []
        if part.size + len(payload) > self.max_message:
            del self._pending[key]
            raise errors.DecodeError("fragmented message exceeds %d bytes" % self.max_message)
        part.parts[index] = payload
        part.size += len(payload)
        if len(part.parts) < count:
            return None, []
        del self._pending[key]
        return b"".join(part.parts[i] for i in range(count)), []

    def has_partial(self):
        """True while some inbound message is only partly here."""
        return bool(self._pending)

    def expire(self, now, max_age):
        """Forget partial messages whose first fragment came more than max_age ago."""
        for key in [k for k, p in self._pending.items() if now - p.started > max_age]:
            del self._pending[key]

    def acks(self):
        """FRAGMENT_ACK frames for every partial message: send them instead of a
        whole retransmission and the peer repeats only the missing fragments."""
        return [encode_ack(tag, count, p.parts.keys())
                for (tag, count), p in self._pending.items()]

    def _resend(self, frame):
        tag, count, got = decode_ack(frame)
        for sent_tag, frames in self._sent:
            if sent_tag == tag and len(frames) == count:
                missing = [frames[i] for i in range(count) if i not in got]
                return missing[:self.resend_limit] if self.resend_limit else missing
        return []
