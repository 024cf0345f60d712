# host_server.server_b.pg_sink: B's record sink on PostgreSQL (db = "postgresql://..."), so
# several B instances store the devices' records in one place. Same contract as
# host_server.server_b.sink.SqliteSink: table records, unique per (id_a, sid, seq, kind) and,
# for data that starts with a reading number n=<decimal>, per (id_a, reading): a
# duplicate (a retransmission, or a reading resent in a new session after a lost ack)
# is acknowledged again but stored once, whichever instance gets it. One writer task
# batches the waiting records into one INSERT ... SELECT FROM unnest(...) ON CONFLICT
# DO NOTHING RETURNING statement; a record is acknowledged (on_record returns) only
# after its batch committed. While PostgreSQL is down on_record raises: the dispatcher
# logs it and sends no ack, so the device keeps the reading and sends it again.
from __future__ import annotations

import asyncio
from typing import Any

from host_server.server_b.sink import BatchingSink
from host_server.cert_store import pgsql
from host_server.cert_store.pgsql import StoreUnavailable

MIGRATIONS = [
    # version 1
    """
    CREATE TABLE IF NOT EXISTS records (
        id_a        TEXT NOT NULL,
        sid         TEXT NOT NULL,
        seq         BIGINT NOT NULL,
        kind        TEXT NOT NULL,
        data        BYTEA NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        reading     BIGINT,                    -- NULLs are distinct: data without n=
        instance    TEXT NOT NULL DEFAULT '',
        UNIQUE (id_a, sid, seq, kind)
    );
    CREATE UNIQUE INDEX IF NOT EXISTS records_reading ON records (id_a, reading);
    """,
]

_INSERT = """
INSERT INTO records (id_a, sid, seq, kind, data, received_at, reading, instance)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bytea[],
                     $6::float8[], $7::bigint[], $8::text[])
ON CONFLICT DO NOTHING
RETURNING id_a, sid, seq, kind
"""

Row = tuple[str, str, int, str, bytes, float, Any, str]


class PgSink(BatchingSink):
    kind = "postgresql"

    def __init__(self, url: str, reply: str = "none", instance: str = "",
                 pool_size: int = 4) -> None:
        super().__init__(reply)
        self.url = pgsql.check_url(url)
        self.shown = pgsql.redact(url)
        self.instance = instance
        self.pool_size = pool_size
        self.connected = False
        self._pool: Any = None
        self._opening = asyncio.Lock()

    async def start(self) -> None:
        """Connect and migrate now; a PostgreSQL that is down is not fatal (the writer
        connects when it comes back), a wrong URL or login is (UserError)."""
        try:
            await self._connect()
        except StoreUnavailable:
            pass

    async def _connect(self) -> Any:
        async with self._opening:
            if self._pool is None:
                pool = await pgsql.create_pool(self.url, 1, self.pool_size,
                                               app_name="airshake-b-sink")
                try:
                    async with pool.acquire() as conn:
                        await pgsql.migrate(conn, "records", MIGRATIONS, self.shown)
                except BaseException:
                    pool.terminate()
                    raise
                self._pool = pool
                self.connected = True
        return self._pool

    def _row(self, id_a: bytes, sid: bytes, seq: int, data: bytes, kind: str) -> tuple:
        return super()._row(id_a, sid, seq, data, kind) + (self.instance,)

    async def _write_rows(self, rows: list[Row]) -> list[bool]:
        pool = await self._connect()
        cols = list(zip(*rows))
        try:
            inserted = await pool.fetch(_INSERT, *[list(c) for c in cols])
        except pgsql.connection_errors() as e:
            self.connected = False
            raise StoreUnavailable(f"PostgreSQL at {self.shown}: {type(e).__name__}") from None
        self.connected = True
        done = {(r[0], r[1], r[2], r[3]) for r in inserted}
        return [(row[0], row[1], row[2], row[3]) in done for row in rows]

    async def _close_backend(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), 5)
            except (asyncio.TimeoutError, OSError, Exception):  # noqa: BLE001 - closing
                self._pool.terminate()
