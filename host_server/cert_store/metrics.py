# host_server.cert_store.metrics: the certificate store's Prometheus metrics, in a registry of
# their own per app (so several apps in one process do not clash), served as text on
# GET /metrics. Labels are bounded: endpoints are route templates, never raw paths.
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("cs_requests", "HTTP requests by endpoint and status",
                                ["endpoint", "status"], registry=r)
        self.lookups = Counter("cs_lookups", "certificate lookups by result",
                               ["result"], registry=r)
        self.enrollments = Counter("cs_enrollments", "enrollments by result",
                                   ["result"], registry=r)
        self.revocations = Counter("cs_revocations", "revocations recorded", registry=r)
        self.sse_subscribers = Gauge("cs_sse_subscribers", "connected SSE subscribers",
                                     registry=r)
        for result in ("found", "absent", "revoked"):
            self.lookups.labels(result)
        for result in ("ok", "collision", "refused", "bad_request"):
            self.enrollments.labels(result)

    def render(self) -> bytes:
        return generate_latest(self.registry)
