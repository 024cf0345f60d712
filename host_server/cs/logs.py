# host_server.cs.logs: structured logs of the certificate store: one JSON object per line
# on stderr ({"ts", "level", "event", ...fields}). Callers pass only public facts (IDs,
# names, results, timings); as a second line of defence any field whose name suggests a
# secret (token, authorization, password, private, secret) is replaced by "[redacted]".
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

LOGGER_NAME = "airshake.cs"
_SECRET_WORDS = ("token", "authorization", "password", "private", "secret", "cookie")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", None) or record.name,
        }
        if not getattr(record, "event", None):
            out["msg"] = record.getMessage()
        for k, v in fields.items():
            out[k] = "[redacted]" if any(w in k.lower() for w in _SECRET_WORDS) else v
        if record.exc_info and record.levelno >= logging.ERROR:
            out["error"] = repr(record.exc_info[1])
        return json.dumps(out, default=str, separators=(",", ":"))


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
