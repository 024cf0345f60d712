# host_server.server_b.sink: the application hook of server B and its default implementation.
# A sink receives every piece of application data B authenticates: the data in m3
# ("m3"), 0-RTT data in m1 ("early") and later session records ("record"), and may
# return a reply that B sends back encrypted in the same session.
# SqliteSink stores each one in SQLite (table records, unique per (id_a, sid, seq, kind)
# so a duplicate is stored once); one writer task batches inserts into one transaction
# in a worker thread, so the event loop never waits on the disk.
# For "early" data no session exists yet: sid is the first 4 bytes of SHA-256(m1) and
# seq is 0; m3 data has seq 0 too (kind tells them apart from records).
# Device-level idempotency: (sid, seq) name a record only inside one session, and a
# device that resends a reading whose acknowledgement it never got (B restarted, the
# ack was lost) sends it in a new record, often of a new session. Data that starts with
# `n=<decimal>` not followed by another digit (the reading counter of device.sensor,
# e.g. b"n=17 t=21") is therefore also unique per (id_a, n), whatever session, seq or
# kind carried it: a repeat is not stored again but is acknowledged again. The device
# must never reuse n (device.sensor keeps its counter in flash).
from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path
from typing import Protocol

from host_server.errors import UserError

KINDS = ("m3", "early", "record")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id_a TEXT NOT NULL, sid TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    data BLOB NOT NULL, received_at REAL NOT NULL, reading INTEGER,
    UNIQUE(id_a, sid, seq, kind))
"""
# NULLs are distinct in a UNIQUE index: data without a reading number is not affected
_READING_INDEX = ("CREATE UNIQUE INDEX IF NOT EXISTS records_reading "
                  "ON records(id_a, reading)")
_INSERT = ("INSERT OR IGNORE INTO records (id_a, sid, seq, kind, data, received_at, reading) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)")
_READING = re.compile(rb"n=([0-9]{1,18})(?![0-9])")

Row = tuple[str, str, int, str, bytes, float, int | None]


def reading_number(data: bytes) -> int | None:
    """The device's reading counter n of data that starts with b"n=<n>", else None."""
    m = _READING.match(data)
    return int(m.group(1)) if m else None


class Sink(Protocol):
    async def on_record(self, id_a: bytes, sid: bytes, seq: int, data: bytes,
                        kind: str) -> bytes | None:
        """Handle one piece of authenticated application data; the bytes returned (if
        any) go back to the device, encrypted, in the same session."""
        ...

    async def close(self) -> None:
        ...


class BatchingSink:
    """The application-hook half every record store shares: on_record() queues a row and
    waits for its batch to be written; one writer task writes batches of up to MAX_BATCH
    and tells each waiter whether its row was new (False: a duplicate, stored before).
    Subclasses give _row() and _write_rows(), and close their backend in _close_backend()."""

    MAX_BATCH = 500

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.stored = 0
        self.duplicates = 0
        self._queue: list[tuple[tuple, asyncio.Future[bool]]] = []
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closing = False

    def _row(self, id_a: bytes, sid: bytes, seq: int, data: bytes, kind: str) -> tuple:
        return (id_a.hex(), sid.hex(), seq, kind, bytes(data), time.time(),
                reading_number(data))

    async def _write_rows(self, rows: list) -> list[bool]:
        raise NotImplementedError

    async def _close_backend(self) -> None:
        pass

    async def _write_loop(self) -> None:
        assert self._wake is not None
        while not self._closing or self._queue:
            if not self._queue:
                await self._wake.wait()
                self._wake.clear()
            while self._queue:
                batch = self._queue[:self.MAX_BATCH]
                self._queue = self._queue[self.MAX_BATCH:]
                try:
                    results = await self._write_rows([r for r, _ in batch])
                except Exception as e:  # noqa: BLE001 - every waiter must get an answer
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(e)
                    continue
                for (_, fut), ok in zip(batch, results):
                    if not fut.done():
                        fut.set_result(ok)

    async def on_record(self, id_a: bytes, sid: bytes, seq: int, data: bytes,
                        kind: str) -> bytes | None:
        if self._writer is None:
            self._wake = asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        assert self._wake is not None
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.append((self._row(id_a, sid, seq, data, kind), fut))
        self._wake.set()
        if await fut:
            self.stored += 1
        else:
            self.duplicates += 1
        return b"ack:%d" % seq if self.reply == "ack" else None

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None and self._wake is not None:
            self._wake.set()
            try:
                await asyncio.wait_for(self._writer, 10)   # drains the queue, then returns
            except asyncio.TimeoutError:
                self._writer.cancel()
        await self._close_backend()


class SqliteSink(BatchingSink):
    def __init__(self, path: Path, reply: str = "none") -> None:
        super().__init__(reply)
        self.path = path
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
            columns = [r[1] for r in self._db.execute("PRAGMA table_info(records)")]
            if "reading" not in columns:            # a database of an earlier B
                self._db.execute("ALTER TABLE records ADD COLUMN reading INTEGER")
            self._db.execute(_READING_INDEX)
            self._db.commit()
        except sqlite3.Error as e:
            raise UserError(f"database {path} cannot be used ({e}): give a writable SQLite "
                            "file path with --db") from None

    def _write(self, rows: list[Row]) -> list[bool]:
        inserted = []
        with self._db:
            for row in rows:
                inserted.append(self._db.execute(_INSERT, row).rowcount == 1)
        return inserted

    async def _write_rows(self, rows: list) -> list[bool]:
        return await asyncio.to_thread(self._write, rows)

    async def _close_backend(self) -> None:
        self._db.close()
