# host_server.server_b.logs: B's structured logs, on stderr in the host servers' one JSON line
# format (host_server.jsonlog: time, level, instance, event, fields; secret-looking
# fields redacted). Rule: callers pass only public values (device IDs in hex, reasons,
# counts, timings, addresses), never keys, session secrets or record contents.
from __future__ import annotations

import logging
import sys
from typing import Any

from host_server.jsonlog import JsonFormatter

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


class EventLog:
    def __init__(self, instance: str, level: str = "info", stream: Any = None) -> None:
        self.instance = instance
        self.logger = logging.getLogger("airshake.b." + instance)
        self.logger.propagate = False
        self.logger.handlers.clear()
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter())
        self.logger.addHandler(handler)
        self.logger.setLevel(_LEVELS.get(level, logging.INFO))

    def enabled(self, level: int) -> bool:
        return self.logger.isEnabledFor(level)

    def _emit(self, level: int, event: str, fields: dict[str, Any], always: bool = False) -> None:
        if not always and not self.logger.isEnabledFor(level):
            return
        self.logger.log(max(level, self.logger.level) if always else level, event,
                        extra={"event": event, "fields": fields, "instance": self.instance,
                               "level_name": logging.getLevelName(level).lower()})

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
