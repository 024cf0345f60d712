# host_server.jsonlog: the one JSON log line of the host servers (B and the certificate
# store): one object per line, {"ts", "level", ["instance",] "event", ...fields}. Callers
# pass only public values (IDs in hex, names, reasons, counts, timings, addresses); as a
# second line of defence any field whose name suggests a secret (token, authorization,
# password, private, secret, cookie) is written as "[redacted]".
from __future__ import annotations

import json
import logging
from typing import Any

SECRET_WORDS = ("token", "authorization", "password", "private", "secret", "cookie")
REDACTED = "[redacted]"


def secret_name(name: str) -> bool:
    return any(w in name.lower() for w in SECRET_WORDS)


class JsonFormatter(logging.Formatter):
    """A record's extra "event", "fields", and optionally "instance" and "level_name"
    (the level the line shows, when it is logged at another) as one JSON line; a record
    without an event (a library's, e.g. uvicorn's) shows its message as "msg"."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "event", None)
        out: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": getattr(record, "level_name", None) or record.levelname.lower(),
        }
        instance = getattr(record, "instance", None)
        if instance is not None:
            out["instance"] = instance
        out["event"] = event or record.name
        if not event:
            out["msg"] = record.getMessage()
        fields: dict[str, Any] = getattr(record, "fields", None) or {}
        for k, v in fields.items():
            out[k] = REDACTED if secret_name(k) else v
        if record.exc_info and record.levelno >= logging.ERROR:
            out["error"] = repr(record.exc_info[1])
        return json.dumps(out, default=str, separators=(",", ":"))
