# host_server.server_b.idset: the set of enrolled, non-revoked device IDs that the CS lists
# (GET /ids), kept current by its event stream (`enrolled`, `revoked`) and re-read in
# full every ids_sync seconds (host_server.server_b.revocations runs both). While `synced`, an
# m1 whose ID is not in the set is answered UNKNOWN_ID with no CS request and no per-ID
# state (issue 11 items 10 and 12); before the first read succeeds (CS down at start,
# or a CS without /ids), and while the event stream is down (enrollments may be
# missed), B falls back to looking the ID up, under the rate limits. A device enrolled
# less than the event's latency (milliseconds) before its m1 gets UNKNOWN_ID once.
# Memory: about 100 bytes per enrolled ID (a Python set of bytes).
from __future__ import annotations


class IdSet:
    def __init__(self) -> None:
        self.synced = False
        self.live = False          # the event stream is connected
        self._ids: set[bytes] = set()
        # changes seen while a full read is in flight, applied over its result
        self._added: set[bytes] | None = None
        self._removed: set[bytes] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, id_a: object) -> bool:
        return id_a in self._ids

    def unknown(self, id_a: bytes) -> bool:
        """True when the set is synced and current and id_a is not in it (answer
        UNKNOWN_ID)."""
        return self.synced and self.live and id_a not in self._ids

    def add(self, id_a: bytes) -> None:
        self._ids.add(id_a)
        if self._added is not None:
            self._added.add(id_a)
            self._removed.discard(id_a)      # type: ignore[union-attr]

    def discard(self, id_a: bytes) -> None:
        self._ids.discard(id_a)
        if self._removed is not None:
            self._removed.add(id_a)
            self._added.discard(id_a)        # type: ignore[union-attr]

    def begin_read(self) -> None:
        """A full read starts: remember the changes that arrive meanwhile."""
        self._added, self._removed = set(), set()

    def end_read(self, ids: set[bytes] | None) -> None:
        """The full read's result (None: it failed; keep what we have)."""
        added, removed = self._added or set(), self._removed or set()
        self._added = self._removed = None
        if ids is None:
            return
        self._ids = (ids | added) - removed
        self.synced = True
