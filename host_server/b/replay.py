# host_server.b.replay: the m1 replay cache of PROTOCOL.md §8.5 for a busy server, a
# drop-in for airshake.responder.ReplayCache (same add(key, expires, now) contract).
# The core's version scans the whole table when it is full, O(n) per m1; this one keeps
# a heap of expiries, so expiring and evicting (nearest expiry first) cost O(log n).
from __future__ import annotations

import heapq


class HeapReplayCache:
    def __init__(self, capacity: int = 100000) -> None:
        self.capacity = capacity
        self._seen: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []
        self.evicted = 0          # unexpired entries pushed out by capacity

    def __len__(self) -> int:
        return len(self._seen)

    def _pop(self) -> tuple[float, bytes]:
        while True:
            expires, key = heapq.heappop(self._heap)
            if self._seen.get(key) == expires:    # else a stale heap entry
                del self._seen[key]
                return expires, key

    def add(self, key: bytes, expires: float, now: float) -> bool:
        """True only the first time key is seen before its expiry."""
        seen = self._seen
        old = seen.get(key)
        if old is not None and old > now:
            return False
        heap = self._heap
        while heap and heap[0][0] <= now:
            exp, k = heapq.heappop(heap)
            if seen.get(k) == exp:
                del seen[k]
        if len(seen) >= self.capacity:
            self._pop()
            self.evicted += 1
        if len(heap) > 2 * self.capacity + 16:     # too many stale entries: rebuild
            self._heap = heap = [(t, k) for k, t in seen.items()]
            heapq.heapify(heap)
        seen[key] = expires
        heapq.heappush(heap, (expires, key))
        return True
