# host_server.server_b.amplify: B is not an amplifier (issue 11 item 13). For every source
# address that has completed no handshake with B, the bytes B sends to it are at most
# `factor` times the bytes B received from it; a datagram that would exceed this is
# not sent (the device's retransmissions raise its budget). An address is proven once
# an authenticated m3 or record arrives from it; proven addresses are not limited.
# Both tables are bounded (least recently used first out): evicting a budget entry
# forgets what was received and sent together, so the bound still holds per entry.
from __future__ import annotations

from collections import OrderedDict
from typing import Any


class AmplificationGuard:
    def __init__(self, factor: float, capacity: int = 65536,
                 proven_capacity: int = 100000) -> None:
        self.factor = factor
        self.capacity = capacity
        self.proven_capacity = proven_capacity
        self._budget: OrderedDict[Any, list[int]] = OrderedDict()  # addr -> [in, out]
        self._proven: OrderedDict[Any, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._budget)

    def received(self, addr: Any, size: int) -> None:
        if addr in self._proven:
            return
        b = self._budget.get(addr)
        if b is None:
            b = self._budget[addr] = [0, 0]
            if len(self._budget) > self.capacity:
                self._budget.popitem(last=False)
        else:
            self._budget.move_to_end(addr)
        b[0] += size

    def allow(self, addr: Any, size: int) -> bool:
        """True (and size is counted as sent) when addr may be sent size more bytes."""
        if addr in self._proven:
            return True
        b = self._budget.get(addr)
        if b is None or b[1] + size > self.factor * b[0]:
            return False
        b[1] += size
        return True

    def prove(self, addr: Any) -> None:
        if addr in self._proven:
            self._proven.move_to_end(addr)
            return
        self._proven[addr] = None
        self._budget.pop(addr, None)
        if len(self._proven) > self.proven_capacity:
            self._proven.popitem(last=False)

    def proven(self, addr: Any) -> bool:
        return addr in self._proven
