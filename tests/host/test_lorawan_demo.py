"""The demo through a LoRaWAN network server's MQTT integration (run_demo with via =
chirpstack or tts; host_server.lorawan.demo_path): mosquitto, the network-server stand-in
behind the link emulator's EU868 DR0 air, and `airshake server --lorawan`. The device
completes its handshake and its record is answered; every process is gone afterwards.
Skipped with one line when mosquitto is not installed."""
from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest

from host_server.demo.options import Options
from host_server.demo.run import run_demo
from host_server.errors import UserError
from host_server.lorawan.broker import INSTALL, find_mosquitto


def _leftovers(work: Path) -> list[str]:
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(work) in cmd:
            alive.append(cmd)
    return alive


@pytest.mark.skipif(find_mosquitto() is None,
                    reason="lorawan demo tests (need mosquitto: %s)" % INSTALL)
@pytest.mark.parametrize("via", ["chirpstack", "tts"])
def test_demo_via_the_network_server_completes(tmp_path, via):
    work = tmp_path / "work"
    out = io.StringIO()
    assert run_demo(Options(via=via, workdir=work, loss=0.1), out) == 0
    text = out.getvalue()
    assert "MQTT integration: mosquitto at mqtt://127.0.0.1:" in text
    s = json.loads((work / "summary.json").read_text())
    assert s["link"] == "lorawan-eu868-dr0"        # --via picks the LoRaWAN link
    d = s["per_device"][0]
    assert d["confirmed"] and d["c_b"] == "value" and d["fragments"] >= 6   # m2: C509
    deadline = time.monotonic() + 5
    while _leftovers(work) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _leftovers(work) == []


def test_demo_via_needs_a_lorawan_link():
    with pytest.raises(UserError) as e:
        run_demo(Options(via="chirpstack", link="lora-sf12"), io.StringIO())
    assert "--via chirpstack needs a LoRaWAN link: use --link lorawan-eu868-dr0" in str(e.value)
    with pytest.raises(UserError) as e:
        run_demo(Options(via="carrier-pigeon"), io.StringIO())
    assert "choose one of udp, chirpstack, tts" in str(e.value)
