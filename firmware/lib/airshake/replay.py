# airshake.replay: B's replay cache of m1 hashes (docs/PROTOCOL.md §8.5).
# Rules: add() is True only the first time a key is seen before its expiry; bounded:
# at capacity the entry nearest expiry is evicted first (so an eviction only shortens
# the protection of the oldest m1s). A heap of expiries keeps expiring and evicting
# at O(log n) per m1, which matters at thousands of m1s per second.
# Several B instances share one cache through the same add() contract (issue 8: Redis).
import heapq


class ReplayCache:
    def __init__(self, capacity=100000):
        self.capacity = capacity
        self.evicted = 0          # unexpired entries pushed out by capacity
        self._seen = {}
        self._heap = []

    def __len__(self):
        return len(self._seen)

    def _drop_oldest(self):
        while self._heap:
            expires, key = heapq.heappop(self._heap)
            if self._seen.get(key) == expires:    # else a stale heap entry
                del self._seen[key]
                return

    def add(self, key, expires, now):
        seen, heap = self._seen, self._heap
        old = seen.get(key)
        if old is not None and old >= now:       # an entry is valid through its expiry
            return False
        while heap and heap[0][0] < now:
            exp, k = heapq.heappop(heap)
            if seen.get(k) == exp:
                del seen[k]
        if len(seen) >= self.capacity:
            self._drop_oldest()
            self.evicted += 1
        if len(heap) > 2 * self.capacity + 16:     # too many stale entries: rebuild
            heap = self._heap = [(t, k) for k, t in seen.items()]
            heapq.heapify(heap)
        seen[key] = expires
        heapq.heappush(heap, (expires, key))
        return True
