# host_server.server_b.revocations: keeps B's revoked set and certificate cache in step with the
# CS. A background task, on start and on every reconnect, first reads the revocation
# list since the last sequence number it saw (catch-up), then follows the CS's event
# stream, which resumes after Last-Event-ID. A slower periodic catch-up poll covers a
# stream that is silently stuck. Each revocation drops the device's MEM entry and adds
# its ID to the revoked set, and drops its sessions and handshakes (Credentials.revoke).
# It also keeps the set of enrolled IDs (host_server.server_b.idset): a full read of GET /ids
# at start and every ids_sync seconds, `enrolled` events in between. Reconnects back off
# from 0.2 s to 5 s.
from __future__ import annotations

import asyncio
import contextlib
import sys

from host_server.server_b.credentials import Credentials
from host_server.server_b.cs_client import CSClient, CSUnavailable, Enrolled, Revocation, Subscribed
from host_server.server_b.logs import EventLog
from host_server.server_b.metrics import Metrics

_BACKOFF_MIN = 0.2
_BACKOFF_MAX = 5.0


class RevocationFollower:
    def __init__(self, cs: CSClient, creds: Credentials, metrics: Metrics, log: EventLog,
                 poll_interval: float, ids_sync: float = 60.0) -> None:
        self.cs = cs
        self.creds = creds
        self.metrics = metrics
        self.log = log
        self.poll_interval = poll_interval
        self.ids_sync = ids_sync
        self._last_why = ""
        self._resync = asyncio.Event()       # the stream (re)opened: read the IDs again
        self.last_seq = 0
        self.connected: bool | None = None     # None until the first attempt
        self.backoff_max = _BACKOFF_MAX        # a store on the LAN (PostgreSQL) uses 1 s
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow()), loop.create_task(self._poll())]
        if hasattr(self.cs, "ids"):
            self._tasks.append(loop.create_task(self._sync_ids()))

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def apply(self, rev: Revocation | Enrolled | Subscribed) -> None:
        if isinstance(rev, Subscribed):     # enrollments made before it opened: read all
            self._resync.set()
            return
        if isinstance(rev, Enrolled):
            try:
                self.creds.ids.add(bytes.fromhex(rev.id_hex))
            except ValueError:
                self.log.warning("enrollment_ignored", why="id is not hex")
            self.metrics.ids.set(len(self.creds.ids))
            return
        if rev.seq > self.last_seq:
            self.last_seq = rev.seq
        try:
            id_a = bytes.fromhex(rev.id_hex)
        except ValueError:
            self.log.warning("revocation_ignored", seq=rev.seq, why="id is not hex")
            return
        new, was_cached = self.creds.revoke(id_a, rev.time)
        self.metrics.ids.set(len(self.creds.ids))
        if new:
            self.metrics.revocations.inc()
            self.log.info("revocation_applied", id=rev.id_hex, seq=rev.seq,
                          reason=rev.reason, was_cached=was_cached)

    async def catch_up(self) -> None:
        items, last = await self.cs.revocations_since(self.last_seq)
        if last < self.last_seq:    # the store's log restarted (a new database): read it all
            self.log.warning("revocation_log_reset", last_seq=self.last_seq, store_seq=last)
            self.last_seq = 0
            items, last = await self.cs.revocations_since(0)
        for rev in items:
            self.apply(rev)
        self.last_seq = max(self.last_seq, last)

    def _set_connected(self, up: bool, why: str = "") -> None:
        self.creds.ids.live = up
        if up != self.connected:
            self.connected = up
            self.metrics.cs_stream.set(1 if up else 0)
            if up:
                self.log.info("cs_stream_connected", last_seq=self.last_seq)
            else:
                hint = _lost_hint(self.cs, why)
                self.log.warning("cs_stream_lost", why=why, last_seq=self.last_seq, hint=hint)
                if sys.stderr.isatty():   # a person is watching: one plain line too
                    print("airshake server: " + hint, file=sys.stderr, flush=True)

    async def _follow(self) -> None:
        backoff = _BACKOFF_MIN
        while True:
            why = "stream ended"
            try:
                await self.catch_up()
                events = self.cs.events(self.last_seq)
                self._set_connected(True)
                backoff = _BACKOFF_MIN
                async for rev in events:
                    self.apply(rev)
            except CSUnavailable as e:
                why = str(e)
            self._set_connected(False, why)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max)

    async def read_ids(self) -> bool:
        """One full read of the CS's ID set; False when it failed or is not served."""
        ids = self.creds.ids
        ids.begin_read()
        got, why = None, "this CS does not serve /ids"
        try:
            got = await self.cs.ids(self.creds.cfg.id_len)
        except CSUnavailable as e:
            why = str(e)
        if got is None and not ids.synced and why != self._last_why:
            self._last_why = why
            self.log.warning("ids_unsynced", why=why,
                             effect="unknown IDs are looked up at the CS (rate-limited)")
        revoked = self.creds.revoked
        ids.end_read(None if got is None else {i for i in got if i not in revoked})
        self.metrics.ids.set(len(ids))
        self.metrics.ids_synced.set(1 if ids.synced else 0)
        return got is not None

    async def _sync_ids(self) -> None:
        backoff = _BACKOFF_MIN
        while True:
            synced = self.creds.ids.synced
            if await self.read_ids():
                if not synced:
                    self.log.info("ids_synced", ids=len(self.creds.ids))
                backoff = _BACKOFF_MIN
                await self._wait_resync(self.ids_sync)
            else:              # unsynced: retry soon; synced: keep the set, retry later
                await self._wait_resync(self.ids_sync if self.creds.ids.synced else backoff)
                backoff = min(backoff * 2, self.ids_sync)

    async def _wait_resync(self, timeout: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._resync.wait(), timeout)
        self._resync.clear()

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            with contextlib.suppress(CSUnavailable):
                await self.catch_up()


def _lost_hint(cs: object, why: str) -> str:
    url = getattr(cs, "base_url", None)
    where = (f"the certificate store at {url}: is `airshake cs serve` running? check "
             "--cs-url and --cs-token-file" if url else
             "the certificate store's database: check --store")
    return (f"lost {where} ({why}); until it is back, B answers only devices whose "
            "certificates it has cached")
