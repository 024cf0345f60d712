# airshake_tools.linkemu.faults: seeded fault injection on radio frames: loss,
# duplication, reordering and single-bit corruption. Deterministic for a seed: every
# frame consumes the same number of draws from random.Random(seed), whatever happens to
# it, so changing one rate does not reshuffle the faults chosen for the others.
# Link draws each direction from its own fork of the Faults it is given.
# Corruption lets a frame through with one bit flipped (a real LoRa CRC or LoRaWAN MIC
# would usually drop it): it exercises airshake's strict decoders and AEAD tags.
from __future__ import annotations

import random
from dataclasses import dataclass, field

# Extra delay of a reordered frame, in units of the link's frame spacing: it arrives
# after the next one or two frames in the same direction.
REORDER_SPAN = (1.0, 3.0)
# Extra delay of a duplicate, in the same units.
DUPLICATE_SPAN = (0.0, 1.0)


@dataclass
class Outcome:
    copies: list[tuple[float, bytes]]    # (extra delay in seconds, frame) per delivered copy
    lost: bool = False
    duplicated: bool = False
    reordered: bool = False
    corrupted: bool = False
    bit: int | None = None               # the flipped bit, counted from the first byte's MSB


@dataclass
class Faults:
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    corrupt: float = 0.0
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder", "corrupt"):
            p = getattr(self, name)
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError("%s probability must be between 0 and 1, not %r" % (name, p))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError("seed must be an integer, not %r" % (self.seed,))
        self._rng = random.Random(self.seed)

    @property
    def active(self) -> bool:
        return any((self.loss, self.duplicate, self.reorder, self.corrupt))

    def fork(self, label: str) -> Faults:
        """Same rates, an independent stream named by label (one per direction of a link,
        one per device of a relay): reproducible whatever order the streams are used in."""
        seed = random.Random("%d/%s" % (self.seed, label)).getrandbits(63)
        return Faults(self.loss, self.duplicate, self.reorder, self.corrupt, seed)

    def outcome(self, frame: bytes, spacing: float = 0.05) -> Outcome:
        """What happens to one frame. spacing: the link's time between two frames in one
        direction, which scales the extra delay of reordered frames and duplicates."""
        r = self._rng
        lost = r.random() < self.loss
        dup = r.random() < self.duplicate
        reo = r.random() < self.reorder
        cor = r.random() < self.corrupt
        where = r.random()
        reo_delay = spacing * r.uniform(*REORDER_SPAN)
        dup_delay = spacing * r.uniform(*DUPLICATE_SPAN)
        frame = bytes(frame)
        if lost:
            return Outcome([], lost=True)
        first = frame
        bit = None
        cor = cor and len(frame) > 0
        if cor:
            bit = min(int(where * len(frame) * 8), len(frame) * 8 - 1)
            flipped = bytearray(frame)
            flipped[bit // 8] ^= 0x80 >> (bit % 8)
            first = bytes(flipped)
        delay = reo_delay if reo else 0.0
        copies = [(delay, first)]
        if dup:
            copies.append((delay + dup_delay, frame))
        return Outcome(copies, duplicated=dup, reordered=reo, corrupted=cor, bit=bit)

    def apply(self, frame: bytes, spacing: float = 0.05) -> list[tuple[float, bytes]]:
        """The copies of frame that arrive: [] if lost, else (extra_delay, frame) pairs."""
        return self.outcome(frame, spacing).copies
