# host_server.cert_store.store: the certificate store's storage interface. Owns the records
# (CertRecord, Revocation), the errors (IdCollision, NotFound, ReadOnly,
# StoreUnavailable), the abstract CertStore every backend implements (SQLite, the
# default; PostgreSQL; a read-only adapter of an LDAP directory), the lookup hashes of a
# certificate (cert_index) and the query the two SQL stores share. It imports no backend:
# host_server.cert_store.backends.open_store() picks one from a URL or path.
# A writable backend enforces ID uniqueness with a database constraint.
from __future__ import annotations

import abc
import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from host_server.cert_store.pgsql import StoreUnavailable

__all__ = ["CertIndex", "CertRecord", "CertStore", "Conflict", "Enrolled", "IdCollision",
           "NotFound",
           "ReadOnly", "Revocation", "SerialInUse", "StoreUnavailable", "cert_index"]


@dataclass(frozen=True)
class Revocation:
    seq: int       # strictly increasing from 1, in the order revocations were recorded
    id: bytes
    time: int      # unix seconds
    reason: str

    def to_json(self) -> dict:
        return {"seq": self.seq, "id": self.id.hex(), "time": self.time, "reason": self.reason}


@dataclass(frozen=True)
class Enrolled:
    """A notice that id was enrolled (the SSE `enrolled` event; not logged, no seq)."""
    id: bytes


@dataclass(frozen=True)
class CertRecord:
    id: bytes            # ID_A = SHA-256(SPKI)[:id_len]
    name: str
    der: bytes           # C_A
    not_after: int       # unix seconds
    serial: int
    enrolled_at: int     # unix seconds
    revocation: Revocation | None = None


class Conflict(Exception):
    """The record clashes with an enrolled one (a unique constraint of the store)."""


class IdCollision(Conflict):
    """The ID (or the very key) of a record is enrolled already."""

    def __init__(self, id: bytes, same_key: bool):
        self.id = id
        self.same_key = same_key
        if same_key:
            msg = f"this key is already enrolled as ID {id.hex()}"
        else:
            msg = (f"ID {id.hex()} collides with an enrolled key: the ID of this key "
                   "(a truncated SHA-256 of its SPKI) is taken; generate a new device key")
        super().__init__(msg)


class SerialInUse(Conflict):
    """Another enrolled certificate has the same serial number (the CRL could not tell
    them apart)."""

    def __init__(self, serial: int):
        self.serial = serial
        super().__init__(f"a certificate with serial number {serial:x} is enrolled already: "
                         "issue the certificate again with a fresh random serial")


class NotFound(Exception):
    """No certificate is enrolled under that ID."""


class ReadOnly(Exception):
    """The backend is read-only (an LDAP directory): enroll and revoke there."""


@dataclass(frozen=True)
class CertIndex:
    """What a store indexes a certificate by, besides the ID."""
    spki_sha256: bytes
    ski_sha1: bytes    # RFC 4387 sKIDHash: SHA-1 of the subjectKeyIdentifier value
    cert_sha1: bytes   # RFC 4387 certHash: SHA-1 of the whole DER certificate


def cert_index(record: CertRecord) -> CertIndex:
    """Lookup hashes of a record's certificate. Without an SKI extension the ID stands
    in for it (airshake's own certificates have SKI = ID)."""
    cert = x509.load_der_x509_certificate(record.der)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ski = record.id
    return CertIndex(hashlib.sha256(spki).digest(), hashlib.sha1(ski).digest(),
                     hashlib.sha1(record.der).digest())


class CertStore(abc.ABC):
    """Certificates by ID_A, and the revocation log. All methods are coroutines;
    implementations are safe to call concurrently from one event loop."""

    kind: str = "?"  # "sqlite", "postgresql", "ldap"
    read_only: bool = False   # enroll() and revoke() raise ReadOnly
    push: bool = False        # follow() streams revocations recorded by other processes

    async def connect(self) -> None:  # noqa: B027 - optional hook, nothing by default
        """Connect (and migrate) before first use. UserError for a configuration that
        cannot work, StoreUnavailable for a server that does not answer (yet)."""

    async def ping(self) -> None:
        """Raise if the backend does not answer (health checks)."""
        await self.last_seq()

    async def follow(self, since: int,
                     enrollments: bool = False) -> AsyncIterator[Revocation | Enrolled]:
        """Every revocation with a seq greater than since, then each new one as it is
        recorded, by any process sharing the store, in seq order and without gaps; with
        enrollments, interleaved, an Enrolled notice for each enrollment another process
        records (best effort: not replayed after a broken connection). Raises StoreUnavailable
        when the connection breaks: call again with the last seq seen. Only for stores
        with push = True."""
        raise NotImplementedError(f"the {self.kind} store cannot push revocations")
        yield  # pragma: no cover  (makes this an async generator)

    @abc.abstractmethod
    async def get(self, id: bytes) -> CertRecord | None:
        """The record enrolled under id (revoked or not), or None."""

    @abc.abstractmethod
    async def find_by_ski_sha1(self, h: bytes) -> CertRecord | None:
        """The record whose SKI value has SHA-1 h (RFC 4387 sKIDHash), or None."""

    @abc.abstractmethod
    async def find_by_cert_sha1(self, h: bytes) -> CertRecord | None:
        """The record whose DER certificate has SHA-1 h (RFC 4387 certHash), or None."""

    @abc.abstractmethod
    async def enroll(self, record: CertRecord) -> None:
        """Store a new record. Raises IdCollision when its ID or its key is enrolled
        already (decided by a database constraint, never read-then-write), SerialInUse
        when its serial number is."""

    @abc.abstractmethod
    async def revoke(self, id: bytes, reason: str, at: int) -> Revocation:
        """Record the revocation of id and return it; if id is revoked already, return
        the original record unchanged. Raises NotFound for an unknown id."""

    @abc.abstractmethod
    async def revocations_since(self, seq: int) -> list[Revocation]:
        """Every revocation with a seq greater than seq, in seq order."""

    @abc.abstractmethod
    async def last_seq(self) -> int:
        """The seq of the latest revocation (0 if none)."""

    @abc.abstractmethod
    async def list_certs(self) -> list[CertRecord]:
        """Every record, in enrollment order."""

    async def enrolled_ids(self) -> list[bytes]:
        """The ID of every enrolled, non-revoked record (GET /ids), any order. The SQL
        stores override this with a query that reads only the IDs."""
        return [r.id for r in await self.list_certs() if r.revocation is None]

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the backend's connections."""


# -- the two SQL stores (sqlite_store, pg_store) share their schema's certificate query --

SELECT_ENROLLED_IDS = """SELECT c.id FROM certs c LEFT JOIN revocations r ON r.id = c.id
                         WHERE r.id IS NULL"""

SELECT_CERTS = """SELECT c.id, c.name, c.der, c.not_after, c.serial, c.enrolled_at,
                         r.seq, r.time, r.reason
                  FROM certs c LEFT JOIN revocations r ON r.id = c.id"""


def cert_record(row: Sequence[Any]) -> CertRecord:
    """A CertRecord from a row of SELECT_CERTS."""
    id_, name, der, not_after, serial, enrolled_at, seq, time, reason = row
    rev = Revocation(seq, bytes(id_), time, reason) if seq is not None else None
    return CertRecord(bytes(id_), name, bytes(der), not_after, int(serial, 16), enrolled_at,
                      rev)
