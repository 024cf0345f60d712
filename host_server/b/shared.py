# host_server.b.shared: the state B instances share through Redis (redis = "redis://..."):
#   replay cache   an m1 is accepted once across all instances: SET NX on its SHA-256
#                  with a TTL of 2 x window (PROTOCOL.md §8.5); the value is the owner,
#                  the instance that accepted it;
#   rate limits    the per-source and per-ID token buckets;
#   negative cache IDs the store did not know (or whose certificate failed), with the
#                  answer given, for negative_ttl.
# One Lua script does all four for an m1 in one round trip (admit). Owners: each
# instance keeps a liveness key (alive:<owner>, TTL ALIVE_TTL, refreshed every
# HEARTBEAT). A retransmitted m1 whose owner is dead (its instance was killed, and the
# kernel now sends the device to another instance) is taken over by the instance that
# gets it: the full handshake goes on there, but its 0-RTT data is refused (the device
# sends it again in m3), so 0-RTT data is never accepted twice. An m1 whose owner is alive
# is a replay, unless the owner is a sibling on this host (the relay forwards it there).
# Redis down (an error or no answer within redis_timeout): admit() returns None at once
# for the next RETRY_S seconds; the caller then uses its per-process state and refuses
# all 0-RTT data (fail closed); full handshakes go on. airshake_redis_up says which.
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Gauge

from host_server.b.config import Rate
from host_server.b.logs import EventLog
from host_server.b.metrics import Metrics

HEARTBEAT = 0.5
ALIVE_TTL_MS = 1500
RETRY_S = 0.5
PREFIX = b"airshake:"

NEW = "new"                # first sight of this m1 anywhere: ours now
MINE = "mine"              # we own it already (our own retransmission)
TAKEN_OVER = "taken_over"  # its owner is dead: ours now, without 0-RTT
REPLAY = "replay"          # a live instance owns it

_ADMIT = """
local state = 'new'
local owner = ARGV[1]
if not redis.call('SET', KEYS[1], owner, 'NX', 'PX', ARGV[2]) then
  local cur = redis.call('GET', KEYS[1])
  if cur == owner then
    state = 'mine'
  elseif cur and redis.call('EXISTS', ARGV[3] .. cur) == 0 then
    redis.call('SET', KEYS[1], owner, 'XX', 'KEEPTTL')
    state = 'taken_over'
  elseif cur then
    return {'replay', cur, '', 0, 0}
  else
    redis.call('SET', KEYS[1], owner, 'PX', ARGV[2])
  end
end
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
local now = tonumber(ARGV[4])
local w = take(KEYS[2], tonumber(ARGV[5]), tonumber(ARGV[6]), now)
if w > 0 then return {state, '', 'rate_source', w, 0} end
w = take(KEYS[3], tonumber(ARGV[7]), tonumber(ARGV[8]), now)
if w > 0 then return {state, '', 'rate_id', w, 0} end
return {state, '', '', 0, tonumber(redis.call('GET', KEYS[4]) or '0') or 0}
"""

# take over KEYS[1] only if its owner is still ARGV[1] (a sibling found dead)
_TAKEOVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'XX', 'KEEPTTL')
  return 1
end
return 0
"""


class AcceptAll:
    """The core's ReplayCache contract, always True: with Redis the dispatcher decides
    (asynchronously, before any public-key work) instead of the core."""

    def __len__(self) -> int:
        return 0

    def add(self, key: bytes, expires: float, now: float) -> bool:
        return True


@dataclass(frozen=True)
class Admission:
    replay: str             # NEW, MINE, TAKEN_OVER or REPLAY
    owner: str = ""         # REPLAY: the owner
    limit: str = ""         # "", "rate_source" or "rate_id"
    retry_after: int = 0
    negative: int = 0       # an error code remembered for the ID, or 0


class SharedState:
    def __init__(self, url: str, owner_name: str, window: int, per_source: Rate,
                 per_id: Rate, negative_ttl: float, timeout: float, metrics: Metrics,
                 log: EventLog) -> None:
        import redis.asyncio as aioredis
        self.url = url
        # unique per process start, so a restarted instance never inherits old entries
        self.owner = f"{owner_name}|{os.getpid()}-{secrets.token_hex(4)}"
        self.replay_ttl_ms = int(2 * window * 1000)      # at least twice the window
        self.per_source, self.per_id = per_source, per_id
        self.negative_ttl_ms = int(negative_ttl * 1000)
        self.timeout = timeout
        self.log = log
        self.up: bool | None = None
        self._down_until = 0.0
        self._client = aioredis.Redis.from_url(url, socket_timeout=timeout,
                                               socket_connect_timeout=timeout,
                                               retry_on_timeout=False)
        self._admit = self._client.register_script(_ADMIT)
        self._takeover = self._client.register_script(_TAKEOVER)
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
        self._admits = Counter("airshake_replay_shared", "m1s checked against the shared "
                               "replay cache, by result", ["instance", "result"], registry=r)
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
                                 effect="per-process replay cache and limits; 0-RTT refused")

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
    async def admit(self, m1_hash: bytes, id_a: bytes, source: str,
                    now: float) -> Admission | None:
        """The shared verdict on a new m1, or None while Redis is down."""
        if not self.available:
            return None
        keys = [PREFIX + b"m1:" + m1_hash, PREFIX + b"rl:src:" + source.encode(),
                PREFIX + b"rl:id:" + id_a.hex().encode(), PREFIX + b"neg:" + id_a.hex().encode()]
        args: list[Any] = [self.owner, self.replay_ttl_ms, PREFIX + b"alive:", repr(now),
                self.per_source.rate, self.per_source.burst, self.per_id.rate,
                self.per_id.burst]
        try:
            out = await asyncio.wait_for(self._admit(keys=keys, args=args), self.timeout)
        except Exception as e:  # noqa: BLE001 - down: the caller falls back
            self._down(e)
            return None
        state, owner, limit, wait, negative = (_text(out[0]), _text(out[1]), _text(out[2]),
                                               int(out[3]), int(out[4]))
        self._admits.labels(self._inst, state).inc()
        return Admission(state, owner, limit, wait, negative)

    async def take_over(self, m1_hash: bytes, dead_owner: str) -> bool:
        """Own an m1 whose owner was found dead (its relay socket is gone)."""
        if not self.available:
            return False
        try:
            got = await asyncio.wait_for(self._takeover(
                keys=[PREFIX + b"m1:" + m1_hash], args=[dead_owner, self.owner]), self.timeout)
        except Exception as e:  # noqa: BLE001
            self._down(e)
            return False
        return bool(got)

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
    from host_server.cs.pgsql import redact
    return redact(url)
