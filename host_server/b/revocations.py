# host_server.b.revocations: keeps B's revoked set and certificate cache in step with the
# CS. A background task, on start and on every reconnect, first reads the revocation
# list since the last sequence number it saw (catch-up), then follows the CS's event
# stream, which resumes after Last-Event-ID. A slower periodic catch-up poll covers a
# stream that is silently stuck. Each revocation drops the device's MEM entry and adds
# its ID to the revoked set. Reconnects back off from 0.2 s to 5 s.
from __future__ import annotations

import asyncio
import contextlib

from host_server.b.credentials import Credentials
from host_server.b.cs_client import CSClient, CSUnavailable, Revocation
from host_server.b.logs import EventLog
from host_server.b.metrics import Metrics

_BACKOFF_MIN = 0.2
_BACKOFF_MAX = 5.0


class RevocationFollower:
    def __init__(self, cs: CSClient, creds: Credentials, metrics: Metrics, log: EventLog,
                 poll_interval: float) -> None:
        self.cs = cs
        self.creds = creds
        self.metrics = metrics
        self.log = log
        self.poll_interval = poll_interval
        self.last_seq = 0
        self.connected: bool | None = None     # None until the first attempt
        self.backoff_max = _BACKOFF_MAX        # a store on the LAN (PostgreSQL) uses 1 s
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._follow()), loop.create_task(self._poll())]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def apply(self, rev: Revocation) -> None:
        if rev.seq > self.last_seq:
            self.last_seq = rev.seq
        try:
            id_a = bytes.fromhex(rev.id_hex)
        except ValueError:
            self.log.warning("revocation_ignored", seq=rev.seq, why="id is not hex")
            return
        new, was_cached = self.creds.revoke(id_a, rev.time)
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
        if up != self.connected:
            self.connected = up
            self.metrics.cs_stream.set(1 if up else 0)
            if up:
                self.log.info("cs_stream_connected", last_seq=self.last_seq)
            else:
                self.log.warning("cs_stream_lost", why=why, last_seq=self.last_seq)

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

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            with contextlib.suppress(CSUnavailable):
                await self.catch_up()
