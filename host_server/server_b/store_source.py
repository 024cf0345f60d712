# host_server.server_b.store_source: B reading device certificates straight from the store
# (store = "postgresql://...", "ldap://..." or "sqlite:///...") instead of the CS's HTTP
# API. Same interface as host_server.server_b.cs_client.CSClient (get_cert, revocations_since,
# events, close), so the credential pipeline and the revocation follower do not know
# the difference. The store is used read-only. Revocations: a PostgreSQL store pushes
# them (LISTEN/NOTIFY, resumed from the last seq after a lost connection); the others
# are polled every poll_s seconds (an LDAP directory's CRLs are re-read at most every
# $AIRSHAKE_LDAP_CRL_REFRESH seconds). Every failure to reach the store is an "error"
# result or CSUnavailable, never a crash, as with the CS.
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from host_server.server_b import cs_client
from host_server.server_b.cs_client import CertResult, CSUnavailable, Revocation
from host_server.cert_store.backends import open_store
from host_server.cert_store.store import CertStore, StoreUnavailable


def _rev(r: object) -> Revocation:
    return Revocation(r.seq, r.id.hex(), float(r.time), r.reason)  # type: ignore[attr-defined]


class StoreSource:
    def __init__(self, url: str, timeout: float, poll_s: float = 1.0) -> None:
        self.store: CertStore = open_store(url)
        if hasattr(self.store, "app_name"):
            self.store.app_name = "airshake-b"  # type: ignore[attr-defined]
        self.kind = self.store.kind
        self.timeout = timeout
        self.poll_s = poll_s
        self.connected = False

    async def start(self) -> None:
        """Connect now if the store answers; a store that is down is retried on use."""
        try:
            await asyncio.wait_for(self.store.connect(), self.timeout + 5)
            self.connected = True
        except (StoreUnavailable, asyncio.TimeoutError):
            self.connected = False

    async def close(self) -> None:
        await self.store.close()

    async def get_cert(self, id_hex: str) -> CertResult:
        try:
            rec = await asyncio.wait_for(self.store.get(bytes.fromhex(id_hex)), self.timeout)
        except Exception as e:  # noqa: BLE001 - any store failure is an outage here
            self.connected = False
            return CertResult(cs_client.ERROR, detail=type(e).__name__)
        self.connected = True
        if rec is None:
            return CertResult(cs_client.ABSENT)
        if rec.revocation is not None:
            return CertResult(cs_client.REVOKED)
        return CertResult(cs_client.OK, der=rec.der)

    async def revocations_since(self, seq: int) -> tuple[list[Revocation], int]:
        try:
            revs = await asyncio.wait_for(self.store.revocations_since(seq), self.timeout)
            last = revs[-1].seq if revs else await asyncio.wait_for(self.store.last_seq(),
                                                                    self.timeout)
        except Exception as e:  # noqa: BLE001 - any store failure is an outage here
            self.connected = False
            raise CSUnavailable(f"{self.kind} store: {type(e).__name__}") from None
        self.connected = True
        return [_rev(r) for r in revs], last

    async def events(self, last_seq: int) -> AsyncIterator[Revocation]:
        """Revocations after last_seq as they are recorded; raises CSUnavailable when
        the connection breaks (the follower resumes from its last seq)."""
        if self.store.push:
            try:
                async for rev in self.store.follow(last_seq):
                    yield _rev(rev)
            except StoreUnavailable as e:
                self.connected = False
                raise CSUnavailable(str(e)) from None
            except Exception as e:  # noqa: BLE001 - never let the follower die
                self.connected = False
                raise CSUnavailable(f"{self.kind} store: {type(e).__name__}") from None
            return
        seq = last_seq
        while True:
            await asyncio.sleep(self.poll_s)
            items, _last = await self.revocations_since(seq)
            for item in items:
                yield item
                seq = max(seq, item.seq)
