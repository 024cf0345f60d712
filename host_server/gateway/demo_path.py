# host_server.gateway.demo_path: the demo's raw-LoRa gateway path (`make demo
# DEMO_ARGS="--via gateway"`): the stand-in air, N simulated GWMP gateways hearing it,
# and the bridge (`airshake gateway`) in front of a running B, each a process started
# through its command line; start_gateway_path() returns what the demo's devices need
# (board, config and environment for a firmware whose raw-LoRa radio runs on the
# stand-in micropython-lib driver) and, at close(), what crossed the air and the bridge.
# The stand-ins are the link emulator's (airshake_tools.linkemu: air, gwmp_gateway, and
# MP_PATH with the MicroPython `lora` and `machine`): run as processes and put on the
# device's MICROPYPATH. A process that does not start is one UserError line.
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airshake_tools.linkemu import MP_PATH
from host_server.demo.procs import die_with_parent_here
from host_server.errors import UserError

BOARD = "ttgo_lora32_v1"
SPEED = 20                   # the stand-in driver's air-time divisor
READY_TIMEOUT = 20.0


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    stream: str = "stdout"

    def __post_init__(self) -> None:
        pipe = self.popen.stdout if self.stream == "stdout" else self.popen.stderr
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: Any) -> None:
        for line in pipe:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str) -> str:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self.popen.poll() is not None:
                time.sleep(0.1)
                last = self.lines[-1] if self.lines else "no output"
                raise UserError(f"{self.name} did not start: {last}")
            time.sleep(0.02)
        raise UserError(f"{self.name} did not report ready within {READY_TIMEOUT:.0f} s")

    def stop(self) -> str | None:
        """SIGTERM, then its last output line (the stand-ins' JSON counts)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        time.sleep(0.05)
        return self.lines[-1] if self.lines else None


@dataclass
class GatewayPath:
    air_port: int
    bridge_port: int
    gateways: int
    device_board: str = BOARD
    device_config: dict[str, Any] = field(default_factory=lambda: {"radio": "lora",
                                                                   "deep_sleep": False})
    device_env: dict[str, str] = field(default_factory=dict)
    procs: list[_Proc] = field(default_factory=list)

    def close(self) -> dict[str, Any]:
        """Stop everything; returns {"air": {...frames/bytes up/down...}, "bridge":
        {...counters...}, "gateways": [...]}: what the demo's summary shows."""
        out: dict[str, Any] = {"gateways": []}
        for p in reversed(self.procs):
            last = p.stop()
            try:
                obj = json.loads(last) if last else {}
            except ValueError:
                obj = {}
            if p.name == "the LoRa air":
                out["air"] = obj
            elif p.name.startswith("gateway"):
                out["gateways"].append(obj)
            else:
                out["bridge"] = obj.get("counters", {})
        self.procs.clear()
        return out


def _python(*args: str) -> list[str]:
    return [sys.executable, *args]


def start_gateway_path(work: Path, b_port: int, gateways: int = 2, loss: float = 0.0,
                       seed: int = 0, host: str = "127.0.0.1",
                       collect: float = 0.2) -> GatewayPath:
    """Air, `gateways` simulated gateways (the first hears best) and the bridge to B at
    host:b_port (the demo's probe in front of B, if it has one)."""
    env = dict(os.environ)
    procs: list[_Proc] = []
    try:
        air = _Proc("the LoRa air", subprocess.Popen(
            _python("-m", "airshake_tools.linkemu.air", "--speed", str(SPEED), "--loss",
                    repr(loss), "--seed", str(seed)), cwd=work, env=env, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True,
            preexec_fn=die_with_parent_here(signal.SIGKILL)))
        procs.append(air)
        air_port = int(air.wait_for("air on ").rsplit(":", 1)[1])
        bridge = _Proc("the bridge (airshake gateway)", subprocess.Popen(
            _python("-m", "host_server.cli", "gateway", "--listen", f"{host}:0", "--server",
                    f"{host}:{b_port}", "--collect", repr(collect)), cwd=work, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            preexec_fn=die_with_parent_here(signal.SIGKILL)), stream="stderr")
        procs.append(bridge)
        bridge_port = int(json.loads(bridge.wait_for('"ready"'))["port"])
        for i in range(gateways):
            eui = "aa555a%010x" % (i + 1)
            gw = _Proc(f"gateway {eui}", subprocess.Popen(
                _python("-m", "airshake_tools.linkemu.gwmp_gateway", "--eui", eui, "--server",
                        f"{host}:{bridge_port}", "--air", f"{host}:{air_port}", "--speed",
                        str(SPEED), "--lsnr", str(7.5 - 6 * i)), cwd=work, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            preexec_fn=die_with_parent_here(signal.SIGKILL)))
            procs.append(gw)
            gw.wait_for("ready")
    except BaseException:
        for p in reversed(procs):
            p.stop()
        raise
    return GatewayPath(air_port, bridge_port, gateways, procs=procs, device_env={
        "AIRSHAKE_AIR": f"{host}:{air_port}", "AIRSHAKE_AIR_SPEED": str(SPEED),
        "MICROPYPATH": ".frozen:" + str(MP_PATH)})
