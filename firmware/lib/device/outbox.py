# device.outbox: owns airshake-data/outbox.bin, the readings B has not acknowledged yet,
# oldest first, so that none is lost to a lost reply, an unreachable B, a power cut or
# deep sleep:
#   "AOB1" | (2-byte length | reading)* | SHA-256(all before)[:4]
# A reading is added (and the file written) before anything of it goes out, and
# removed only when B's authenticated reply (or its confirmation of m3) says it arrived;
# a resent reading is harmless, since B stores each (ID_A, n) once (device.sensor numbers
# them). Every write replaces the file atomically (device.files): a power cut in the
# middle of one leaves the previous queue whole. A damaged file (the check fails) reads
# as an empty queue and is reported, never half used.
# Bound: MAX readings (config "outbox_max"). When full, the OLDEST goes: the newest
# reading describes the present, and a device that refused new readings through a long
# outage would deliver a stale history and nothing current; B sees the gap in n, and the
# wake logs `outbox dropped n=<count>`.
import hashlib

from device import files

MAX = 32                  # default bound (config "outbox_max")
_MAX_READING = 1024       # a reading longer than this is refused (flash and RAM)
_MAGIC = b"AOB1"


class Outbox:
    """The queue in RAM; save() makes it durable."""

    def __init__(self, items, damaged=False):
        self.items = items
        self.damaged = damaged
        self.dropped = 0

    @classmethod
    def load(cls):
        data = files.read(files.OUTBOX)
        if data is None:
            return cls([])
        items = _decode(data)
        return cls([], True) if items is None else cls(items)

    def add(self, reading, bound=MAX):
        """Queue a reading (the newest); drops the oldest beyond bound."""
        if len(reading) > _MAX_READING:
            raise ValueError("reading of %d bytes: at most %d" % (len(reading), _MAX_READING))
        self.items.append(bytes(reading))
        while len(self.items) > max(1, bound):
            self.items.pop(0)
            self.dropped += 1

    def head(self):
        return self.items[0] if self.items else None

    def done(self, reading):
        """B acknowledged the oldest reading, `reading`."""
        if self.items and self.items[0] == reading:
            self.items.pop(0)

    def save(self):
        files.write(files.OUTBOX, _encode(self.items))

    def __len__(self):
        return len(self.items)


def _encode(items):
    body = bytearray(_MAGIC)
    for item in items:
        body += len(item).to_bytes(2, "big") + item
    return bytes(body) + hashlib.sha256(body).digest()[:4]


def _decode(data):
    """The readings, or None when the file is not a whole outbox."""
    if len(data) < len(_MAGIC) + 4 or data[:4] != _MAGIC:
        return None
    body, check = data[:-4], data[-4:]
    if hashlib.sha256(body).digest()[:4] != check:
        return None
    items, i = [], len(_MAGIC)
    while i < len(body):
        if i + 2 > len(body):
            return None
        n = int.from_bytes(body[i:i + 2], "big")
        if i + 2 + n > len(body):
            return None
        items.append(bytes(body[i + 2:i + 2 + n]))
        i += 2 + n
    return items
