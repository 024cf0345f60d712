# host_server.cert_store.backends: open_store(), which picks the certificate store's backend
# (SQLite, PostgreSQL, read-only LDAP) from a URL or path. A module of its own so that the
# backends and the interface they implement (host_server.cert_store.store) do not import each other;
# each backend is imported when picked (asyncpg, ldap3 only load for their URLs).
from __future__ import annotations

from host_server.cert_store.store import CertStore
from host_server.errors import UserError

__all__ = ["open_store"]


def open_store(url_or_path: str) -> CertStore:
    """The backend for url_or_path: a plain path or sqlite:///path (SQLAlchemy style:
    sqlite:////abs/path for an absolute path) opens SQLite, creating the file and the
    schema if needed; postgresql://user@host:port/db a PostgreSQL store (connected and
    migrated by `await store.connect()`); ldap://host:port/BASE-DN a read-only LDAP
    directory (host_server.cert_store.ldap_store). Raises UserError (one line) when it cannot."""
    text = str(url_or_path)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("postgresql", "postgres"):
        from host_server.cert_store.pg_store import PgStore
        return PgStore(text)
    if scheme in ("ldap", "ldaps"):
        from host_server.cert_store.ldap_store import LdapStore
        return LdapStore.from_url(text)
    if scheme == "sqlite":
        if not text.startswith("sqlite:///") or text == "sqlite:///":
            raise UserError(f"bad SQLite URL {text!r}: write sqlite:///relative/path or "
                            "sqlite:////absolute/path")
        path = text[len("sqlite:///"):]
    elif scheme:
        raise UserError(f"unknown store URL scheme {scheme!r} in {text!r}: use a file "
                        "path, sqlite:///path, postgresql://... or ldap://...")
    else:
        path = text
    from host_server.cert_store.sqlite_store import SqliteStore
    return SqliteStore.open(path)
