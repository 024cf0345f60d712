# host_server.server_b.credentials: what B answers to the core's NeedCredential(ID_A). Owns the
# lookup pipeline after the core's timestamp/suite checks, in this order:
#   ID set (host_server.server_b.idset: an ID the CS did not list is answered UNKNOWN_ID at once,
#   by the dispatcher, before any per-ID state) -> rate limits (per source IP; per
#   (ID, source IP); per ID over every source where the ID never completed a handshake)
#   -> negative cache -> revoked set -> MEM (fresh entry) -> CS (one shared lookup per
#   ID, batched with the other IDs being looked up; the fetched C_A is verified, then
#   cached).
# A revoked ID is answered UNKNOWN_ID, like an unknown one (issue 11 item 10: probing B
# cannot tell them apart); "revoked" stays a reason in logs and metrics.
# Under a CS outage (unreachable, 5xx, timeout) a device whose certificate is in MEM,
# even past its refresh time, is still served; any other gets TRY_LATER, which is never
# negative-cached. check() is synchronous (no I/O); resolve() is the CS path, run by the
# caller as its own task so a slow CS never blocks the UDP loop.
from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any
from dataclasses import dataclass

from airshake import codec
from airshake.x509 import Certificate
from host_server.server_b import cs_client
from host_server.server_b.cache import MemCache, NegativeCache, RevokedSet
from host_server.server_b.idset import IdSet
from host_server.server_b.config import ServerConfig
from host_server.server_b.metrics import Metrics
from host_server.server_b.ratelimit import RateLimiter
from host_server.server_b.verify import Rejected, VerifiedCert, Verifier, fits_suite


@dataclass(frozen=True)
class Decision:
    """Either cert (a verified C_A, parsed, to provide) or code (+ retry_after) to
    reject with."""
    cert: Certificate | None
    code: int = 0
    retry_after: int = 0
    reason: str = ""            # metrics/log label of the outcome
    cache: str = ""             # mem | stale | negative | cs | none
    cs_ms: float | None = None


@dataclass(frozen=True)
class _Fetched:
    cert: VerifiedCert | None
    code: int
    reason: str
    cs_ms: float
    status: str


class Credentials:
    def __init__(self, cfg: ServerConfig, verifier: Verifier, cs: cs_client.CSClient,
                 metrics: Metrics) -> None:
        self.cfg = cfg
        self.verifier = verifier
        self.cs = cs
        self.metrics = metrics
        self.mem = MemCache(cfg.cache_size, cfg.cache_ttl)
        self.negative = NegativeCache(max(1024, cfg.cache_size), cfg.negative_ttl)
        self.revoked = RevokedSet()
        self.by_source = RateLimiter(cfg.rate_per_source)
        self.by_id = RateLimiter(cfg.rate_per_id)            # key: (ID, source)
        self.by_id_all = RateLimiter(cfg.rate_per_id_all)    # key: ID
        self.proven = ProvenSources(max(1024, cfg.max_sessions))
        self.ids = IdSet()
        self.on_revoke: list[Callable[[bytes], None]] = []   # the dispatcher's drop
        # set by the server when B instances share a negative cache (Redis)
        self.share_negative: Callable[[bytes, int], Awaitable[None]] | None = None
        self._inflight: dict[bytes, asyncio.Task[_Fetched]] = {}
        # the CS over HTTP batches concurrent lookups (CSClient.lookup); a source that
        # reads the store in-process (store_source.StoreSource) answers one by one
        self._get_cert = getattr(cs, "lookup", cs.get_cert)

    # -- synchronous part: no I/O ----------------------------------------------------
    def check(self, id_a: bytes, suite: int, source: Hashable, now: float) -> Decision | None:
        """The answer when it needs no CS request, else None (then call resolve())."""
        if not self.by_source.take(source, now):
            return Decision(None, codec.ERR_TRY_LATER,
                            self.by_source.retry_after(source, now), "rate_source", "none")
        refused = self.take_id(id_a, source, now)
        if refused is not None:
            return refused
        code = self.negative.get(id_a, now)
        if code is not None:
            self.metrics.cache("negative", "hit")
            return Decision(None, code, 0, "negative_cache", "negative")
        self.metrics.cache("negative", "miss")
        return self.check_cached(id_a, suite, now)

    def take_id(self, id_a: bytes, source: Hashable, now: float) -> Decision | None:
        """The per-ID limits (issue 11 item 11): a forged m1 carrying a victim's ID from
        another address spends that address's (ID, source) bucket and the ID's bucket
        for unproven sources, never the bucket of an address where the victim completed
        a handshake; so forgeries cannot lock the victim out from there."""
        key = (id_a, source)
        if not self.by_id.take(key, now):
            return Decision(None, codec.ERR_TRY_LATER, self.by_id.retry_after(key, now),
                            "rate_id", "none")
        if not self.proven.has(id_a, source) and not self.by_id_all.take(id_a, now):
            return Decision(None, codec.ERR_TRY_LATER,
                            self.by_id_all.retry_after(id_a, now), "rate_id_all", "none")
        return None

    def check_shared(self, verdict: Any, id_a: bytes, suite: int,
                     now: float) -> Decision | None:
        """As check(), with the rate limits and negative cache answered by the state
        the B instances share (a host_server.server_b.shared.Admission)."""
        if verdict.limit:
            return Decision(None, codec.ERR_TRY_LATER, max(1, verdict.retry_after),
                            verdict.limit, "none")
        if verdict.negative:
            self.metrics.cache("negative", "hit")
            return Decision(None, verdict.negative, 0, "negative_cache", "negative")
        code = self.negative.get(id_a, now)     # learnt here while Redis was down
        if code is not None:
            self.metrics.cache("negative", "hit")
            return Decision(None, code, 0, "negative_cache", "negative")
        self.metrics.cache("negative", "miss")
        return self.check_cached(id_a, suite, now)

    def check_cached(self, id_a: bytes, suite: int, now: float) -> Decision | None:
        """The revoked set and MEM: the answer, or None (then resolve())."""
        if id_a in self.revoked:
            return Decision(None, codec.ERR_UNKNOWN_ID, 0, "revoked", "none")
        entry = self.mem.get(id_a, now)
        if entry is not None and now < entry.fresh_until:
            self.metrics.cache("mem", "hit")
            return self._provide(entry.cert, suite, "mem")
        self.metrics.cache("mem", "miss")
        return None

    def _provide(self, cert: Certificate, suite: int, cache: str,
                 cs_ms: float | None = None) -> Decision:
        if not fits_suite(cert.key_type, suite):
            return Decision(None, codec.ERR_REJECTED, 0, "key_type", cache, cs_ms)
        return Decision(cert, reason="ok", cache=cache, cs_ms=cs_ms)

    # -- CS path -------------------------------------------------------------------
    async def resolve(self, id_a: bytes, suite: int) -> Decision:
        task = self._inflight.get(id_a)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(id_a))
            self._inflight[id_a] = task
            task.add_done_callback(lambda _t: self._inflight.pop(id_a, None))
        f = await asyncio.shield(task)
        now = time.time()
        if f.cert is not None:
            if id_a in self.revoked:          # revoked while the request was in flight
                return Decision(None, codec.ERR_UNKNOWN_ID, 0, "revoked", "cs", f.cs_ms)
            return self._provide(f.cert.cert, suite, "cs", f.cs_ms)
        if f.status == cs_client.ERROR:
            stale = self.mem.get(id_a, now)
            if stale is not None and id_a not in self.revoked:
                self.metrics.cache("mem", "stale")
                return self._provide(stale.cert, suite, "stale", f.cs_ms)
            return Decision(None, codec.ERR_TRY_LATER, self.cfg.try_later_s, "cs_unavailable",
                            "none", f.cs_ms)
        return Decision(None, f.code, 0, f.reason, "cs", f.cs_ms)

    async def _fetch(self, id_a: bytes) -> _Fetched:
        start = time.perf_counter()
        result = await self._get_cert(id_a.hex())
        elapsed = time.perf_counter() - start
        cs_ms = round(elapsed * 1000, 2)
        self.metrics.cs_latency.observe(elapsed)
        self.metrics.cs_request(result.status)
        now = time.time()
        if result.status == cs_client.ABSENT:
            self.mem.drop(id_a)
            self.negative.put(id_a, codec.ERR_UNKNOWN_ID, now)
            if self.share_negative is not None:
                await self.share_negative(id_a, codec.ERR_UNKNOWN_ID)
            return _Fetched(None, codec.ERR_UNKNOWN_ID, "unknown_id", cs_ms, result.status)
        if result.status == cs_client.REVOKED:
            self.revoked.add(id_a, now)
            self.mem.drop(id_a)
            self.ids.discard(id_a)
            return _Fetched(None, codec.ERR_UNKNOWN_ID, "revoked", cs_ms, result.status)
        if result.status == cs_client.ERROR:
            return _Fetched(None, codec.ERR_TRY_LATER, "cs_unavailable", cs_ms, result.status)
        try:
            cert = self.verifier.verify(result.der, id_a, now, self.revoked)
        except Rejected as e:
            self.mem.drop(id_a)
            self.negative.put(id_a, e.code, now)
            if self.share_negative is not None:
                await self.share_negative(id_a, e.code)
            return _Fetched(None, e.code, e.reason, cs_ms, result.status)
        self.mem.put(id_a, cert.cert, cert.not_after, now)
        return _Fetched(cert, 0, "ok", cs_ms, result.status)

    # -- revocations ---------------------------------------------------------------
    def revoke(self, id_a: bytes, when: float) -> tuple[bool, bool]:
        """Apply a revocation: (newly revoked, was cached). Every cache entry of the ID
        goes, and every session and handshake of it (on_revoke: the dispatcher)."""
        new = self.revoked.add(id_a, when)
        self.ids.discard(id_a)
        self.negative.drop(id_a)
        self.proven.forget(id_a)
        was_cached = self.mem.drop(id_a)
        for drop in self.on_revoke:
            drop(id_a)
        return new, was_cached


class ProvenSources:
    """The source addresses where each ID completed a handshake (the last few), least
    recently used IDs forgotten first: bounded by capacity x _PER_ID."""

    _PER_ID = 4

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: OrderedDict[bytes, list[Hashable]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def has(self, id_a: bytes, source: Hashable) -> bool:
        return source in self._items.get(id_a, ())

    def add(self, id_a: bytes, source: Hashable) -> None:
        sources = self._items.setdefault(id_a, [])
        self._items.move_to_end(id_a)
        if source in sources:
            sources.remove(source)
        sources.append(source)
        del sources[:-self._PER_ID]
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def forget(self, id_a: bytes) -> None:
        self._items.pop(id_a, None)
