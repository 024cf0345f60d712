# host_server.cert_store.events: the in-process event bus. Every SSE subscriber (a server
# B listening on GET /events) owns one asyncio.Queue; publish() puts each revocation into
# every queue at once, publish_enrolled() each enrollment made by this instance (an
# `enrolled` event carries no SSE id: it is not replayed, B reads GET /ids to catch up).
# Whoever records a revocation publishes it (the app, and the PostgreSQL LISTEN/NOTIFY
# feed of host_server.cert_store.service). publish() is idempotent per
# seq, so a feed that repeats itself does no harm. A subscriber that falls too far behind
# is closed: its client reconnects with Last-Event-ID and replays what it missed.
from __future__ import annotations

import asyncio
from collections.abc import Callable

from host_server.cert_store.store import Enrolled, Revocation

CLOSED = None  # queue item: the stream ends (shutdown, overflow)


class Subscription:
    def __init__(self, bus: RevocationBus, maxsize: int):
        self.bus = bus
        self.queue: asyncio.Queue[Revocation | Enrolled | None] = asyncio.Queue(maxsize)
        self.overflowed = False

    def close(self) -> None:
        self.bus._drop(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RevocationBus:
    def __init__(self, queue_size: int = 1000,
                 on_count: Callable[[int], None] | None = None):
        self._subs: list[Subscription] = []
        self._queue_size = queue_size
        self._published: set[int] = set()
        self._closed = False
        self._on_count = on_count or (lambda n: None)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def subscribe(self) -> Subscription:
        """A new subscription; use it as a context manager so it is always dropped."""
        sub = Subscription(self, self._queue_size)
        if self._closed:
            sub.queue.put_nowait(CLOSED)
        self._subs.append(sub)
        self._on_count(len(self._subs))
        return sub

    def publish(self, rev: Revocation) -> int:
        """Deliver rev to every subscriber now; returns how many got it (0 if this seq
        was published before)."""
        if rev.seq in self._published:
            return 0
        self._published.add(rev.seq)
        return self._deliver(rev)

    def publish_enrolled(self, item: Enrolled) -> int:
        """Deliver an enrollment to every subscriber now; returns how many got it."""
        return self._deliver(item)

    def _deliver(self, item: Revocation | Enrolled) -> int:
        delivered = 0
        for sub in list(self._subs):
            if sub.overflowed:
                continue
            try:
                sub.queue.put_nowait(item)
                delivered += 1
            except asyncio.QueueFull:
                sub.overflowed = True  # the stream ends once it drains what it holds
        return delivered

    def close(self) -> None:
        """End every stream (server shutdown); new subscriptions end at once."""
        self._closed = True
        for sub in self._subs:
            _force(sub.queue, CLOSED)

    def _drop(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
            self._on_count(len(self._subs))


def _force(queue: asyncio.Queue, item: object) -> None:
    while True:
        try:
            queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            queue.get_nowait()
