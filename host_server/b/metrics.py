# host_server.b.metrics: B's Prometheus metrics, in a registry of their own, served on
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
        self._children: dict[tuple[Any, ...], Any] = {}
        self.cs_latency = self._cs_latency.labels(instance)
        self.revocations = self._revocations.labels(instance)
        self.sessions = self._sessions.labels(instance)
        self.pending = self._pending.labels(instance)
        self.cs_stream = self._cs_up.labels(instance)

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
