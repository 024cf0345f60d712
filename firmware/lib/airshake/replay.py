# airshake.replay: B's replay cache of 0-RTT m1 hashes (docs/PROTOCOL.md §8.5).
# Rules: add() records a key until its expiry and answers FRESH the first time, SEEN while
# an unexpired entry exists; bounded, and never by eviction: at capacity an unexpired
# entry stays and add() answers FULL (B then refuses the 0-RTT data; the full handshake
# goes on). Only m1s whose 0-RTT data authenticated reach the cache, so junk cannot fill
# it. A heap of expiries drops expired entries at O(log n) per add.
# Several B instances share one cache through the same add() contract (issue 8: Redis).
import heapq

FRESH = 1   # recorded now: first sight of this key
SEEN = 0    # an unexpired entry exists: a replay
FULL = 2    # at capacity, nothing evicted, nothing recorded


class ReplayCache:
    def __init__(self, capacity=100000):
        self.capacity = capacity
        self.full = 0             # add() calls answered FULL
        self._seen = {}
        self._heap = []

    def __len__(self):
        return len(self._seen)

    def add(self, key, expires, now):
        seen, heap = self._seen, self._heap
        old = seen.get(key)
        if old is not None and old >= now:       # an entry is valid through its expiry
            return SEEN
        while heap and heap[0][0] < now:
            exp, k = heapq.heappop(heap)
            if seen.get(k) == exp:
                del seen[k]
        if key not in seen and len(seen) >= self.capacity:
            self.full += 1
            return FULL
        if len(heap) > 2 * self.capacity + 16:     # too many stale entries: rebuild
            heap = self._heap = [(t, k) for k, t in seen.items()]
            heapq.heapify(heap)
        seen[key] = expires
        heapq.heappush(heap, (expires, key))
        return FRESH
