# tests/host/test_jsonlog.py: B's and the CS's logs share host_server.jsonlog's line:
# the same keys in the same order, and a secret-looking field redacted in both.
import io
import json
import logging

from host_server.server_b.logs import EventLog
from host_server.cert_store import logs as cs_logs


def test_b_line_keeps_its_keys_and_redacts_secrets():
    out = io.StringIO()
    log = EventLog("b0", level="warning", stream=out)
    log.info("hidden")                                   # below the level
    log.lifecycle("ready", port=5683, auth_token="s3cret")
    line = out.getvalue().strip()
    assert "s3cret" not in line and "\n" not in line
    got = json.loads(line)
    assert list(got)[:4] == ["ts", "level", "instance", "event"]
    assert got["level"] == "info" and got["event"] == "ready" and got["instance"] == "b0"
    assert got["port"] == 5683 and got["auth_token"] == "[redacted]"


def test_cs_line_redacts_secrets(capsys):
    cs_logs.setup()
    cs_logs.log("enrolled", id="00ff", Authorization="Bearer s3cret")
    got = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert list(got)[:3] == ["ts", "level", "event"]
    assert got["event"] == "enrolled" and got["Authorization"] == "[redacted]"
    logging.getLogger(cs_logs.LOGGER_NAME).handlers.clear()
