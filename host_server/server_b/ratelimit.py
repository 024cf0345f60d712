# host_server.server_b.ratelimit: token buckets keyed by source address or device ID, with
# bounded memory. A bucket that was evicted (least recently used first) starts full
# again, which only ever errs towards letting a quiet key through.
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Hashable

from host_server.server_b.config import Rate


class RateLimiter:
    """take(key, now) spends one token of key's bucket; False when it is empty."""

    def __init__(self, rate: Rate, capacity: int = 100000) -> None:
        self.rate = rate.rate
        self.burst = rate.burst
        self.capacity = capacity
        self._buckets: OrderedDict[Hashable, list[float]] = OrderedDict()  # key -> [tokens, t]

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable, now: float) -> bool:
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= self.capacity:
                self._buckets.popitem(last=False)
            self._buckets[key] = [self.burst - 1, now]
            return True
        self._buckets.move_to_end(key)
        tokens = min(self.burst, b[0] + (now - b[1]) * self.rate)
        b[1] = now
        if tokens < 1:
            b[0] = tokens
            return False
        b[0] = tokens - 1
        return True

    def retry_after(self, key: Hashable, now: float) -> int:
        """Whole seconds until key's bucket holds a token again (at least 1)."""
        b = self._buckets.get(key)
        if b is None:
            return 1
        tokens = min(self.burst, b[0] + (now - b[1]) * self.rate)
        return max(1, math.ceil((1 - tokens) / self.rate))
