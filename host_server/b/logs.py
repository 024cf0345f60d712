# host_server.b.logs: B's structured logs, one JSON object per line on stderr, every
# line with time, level, instance and event. Rule: callers pass only public values
# (device IDs in hex, reasons, counts, timings, addresses), never keys, session
# secrets or record contents.
from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None) or {"msg": record.getMessage()}
        return json.dumps(fields, separators=(",", ":"), default=str)


class EventLog:
    def __init__(self, instance: str, level: str = "info", stream: Any = None) -> None:
        self.instance = instance
        self.logger = logging.getLogger("airshake.b." + instance)
        self.logger.propagate = False
        self.logger.handlers.clear()
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(_JsonFormatter())
        self.logger.addHandler(handler)
        self.logger.setLevel(_LEVELS.get(level, logging.INFO))

    def enabled(self, level: int) -> bool:
        return self.logger.isEnabledFor(level)

    def _emit(self, level: int, event: str, fields: dict[str, Any], always: bool = False) -> None:
        if not always and not self.logger.isEnabledFor(level):
            return
        out = {"ts": round(time.time(), 3), "level": logging.getLevelName(level).lower(),
               "instance": self.instance, "event": event}
        out.update(fields)
        self.logger.log(max(level, self.logger.level) if always else level, event,
                        extra={"fields": out})

    def lifecycle(self, event: str, **fields: Any) -> None:
        """An info line written whatever the level: ready, stopping, stopped."""
        self._emit(logging.INFO, event, fields, always=True)

    def debug(self, event: str, **fields: Any) -> None:
        self._emit(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, fields)
