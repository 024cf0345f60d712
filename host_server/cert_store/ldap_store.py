# host_server.cert_store.ldap_store: a read-only CertStore over an X.509 directory (LDAP,
# RFC 4523 schema; the patent's claim 3), with ldap3. Owns the URL syntax, the search
# for a device by ID_A, reading userCertificate;binary, and the revocations read from
# certificateRevocationList;binary of the CA entries.
#   URL (RFC 4516 shape): ldap[s]://HOST:PORT/BASE-DN[??SCOPE?FILTER]; FILTER may use
#   {id} for the lowercase hex ID_A, default (&(objectClass=pkiUser)(cn={id})); SCOPE
#   sub (default), one or base. Bind DN and password come from $AIRSHAKE_LDAP_BIND_DN
#   and $AIRSHAKE_LDAP_PASSWORD (anonymous bind without them), never from the URL.
#   CA entries: objectClass pkiCA, certificationAuthority or cRLDistributionPoint under
#   the base; each certificateRevocationList;binary is parsed, and an entry of a CRL
#   revokes the certificate whose issuer and serial it names.
# Revocations have no sequence numbers in a directory: this adapter numbers them in the
# order it sees them (from 1, per process), and can name the ID only of certificates it
# has read (get, list_certs), which is what a B that caches through it needs. The CRLs
# are re-read at most every $AIRSHAKE_LDAP_CRL_REFRESH seconds (default 30). enroll()
# and revoke() raise ReadOnly.
# ldap3 is synchronous: every call runs on one worker thread with one connection. ldap3
# is imported here, once, on the importing thread: importing it lazily from the worker
# thread while the event loop's thread imports it too fails on its circular imports.
from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import os
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

import ldap3  # type: ignore[import-untyped]
import ldap3.core.exceptions as lx  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.x509.oid import NameOID
from ldap3.utils.conv import escape_filter_chars  # type: ignore[import-untyped]

from host_server.cert_store.pgsql import StoreUnavailable
from host_server.cert_store.store import CertRecord, CertStore, ReadOnly, Revocation
from host_server.errors import UserError

T = TypeVar("T")
DEFAULT_FILTER = "(&(objectClass=pkiUser)(cn={id}))"
CA_FILTER = ("(|(objectClass=pkiCA)(objectClass=certificationAuthority)"
             "(objectClass=cRLDistributionPoint))")
CERT_ATTR = "userCertificate;binary"
CRL_ATTR = "certificateRevocationList;binary"
BIND_DN_ENV = "AIRSHAKE_LDAP_BIND_DN"
PASSWORD_ENV = "AIRSHAKE_LDAP_PASSWORD"
REFRESH_ENV = "AIRSHAKE_LDAP_CRL_REFRESH"
_SCOPES = ("sub", "one", "base")


class LdapStore(CertStore):
    kind = "ldap"
    read_only = True

    def __init__(self, host: str, port: int, use_ssl: bool, base: str, scope: str,
                 filter_template: str, bind_dn: str | None, password: str | None,
                 crl_refresh: float = 30.0, timeout: float = 5.0):
        self.host, self.port, self.use_ssl = host, port, use_ssl
        self.base, self.scope, self.filter = base, scope, filter_template
        self.bind_dn, self._password = bind_dn, password
        self.crl_refresh = crl_refresh
        self.timeout = timeout
        self.shown = f"ldap{'s' if use_ssl else ''}://{host}:{port}/{base}"
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="cs-ldap")
        self._conn: Any = None
        self._revoked: dict[tuple[bytes, int], tuple[int, str]] = {}  # (issuer, serial)
        self._crl_read = 0.0
        self._ids: dict[tuple[bytes, int], bytes] = {}   # (issuer, serial) -> ID seen
        self._log: list[Revocation] = []                  # local seq = index + 1
        self._logged: set[bytes] = set()

    @classmethod
    def from_url(cls, url: str) -> LdapStore:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("ldap", "ldaps") or not parts.hostname:
            raise UserError(f"bad LDAP URL {url!r}: write ldap://HOST:PORT/BASE-DN")
        if parts.username or parts.password:
            raise UserError("put no credentials in the LDAP URL: set $AIRSHAKE_LDAP_BIND_DN "
                            "and $AIRSHAKE_LDAP_PASSWORD")
        base = urllib.parse.unquote(parts.path.lstrip("/"))
        if not base:
            raise UserError(f"the LDAP URL {url!r} has no base DN: write "
                            "ldap://HOST:PORT/ou=devices,dc=example,dc=net")
        fields = (parts.query.split("?") + ["", "", ""])[:3]   # attributes, scope, filter
        scope = urllib.parse.unquote(fields[1]) or "sub"
        if scope not in _SCOPES:
            raise UserError(f"bad LDAP scope {scope!r} in {url!r}: use sub, one or base")
        template = urllib.parse.unquote(fields[2]) or DEFAULT_FILTER
        if "{id}" not in template:
            raise UserError(f"the LDAP filter {template!r} must contain {{id}} (the hex ID)")
        try:
            port = parts.port or (636 if scheme == "ldaps" else 389)
            refresh = float(os.environ.get(REFRESH_ENV, "30"))
        except ValueError:
            raise UserError(f"bad port in {url!r} or bad ${REFRESH_ENV}")
        return cls(parts.hostname, port, scheme == "ldaps", base, scope, template,
                   os.environ.get(BIND_DN_ENV) or None, os.environ.get(PASSWORD_ENV) or None,
                   crl_refresh=refresh)

    # -- plumbing --------------------------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._guarded, fn)

    def _guarded(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (lx.LDAPSocketOpenError, lx.LDAPSocketReceiveError, lx.LDAPSocketSendError,
                lx.LDAPSessionTerminatedByServerError, lx.LDAPCommunicationError,
                lx.LDAPResponseTimeoutError) as e:
            self._drop()
            raise StoreUnavailable(f"LDAP directory {self.shown}: {type(e).__name__}") from None
        except lx.LDAPBindError as e:
            self._drop()
            raise UserError(f"the LDAP directory {self.shown} refused the bind ({e}): check "
                            f"${BIND_DN_ENV} and ${PASSWORD_ENV}") from None

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.unbind()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._conn = None

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            server = ldap3.Server(self.host, self.port, use_ssl=self.use_ssl,
                                  get_info=ldap3.NONE, connect_timeout=int(self.timeout))
            self._conn = ldap3.Connection(server, user=self.bind_dn, password=self._password,
                                          auto_bind=True, read_only=True, raise_exceptions=False,
                                          receive_timeout=int(self.timeout))
        return self._conn

    def _search(self, base: str, flt: str, attrs: list[str], scope: str | None = None,
                limit: int = 0) -> list[dict[str, Any]]:
        scopes = {"sub": ldap3.SUBTREE, "one": ldap3.LEVEL, "base": ldap3.BASE}
        conn = self._connection()
        if limit:
            ok = conn.search(base, flt, scopes[scope or self.scope], attributes=attrs,
                             size_limit=limit)
            entries = list(conn.response or []) if ok or conn.result.get("result") == 4 else []
        else:
            entries = list(conn.extend.standard.paged_search(
                base, flt, scopes[scope or self.scope], attributes=attrs, paged_size=500,
                generator=True))
        if conn.result and conn.result.get("result") not in (0, 4, 32):  # ok, size, noSuchObject
            if conn.closed:
                raise StoreUnavailable(f"LDAP directory {self.shown}: connection closed")
            raise StoreUnavailable(f"LDAP directory {self.shown}: "
                                   f"{conn.result.get('description')}")
        return [e for e in entries if e.get("type") == "searchResEntry"]

    # -- CRLs ------------------------------------------------------------------------

    def _refresh_crls(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and self._crl_read and now - self._crl_read < self.crl_refresh:
            return
        revoked: dict[tuple[bytes, int], tuple[int, str]] = {}
        for entry in self._search(self.base, CA_FILTER, [CRL_ATTR], scope="sub"):
            for der in _values(entry, CRL_ATTR):
                try:
                    crl = x509.load_der_x509_crl(der)
                except ValueError:
                    continue
                issuer = crl.issuer.public_bytes()
                for item in crl:
                    when = int(item.revocation_date_utc.timestamp())
                    revoked[(issuer, item.serial_number)] = (when, _reason(item))
        self._revoked = revoked
        self._crl_read = now
        for key, ident in list(self._ids.items()):
            if key in revoked:
                self._note(ident, *revoked[key])

    def _note(self, ident: bytes, when: int, reason: str) -> Revocation:
        if ident not in self._logged:
            self._logged.add(ident)
            self._log.append(Revocation(len(self._log) + 1, ident, when, reason))
        return next(r for r in self._log if r.id == ident)

    # -- records ---------------------------------------------------------------------

    def _record(self, entry: dict[str, Any], ident: bytes | None) -> CertRecord | None:
        for der in _values(entry, CERT_ATTR):
            try:
                cert = x509.load_der_x509_certificate(der)
            except ValueError:
                continue
            if ident is None:
                ident = _ident_of(cert, entry)
                if ident is None:
                    continue
            key = (cert.issuer.public_bytes(), cert.serial_number)
            self._ids[key] = ident
            rev = self._note(ident, *self._revoked[key]) if key in self._revoked else None
            cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            return CertRecord(ident, str(cns[0].value) if cns else "", der,
                              int(cert.not_valid_after_utc.timestamp()), cert.serial_number,
                              _created(entry), rev)
        return None

    async def get(self, id: bytes) -> CertRecord | None:
        flt = self.filter.replace("{id}", escape_filter_chars(id.hex()))

        def lookup() -> CertRecord | None:
            self._refresh_crls()
            for entry in self._search(self.base, flt, [CERT_ATTR, "createTimestamp"],
                                      limit=2):
                rec = self._record(entry, id)
                if rec is not None:
                    return rec
            return None
        return await self._run(lookup)

    async def find_by_ski_sha1(self, h: bytes) -> CertRecord | None:
        return None   # a directory cannot be searched by a hash of the SKI

    async def find_by_cert_sha1(self, h: bytes) -> CertRecord | None:
        return None

    async def enroll(self, record: CertRecord) -> None:
        raise ReadOnly(f"the LDAP directory {self.shown} is read-only here: add the "
                       "device's entry (userCertificate;binary) in the directory")

    async def revoke(self, id: bytes, reason: str, at: int) -> Revocation:
        raise ReadOnly(f"the LDAP directory {self.shown} is read-only here: publish a new "
                       "CRL on the CA entry (certificateRevocationList;binary)")

    async def revocations_since(self, seq: int) -> list[Revocation]:
        def since() -> list[Revocation]:
            self._refresh_crls()
            return [r for r in self._log if r.seq > seq]
        return await self._run(since)

    async def last_seq(self) -> int:
        def last() -> int:
            self._refresh_crls()
            return len(self._log)
        return await self._run(last)

    async def list_certs(self) -> list[CertRecord]:
        flt = self.filter.replace("{id}", "*")

        def everything() -> list[CertRecord]:
            self._refresh_crls()
            out = []
            for entry in self._search(self.base, flt, [CERT_ATTR, "createTimestamp", "cn"]):
                rec = self._record(entry, None)
                if rec is not None:
                    out.append(rec)
            return sorted(out, key=lambda r: (r.enrolled_at, r.id))
        return await self._run(everything)

    async def ping(self) -> None:
        await self._run(lambda: self._search(self.base, "(objectClass=*)", ["1.1"],
                                             scope="base", limit=1))

    async def close(self) -> None:
        await self._run(self._drop)
        self._pool.shutdown()


def _values(entry: dict[str, Any], attr: str) -> list[bytes]:
    raw = entry.get("raw_attributes") or {}
    for name, values in raw.items():
        if name.lower() == attr.lower():
            return [bytes(v) for v in values]
    return []


def _ident_of(cert: x509.Certificate, entry: dict[str, Any]) -> bytes | None:
    """The ID of a certificate found without asking for one: its SKI (airshake's
    certificates have SKI = ID_A), else the entry's cn if it is hex."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        pass
    for cn in _values(entry, "cn"):
        try:
            return bytes.fromhex(cn.decode())
        except ValueError:
            continue
    return None


def _created(entry: dict[str, Any]) -> int:
    for value in _values(entry, "createTimestamp"):
        try:
            t = datetime.datetime.strptime(value.decode()[:14], "%Y%m%d%H%M%S")
            return int(t.replace(tzinfo=datetime.timezone.utc).timestamp())
        except ValueError:
            continue
    return 0


def _reason(item: x509.RevokedCertificate) -> str:
    try:
        ext = item.extensions.get_extension_for_class(x509.CRLReason)
        name = ext.value.reason.name
        parts = name.split("_")
        return parts[0] + "".join(p.capitalize() for p in parts[1:])
    except x509.ExtensionNotFound:
        return "unspecified"
