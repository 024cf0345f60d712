# host_server.server_b.metrics: B's Prometheus metrics, in a registry of their own, served on
# metrics_port (a thread of prometheus_client). Every metric carries the instance
# label. Label children are resolved once and cached: the hot path only increments.
from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_CS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self, instance: str) -> None:
        self.instance = instance
        self.registry = r = CollectorRegistry()
        self._handshakes = Counter("airshake_handshakes", "Handshakes by outcome and reason",
                                   ["instance", "outcome", "reason"], registry=r)
        self._cs_latency = Histogram("airshake_cs_lookup_seconds",
                                     "Latency of certificate lookups at the CS",
                                     ["instance"], buckets=_CS_BUCKETS, registry=r)
        self._cs_requests = Counter("airshake_cs_requests", "Certificate lookups sent to the "
                                    "CS, by result (ok, absent, revoked, error)",
                                    ["instance", "result"], registry=r)
        self._cache = Counter("airshake_cache", "Certificate cache lookups",
                              ["instance", "cache", "result"], registry=r)
        self._revocations = Counter("airshake_revocations_applied",
                                    "Revocations applied from the CS", ["instance"], registry=r)
        self._datagrams = Counter("airshake_datagrams", "Datagrams received, by message type "
                                  "and what became of them", ["instance", "type", "result"],
                                  registry=r)
        self._records = Counter("airshake_records", "Application records handed to the sink",
                                ["instance", "kind", "result"], registry=r)
        self._sessions = Gauge("airshake_sessions", "Sessions held", ["instance"], registry=r)
        self._pending = Gauge("airshake_pending_handshakes", "Handshakes in progress",
                              ["instance"], registry=r)
        self._cs_up = Gauge("airshake_cs_stream_connected", "1 while the CS revocation "
                            "stream is connected", ["instance"], registry=r)
        self._ids = Gauge("airshake_enrolled_ids", "Enrolled, non-revoked IDs B knows from "
                          "the CS (GET /ids and its events)", ["instance"], registry=r)
        self._ids_synced = Gauge("airshake_ids_synced", "1 once B holds the CS's ID set "
                                 "(unknown IDs answered without a CS request); 0: unknown "
                                 "IDs are looked up", ["instance"], registry=r)
        self._udp_drops = Counter("airshake_udp_drops", "Datagrams the kernel dropped "
                                  "because B's receive buffer was full", ["instance"],
                                  registry=r)
        self._rcvbuf = Gauge("airshake_udp_rcvbuf_bytes", "UDP receive buffer the kernel "
                             "granted B", ["instance"], registry=r)
        self._unsent = Counter("airshake_amplification_withheld", "Datagrams not sent to an "
                               "address that completed no handshake (over the amplification "
                               "bound or the duplicate-answer limit)", ["instance", "reason"],
                               registry=r)
        self._replay_full = Counter("airshake_replay_full", "0-RTT m1s whose data was refused "
                                    "because the replay cache was full (the handshake goes "
                                    "on)", ["instance"], registry=r)
        self._children: dict[tuple[Any, ...], Any] = {}
        self.cs_latency = self._cs_latency.labels(instance)
        self.revocations = self._revocations.labels(instance)
        self.sessions = self._sessions.labels(instance)
        self.pending = self._pending.labels(instance)
        self.cs_stream = self._cs_up.labels(instance)
        self.ids = self._ids.labels(instance)
        self.ids_synced = self._ids_synced.labels(instance)
        self.udp_drops = self._udp_drops.labels(instance)
        self.rcvbuf = self._rcvbuf.labels(instance)
        self.replay_full = self._replay_full.labels(instance)

    def withheld(self, reason: str) -> None:
        self._child(self._unsent, reason).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric),) + labels
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(self.instance, *labels)
        return child

    def handshake(self, outcome: str, reason: str) -> None:
        self._child(self._handshakes, outcome, reason).inc()

    def cs_request(self, result: str) -> None:
        self._child(self._cs_requests, result).inc()

    def cache(self, cache: str, result: str) -> None:
        self._child(self._cache, cache, result).inc()

    def datagram(self, kind: str, result: str) -> None:
        self._child(self._datagrams, kind, result).inc()

    def record(self, kind: str, result: str) -> None:
        self._child(self._records, kind, result).inc()
