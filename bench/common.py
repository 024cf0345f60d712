# bench.common: what every benchmark module shares: the project root (the test helpers
# the benchmarks reuse are the package testkit/), the one-line failure the run reports,
# and small helpers (checks, medians, rounding).
from __future__ import annotations

import os
import statistics
from collections.abc import Iterable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BenchFailure(Exception):
    """A measurement that could not be made or whose handshakes did not complete.
    The message is one line: bench.run prints it and exits non-zero."""


def check(condition: object, message: str) -> None:
    """Raise BenchFailure(message) unless condition holds (never an assert: -O)."""
    if not condition:
        raise BenchFailure(message)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def r(value: float, digits: int = 1) -> float:
    return round(float(value), digits)
