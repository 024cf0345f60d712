# host_server.server_b.cs_client: B's HTTP client of the certificate store (CS): fetch device
# certificates, read the revocation list since a sequence number, read the set of
# enrolled, non-revoked IDs (GET /ids), follow the event stream (SSE: revocations and
# enrollments). Every failure to reach the CS (connection, timeout,
# 5xx, garbage) comes back as an "error" result or CSUnavailable, never as a crash.
# One keep-alive connection pool for every request. lookup() batches: the IDs asked for
# while MAX_BATCHES_IN_FLIGHT POST /certs/batch requests are out wait and go together in
# the next one (at most MAX_BATCH IDs), so under load a request carries many lookups and
# an idle B still asks for one ID at once; a CS without the batch endpoint (404/405) is
# asked GET /certs/{id} one by one from then on.
from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import aconnect_sse

OK = "ok"
ABSENT = "absent"
REVOKED = "revoked"
ERROR = "error"
STREAM_IDLE = 45.0
MAX_BATCH = 64                 # IDs in one POST /certs/batch (the CS takes up to 256)
# one request out at a time: under load the next batch is as large as a round trip
# gathers (measured: cold handshakes per B CPU-second 1989 with one, 1549 with two)
MAX_BATCHES_IN_FLIGHT = 1


@dataclass(frozen=True)
class CertResult:
    status: str              # OK, ABSENT, REVOKED or ERROR
    der: bytes = b""
    detail: str = ""         # ERROR: what went wrong (for logs; no secrets here)


@dataclass(frozen=True)
class Revocation:
    seq: int
    id_hex: str
    time: float
    reason: str


@dataclass(frozen=True)
class Enrolled:
    id_hex: str


@dataclass(frozen=True)
class Subscribed:
    """The event stream is open: what happened before it must be read in full."""


class CSUnavailable(Exception):
    """The CS did not answer usefully (unreachable, timeout, 5xx, bad body)."""


def _batch_results(body: Any, ids: list[str]) -> dict[str, CertResult]:
    """The CS's {"certs": {id: base64 DER}, "revoked": [id], "absent": [id]} as a result
    per ID asked; an ID it did not answer for is an error."""
    certs = body["certs"]
    revoked = set(body["revoked"])
    absent = set(body["absent"])
    out = {}
    for i in ids:
        if i in certs:
            der = base64.b64decode(certs[i], validate=True)
            out[i] = CertResult(OK, der=der) if der else CertResult(ERROR, detail="empty")
        elif i in revoked:
            out[i] = CertResult(REVOKED)
        elif i in absent:
            out[i] = CertResult(ABSENT)
        else:
            out[i] = CertResult(ERROR, detail="the CS did not answer for this ID")
    return out


def _revocation(obj: Any) -> Revocation:
    try:
        return Revocation(int(obj["seq"]), str(obj["id"]).lower(), float(obj.get("time") or 0),
                          str(obj.get("reason") or ""))
    except (KeyError, TypeError, ValueError):
        raise CSUnavailable("malformed revocation %r" % (obj,)) from None


class CSClient:
    def __init__(self, base_url: str, timeout: float, token: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        # the CS's reader token (docs/CS_API.md "Authentication"); never logged
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=httpx.Timeout(timeout), headers=auth,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
        # the CS pings an idle event stream every 15 s: a stream silent for longer than
        # STREAM_IDLE is dead (a half-open TCP connection) and is reconnected
        self._stream_client = httpx.AsyncClient(
            base_url=self.base_url, timeout=httpx.Timeout(timeout, read=STREAM_IDLE),
            headers=auth)
        self._batch = True                  # the CS serves POST /certs/batch
        self._waiting: dict[str, list[asyncio.Future[CertResult]]] = {}
        self._in_flight = 0
        self._flush_due = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._client.aclose()
        await self._stream_client.aclose()

    async def lookup(self, id_hex: str) -> CertResult:
        """As get_cert(), batched with the other lookups under way (module comment)."""
        if not self._batch:
            return await self.get_cert(id_hex)
        fut: asyncio.Future[CertResult] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(id_hex, []).append(fut)
        self._schedule()
        return await fut

    def _schedule(self) -> None:
        if not self._flush_due and self._waiting and self._in_flight < MAX_BATCHES_IN_FLIGHT:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        while self._waiting and self._in_flight < MAX_BATCHES_IN_FLIGHT:
            ids = list(self._waiting)[:MAX_BATCH]
            batch = {i: self._waiting.pop(i) for i in ids}
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._send_batch(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send_batch(self, batch: dict[str, list[asyncio.Future[CertResult]]]) -> None:
        try:
            results = await self.get_certs(list(batch))
        except BaseException:
            results = {i: CertResult(ERROR, detail="lookup cancelled") for i in batch}
            raise
        finally:
            self._in_flight -= 1
            for id_hex, futs in batch.items():
                for fut in futs:
                    if not fut.done():
                        fut.set_result(results[id_hex])
            self._schedule()

    async def get_certs(self, ids: list[str]) -> dict[str, CertResult]:
        """Every ID's CertResult from one POST /certs/batch (or one GET each when the CS
        has no batch endpoint)."""
        if not self._batch:
            return {i: await self.get_cert(i) for i in ids}
        try:
            r = await self._client.post("/certs/batch", json={"ids": ids})
        except httpx.HTTPError as e:
            return {i: CertResult(ERROR, detail=type(e).__name__) for i in ids}
        if r.status_code in (404, 405):     # an older CS: one request per ID from now on
            self._batch = False
            return {i: await self.get_cert(i) for i in ids}
        if r.status_code != 200:
            return {i: CertResult(ERROR, detail=f"HTTP {r.status_code}") for i in ids}
        try:
            return _batch_results(r.json(), ids)
        except (ValueError, TypeError, AttributeError, binascii.Error) as e:
            return {i: CertResult(ERROR, detail=f"bad batch answer: {type(e).__name__}")
                    for i in ids}

    async def get_cert(self, id_hex: str) -> CertResult:
        try:
            r = await self._client.get(f"/certs/{id_hex}")
        except httpx.HTTPError as e:
            return CertResult(ERROR, detail=type(e).__name__)
        if r.status_code == 200 and r.content:
            return CertResult(OK, der=r.content)
        if r.status_code == 404:
            return CertResult(ABSENT)
        if r.status_code == 410:
            return CertResult(REVOKED)
        return CertResult(ERROR, detail=f"HTTP {r.status_code}")

    async def revocations_since(self, seq: int) -> tuple[list[Revocation], int]:
        """(revocations with seq > given, the CS's last seq)."""
        try:
            r = await self._client.get("/revocations", params={"since": seq})
            r.raise_for_status()
            body = r.json()
            items = [_revocation(o) for o in body.get("revocations", [])]
            last = int(body.get("last_seq", max([seq] + [i.seq for i in items])))
        except (httpx.HTTPError, ValueError, TypeError, AttributeError) as e:
            raise CSUnavailable(type(e).__name__) from None
        return items, last

    async def ids(self, id_len: int) -> set[bytes] | None:
        """The enrolled, non-revoked IDs; None when this CS does not serve /ids (404);
        CSUnavailable when it cannot be read now."""
        try:
            r = await self._client.get("/ids")
        except httpx.HTTPError as e:
            raise CSUnavailable(type(e).__name__) from None
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise CSUnavailable(f"HTTP {r.status_code}")
        body = r.content
        size = r.headers.get("X-Airshake-Id-Len", str(id_len))
        if size != str(id_len) or len(body) % id_len:
            raise CSUnavailable(f"/ids holds IDs of {size} bytes, B uses {id_len}")
        return {body[i:i + id_len] for i in range(0, len(body), id_len)}

    async def events(self, last_seq: int) -> AsyncIterator[Revocation | Enrolled | Subscribed]:
        """Revocations and enrollments pushed by the CS after last_seq; ends or raises
        CSUnavailable when the stream breaks."""
        headers = {"Last-Event-ID": str(last_seq)}
        try:
            async with aconnect_sse(self._stream_client, "GET", "/events",
                                    headers=headers) as source:
                if source.response.status_code != 200:
                    raise CSUnavailable(f"HTTP {source.response.status_code}")
                yield Subscribed()
                async for sse in source.aiter_sse():
                    if sse.event not in ("revoked", "enrolled"):
                        continue
                    try:
                        obj = json.loads(sse.data)
                    except ValueError:
                        raise CSUnavailable("malformed event") from None
                    if sse.event == "revoked":
                        yield _revocation(obj)
                    elif isinstance(obj, dict) and isinstance(obj.get("id"), str):
                        yield Enrolled(obj["id"].lower())
        except httpx.HTTPError as e:
            raise CSUnavailable(type(e).__name__) from None
