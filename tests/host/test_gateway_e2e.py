"""Raw LoRa through standard gateways, end to end, with real parts: the firmware (main.py,
lib/device, lib/radios/lora.py, the core) on the MicroPython unix binary, its raw-LoRa
radio on the stand-in micropython-lib driver (tools/linkemu/mp/lora) -> the air
(airshake_tools.linkemu.air, seeded loss) -> gateways: (a) the Python GWMP packet-forwarder
simulator (airshake_tools.linkemu.gwmp_gateway), one or two hearing the same frames, and (b) the
single-channel gateway firmware (firmware_gateway/) on the MicroPython binary ->
`airshake gateway` (the bridge, its real CLI) -> the real server B and certificate store.
Every reading a device saw acknowledged must be in B's SQLite sink. Each test prints the
bytes and frames per handshake on the air (`pytest -s`)."""
from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from airshake import codec
from airshake_tools.linkemu import MP_PATH
from airshake_tools.linkemu.air import LoraAir
from airshake_tools.linkemu.gwmp_gateway import GwmpGateway, RxChannel
from b_support import CS, BProcess, SERVER_NAME, make_pki, wait_for
from testkit.cs_support import ADMIN_HEADERS, AIRSHAKE, ROOT
from testkit.device_server import lines, make_device_root, provision
from host_server.gateway.demo_path import start_gateway_path

MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
STANDINS = str(MP_PATH)    # the stand-in `lora` and `machine` the unix firmware runs on
SPEED = 20                 # the stand-in's air time divisor
pytestmark = pytest.mark.skipif(not os.path.exists(MICROPYTHON),
                                reason="gateway tests (the MicroPython unix binary: make setup)")


class BridgeProcess:
    """`airshake gateway` on a free port; its `ready` line gives the port, its last
    `stats` line (at SIGTERM) the counters."""

    def __init__(self, tmp: Path, server_port: int, *flags: str) -> None:
        self.stderr_path = tmp / "bridge.stderr"
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [AIRSHAKE, "gateway", "--listen", "127.0.0.1:0", "--server",
             "127.0.0.1:%d" % server_port, "--stats-interval", "3600", *flags],
            stdout=subprocess.DEVNULL, stderr=self._err, cwd=ROOT)
        ready = wait_for(lambda: self._event("ready"), timeout=15)
        assert ready, "bridge never logged ready: " + self.stderr_path.read_text()
        self.port = ready[-1]["port"]
        self.stats: dict = {}

    def _event(self, name: str) -> list[dict]:
        out = []
        for line in self.stderr_path.read_text().splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("event") == name:
                out.append(obj)
        return out

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self._err.close()
        stats = self._event("stats")
        self.stats = stats[-1] if stats else {}
        return self.stats


class World:
    """PKI, CS, B (MTU 255: m2 by value crosses in 2 fragments) and the bridge."""

    def __init__(self, tmp: Path, bridge_flags: tuple[str, ...] = ()) -> None:
        self.tmp = tmp
        self.ca_dir, key_dir = make_pki(tmp)
        self.cs = CS(tmp, self.ca_dir)
        self.b = BProcess(tmp, self.ca_dir, key_dir, self.cs.url, mtu=255)
        self.bridge = BridgeProcess(tmp, self.b.port, *bridge_flags)

    def close(self) -> None:
        self.bridge.stop()
        self.b.stop()
        self.cs.stop()


def lora_device(world: World, name: str, **cfg: object) -> Path:
    """A TTGO LoRa32 device root (board file as deployed) with its key made on the device
    and enrolled in the CS."""
    root = world.tmp / name
    config = {"server_name": SERVER_NAME, "suite": 0, "id_len": 8, "radio": "lora",
              "deep_sleep": False, "interval_s": 60, "max_records": 100,
              "max_age_s": 86400, "rto_s": 1.0, "retries": 5, "reply_timeout_s": 2.0}
    config.update(cfg)
    make_device_root(str(root), config, (world.ca_dir / "ca.der").read_bytes(),
                     board="ttgo_lora32_v1")
    spki = provision(str(root))
    r = httpx.post(world.cs.url + "/enroll", headers=ADMIN_HEADERS, timeout=10,
                   json={"name": name, "public_key": base64.b64encode(spki).decode()})
    assert r.status_code == 201, r.text
    return root


def wake(root: Path, air: LoraAir | None, cycles: int,
         env: dict | None = None) -> subprocess.Popen:
    """main.py --cycles N on the binary, the stand-in lora driver on its path."""
    env = dict(os.environ, **(env or {
        "AIRSHAKE_AIR": "127.0.0.1:%d" % air.port, "AIRSHAKE_AIR_SPEED": str(SPEED),
        "MICROPYPATH": ".frozen:" + STANDINS}))
    return subprocess.Popen([MICROPYTHON, "main.py", "--cycles", str(cycles), "--interval",
                             "0"], cwd=str(root), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    return out


class Completed:
    """What one device's run says about its readings (firmware/README.md log lines)."""

    def __init__(self, out: str) -> None:
        class _Out:
            stdout = out
        self.lines = lines(_Out)
        self.lines_of = lambda step: lines(_Out, step)
        self.confirmed = len(lines(_Out, "confirmed"))
        self.replies = len(lines(_Out, "reply"))
        ids = {w[3:] for ln in lines(_Out, "handshake") for w in ln.split()
               if w.startswith("id=")}
        self.id_a = ids.pop() if len(ids) == 1 else None

    @property
    def acknowledged(self) -> int:
        """Readings B acknowledged: each `reply` line (the m3 reading's, seq 0, and each
        record's)."""
        return self.replies


def sink_ids(world: World) -> dict[str, int]:
    got: dict[str, int] = {}
    for id_a, _sid, _seq, _kind, _data in world.b.records():
        key = id_a.hex() if isinstance(id_a, bytes) else str(id_a)
        got[key] = got.get(key, 0) + 1
    return got


def handshake_cost(air: LoraAir) -> tuple[int, int, int, int]:
    """(frames up, bytes up, frames down, bytes down) on the air of a lone device's first
    handshake: up to its first m3 and B's first record (retransmissions included)."""
    up = [p for k, p in air.sent if not k[4]]
    down = [p for k, p in air.sent if k[4]]
    kinds_up = [codec.message_type(p) for p in up]
    kinds_down = [codec.message_type(p) for p in down]
    up = up[:kinds_up.index(codec.TYPE_M3) + 1]
    down = down[:kinds_down.index(codec.TYPE_RECORD) + 1]
    return len(up), sum(map(len, up)), len(down), sum(map(len, down))


def air_report(what: str, air: LoraAir) -> None:
    up = [p for k, p in air.sent if not k[4]]
    down = [p for k, p in air.sent if k[4]]
    print("\n%s: on the air %d frames up (%d B), %d down (%d B); deliveries lost %d"
          % (what, len(up), sum(map(len, up)), len(down), sum(map(len, down)), air.dropped))


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


def test_device_handshakes_and_sends_records_through_one_simulated_gateway(tmp_path, world):
    with LoraAir(None, None, speed=SPEED) as air, \
            GwmpGateway(b"\xaa\x55\x00\x00\x00\x00\x00\x01", ("127.0.0.1", world.bridge.port),
                        ("127.0.0.1", air.port), RxChannel(), speed=SPEED) as gw:
        dev = lora_device(world, "dev1", max_records=1)   # wake 3: a new handshake
        out = finish(wake(dev, air, 3))
        stats = world.bridge.stop()
    run = Completed(out)
    assert run.confirmed == 2 and run.replies == 3, out
    assert sink_ids(world) == {run.id_a: 3}
    # the bridge answered every PUSH_DATA and PULL_DATA, and the gateway sent all it got
    assert gw.log.push_acks == len(gw.log.pushed) and gw.log.pull_acks >= 1
    assert gw.log.tx_acks and set(gw.log.tx_acks) == {"NONE"}
    assert all(t["imme"] and t["ipol"] and t["datr"] == "SF7BW125" and t["freq"] == 868.1
               for t in gw.log.txpk)
    c = stats["counters"]
    assert c["uplinks"] == len(gw.log.pushed) and c["downlinks"] == len(gw.log.txpk)
    assert c.get("rejected", 0) == 0 and stats["flows"] == 1
    # m1 46 B, m2 by value whole (C_B as C509: one 255-byte frame), m3, then records
    first_down = [p for k, p in air.sent if k[4]][:2]
    assert [codec.message_type(p) for p in first_down] == [codec.TYPE_M2, codec.TYPE_RECORD]
    fu, bu, fd, bd = handshake_cost(air)
    # m1 46 B and m3 12 B (a 3-byte reading) up; m2 by value (~240 B) in one frame and
    # B's first record (22 B, its 5-byte reply) down
    got: dict[str, int] = {}
    for ln in run.lines_of("recv"):               # the first handshake's sizes
        got.setdefault(ln.split()[0], int(ln.split()[1][:-1]))
    assert (fu, bu, fd) == (2, 58, 2) and bd == got["m2"] + got["record"]
    print("\nfirst handshake through a GWMP gateway (C_B by value): %d frames / %d B up, "
          "%d frames / %d B down" % (fu, bu, fd, bd))
    # wake 3, C_B held and the clock confirmed: the short m1 (43 B) + m3 12 B up, m2 by
    # reference 41 B + record 22 B down
    last = air.sent[-4:]
    assert [(k[4], len(p)) for k, p in last] == [(False, 43), (True, 41), (False, 12),
                                                 (True, 22)]
    print("handshake with C_B by reference: 2 frames / 55 B up, 2 frames / 63 B down")
    air_report("one gateway, 2 handshakes + 1 record", air)


def test_two_gateways_two_devices_with_loss_lose_no_acknowledged_reading(tmp_path, world):
    """Both gateways hear the uplinks: the bridge forwards each frame once and answers
    through one gateway; 10 % of deliveries are lost on the air."""
    with LoraAir(None, None, speed=SPEED, loss=0.1, seed=7) as air, \
            GwmpGateway(b"\xaa\x55\x00\x00\x00\x00\x00\x01", ("127.0.0.1", world.bridge.port),
                        ("127.0.0.1", air.port), speed=SPEED, lsnr=9.0) as near, \
            GwmpGateway(b"\xaa\x55\x00\x00\x00\x00\x00\x02", ("127.0.0.1", world.bridge.port),
                        ("127.0.0.1", air.port), speed=SPEED, lsnr=-3.0) as far:
        devs = [lora_device(world, "dev%d" % i) for i in (1, 2)]
        procs = [wake(d, air, 3) for d in devs]
        runs = [Completed(finish(p)) for p in procs]
        stats = world.bridge.stop()
    sink = sink_ids(world)
    for run in runs:
        assert run.confirmed >= 1, run.lines
        assert sink.get(run.id_a, 0) >= run.acknowledged >= 1
    c = stats["counters"]
    assert c["rx_duplicate"] >= 1                      # heard twice, forwarded once
    assert c["uplinks"] + c["rx_duplicate"] == len(near.log.pushed) + len(far.log.pushed)
    assert c["uplinks"] >= len(set(near.log.pushed) | set(far.log.pushed))
    # what B sent went out once per answer, through one gateway or the other (the far
    # one only for a frame the near one missed: which copy was lost is the air's choice)
    assert len(near.log.transmitted) + len(far.log.transmitted) == c["downlinks"]
    assert stats["flows"] == 2
    air_report("two gateways, two devices, 10% loss", air)


def test_downlinks_at_tmst_plus_delay(tmp_path):
    """--tx-mode tmst: each answer leaves at the uplink's tmst + --rx-delay (here 0.6 s;
    the device listens continuously, so it hears it)."""
    w = World(tmp_path, ("--tx-mode", "tmst", "--rx-delay", "0.6"))
    try:
        with LoraAir(None, None, speed=SPEED) as air, \
                GwmpGateway(b"\xaa\x55\x00\x00\x00\x00\x00\x03", ("127.0.0.1", w.bridge.port),
                            ("127.0.0.1", air.port), speed=SPEED) as gw:
            dev = lora_device(w, "dev-tmst", reply_timeout_s=3.0)
            run = Completed(finish(wake(dev, air, 2)))
        assert run.confirmed == 1 and run.replies == 2, run.lines
        assert gw.log.txpk and not any(t["imme"] for t in gw.log.txpk)
        assert set(gw.log.tx_acks) == {"NONE"}
    finally:
        w.close()


@contextlib.contextmanager
def firmware_gateway(tmp_path: Path, bridge_port: int, air: LoraAir, eui: str):
    """firmware_gateway/ deployed into a root (board file, gateway.json, the device
    firmware's radios/) and running on the MicroPython binary; yields the process and
    a list that receives its output when it stops."""
    gw_root = tmp_path / ("gateway-" + eui)
    shutil.copytree(os.path.join(ROOT, "firmware_gateway"), gw_root,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(ROOT, "firmware", "lib", "radios"), gw_root / "lib" / "radios",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "boards", "ttgo_lora32_v1.py"), gw_root / "board.py")
    (gw_root / "gateway.json").write_text(json.dumps({
        "server": "127.0.0.1:%d" % bridge_port, "eui": eui, "keepalive_s": 0.5,
        "stat_interval_s": 5}))
    env = dict(os.environ, AIRSHAKE_AIR="127.0.0.1:%d" % air.port,
               AIRSHAKE_AIR_SPEED=str(SPEED), MICROPYPATH=".frozen:" + STANDINS)
    before = len(air.listeners)
    gw = subprocess.Popen([MICROPYTHON, "main.py"], cwd=str(gw_root), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    try:
        assert wait_for(lambda: len(air.listeners) > before, timeout=20), \
            "the gateway firmware never listened"
        yield output
    finally:
        gw.send_signal(signal.SIGINT)
        try:
            out, _ = gw.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            gw.kill()
            out, _ = gw.communicate()
        output.append(out)


def test_single_channel_gateway_firmware_carries_the_device(tmp_path, world):
    """(b): firmware_gateway/ on the MicroPython binary, its radio the stand-in driver."""
    with LoraAir(None, None, speed=SPEED) as air, \
            firmware_gateway(tmp_path, world.bridge.port, air, "aa55000000000009") as gw_out:
        dev = lora_device(world, "dev-scgw")
        run = Completed(finish(wake(dev, air, 3)))
    stats = world.bridge.stop()
    assert run.confirmed == 1 and run.replies == 3, (run.lines, gw_out)
    assert sink_ids(world) == {run.id_a: 3}
    c = stats["counters"]
    assert c["pull_data"] >= 1 and c["downlinks"] >= 3 and c.get("tx_ok", 0) == c["downlinks"]
    assert "gwmp ready eui=aa55000000000009" in gw_out[0] and "Traceback" not in gw_out[0]
    print("\nhandshake through the single-channel gateway firmware: %d frames / %d B up, "
          "%d frames / %d B down" % handshake_cost(air))
    air_report("single-channel gateway firmware, 1 handshake + 2 records", air)


def test_gateway_firmware_beside_a_simulated_gateway_with_loss(tmp_path, world):
    """(b) with (a): the firmware gateway (SNR 0 from the stand-in) and a simulated one
    that hears worse (SNR -5) both hear the device, 10 % of deliveries lost: one forward
    per frame, answers through the firmware gateway, no acknowledged reading lost."""
    with LoraAir(None, None, speed=SPEED, loss=0.1, seed=3) as air, \
            firmware_gateway(tmp_path, world.bridge.port, air, "aa5500000000000a") as gw_out, \
            GwmpGateway(b"\xaa\x55\x00\x00\x00\x00\x00\x0b",
                        ("127.0.0.1", world.bridge.port), ("127.0.0.1", air.port),
                        speed=SPEED, lsnr=-5.0) as sim:
        dev = lora_device(world, "dev-mixed")
        run = Completed(finish(wake(dev, air, 3)))
    stats = world.bridge.stop()
    assert run.confirmed >= 1, (run.lines, gw_out)
    assert sink_ids(world).get(run.id_a, 0) >= run.acknowledged >= 1
    c, per_gw = stats["counters"], stats["gateways"]
    assert c["rx_duplicate"] >= 1
    assert per_gw["aa5500000000000a"]["uplinks"] >= 1 and sim.log.pushed
    # the better-heard firmware gateway carries answers (the simulated one only those
    # whose uplink the firmware gateway missed); each answer leaves through one of them
    assert per_gw["aa5500000000000a"]["downlinks"] >= 1
    assert per_gw["aa5500000000000b"]["downlinks"] == len(sim.log.txpk)
    assert per_gw["aa5500000000000a"]["downlinks"] + len(sim.log.txpk) == c["downlinks"]
    air_report("firmware + simulated gateway, 10% loss", air)


def test_demo_path_starts_air_gateways_and_bridge_for_the_demo(tmp_path, world):
    """host_server.gateway.demo_path: what `make demo DEMO_ARGS="--via gateway"` runs,
    each part a process; a device given its board, config and environment completes."""
    # a wide collection window: under a loaded make test, both gateway processes' copies
    # must reach the bridge before it chooses (0.5 s is still below the devices' rto)
    path = start_gateway_path(tmp_path, world.b.port, gateways=2, collect=0.5)
    try:
        dev = lora_device(world, "dev-demo", **path.device_config)
        run = Completed(finish(wake(dev, None, 2, env=path.device_env)))
    finally:
        seen = path.close()
    assert path.device_board == "ttgo_lora32_v1"
    assert run.confirmed == 1 and run.replies == 2, run.lines
    assert seen["air"]["frames_up"] >= 3 and seen["air"]["frames_down"] >= 3
    assert seen["bridge"]["uplinks"] >= 3 and seen["bridge"]["rx_duplicate"] >= 3
    # no loss: both gateways hear every uplink, and every answer goes out through the
    # one with the better SNR (the first), whichever copy reached the bridge first
    near, far = sorted(seen["gateways"], key=lambda g: g["eui"])
    assert near["pushed"] == far["pushed"] == seen["bridge"]["uplinks"]
    assert (near["transmitted"], far["transmitted"]) == (seen["bridge"]["downlinks"], 0)
