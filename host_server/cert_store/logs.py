# host_server.cert_store.logs: structured logs of the certificate store and uvicorn, on stderr in
# the host servers' one JSON line format (host_server.jsonlog: {"ts", "level", "event",
# ...fields}, secret-looking fields redacted). Callers pass only public facts (IDs,
# names, results, timings).
from __future__ import annotations

import logging
import sys
import time
from typing import Any

from host_server.jsonlog import JsonFormatter

LOGGER_NAME = "airshake.cs"


def setup(verbose: bool = False) -> None:
    """Send the store's and uvicorn's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name, level in ((LOGGER_NAME, logging.DEBUG if verbose else logging.INFO),
                        ("uvicorn", logging.WARNING), ("uvicorn.error", logging.WARNING),
                        ("uvicorn.access", logging.WARNING)):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    logging.getLogger(LOGGER_NAME).log(level, event, extra={"event": event, "fields": fields})


class Timer:
    """Milliseconds since creation, for the "ms" field."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    @property
    def ms(self) -> float:
        return round((time.perf_counter() - self.t0) * 1000, 2)
