# host_server.cert_store.app: the certificate store's HTTP API (docs/CS_API.md) as a Starlette
# app: lookups by ID_A (one, or up to MAX_BATCH in one POST /certs/batch) and by RFC 4387
# hashes, enrollment through the CA, revocation,
# the enrolled IDs (/ids), the CRL, the SSE channel (revocations and enrollments), health
# and Prometheus metrics. The store, the CA and the bus are handed in
# (host_server.cert_store.service builds them); this module owns the HTTP mapping, input checks,
# authorization (reader token to read, admin token to write; /health, /metrics and /crl
# are open) and the per-request log and metrics.
from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from host_server.ca import CA, CAError, check_name, identifier, spki_der
from host_server.cert_store import tokens
from host_server.cert_store.events import CLOSED, RevocationBus
from host_server.cert_store.logs import Timer, log
from host_server.cert_store.metrics import Metrics
from host_server.cert_store.store import (CertRecord, CertStore, Conflict, Enrolled, IdCollision,
                                  NotFound, ReadOnly, StoreUnavailable)

PKIX_CERT = "application/pkix-cert"
PKIX_CRL = "application/pkix-crl"
MAX_BODY = 64 * 1024
MAX_BATCH = 256          # IDs in one POST /certs/batch
REASON_MAX = 200
CRL_REFRESH_S = 3600
_ID_RE = re.compile(r"(?:[0-9a-fA-F]{2}){1,32}")


@dataclass
class Settings:
    id_len: int = 8
    cert_days: int = 3650
    admin_token: str = ""    # "" refuses everything that needs the token
    reader_token: str = ""
    instance: str = "cs"
    ping_s: float = 15.0


def _error(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


class BadRequest(Exception):
    """Ends a request with the status (400 unless given) and {"error": message}."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _parse_id(text: str) -> bytes:
    if not _ID_RE.fullmatch(text):
        raise BadRequest(f"bad ID {text[:70]!r}: an ID is 1 to 32 bytes in hex")
    return bytes.fromhex(text)


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value.replace(" ", "+"), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{what} is not valid base64 (RFC 4648, standard alphabet)")


class CSApp:
    def __init__(self, store: CertStore, ca: CA, settings: Settings,
                 bus: RevocationBus | None = None, metrics: Metrics | None = None):
        self.store, self.ca, self.settings = store, ca, settings
        self.metrics = metrics or Metrics()
        self.bus = bus or RevocationBus(on_count=self.metrics.sse_subscribers.set)
        self._revoke_lock = asyncio.Lock()
        self._crl: tuple[int, float, bytes] | None = None  # (last_seq, made at, DER)
        self._crl_number = 0

    def asgi(self) -> Starlette:
        routes = [
            Route("/certs/batch", self.get_batch, methods=["POST"]),
            Route("/certs/{id}", self.get_cert, methods=["GET"]),
            Route("/certs", self.list_certs, methods=["GET"]),
            Route("/search.cgi", self.search, methods=["GET"]),
            Route("/ids", self.ids, methods=["GET"]),
            Route("/enroll", self.enroll, methods=["POST"]),
            Route("/revoke/{id}", self.revoke, methods=["POST"]),
            Route("/revocations", self.revocations, methods=["GET"]),
            Route("/events", self.events, methods=["GET"]),
            Route("/crl", self.crl, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/metrics", self.metrics_text, methods=["GET"]),
        ]
        return Starlette(routes=routes, middleware=[Middleware(Observe, metrics=self.metrics)],
                         exception_handlers={HTTPException: _http_error,
                                             BadRequest: _bad_request,
                                             StoreUnavailable: _unavailable,
                                             sqlite3.DatabaseError: _store_error,
                                             ReadOnly: _read_only})

    # -- lookups ---------------------------------------------------------------------

    async def get_cert(self, request: Request) -> Response:
        timer = Timer()
        if (denied := self._unauthorized(request, tokens.READER)) is not None:
            return denied
        ident = _parse_id(request.path_params["id"])
        return self._answer(await self.store.get(ident), ident.hex(), "id", timer)

    async def get_batch(self, request: Request) -> Response:
        """Several lookups by ID_A in one request: {"ids": [hex, ...]} (1 to MAX_BATCH)
        answers {"certs": {id: base64 DER}, "revoked": [id], "absent": [id]}; every ID
        asked is in exactly one of the three, as GET /certs/{id} would answer it."""
        timer = Timer()
        if (denied := self._unauthorized(request, tokens.READER)) is not None:
            return denied
        asked = (await self._json(request)).get("ids")
        if not isinstance(asked, list) or not 1 <= len(asked) <= MAX_BATCH \
                or not all(isinstance(i, str) for i in asked):
            raise BadRequest(f"the body must be {{\"ids\": [hex ID, ...]}} with 1 to "
                             f"{MAX_BATCH} IDs")
        idents = list(dict.fromkeys(_parse_id(i) for i in asked))
        certs: dict[str, str] = {}
        revoked: list[str] = []
        absent: list[str] = []
        results = []
        for ident in idents:
            rec = await self.store.get(ident)
            if rec is None:
                absent.append(ident.hex())
                results.append((ident.hex(), "absent"))
            elif rec.revocation is not None:
                revoked.append(ident.hex())
                results.append((ident.hex(), "revoked"))
            else:
                certs[ident.hex()] = base64.b64encode(rec.der).decode()
                results.append((ident.hex(), "found"))
        for id_hex, result in results:      # one line per lookup, as GET /certs/{id}
            self.metrics.lookups.labels(result).inc()
            log("lookup", id=id_hex, via="batch", batch=len(idents), result=result,
                ms=timer.ms)
        return JSONResponse({"certs": certs, "revoked": revoked, "absent": absent})

    async def search(self, request: Request) -> Response:
        """RFC 4387: exactly one of sKIDHash or certHash, base64 of a SHA-1."""
        timer = Timer()
        if (denied := self._unauthorized(request, tokens.READER)) is not None:
            return denied
        items = request.query_params.multi_items()
        if len(items) != 1 or items[0][0] not in ("sKIDHash", "certHash"):
            raise BadRequest("search with exactly one sKIDHash=<base64 SHA-1 of the SKI> "
                             "or certHash=<base64 SHA-1 of the certificate>")
        attr, value = items[0]
        h = _b64(value, attr)
        if len(h) != 20:
            raise BadRequest(f"{attr} must be a base64 SHA-1 hash (20 bytes)")
        if attr == "sKIDHash":
            rec = await self.store.find_by_ski_sha1(h)
        else:
            rec = await self.store.find_by_cert_sha1(h)
        return self._answer(rec, f"{attr}={value}", attr, timer)

    def _answer(self, rec: CertRecord | None, asked: str, via: str, timer: Timer) -> Response:
        resp: Response
        if rec is None:
            result, resp = "absent", _error(404, f"no certificate enrolled for {asked}")
        elif rec.revocation is not None:
            result = "revoked"
            resp = JSONResponse({"id": rec.id.hex(), "revoked_at": rec.revocation.time,
                                 "reason": rec.revocation.reason}, status_code=410)
        else:
            result, resp = "found", Response(rec.der, media_type=PKIX_CERT)
        self.metrics.lookups.labels(result).inc()
        log("lookup", id=rec.id.hex() if rec else asked, via=via, result=result, ms=timer.ms)
        return resp

    async def list_certs(self, request: Request) -> Response:
        if (denied := self._unauthorized(request, tokens.READER)) is not None:
            return denied
        certs = [{"id": r.id.hex(), "name": r.name, "not_after": r.not_after,
                  "revoked": r.revocation is not None} for r in await self.store.list_certs()]
        return JSONResponse({"certs": certs})

    async def ids(self, request: Request) -> Response:
        """Every enrolled, non-revoked ID_A, concatenated (id_len bytes each)."""
        if (denied := self._unauthorized(request, tokens.READER)) is not None:
            return denied
        id_len = self.settings.id_len
        ids = [i for i in await self.store.enrolled_ids() if len(i) == id_len]
        return Response(b"".join(ids), media_type="application/octet-stream",
                        headers={"X-Airshake-Id-Len": str(id_len)})

    # -- admin -------------------------------------------------------------------------

    def _unauthorized(self, request: Request, needed: str) -> Response | None:
        """None if the request's bearer token allows `needed` (tokens.ADMIN or
        tokens.READER; the admin token reads too), else the 401/403 answer."""
        role = tokens.role_of(request.headers.get("authorization", ""),
                              self.settings.admin_token, self.settings.reader_token)
        if role == tokens.ADMIN or role == needed:
            return None
        log("unauthorized", logging.WARNING, endpoint=request.url.path, needed=needed,
            given=role or "none", client=request.client.host if request.client else None)
        if role == tokens.READER:
            return _error(403, "the reader token only reads: this needs the admin token "
                               "(admin.token in the CS's state directory)")
        what = ("the admin token (admin.token in the CS's state directory)"
                if needed == tokens.ADMIN else
                "the reader token (reader.token in the CS's state directory) or the admin "
                "token")
        return JSONResponse({"error": f"this needs {what}: send Authorization: Bearer "
                                      "<token>"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    async def _json(self, request: Request, optional: bool = False) -> dict:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise BadRequest(f"the body is larger than {MAX_BODY} bytes", 413)
        if optional and not body.strip():
            return {}
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the body must be a JSON object")
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object")
        return data

    async def enroll(self, request: Request) -> Response:
        timer = Timer()
        if (denied := self._unauthorized(request, tokens.ADMIN)) is not None:
            return denied
        try:
            rec, warning = self._new_record(await self._json(request))
        except BadRequest as e:
            self.metrics.enrollments.labels("bad_request").inc()
            log("enroll", result="bad_request", why=str(e), ms=timer.ms)
            raise
        except CAError as e:
            self.metrics.enrollments.labels("refused").inc()
            log("enroll", result="refused", why=str(e), ms=timer.ms)
            return _error(400, f"enrollment refused: {e}")
        try:
            await self.store.enroll(rec)
        except Conflict as e:
            self.metrics.enrollments.labels("collision").inc()
            log("enroll", id=rec.id.hex(), name=rec.name, result="collision", why=str(e),
                ms=timer.ms)
            extra = {"id": e.id.hex()} if isinstance(e, IdCollision) else {}
            return _error(409, str(e), **extra)
        self.metrics.enrollments.labels("ok").inc()
        delivered = self.bus.publish_enrolled(Enrolled(rec.id))
        warned: dict[str, Any] = {"warning": warning} if warning else {}
        log("enroll", id=rec.id.hex(), name=rec.name, result="ok", subscribers=delivered,
            ms=timer.ms, **warned)
        body = {"id": rec.id.hex(), "certificate": base64.b64encode(rec.der).decode(),
                "not_after": rec.not_after}
        if warning:
            body["warning"] = warning
        return JSONResponse(body, status_code=201)

    def _new_record(self, data: dict) -> tuple[CertRecord, str | None]:
        """The record to enroll (and a warning if its validity was clipped to the CA's):
        C_A issued now for a public key, or a certificate made elsewhere and checked
        against this CA (device role, not a server's name). BadRequest / CAError if
        unacceptable."""
        has_key, has_cert = "public_key" in data, "certificate" in data
        if has_key == has_cert:
            raise BadRequest('send either {"name", "public_key"} or {"certificate"}')
        id_len = self.settings.id_len
        warning = None
        if has_key:
            try:
                public_key = serialization.load_der_public_key(
                    _b64(data["public_key"], "public_key"))
            except (ValueError, TypeError, UnsupportedAlgorithm):
                raise BadRequest("public_key is not a DER SubjectPublicKeyInfo of a key type "
                                 "airshake knows")
            if "name" not in data:
                raise BadRequest("name is missing: give the device a name")
            _, warning = self.ca.not_after(self.settings.cert_days)
            der = self.ca.issue_device(public_key, data["name"], id_len,  # type: ignore
                                       self.settings.cert_days)
            cert = self.ca.verify_issued(der)
        else:
            der = _b64(data["certificate"], "certificate")
            cert = self.ca.verify_issued(der)
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        for cn in cns:
            self.ca.check_device_name(str(cn.value))
        name = check_name(data.get("name") or (str(cns[0].value) if cns else ""))
        self.ca.check_device_name(name)
        return CertRecord(id=identifier(spki_der(cert.public_key()), id_len), name=name,
                          der=der, not_after=int(cert.not_valid_after_utc.timestamp()),
                          serial=cert.serial_number, enrolled_at=int(time.time())), warning

    async def revoke(self, request: Request) -> Response:
        timer = Timer()
        if (denied := self._unauthorized(request, tokens.ADMIN)) is not None:
            return denied
        ident = _parse_id(request.path_params["id"])
        reason = (await self._json(request, optional=True)).get("reason", "unspecified")
        if not isinstance(reason, str) or not reason.strip() or len(reason) > REASON_MAX \
                or any(ord(c) < 0x20 for c in reason):
            raise BadRequest(f"reason must be a one-line text of at most {REASON_MAX} "
                             "characters")
        async with self._revoke_lock:  # one publisher at a time: events leave in seq order
            rec = await self.store.get(ident)
            if rec is not None and rec.revocation is not None:
                log("revoke", id=ident.hex(), result="already", seq=rec.revocation.seq)
                return JSONResponse(rec.revocation.to_json())
            try:
                rev = await self.store.revoke(ident, reason, int(time.time()))
            except NotFound:
                log("revoke", id=ident.hex(), result="absent", ms=timer.ms)
                return _error(404, f"no certificate enrolled under ID {ident.hex()}")
            delivered = self.bus.publish(rev)
        self.metrics.revocations.inc()
        log("revoke", id=ident.hex(), seq=rev.seq, reason=reason, result="ok",
            subscribers=delivered, ms=timer.ms)
        return JSONResponse(rev.to_json())

    # -- revocation feeds --------------------------------------------------------------

    async def revocations(self, request: Request) -> Response:
        if (denied := self._unauthorized(request, tokens.READER)) is not None:
            return denied
        since = _since(request.query_params.get("since"), "since") or 0
        revs = await self.store.revocations_since(since)
        last = revs[-1].seq if revs else await self.store.last_seq()
        return JSONResponse({"revocations": [r.to_json() for r in revs], "last_seq": last})

    async def events(self, request: Request) -> Response:
        if (denied := self._unauthorized(request, tokens.READER)) is not None:
            return denied
        since = _since(request.headers.get("last-event-id"), "Last-Event-ID")
        if since is None:
            since = _since(request.query_params.get("since"), "since")
        return StreamingResponse(self._stream(since), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})

    async def _stream(self, since: int | None) -> AsyncIterator[bytes]:
        with self.bus.subscribe() as sub:  # before the replay query: nothing slips by
            log("sse", result="connected", since=since, subscribers=self.bus.subscribers)
            yield f"retry: 2000\n: connected to {self.settings.instance}\n\n".encode()
            floor = 0
            if since is not None:
                floor = since
                for rev in await self.store.revocations_since(since):
                    yield _sse(rev)
                    floor = rev.seq
            try:
                while True:
                    if sub.overflowed and sub.queue.empty():
                        break  # the client reconnects with Last-Event-ID and replays
                    try:
                        item = await asyncio.wait_for(sub.queue.get(), self.settings.ping_s)
                    except asyncio.TimeoutError:
                        yield b": ping\n\n"
                        continue
                    if item is CLOSED:
                        break
                    if isinstance(item, Enrolled):
                        yield _sse_enrolled(item)
                    elif item.seq > floor:
                        yield _sse(item)
            finally:
                log("sse", result="closed", subscribers=self.bus.subscribers - 1)

    async def crl(self, request: Request) -> Response:
        last = await self.store.last_seq()
        now = time.time()
        if self._crl is None or self._crl[0] != last or now - self._crl[1] > CRL_REFRESH_S:
            revoked = [(r.serial, r.revocation.time, r.revocation.reason)
                       for r in await self.store.list_certs() if r.revocation is not None]
            self._crl_number = max(self._crl_number + 1, int(now))
            self._crl = (last, now, self.ca.crl(revoked, number=self._crl_number))
        return Response(self._crl[2], media_type=PKIX_CRL)

    # -- operations --------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        try:
            await self.store.ping()
        except Exception as e:  # the store is down: say so, keep serving
            log("health", logging.ERROR, result="store_error", error=repr(e))
            return JSONResponse({"status": "error", "store": self.store.kind,
                                 "instance": self.settings.instance}, status_code=503)
        return JSONResponse({"status": "ok", "store": self.store.kind,
                             "instance": self.settings.instance})

    async def metrics_text(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)


def _since(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 18:
        raise BadRequest(f"{what} must be a revocation sequence number (0 or more)")
    return int(value)


def _sse(rev: object) -> bytes:
    data = json.dumps(rev.to_json(), separators=(",", ":"))  # type: ignore[attr-defined]
    return f"id: {rev.seq}\nevent: revoked\ndata: {data}\n\n".encode()  # type: ignore


def _sse_enrolled(item: Enrolled) -> bytes:
    """No id: line, so it does not move the client's Last-Event-ID."""
    data = json.dumps({"id": item.id.hex()}, separators=(",", ":"))
    return f"event: enrolled\ndata: {data}\n\n".encode()


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code,
                        headers=exc.headers)


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return _error(exc.status, str(exc))


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The database did not answer: 503, so B serves from its cache and retries."""
    log("store_unavailable", logging.ERROR, endpoint=request.url.path, error=str(exc))
    return _error(503, "the certificate database is unavailable: try again later")


async def _store_error(request: Request, exc: Exception) -> Response:
    """The database answered with an error (e.g. a corrupt SQLite page): say so, in one
    line a client can show, instead of a bare 500."""
    log("store_error", logging.ERROR, endpoint=request.url.path, error=str(exc))
    return _error(500, f"the certificate database failed ({' '.join(str(exc).split())}): "
                       "the CS log has the details; check or restore the database")


async def _read_only(request: Request, exc: Exception) -> Response:
    return _error(405, str(exc))


class Observe:
    """ASGI middleware: counts every request by route template and status and logs it
    (debug level) with its duration."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        timer, status = Timer(), 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(endpoint, str(status)).inc()
            log("http", logging.DEBUG, method=scope["method"], endpoint=endpoint,
                status=status, ms=timer.ms)
