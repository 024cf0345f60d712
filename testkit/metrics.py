# testkit/metrics.py: a Prometheus /metrics page as a dict, for the tests and the
# benchmarks that read B's and the CS's counters. Parsed by prometheus_client's own text
# parser (no hand-written one).
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Metrics(dict):
    """{(sample name, frozenset of labels except instance): value}; .families holds every
    name the page declares (its # TYPE lines), so that a series read as 0 because it is
    absent can be told from one the server does not have."""
    families: set[str]


def parse_metrics(text: str) -> Metrics:
    out = Metrics()
    out.families = set()
    for family in text_string_to_metric_families(text):
        # the parser names a counter without the _total its # TYPE line carries
        out.families.add(family.name + "_total" if family.type == "counter" else family.name)
        for s in family.samples:
            labels = frozenset((k, v) for k, v in s.labels.items() if k != "instance")
            out[(s.name, labels)] = float(s.value)
    return out
