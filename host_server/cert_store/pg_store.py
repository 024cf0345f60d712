# host_server.cert_store.pg_store: the PostgreSQL backend of the certificate store (asyncpg).
# Same contract as the SQLite one (host_server.cert_store.store.CertStore). Owns the schema and
# its migrations, the queries, and the revocation push:
#   - enrollment is one INSERT: the ID-collision check is the PRIMARY KEY on id (and
#     UNIQUE on the SPKI hash, the serial and the certificate hash), never a read first;
#   - a revocation takes the next seq from a one-row counter (row lock: seqs are gapless
#     and commit in seq order, so `seq > N` never skips a late commit), inserts the log
#     row and NOTIFYs channel airshake_revocations in the same transaction;
#   - follow(since) LISTENs on a connection of its own, reads the log after since, then
#     yields each notification; a broken connection raises StoreUnavailable and the
#     caller resumes from the last seq it saw, so a missed notice is never lost;
#   - an enrollment NOTIFYs airshake_enrollments in its transaction; follow() yields it
#     as Enrolled to the other instances (best effort: B also re-reads GET /ids).
from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

from host_server.cert_store import pgsql
from host_server.cert_store.pgsql import StoreUnavailable
from host_server.cert_store.store import (CertRecord, CertStore, Enrolled, IdCollision, NotFound,
                                  Revocation,
                                  SELECT_CERTS, SELECT_ENROLLED_IDS, SerialInUse, cert_index,
                                  cert_record)

CHANNEL = "airshake_revocations"
ENROLL_CHANNEL = "airshake_enrollments"
PING_S = 15.0   # a LISTEN connection silent this long is probed with SELECT 1

MIGRATIONS = [
    # version 1
    """
    CREATE TABLE IF NOT EXISTS certs (
        id          BYTEA PRIMARY KEY,
        spki_sha256 BYTEA NOT NULL UNIQUE,
        name        TEXT NOT NULL,
        der         BYTEA NOT NULL,
        serial      TEXT NOT NULL UNIQUE,     -- hex: serials may exceed 63 bits
        not_after   BIGINT NOT NULL,
        enrolled_at BIGINT NOT NULL,
        ski_sha1    BYTEA NOT NULL,
        cert_sha1   BYTEA NOT NULL UNIQUE,
        ord         BIGSERIAL NOT NULL        -- enrollment order among equal enrolled_at
    );
    CREATE INDEX IF NOT EXISTS certs_ski_sha1 ON certs (ski_sha1);
    CREATE TABLE IF NOT EXISTS revocations (
        seq    BIGINT PRIMARY KEY,
        id     BYTEA NOT NULL UNIQUE REFERENCES certs (id),
        time   BIGINT NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS revocation_counter (
        one  BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
        last BIGINT NOT NULL
    );
    INSERT INTO revocation_counter (one, last) VALUES (TRUE, 0) ON CONFLICT DO NOTHING;
    """,
]

def _revocation(row: Any) -> Revocation:
    return Revocation(int(row[0]), bytes(row[1]), int(row[2]), row[3])


class PgStore(CertStore):
    kind = "postgresql"
    push = True

    def __init__(self, url: str, pool_size: int = 10, app_name: str = "airshake"):
        self.url = pgsql.check_url(url)
        self.app_name = app_name     # pg_stat_activity.application_name (+ "-listen")
        self.shown = pgsql.redact(url)
        self.pool_size = pool_size
        self._pool: Any = None
        self._opening = asyncio.Lock()
        self._origin = secrets.token_hex(8)   # tells our own enrollment notices apart

    async def connect(self) -> None:
        async with self._opening:
            if self._pool is not None:
                return
            pool = await pgsql.create_pool(self.url, 1, self.pool_size, app_name=self.app_name)
            try:
                async with pool.acquire() as conn:
                    await pgsql.migrate(conn, "certstore", MIGRATIONS, self.shown)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool

    async def _q(self, method: str, sql: str, *args: Any) -> Any:
        if self._pool is None:
            await self.connect()
        try:
            return await getattr(self._pool, method)(sql, *args)
        except pgsql.connection_errors() as e:
            raise StoreUnavailable(f"PostgreSQL at {self.shown}: {type(e).__name__}") from None

    async def get(self, id: bytes) -> CertRecord | None:
        row = await self._q("fetchrow", f"{SELECT_CERTS} WHERE c.id = $1", id)
        return cert_record(row) if row else None

    async def find_by_ski_sha1(self, h: bytes) -> CertRecord | None:
        row = await self._q("fetchrow", f"{SELECT_CERTS} WHERE c.ski_sha1 = $1 ORDER BY c.ord "
                                        "LIMIT 1", h)
        return cert_record(row) if row else None

    async def find_by_cert_sha1(self, h: bytes) -> CertRecord | None:
        row = await self._q("fetchrow", f"{SELECT_CERTS} WHERE c.cert_sha1 = $1", h)
        return cert_record(row) if row else None

    async def enroll(self, record: CertRecord) -> None:
        import asyncpg  # type: ignore[import-untyped]
        ix = cert_index(record)
        serial = "%x" % record.serial
        notice = json.dumps({"id": record.id.hex(), "origin": self._origin})
        if self._pool is None:
            await self.connect()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO certs (id, spki_sha256, name, der, serial, not_after, "
                    "enrolled_at, ski_sha1, cert_sha1) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    record.id, ix.spki_sha256, record.name, record.der, serial,
                    record.not_after, record.enrolled_at, ix.ski_sha1, ix.cert_sha1)
                await conn.execute("SELECT pg_notify($1, $2)", ENROLL_CHANNEL, notice)
        except pgsql.connection_errors() as e:
            raise StoreUnavailable(f"PostgreSQL at {self.shown}: {type(e).__name__}") from None
        except asyncpg.UniqueViolationError:
            # the constraint decided; these reads only name the clash
            same = await self._q("fetchval", "SELECT id FROM certs WHERE spki_sha256 = $1",
                                 ix.spki_sha256)
            if same is not None:
                raise IdCollision(bytes(same), same_key=True)
            if await self._q("fetchval", "SELECT 1 FROM certs WHERE id = $1", record.id):
                raise IdCollision(record.id, same_key=False)
            if await self._q("fetchval", "SELECT 1 FROM certs WHERE serial = $1", serial):
                raise SerialInUse(record.serial)
            raise

    async def revoke(self, id: bytes, reason: str, at: int) -> Revocation:
        if self._pool is None:
            await self.connect()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                # the counter's row lock orders revocations: one at a time, commit order
                # = seq order, no gaps (a rollback gives the number back)
                seq = await conn.fetchval("UPDATE revocation_counter SET last = last + 1 "
                                          "RETURNING last")
                row = await conn.fetchrow("SELECT seq, id, time, reason FROM revocations "
                                          "WHERE id = $1", id)
                if row is not None:
                    raise _Already(_revocation(row))
                if await conn.fetchval("SELECT 1 FROM certs WHERE id = $1", id) is None:
                    raise NotFound(id.hex())
                await conn.execute("INSERT INTO revocations (seq, id, time, reason) "
                                   "VALUES ($1, $2, $3, $4)", seq, id, at, reason)
                rev = Revocation(int(seq), id, at, reason)
                await conn.execute("SELECT pg_notify($1, $2)", CHANNEL,
                                   json.dumps(rev.to_json(), separators=(",", ":")))
        except _Already as e:      # the transaction rolled back: the counter is unchanged
            return e.rev
        except pgsql.connection_errors() as e:
            raise StoreUnavailable(f"PostgreSQL at {self.shown}: {type(e).__name__}") from None
        return rev

    async def revocations_since(self, seq: int) -> list[Revocation]:
        rows = await self._q("fetch", "SELECT seq, id, time, reason FROM revocations "
                                      "WHERE seq > $1 ORDER BY seq", seq)
        return [_revocation(r) for r in rows]

    async def last_seq(self) -> int:
        return int(await self._q("fetchval", "SELECT COALESCE(MAX(seq), 0) FROM revocations"))

    async def list_certs(self) -> list[CertRecord]:
        rows = await self._q("fetch", f"{SELECT_CERTS} ORDER BY c.enrolled_at, c.ord")
        return [cert_record(r) for r in rows]

    async def enrolled_ids(self) -> list[bytes]:
        return [bytes(r[0]) for r in await self._q("fetch", SELECT_ENROLLED_IDS)]

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 5)
            except (asyncio.TimeoutError, OSError, Exception):  # noqa: BLE001 - closing
                pool.terminate()

    async def follow(self, since: int,
                     enrollments: bool = False) -> AsyncIterator[Revocation | Enrolled]:
        import asyncpg  # type: ignore[import-untyped]
        try:
            conn = await asyncpg.connect(self.url, timeout=5, server_settings={
                "application_name": self.app_name + "-listen"})
        except pgsql.connection_errors() as e:
            raise StoreUnavailable(f"cannot LISTEN on PostgreSQL at {self.shown}: "
                                   f"{type(e).__name__}") from None
        queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        conn.add_termination_listener(lambda _c: queue.put_nowait(None))
        floor = since
        try:
            for channel in (CHANNEL, ENROLL_CHANNEL) if enrollments else (CHANNEL,):
                await conn.add_listener(channel, lambda _c, _pid, ch, payload:
                                        queue.put_nowait((ch, payload)))
            # LISTEN first, then read the log: a revocation committed in between is
            # both read and notified, and the floor drops the repeat
            for rev in await self._since(conn, floor):
                yield rev
                floor = rev.seq
            while True:
                try:
                    payload = await asyncio.wait_for(queue.get(), PING_S)
                except asyncio.TimeoutError:
                    await conn.fetchval("SELECT 1")   # raises if the connection is dead
                    continue
                if payload is None:
                    raise StoreUnavailable("the LISTEN connection to PostgreSQL closed")
                channel, text = payload
                if channel == ENROLL_CHANNEL:
                    enrolled = self._enrolled(text)
                    if enrolled is not None:
                        yield enrolled
                    continue
                try:
                    seq = int(json.loads(text)["seq"])
                except (ValueError, KeyError, TypeError):
                    seq = floor + 1     # unreadable notice: read the log instead
                if seq <= floor:
                    continue
                for rev in await self._since(conn, floor):   # the notice and any gap
                    yield rev
                    floor = rev.seq
        except pgsql.connection_errors() as e:
            raise StoreUnavailable(f"lost the LISTEN connection to PostgreSQL at "
                                   f"{self.shown}: {type(e).__name__}") from None
        finally:
            if not conn.is_closed():
                try:
                    await asyncio.wait_for(conn.close(), 2)
                except BaseException:
                    conn.terminate()

    def _enrolled(self, payload: str) -> Enrolled | None:
        """The Enrolled notice of another instance's enrollment (None: ours or junk)."""
        try:
            data = json.loads(payload)
            if data.get("origin") == self._origin:
                return None
            return Enrolled(bytes.fromhex(data["id"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    @staticmethod
    async def _since(conn: Any, seq: int) -> list[Revocation]:
        rows = await conn.fetch("SELECT seq, id, time, reason FROM revocations "
                                "WHERE seq > $1 ORDER BY seq", seq)
        return [_revocation(r) for r in rows]


class _Already(Exception):
    def __init__(self, rev: Revocation):
        self.rev = rev
