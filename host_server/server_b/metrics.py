# host_server.server_b.metrics: B's Prometheus metrics, in a registry of their own, served on
# metrics_port (a thread of prometheus_client). Every metric carries the instance
# label. What B counts per datagram or handshake (datagrams, handshakes, cache
# lookups, CS requests, records, withheld datagrams, sessions and pending handshakes)
# is kept in plain ints and dicts by the event loop and read by a collector when
# /metrics is scraped: an increment is one dict update, not a locked prometheus_client
# child (3-5 % of B's CPU per handshake). The rarer metrics are prometheus_client's own.
from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

_CS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Level:
    """A gauge exported at scrape time: the value last set(), or what source() says
    then (a table's size read live, so the hot path sets nothing)."""

    __slots__ = ("value", "source")

    def __init__(self) -> None:
        self.value = 0.0
        self.source: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        self.value = value

    def get(self) -> float:
        return self.value if self.source is None else self.source()


class _Counts:
    """One counter family: label values (instance aside) -> count."""

    __slots__ = ("name", "doc", "labels", "values")

    def __init__(self, name: str, doc: str, labels: tuple[str, ...]) -> None:
        self.name, self.doc, self.labels = name, doc, labels
        self.values: dict[tuple[str, ...], int] = {}


class _Collector:
    """Turns the plain counts into Prometheus families when the registry is scraped (in
    the endpoint's thread: dict copies are atomic under the GIL)."""

    def __init__(self, instance: str, counts: list[_Counts],
                 levels: list[tuple[str, str, Level]]) -> None:
        self.instance, self.counts, self.levels = instance, counts, levels

    def describe(self) -> list[Metric]:
        return list(self._families(False))

    def collect(self) -> Iterator[Metric]:
        return self._families(True)

    def _families(self, values: bool) -> Iterator[Metric]:
        for c in self.counts:
            family = CounterMetricFamily(c.name, c.doc, labels=("instance",) + c.labels)
            if values:
                for key, n in c.values.copy().items():
                    family.add_metric((self.instance,) + key, n)
            yield family
        for name, doc, level in self.levels:
            gauge = GaugeMetricFamily(name, doc, labels=("instance",))
            if values:
                gauge.add_metric((self.instance,), level.get())
            yield gauge


class Metrics:
    def __init__(self, instance: str) -> None:
        self.instance = instance
        self.registry = r = CollectorRegistry()
        hs = _Counts("airshake_handshakes", "Handshakes by outcome and reason",
                     ("outcome", "reason"))
        cs = _Counts("airshake_cs_requests", "Certificate lookups sent to the CS, by result "
                     "(ok, absent, revoked, error)", ("result",))
        cache = _Counts("airshake_cache", "Certificate cache lookups", ("cache", "result"))
        datagrams = _Counts("airshake_datagrams", "Datagrams received, by message type and "
                            "what became of them", ("type", "result"))
        records = _Counts("airshake_records", "Application records handed to the sink",
                          ("kind", "result"))
        unsent = _Counts("airshake_amplification_withheld", "Datagrams not sent to an address "
                         "that completed no handshake (over the amplification bound or the "
                         "duplicate-answer limit)", ("reason",))
        self._handshakes, self._cs_requests, self._cache = hs.values, cs.values, cache.values
        self._datagrams, self._records, self._unsent = (datagrams.values, records.values,
                                                        unsent.values)
        self.sessions = Level()
        self.pending = Level()
        r.register(_Collector(instance, [hs, cs, cache, datagrams, records, unsent], [
            ("airshake_sessions", "Sessions held", self.sessions),
            ("airshake_pending_handshakes", "Handshakes in progress", self.pending)]))
        self._cs_latency = Histogram("airshake_cs_lookup_seconds",
                                     "Latency of certificate lookups at the CS",
                                     ["instance"], buckets=_CS_BUCKETS, registry=r)
        self._revocations = Counter("airshake_revocations_applied",
                                    "Revocations applied from the CS", ["instance"], registry=r)
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
        self._replay_full = Counter("airshake_replay_full", "0-RTT m1s whose data was refused "
                                    "because the replay cache was full (the handshake goes "
                                    "on)", ["instance"], registry=r)
        self.cs_latency = self._cs_latency.labels(instance)
        self.revocations = self._revocations.labels(instance)
        self.cs_stream = self._cs_up.labels(instance)
        self.ids = self._ids.labels(instance)
        self.ids_synced = self._ids_synced.labels(instance)
        self.udp_drops = self._udp_drops.labels(instance)
        self.rcvbuf = self._rcvbuf.labels(instance)
        self.replay_full = self._replay_full.labels(instance)

    # the hot path's counters: one dict update each
    def withheld(self, reason: str) -> None:
        d, k = self._unsent, (reason,)
        d[k] = d.get(k, 0) + 1

    def handshake(self, outcome: str, reason: str) -> None:
        d, k = self._handshakes, (outcome, reason)
        d[k] = d.get(k, 0) + 1

    def cs_request(self, result: str) -> None:
        d, k = self._cs_requests, (result,)
        d[k] = d.get(k, 0) + 1

    def cache(self, cache: str, result: str) -> None:
        d, k = self._cache, (cache, result)
        d[k] = d.get(k, 0) + 1

    def datagram(self, kind: str, result: str) -> None:
        d, k = self._datagrams, (kind, result)
        d[k] = d.get(k, 0) + 1

    def record(self, kind: str, result: str) -> None:
        d, k = self._records, (kind, result)
        d[k] = d.get(k, 0) + 1
