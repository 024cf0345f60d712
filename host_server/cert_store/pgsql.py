# host_server.cert_store.pgsql: what the PostgreSQL backends share (the certificate store here,
# B's record sink in host_server.server_b.pg_sink): checking a postgresql:// URL, showing it
# without its password, opening an asyncpg pool with one-line errors, telling a lost
# connection from a bug, and versioned, idempotent schema migrations. Migrations of
# one component run in order inside one transaction under an advisory lock, so several
# processes starting at once migrate once; the versions live in table airshake_schema.
from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Sequence
from typing import Any

from host_server.errors import UserError

SCHEMES = ("postgresql", "postgres")
_LOCK_KEY = 0x61697273  # "airs": the advisory lock every migration takes


class StoreUnavailable(Exception):
    """The database did not answer (connection refused or lost, timeout): the caller
    may retry; never a programming error."""


def redact(url: str) -> str:
    """url without its password (for logs and errors)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def check_url(url: str) -> str:
    """url if it looks like postgresql://[user[:pw]@]host[:port]/db; else UserError."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in SCHEMES or not parts.path.strip("/"):
        raise UserError(f"bad PostgreSQL URL {redact(url)!r}: write "
                        "postgresql://USER@HOST:PORT/DATABASE (password in $PGPASSWORD)")
    try:
        _ = parts.port
    except ValueError:
        raise UserError(f"bad port in PostgreSQL URL {redact(url)!r}")
    return url


def connection_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the database is unreachable or the connection broke"."""
    import asyncpg  # type: ignore[import-untyped]
    # a login refused after start (a role disabled, a password rotated) is an outage
    # too: the pool keeps trying; at start create_pool() reports it as a UserError
    return (OSError, TimeoutError, ConnectionError, asyncpg.PostgresConnectionError,
            asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
            asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError,
            asyncpg.TooManyConnectionsError, asyncpg.InvalidAuthorizationSpecificationError,
            asyncpg.InvalidPasswordError)


async def create_pool(url: str, min_size: int = 1, max_size: int = 10,
                      timeout: float = 5.0, app_name: str = "airshake") -> Any:
    """An asyncpg pool; StoreUnavailable if the server does not answer, UserError when
    the URL, the credentials or the database are wrong (nothing a retry would fix)."""
    import asyncpg  # type: ignore[import-untyped]
    # asyncpg logs each failed reconnection with a traceback; airshake reports outages
    # in its own JSON logs, metrics and /health instead
    logging.getLogger("asyncpg").setLevel(logging.CRITICAL)
    shown = redact(url)
    try:
        return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size,
                                         timeout=timeout, command_timeout=30,
                                         server_settings={"application_name": app_name})
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as e:
        raise UserError(f"PostgreSQL at {shown} refused the login ({_one(e)}): check the "
                        "user in the URL and $PGPASSWORD")
    except asyncpg.InvalidCatalogNameError as e:
        raise UserError(f"PostgreSQL at {shown}: {_one(e)}: create it with `createdb`")
    except connection_errors() as e:
        raise StoreUnavailable(f"cannot connect to PostgreSQL at {shown} ({_one(e)}): is it "
                               "running and reachable?")
    except (ValueError, asyncpg.ClientConfigurationError) as e:
        raise UserError(f"bad PostgreSQL URL {shown!r} ({_one(e)})")


def _one(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text[:200]


async def migrate(conn: Any, component: str, migrations: Sequence[str], shown: str) -> int:
    """Bring component's schema to len(migrations); returns the version. Idempotent:
    a database already there is left alone. UserError if it is newer than this code."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute("CREATE TABLE IF NOT EXISTS airshake_schema ("
                           "component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        version = await conn.fetchval("SELECT version FROM airshake_schema "
                                      "WHERE component = $1", component) or 0
        if version > len(migrations):
            raise UserError(f"the {component} schema in {shown} is version {version}, newer "
                            f"than this airshake knows ({len(migrations)}): upgrade airshake")
        for v in range(version, len(migrations)):
            await conn.execute(migrations[v])
        if version < len(migrations):
            await conn.execute("INSERT INTO airshake_schema (component, version) "
                               "VALUES ($1, $2) ON CONFLICT (component) DO UPDATE "
                               "SET version = EXCLUDED.version", component, len(migrations))
    return len(migrations)
