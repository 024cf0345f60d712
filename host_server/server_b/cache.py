# host_server.server_b.cache: B's certificate caches, all bounded in size.
#   MemCache       verified device certificates by ID ("MEM"): least recently used
#                  dropped first; an entry is fresh until min(not_after, stored + ttl),
#                  stale after that (served only while the CS is unreachable) and gone
#                  at the certificate's not_after; dropped on a revocation.
#   NegativeCache  IDs the CS did not know (or whose certificate did not verify), with
#                  the answer given, for a short TTL, so a flood of them does not become
#                  a flood on the CS.
#   RevokedSet     IDs known to be revoked (from the CS's event stream or a 410).
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from airshake.x509 import Certificate


@dataclass
class CachedCert:
    cert: Certificate    # C_A as the core parsed it (its DER is cert.der)
    not_after: float     # the certificate's expiry (Unix seconds)
    fresh_until: float   # after this the CS is asked again


class MemCache:
    def __init__(self, capacity: int, ttl: float) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._items: OrderedDict[bytes, CachedCert] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, id_a: bytes, now: float) -> CachedCert | None:
        """The entry, fresh or stale; None when absent or past the certificate's expiry."""
        entry = self._items.get(id_a)
        if entry is None:
            return None
        if now >= entry.not_after:
            del self._items[id_a]
            return None
        self._items.move_to_end(id_a)
        return entry

    def put(self, id_a: bytes, cert: Certificate, not_after: float, now: float) -> None:
        if self.capacity <= 0 or now >= not_after:
            return
        self._items[id_a] = CachedCert(cert, not_after, min(not_after, now + self.ttl))
        self._items.move_to_end(id_a)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def drop(self, id_a: bytes) -> bool:
        return self._items.pop(id_a, None) is not None


class NegativeCache:
    def __init__(self, capacity: int, ttl: float) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._items: OrderedDict[bytes, tuple[float, int]] = OrderedDict()  # id -> (until, code)

    def __len__(self) -> int:
        return len(self._items)

    def get(self, id_a: bytes, now: float) -> int | None:
        """The error code remembered for id_a, or None."""
        item = self._items.get(id_a)
        if item is None:
            return None
        if now >= item[0]:
            del self._items[id_a]
            return None
        return item[1]

    def put(self, id_a: bytes, code: int, now: float) -> None:
        if self.ttl <= 0 or self.capacity <= 0:
            return
        self._items.pop(id_a, None)
        self._items[id_a] = (now + self.ttl, code)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def drop(self, id_a: bytes) -> None:
        self._items.pop(id_a, None)


class RevokedSet:
    """Bounded; forgetting the oldest revocation is safe because its certificate was
    dropped from MemCache when it was revoked, and the CS answers 410 for it."""

    def __init__(self, capacity: int = 1_000_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[bytes, float] = OrderedDict()

    def __contains__(self, id_a: object) -> bool:
        return id_a in self._items

    def __len__(self) -> int:
        return len(self._items)

    def add(self, id_a: bytes, when: float) -> bool:
        """True when id_a was not known to be revoked before."""
        new = id_a not in self._items
        self._items[id_a] = when
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return new
