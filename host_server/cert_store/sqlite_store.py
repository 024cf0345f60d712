# host_server.cert_store.sqlite_store: the embedded SQLite backend of the certificate store.
# Owns the schema (versioned with PRAGMA user_version; each migration is idempotent and
# runs in one IMMEDIATE transaction), WAL mode, and the one connection, used only from
# one worker thread so the event loop never blocks on the database. ID and key
# uniqueness are PRIMARY KEY / UNIQUE constraints: a collision is an IntegrityError.
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from host_server.cert_store.store import (CertRecord, CertStore, IdCollision, NotFound, Revocation,
                                  SELECT_CERTS, SELECT_ENROLLED_IDS, SerialInUse, cert_index,
                                  cert_record)
from host_server.errors import UserError

T = TypeVar("T")

MIGRATIONS = [
    # version 1
    """
    CREATE TABLE IF NOT EXISTS certs (
        id          BLOB PRIMARY KEY,
        spki_sha256 BLOB NOT NULL UNIQUE,
        name        TEXT NOT NULL,
        der         BLOB NOT NULL,
        serial      TEXT NOT NULL UNIQUE,  -- hex: serials may exceed 63 bits
        not_after   INTEGER NOT NULL,
        enrolled_at INTEGER NOT NULL,
        ski_sha1    BLOB NOT NULL,
        cert_sha1   BLOB NOT NULL UNIQUE
    );
    CREATE INDEX IF NOT EXISTS certs_ski_sha1 ON certs (ski_sha1);
    CREATE TABLE IF NOT EXISTS revocations (
        seq    INTEGER PRIMARY KEY AUTOINCREMENT,
        id     BLOB NOT NULL UNIQUE REFERENCES certs (id),
        time   INTEGER NOT NULL,
        reason TEXT NOT NULL
    );
    """,
]

class SqliteStore(CertStore):
    kind = "sqlite"

    def __init__(self, path: str, pool: concurrent.futures.ThreadPoolExecutor,
                 db: sqlite3.Connection):
        self.path = path
        self._pool = pool
        self._db = db

    @classmethod
    def open(cls, path: str) -> SqliteStore:
        """Open (creating if needed) the database at path; UserError if impossible."""
        _check_path(path)
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cs-sqlite")
        try:
            db = pool.submit(_connect, path).result()
        except BaseException:
            pool.shutdown()
            raise
        return cls(path, pool, db)

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, self._db)

    async def get(self, id: bytes) -> CertRecord | None:
        return await self._one(f"{SELECT_CERTS} WHERE c.id = ?", (id,))

    async def find_by_ski_sha1(self, h: bytes) -> CertRecord | None:
        return await self._one(f"{SELECT_CERTS} WHERE c.ski_sha1 = ? ORDER BY c.rowid", (h,))

    async def find_by_cert_sha1(self, h: bytes) -> CertRecord | None:
        return await self._one(f"{SELECT_CERTS} WHERE c.cert_sha1 = ?", (h,))

    async def _one(self, sql: str, params: tuple) -> CertRecord | None:
        row = await self._run(lambda db: db.execute(sql, params).fetchone())
        return cert_record(row) if row else None

    async def enroll(self, record: CertRecord) -> None:
        ix = cert_index(record)

        def insert(db: sqlite3.Connection) -> None:
            try:
                with db:
                    db.execute("INSERT INTO certs (id, spki_sha256, name, der, serial, "
                               "not_after, enrolled_at, ski_sha1, cert_sha1) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (record.id, ix.spki_sha256, record.name, record.der,
                                "%x" % record.serial, record.not_after, record.enrolled_at,
                                ix.ski_sha1, ix.cert_sha1))
            except sqlite3.IntegrityError:
                row = db.execute("SELECT id FROM certs WHERE spki_sha256 = ?",
                                 (ix.spki_sha256,)).fetchone()
                if row:
                    raise IdCollision(bytes(row[0]), same_key=True)
                if db.execute("SELECT 1 FROM certs WHERE id = ?", (record.id,)).fetchone():
                    raise IdCollision(record.id, same_key=False)
                if db.execute("SELECT 1 FROM certs WHERE serial = ?",
                              ("%x" % record.serial,)).fetchone():
                    raise SerialInUse(record.serial)
                raise
        await self._run(insert)

    async def revoke(self, id: bytes, reason: str, at: int) -> Revocation:
        def revoke(db: sqlite3.Connection) -> Revocation:
            find = "SELECT seq, id, time, reason FROM revocations WHERE id = ?"
            with db:
                row = db.execute(find, (id,)).fetchone()
                if row is None:   # only a real insert takes a seq: no gap after a repeat
                    db.execute("INSERT INTO revocations (id, time, reason) "
                               "SELECT id, ?, ? FROM certs WHERE id = ? "
                               "ON CONFLICT (id) DO NOTHING", (at, reason, id))
                    row = db.execute(find, (id,)).fetchone()
            if row is None:
                raise NotFound(id.hex())
            return Revocation(row[0], bytes(row[1]), row[2], row[3])
        return await self._run(revoke)

    async def revocations_since(self, seq: int) -> list[Revocation]:
        rows = await self._run(lambda db: db.execute(
            "SELECT seq, id, time, reason FROM revocations WHERE seq > ? ORDER BY seq",
            (seq,)).fetchall())
        return [Revocation(s, bytes(i), t, r) for s, i, t, r in rows]

    async def last_seq(self) -> int:
        row = await self._run(lambda db: db.execute(
            "SELECT COALESCE(MAX(seq), 0) FROM revocations").fetchone())
        return int(row[0])

    async def list_certs(self) -> list[CertRecord]:
        rows = await self._run(lambda db: db.execute(
            f"{SELECT_CERTS} ORDER BY c.enrolled_at, c.rowid").fetchall())
        return [cert_record(r) for r in rows]

    async def enrolled_ids(self) -> list[bytes]:
        rows = await self._run(lambda db: db.execute(SELECT_ENROLLED_IDS).fetchall())
        return [bytes(r[0]) for r in rows]

    async def close(self) -> None:
        await self._run(lambda db: db.close())
        self._pool.shutdown()


def _check_path(path: str) -> None:
    p = Path(path)
    if p.is_dir():
        raise UserError(f"the certificate database {path} is a directory: give a file path "
                        "for db")
    parent = p.parent
    if not parent.is_dir():
        raise UserError(f"cannot create the certificate database {path}: directory "
                        f"{parent} does not exist")
    if p.exists():
        if not os.access(p, os.R_OK | os.W_OK):
            raise UserError(f"the certificate database {path} is not readable and writable: "
                            "check its permissions")
    elif not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot create the certificate database {path}: directory "
                        f"{parent} is not writable")


def _connect(path: str) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise UserError(f"cannot open the certificate database {path} ({e}): check the path")
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise UserError(f"the certificate database {path} cannot use WAL mode "
                            f"(got {mode}): put it on a local file system")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
        _migrate(db, path)
        # sqlite3 in autocommit mode (isolation_level=None): `with db` must still wrap
        # statements in a transaction, so switch to deferred transactions from here on
        db.isolation_level = "DEFERRED"
    except sqlite3.DatabaseError as e:
        db.close()
        raise UserError(f"the certificate database {path} cannot be used ({e}): check that "
                        "it is an airshake SQLite database")
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, path: str) -> None:
    db.execute("BEGIN IMMEDIATE")  # one process migrates at a time
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise UserError(f"the certificate database {path} has schema version {version}, "
                            f"newer than this airshake knows ({len(MIGRATIONS)}): upgrade "
                            "airshake")
        for v in range(version, len(MIGRATIONS)):
            for statement in MIGRATIONS[v].split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {v + 1}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
