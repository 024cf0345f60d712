# host_server.server_b.shared: the state B instances share through Redis (redis = "redis://..."):
#   replay cache   a 0-RTT m1 whose early data authenticated is accepted once across all
#                  instances (core contract 5, PROTOCOL.md §8.5): its SHA-256 is SET
#                  with a TTL of 2 x window, the value its owner (the instance that
#                  accepted it), and counted in a sorted set by expiry. Nothing unexpired
#                  is ever evicted: at replay_size live entries the answer is FULL and
#                  the 0-RTT data is refused (the device resends it in m3). Full-handshake
#                  m1s never enter it;
#   rate limits    the per-source, per-(ID, source) and per-ID token buckets, checked for
#                  every m1 before any public-key work or replay-cache write (admit);
#   negative cache IDs the store did not know (or whose certificate failed), with the
#                  answer given, for negative_ttl.
# Owners: each instance keeps a liveness key (alive:<owner>, TTL ALIVE_TTL, refreshed
# every HEARTBEAT). A retransmitted 0-RTT m1 whose owner is dead (its instance was
# killed, and the kernel now sends the device to another instance) is taken over by the
# instance that gets it: the full handshake goes on there, but its 0-RTT data is refused
# (the device sends it again in m3), so 0-RTT data is never accepted twice. One whose
# owner is alive is a replay, unless the owner is a sibling on this host (the relay
# forwards it there). Redis down (an error or no answer within redis_timeout): the calls
# return None at once for the next RETRY_S seconds; the caller then uses its per-process
# limits and refuses all 0-RTT data (fail closed); full handshakes go on.
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from airshake import replay
from host_server.server_b.config import Rate
from host_server.server_b.logs import EventLog
from host_server.server_b.metrics import Metrics

HEARTBEAT = 0.5
ALIVE_TTL_MS = 1500
RETRY_S = 0.5
PREFIX = b"airshake:"

FRESH = "fresh"            # recorded now: the 0-RTT data is accepted here
SEEN = "seen"              # a live instance (maybe this one) accepted this m1
FULL = "full"              # replay_size live entries: nothing recorded, 0-RTT refused
TAKEN_OVER = "taken_over"  # its owner is dead: ours now, without 0-RTT

# KEYS: m1 key, live-entry set; ARGV: owner, ttl ms, now ms, alive prefix, capacity
_RECORD = """
local owner = ARGV[1]
local now = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local cur = redis.call('GET', KEYS[1])
if cur then
  if cur ~= owner and redis.call('EXISTS', ARGV[4] .. cur) == 0 then
    redis.call('SET', KEYS[1], owner, 'XX', 'KEEPTTL')
    return {'taken_over', cur}
  end
  return {'seen', cur}
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[5]) then
  return {'full', ''}
end
redis.call('SET', KEYS[1], owner, 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), KEYS[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {'fresh', ''}
"""

# KEYS: source, (ID, source), ID (unproven sources), negative; ARGV: now, 3 x (rate,
# burst), proven ('1': the ID's bucket for unproven sources is not charged)
_ADMIT = """
local function take(key, rate, burst, now)
  local b = redis.call('HMGET', key, 't', 'ts')
  local tokens = tonumber(b[1])
  local ts = tonumber(b[2])
  if tokens == nil or ts == nil then tokens = burst; ts = now end
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  local ttl = math.ceil(burst / rate * 1000) + 1000
  local wait = 0
  if tokens < 1 then
    wait = math.max(1, math.ceil((1 - tokens) / rate))
  else
    tokens = tokens - 1
  end
  redis.call('HSET', key, 't', tostring(tokens), 'ts', tostring(now))
  redis.call('PEXPIRE', key, ttl)
  return wait
end
local now = tonumber(ARGV[1])
local w = take(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]), now)
if w > 0 then return {'rate_source', w, 0} end
w = take(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]), now)
if w > 0 then return {'rate_id', w, 0} end
if ARGV[8] == '0' then
  w = take(KEYS[3], tonumber(ARGV[6]), tonumber(ARGV[7]), now)
  if w > 0 then return {'rate_id_all', w, 0} end
end
return {'', 0, tonumber(redis.call('GET', KEYS[4]) or '0') or 0}
"""


class AcceptAll:
    """The core's ReplayCache contract, always FRESH: with Redis the dispatcher records
    the authenticated 0-RTT m1 in the shared cache (record_early) before its m2 leaves."""

    def __len__(self) -> int:
        return 0

    def add(self, key: bytes, expires: float, now: float) -> int:
        return replay.FRESH


@dataclass(frozen=True)
class Admission:
    limit: str = ""         # "", "rate_source", "rate_id" or "rate_id_all"
    retry_after: int = 0
    negative: int = 0       # an error code remembered for the ID, or 0


class SharedState:
    def __init__(self, url: str, owner_name: str, window: int, per_source: Rate,
                 per_id: Rate, per_id_all: Rate, negative_ttl: float, timeout: float,
                 metrics: Metrics, log: EventLog, replay_size: int = 100000) -> None:
        import redis.asyncio as aioredis
        self.url = url
        # unique per process start, so a restarted instance never inherits old entries
        self.owner = f"{owner_name}|{os.getpid()}-{secrets.token_hex(4)}"
        self.replay_ttl_ms = int(2 * window * 1000)      # at least twice the window
        self.per_source, self.per_id, self.per_id_all = per_source, per_id, per_id_all
        self.replay_size = replay_size
        self.negative_ttl_ms = int(negative_ttl * 1000)
        self.timeout = timeout
        self.log = log
        self.up: bool | None = None
        self._down_until = 0.0
        self._client = aioredis.Redis.from_url(url, socket_timeout=timeout,
                                               socket_connect_timeout=timeout,
                                               retry_on_timeout=False)
        self._admit = self._client.register_script(_ADMIT)
        self._record = self._client.register_script(_RECORD)
        self._heartbeat: asyncio.Task[None] | None = None
        r, inst = metrics.registry, metrics.instance
        self._up_gauge = Gauge("airshake_redis_up", "1 while Redis (the state shared by "
                               "B instances) answers; 0: per-process state, 0-RTT refused",
                               ["instance"], registry=r).labels(inst)
        self._errors = Counter("airshake_redis_errors", "Redis calls that failed or timed "
                               "out", ["instance"], registry=r).labels(inst)
        self._early = Counter("airshake_early_refused", "0-RTT data refused by the shared "
                              "replay rules (redis_down, taken_over)", ["instance", "reason"],
                              registry=r)
        self._admits = Counter("airshake_replay_shared", "Authenticated 0-RTT m1s checked "
                               "against the shared replay cache, by result (fresh, seen, "
                               "full, taken_over)", ["instance", "result"], registry=r)
        self._inst = inst
        self._up_gauge.set(0)

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        await self._beat()
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat_loop())

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        with contextlib.suppress(Exception):          # gone at once, not after the TTL
            await asyncio.wait_for(self._client.delete(self._alive_key(self.owner)), 1)
        with contextlib.suppress(Exception):
            await self._client.aclose()

    def _alive_key(self, owner: str) -> bytes:
        return PREFIX + b"alive:" + owner.encode()

    async def _beat(self) -> None:
        try:
            await self._client.set(self._alive_key(self.owner), b"1", px=ALIVE_TTL_MS)
        except Exception as e:  # noqa: BLE001 - any failure means "down"
            self._down(e)
        else:
            self._set_up(True)

    async def _beat_loop(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT)
            await self._beat()

    def _set_up(self, up: bool, why: str = "") -> None:
        if up != self.up:
            self.up = up
            self._up_gauge.set(1 if up else 0)
            if up:
                self.log.info("redis_up", url=_shown(self.url))
            else:
                self.log.warning("redis_down", url=_shown(self.url), why=why,
                                 effect="per-process limits; 0-RTT refused")

    def _down(self, e: BaseException) -> None:
        self._errors.inc()
        self._down_until = time.monotonic() + RETRY_S
        self._set_up(False, type(e).__name__)

    @property
    def available(self) -> bool:
        return bool(self.up) and time.monotonic() >= self._down_until

    def early_refused(self, reason: str) -> None:
        self._early.labels(self._inst, reason).inc()

    # -- the m1 checks -------------------------------------------------------------------
    async def admit(self, id_a: bytes, source: str, proven: bool,
                    now: float) -> Admission | None:
        """The shared limits and negative cache for a new m1, or None while Redis is
        down. proven: the ID completed a handshake from this source (its bucket for
        unproven sources is not charged)."""
        if not self.available:
            return None
        id_key = id_a.hex().encode()
        keys = [PREFIX + b"rl:src:" + source.encode(),
                PREFIX + b"rl:id:" + id_key + b":" + source.encode(),
                PREFIX + b"rl:idall:" + id_key, PREFIX + b"neg:" + id_key]
        args: list[Any] = [repr(now), self.per_source.rate, self.per_source.burst,
                           self.per_id.rate, self.per_id.burst, self.per_id_all.rate,
                           self.per_id_all.burst, "1" if proven else "0"]
        try:
            out = await asyncio.wait_for(self._admit(keys=keys, args=args), self.timeout)
        except Exception as e:  # noqa: BLE001 - down: the caller falls back
            self._down(e)
            return None
        return Admission(_text(out[0]), int(out[1]), int(out[2]))

    async def record_early(self, m1_hash: bytes, now: float) -> tuple[str, str] | None:
        """Record an authenticated 0-RTT m1: (FRESH | SEEN | FULL | TAKEN_OVER, the
        owner for SEEN), or None while Redis is down (then refuse the 0-RTT data)."""
        if not self.available:
            return None
        keys = [PREFIX + b"m1:" + m1_hash, PREFIX + b"replay-live"]
        args: list[Any] = [self.owner, self.replay_ttl_ms, int(now * 1000),
                           PREFIX + b"alive:", self.replay_size]
        try:
            out = await asyncio.wait_for(self._record(keys=keys, args=args), self.timeout)
        except Exception as e:  # noqa: BLE001
            self._down(e)
            return None
        state, owner = _text(out[0]), _text(out[1])
        self._admits.labels(self._inst, state).inc()
        return state, owner

    async def put_negative(self, id_a: bytes, code: int) -> None:
        if not self.available or self.negative_ttl_ms <= 0:
            return
        try:
            await asyncio.wait_for(self._client.set(
                PREFIX + b"neg:" + id_a.hex().encode(), str(code), px=self.negative_ttl_ms),
                self.timeout)
        except Exception as e:  # noqa: BLE001
            self._down(e)

    def status(self) -> str:
        return "up" if self.up else "down"

    def describe(self) -> dict[str, Any]:
        return {"redis": self.status(), "owner": self.owner}


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _shown(url: str) -> str:
    from host_server.cert_store.pgsql import redact
    return redact(url)
