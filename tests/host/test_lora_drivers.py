"""The raw-LoRa adapter (firmware/lib/radios/lora.py) on micropython-lib's real drivers:
lora, lora-sx127x, lora-sx126x and lora-async, compiled with mpy-cross as `mip install`
puts them on a board, run on the stock MicroPython unix binary and on the 32-bit twin
(build/twin/, its frozen radio adapter and ESP32-sized heap) against fake chips behind a
fake SPI bus and pins (tools/linkemu/mp/machine.py; tests/micropython/fakes/: fake_sx127x.py for the
SX1276 registers, FIFO, RegOpMode, RegIrqFlags and DIO mapping; fake_sx126x.py for the
SX1262 command interface, BUSY, DIO1 and the data buffer).

- one process, two boards (lora_pair.py): a TTGO LoRa32 v1 (SX1276) and a Heltec v3
  (SX1262 with a TCXO) exchange packets over the in-process air both ways, the chips'
  own time on air (from their registers) equal to the drivers';
- a board alone (radio_steps.py, the stand-in tests' script) on airshake_tools.linkemu.air's
  air and gateway, a whole handshake (radio_handshake.py) through it to a responder;
- wiring and settings mistakes as the real driver meets them.

The driver sources come from MPY_LIB_DIR, else build/micropython-lib (unpacked from
../shared's tarball by tools/build_firmware.py); without either the tests skip in one line
(a clone needs the network, which the tests do not use)."""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from airshake_tools import build_firmware as bf
from fragment_relay import FragmentRelay
from host_server.device.deploy import mpy_cross
from airshake_tools.linkemu import MP_PATH
from airshake_tools.linkemu.air import Channel, LoraAir
from testkit import hs_support
from testkit.udp_responder import FixtureResponder
from testkit.udp_thread import UdpThread

ROOT = Path(__file__).resolve().parents[2]
MP_STANDINS = str(MP_PATH)     # the stand-in `machine` (and `lora`, behind the real drivers)
FAKES = ROOT / "tests" / "micropython" / "fakes"
STOCK = ROOT / ".venv" / "bin" / "micropython"
TWIN = bf.TWIN_DIR / "micropython-twin"
PACKAGES = ("lora", "lora-sx127x", "lora-sx126x", "lora-async")
# the chips as the boards carry them (boards/ttgo_lora32_v1.py, heltec_wifi_lora32_v3.py)
TTGO_CHIP = "sx1276:sck=5,mosi=27,miso=19,cs=18,reset=14,dio0=26"
HELTEC_CHIP = "sx1262:sck=9,mosi=10,miso=11,cs=8,reset=12,busy=13,dio1=14,tcxo=1800"
CHIP = {"ttgo_lora32_v1": TTGO_CHIP, "heltec_wifi_lora32_v3": HELTEC_CHIP}


def _lib_available() -> bool:
    return bool(os.environ.get("MPY_LIB_DIR")) or \
        (bf.BUILD / "micropython-lib" / "README.md").is_file() or \
        (bf.SHARED / "micropython-lib.tar.gz").is_file()


@pytest.fixture(scope="module")
def driver_lib(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """lib/lora/*.mpy as `mip install lora-async lora-sx127x lora-sx126x` leaves it, and
    each package's version."""
    if not _lib_available():
        pytest.skip("lora driver tests (no micropython-lib here: set MPY_LIB_DIR to a "
                    "checkout of it)")
    lib = bf.micropython_lib(bf.BUILD / bf.MPY_DIRNAME)
    out = tmp_path_factory.mktemp("driver-lib")
    (out / "lora").mkdir()
    versions = {}
    for pkg in PACKAGES:
        top = lib / "micropython" / "lora" / pkg
        versions[pkg] = re.search(r'version="([^"]+)"', (top / "manifest.py").read_text())[1]
        for src in sorted((top / "lora").glob("*.py")):
            shutil.copy(src, out / "lora" / src.name)
    # the test scaffolding (fake chips, the stand-in machine) compiled too: compiling
    # 30 KB of source at run time would take the twin's ESP32-sized heap from the firmware,
    # where a board has neither (it passed at 96k with less than 16k to spare, and failed
    # once on a CI machine)
    for src in sorted(FAKES.glob("fake_*.py")) + [Path(MP_STANDINS) / "machine.py"]:
        shutil.copy(src, out / src.name)
    cross = mpy_cross()
    for src in sorted((out / "lora").glob("*.py")) + sorted(out.glob("*.py")):
        subprocess.run([cross, str(src)], check=True)
        src.unlink()
    return out, versions


@functools.cache
def _twin_stale() -> bool:
    """The twin's frozen firmware is older than the checkout's (its build key differs)."""
    if not (os.environ.get("MICROPYTHON_SRC")
            or (bf.BUILD / bf.MPY_DIRNAME / "py" / "mpconfig.h").is_file()):
        return False                       # no source to tell by: run it as it is
    src = bf.micropython_src()
    key = bf.TWIN_DIR / "key"
    return not key.is_file() or key.read_text() != bf.twin_key(src, bf.micropython_lib(src))


@pytest.fixture(params=["stock", "twin"])
def runtime(request) -> str:
    if request.param == "twin" and not TWIN.is_file():
        pytest.skip("twin tests (the 32-bit twin is not built: make twin)")
    if request.param == "twin" and _twin_stale():
        pytest.skip("twin tests (the twin's frozen firmware is older than firmware/: "
                    "make twin)")
    if request.param == "stock" and not STOCK.is_file():
        pytest.skip("needs the MicroPython unix binary (make setup)")
    return request.param


def run_mp(runtime: str, lib: Path, script: str, cfg: dict, tmp_path: Path,
           env: dict | None = None, heap: str | None = None,
           timeout: float = 60) -> tuple[list[dict], str]:
    """script on the runtime, the driver lib before the fakes and the source firmware
    (the twin holds the radio adapter frozen, first on its path, as a board does)."""
    path = tmp_path / ("cfg%d.json" % time.monotonic_ns())
    path.write_text(json.dumps(cfg))
    binary = str(STOCK if runtime == "stock" else TWIN)
    args = [binary] + (["-X", "heapsize=" + heap] if heap else []) + [script, str(path)]
    full_env = dict(os.environ, MICROPYPATH=":".join(
        [".frozen", str(lib), "firmware/lib", "tests/micropython/fakes", MP_STANDINS]),
        **(env or {}))
    out = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                         env=full_env)
    assert out.returncode == 0, out.stdout + out.stderr
    results = [json.loads(line[7:]) for line in out.stdout.splitlines()
               if line.startswith("RESULT ")]
    return results, out.stdout


def test_the_real_drivers_are_the_versions_the_adapter_targets(driver_lib):
    _, versions = driver_lib
    # radios/lora.py names lora 0.2 with lora-sx127x/-sx126x/-async 0.1
    assert versions["lora"].startswith("0.2") and all(
        versions[p].startswith("0.1") for p in PACKAGES[1:]), versions


# -- the fakes have teeth ---------------------------------------------------------------------

FAKE_CHECK = """\
import machine
from fake_sx127x import SX127x
from fake_sx126x import SX126x
a = SX127x({"sck": 1, "mosi": 2, "miso": 3, "cs": 4, "reset": 5, "dio0": 6})
b = SX126x({"sck": 11, "mosi": 12, "miso": 13, "cs": 14, "reset": 15, "busy": 16}, "sx1262")
spi_a = machine.SPI(1, sck=machine.Pin(1), mosi=machine.Pin(2), miso=machine.Pin(3))
spi_b = machine.SPI(2, sck=machine.Pin(11), mosi=machine.Pin(12), miso=machine.Pin(13))
wrong = machine.SPI(1, sck=machine.Pin(1), mosi=machine.Pin(2), miso=machine.Pin(9))
cs_a, cs_b, busy = machine.Pin(4, value=1), machine.Pin(14, value=1), machine.Pin(16)
def rd(spi, reg):
    buf = bytearray([reg, 0xFF])
    cs_a(0)
    spi.write_readinto(buf, buf)
    cs_a(1)
    return buf[1]
print("version", rd(spi_a, 0x42), rd(wrong, 0x42))
cs_a(0); spi_a.write(bytes([0x81, 0x81])); cs_a(1)      # LoRa mode, not from Sleep
print("opmode", rd(spi_a, 0x01))
machine.Pin(15, machine.Pin.OUT, value=0)(1)           # NRESET: BUSY while it boots
print("busy", busy())
cs_b(0); spi_b.write(bytes([0x80, 0x01])); cs_b(1)      # SetStandby while BUSY
print("errors", a.errors, b.errors, b.commands)
"""


def test_the_fake_chips_refuse_what_the_chips_would(tmp_path):
    """What the tests' clean runs rest on: the fakes notice misuse. RegVersion reads 0x12
    only on the chip's MISO; LongRangeMode does not change outside Sleep; after a reset
    the SX1262 is BUSY and a command sent then is lost."""
    script = tmp_path / "check.py"
    script.write_text(FAKE_CHECK)
    out = subprocess.run([str(STOCK), str(script)], cwd=ROOT, capture_output=True, text=True,
                         timeout=30, env=dict(os.environ, MICROPYPATH=":".join(
                             ["tests/micropython/fakes", MP_STANDINS, ".frozen"])))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "version 18 0", "opmode 1", "busy 1",
        "errors ['LongRangeMode changed outside Sleep'] ['command 80 sent while BUSY'] []"]


# -- two boards, one air ---------------------------------------------------------------------

def test_an_sx1276_and_an_sx1262_board_exchange_packets(driver_lib, runtime, tmp_path):
    """The Heltec plays the gateway (receives uplinks as sent, sends IQ-inverted as
    downlinks are): both directions arrive whole, with rssi in dBm and snr in dB; each
    chip's time on air, from the registers the driver wrote, is the driver's own figure
    (so the SX1276 really sends the CRC the driver counts: it resets with it off)."""
    lib, _ = driver_lib
    cfg = {"b_lora": {"invert_iq_tx": True, "invert_iq_rx": False},
           "toa_lengths": [1, 20, 51, 255]}
    (r,), _ = run_mp(runtime, lib, "tests/micropython/fakes/lora_pair.py", cfg, tmp_path)
    assert r["a_to_b"] == {"data": b"hello from an sx1276".hex(), "rssi": -60, "snr": 8.0}
    assert r["b_to_a"] == {"data": bytes(range(255)).hex(), "rssi": -60, "snr": 8.0}
    for n, chip_a, driver_a, chip_b, driver_b in r["toa"]:
        assert chip_a == driver_a and chip_b == driver_b, (n, r["toa"])
    assert r["toa"][-1][1] == 399616           # 255 bytes at SF7/125 kHz, CR 4/5, CRC on
    assert r["a"]["errors"] == [] and r["b"]["errors"] == []
    assert r["a"]["channel"] == [868100, 7, 1250, 0x12, False]
    # the Heltec's last packet params: receiving again, not inverted, after its send
    assert r["b"]["channel"] == [868100, 7, 1250, 0x12, False]
    assert (r["a"]["heard"], r["b"]["heard"], r["a"]["missed"], r["b"]["missed"]) == \
        (1, 1, 0, 0)


def test_two_devices_do_not_hear_each_other(driver_lib, tmp_path):
    """Both boards as shipped (receiving IQ-inverted): an uplink from one is not heard by
    the other, and a receive ends empty at its timeout."""
    lib, _ = driver_lib
    (r,), _ = run_mp("stock", lib, "tests/micropython/fakes/lora_pair.py", {}, tmp_path)
    assert r["a_to_b"]["data"] is None and r["b_to_a"]["data"] is None
    assert r["a"]["missed"] == 1 and r["b"]["missed"] == 1
    assert r["a"]["errors"] == [] and r["b"]["errors"] == []


# -- a board on lora_air's air and gateway ---------------------------------------------------

def air_env(air: LoraAir, board: str, chip: str | None = None) -> dict:
    return {"AIRSHAKE_AIR": "127.0.0.1:%d" % air.port, "AIRSHAKE_AIR_SPEED": str(air.speed),
            "AIRSHAKE_LORA_CHIP": chip or CHIP[board]}


class Echo(UdpThread):
    """Answers every datagram with b"re:" + it, 0.1 s later: a gateway answers in a receive
    window after the uplink (LoRaWAN's RX1 is 1 s), never within the milliseconds the
    board takes to turn its radio back to receive."""

    def __init__(self) -> None:
        super().__init__()
        self.got: list[bytes] = []

    def handle(self, data: bytes, addr) -> None:
        self.got.append(data)
        time.sleep(0.1)
        self.sock.sendto(b"re:" + data, addr)


@pytest.mark.parametrize("board", ["ttgo_lora32_v1", "heltec_wifi_lora32_v3"])
def test_board_sends_and_receives_through_the_gateway(driver_lib, runtime, tmp_path, board):
    lib, _ = driver_lib
    with Echo() as echo, LoraAir(Channel(868100, 7), ("127.0.0.1", echo.port)) as air:
        air.snr = 9
        cfg = {"board": board, "set": {}, "config": {"radio": "lora"},
               "steps": [["open"], ["recv", 0.05], ["send", "c0ffee"], ["recv", 2.0],
                         ["info"], ["send_len", 255], ["send_len", 256], ["recv", 0.3],
                         ["close"]]}
        results, _ = run_mp(runtime, lib, "tests/micropython/radio_steps.py", cfg, tmp_path,
                            air_env(air, board))
    # the first receive only tunes the gateway to the board (lora_air sends a downlink to
    # the radios that listened before): the echo answers faster than a LoRaWAN RX1 delay
    opened, listened, sent, got, info, fits, too_big, nothing, closed = results
    assert opened["ok"] and opened["mtu"] == 255, results
    assert listened["ok"] and listened["data"] is None
    assert sent["ok"] and got["data"] == (b"re:" + bytes.fromhex("c0ffee")).hex(), results
    assert info["rssi"] == -57 and info["snr"] == 9.0
    assert fits["ok"] and not too_big["ok"]
    assert too_big["msg"] == "lora: frame of 256 bytes exceeds the MTU 255"
    # the echo's answer to 255 bytes is 258: no LoRa packet can carry it
    assert nothing["ok"] and nothing["data"] is None, results
    assert closed["ok"]
    assert air.uplinks[0] == bytes.fromhex("c0ffee") and air.uplinks[1] == bytes(range(255))
    assert echo.got[:2] == [bytes.fromhex("c0ffee"), bytes(range(255))]


@pytest.mark.parametrize("board", ["ttgo_lora32_v1", "heltec_wifi_lora32_v3"])
def test_back_to_back_downlinks_are_both_received(driver_lib, tmp_path, board):
    """The gateway sends two frames one right after the other (m2's fragments do). The
    TTGO's SX1276 has no DIO1 wired: with single receives the driver polls every 50 ms
    and the chip, back in standby after the first frame, misses the second; the adapter
    keeps the chip in continuous receive from its first recv() to close()."""
    lib, _ = driver_lib
    with LoraAir(Channel(868100, 7), None) as air:
        cfg = {"board": board, "set": {}, "config": {"radio": "lora"},
               "steps": [["open"], ["recv", 0.05], ["recv", 3.0], ["recv", 2.0],
                         ["send", "0a"], ["recv", 3.0]]}

        def gateway() -> None:
            time.sleep(0.5)                  # the board is in its second recv by then
            for frame in (b"first " * 30, b"second " * 30):
                air.transmit(frame)          # each after its time on air: back to back
            time.sleep(1.0)
            air.transmit(b"after a send")
        t = threading.Thread(target=gateway, daemon=True)
        t.start()
        results, _ = run_mp("stock", lib, "tests/micropython/radio_steps.py", cfg, tmp_path,
                            air_env(air, board))
        t.join()
    data = [bytes.fromhex(r["data"]) if r.get("data") else None
            for r in results if r["kind"] == "recv"]
    assert data == [None, b"first " * 30, b"second " * 30, b"after a send"], results


@pytest.mark.parametrize("board,chip,lora,message", [
    ("ttgo_lora32_v1", TTGO_CHIP.replace("cs=18", "cs=23"), None,
     "lora: sx1276: Unexpected silicon version 0"),
    ("ttgo_lora32_v1", TTGO_CHIP.replace("miso=19", "miso=12"), None,
     "lora: sx1276: Unexpected silicon version 0"),
    ("heltec_wifi_lora32_v3", HELTEC_CHIP.replace("cs=8", "cs=7"), None,
     "lora: sx1262: Invalid initial status (0, 0)."),
    ("ttgo_lora32_v1", TTGO_CHIP, {"sf": 13}, "lora: sx1276: Invalid lora_cfg sf"),
    ("ttgo_lora32_v1", TTGO_CHIP, {"bw": "99"}, "lora: sx1276: invalid LORA value '99'"),
    ("ttgo_lora32_v1", TTGO_CHIP, {"freq_khz": 2400000},
     "lora: sx1276: Invalid lora_cfg freq_khz"),
    ("heltec_wifi_lora32_v3", HELTEC_CHIP, {"coding_rate": 9},
     "lora: sx1262: Invalid lora_cfg coding_rate"),
    ("heltec_wifi_lora32_v3", HELTEC_CHIP, {"freq_khz": 100000},
     "lora: sx1262: Invalid lora_cfg freq_khz"),
    # the chip's IRQs stay masked without DIO1: a send would never end (it hung before)
    ("heltec_wifi_lora32_v3", HELTEC_CHIP, {"PINS": {"dio1": None}},
     "lora: sx1262: board PINS has no dio1 (the driver needs the chip's DIO1 line)")],
    ids=["sx1276-cs", "sx1276-miso", "sx1262-cs", "sf", "bw", "freq-sx1276", "cr-sx1262",
         "freq-sx1262", "sx1262-no-dio1"])
def test_wiring_and_setting_mistakes_are_one_line(driver_lib, tmp_path, board, chip, lora,
                                                   message):
    lib, _ = driver_lib
    with LoraAir(Channel(868100, 7), None) as air:
        settings = dict(lora or {})
        setting = {"PINS": settings.pop("PINS")} if "PINS" in settings else {}
        if settings:
            setting["LORA"] = settings
        cfg = {"board": board, "set": setting, "config": {"radio": "lora"},
               "steps": [["open"], ["send", "01"]]}
        results, _ = run_mp("stock", lib, "tests/micropython/radio_steps.py", cfg, tmp_path,
                            air_env(air, board, chip))
    r = results[0]
    assert not r["ok"] and r["error"] == "RadioError" and r["msg"] == message, r


def test_sx1276_rx_boost_reaches_the_register(driver_lib, tmp_path):
    """lora-sx127x 0.1 reads rx_boost's value from lna_boost_hf (a KeyError without it):
    the adapter passes both, and the board opens and sends."""
    lib, _ = driver_lib
    with LoraAir(Channel(868100, 7), None) as air:
        cfg = {"board": "ttgo_lora32_v1", "set": {"LORA": {"rx_boost": True}},
               "config": {"radio": "lora"}, "steps": [["open"], ["send", "01"]]}
        results, _ = run_mp("stock", lib, "tests/micropython/radio_steps.py", cfg, tmp_path,
                            air_env(air, "ttgo_lora32_v1"))
    assert [r["ok"] for r in results] == [True, True], results
    deadline = time.monotonic() + 5
    while not air.sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for _key, p in air.sent] == [b"\x01"]


def test_sx1262_board_without_its_tcxo_setting_fails_on_the_first_send(driver_lib, tmp_path):
    """The Heltec's SX1262 runs on a TCXO powered from DIO3: a board file that forgets
    SX126X's dio3_tcxo_millivolts opens (the chip answers on its RC oscillator) but the
    crystal never starts: the first send is a RadioError naming XOSC_START_ERR (0x20)."""
    lib, _ = driver_lib
    with LoraAir(Channel(868100, 7), None) as air:
        cfg = {"board": "heltec_wifi_lora32_v3", "set": {"SX126X": {"dio3_tcxo_millivolts": 0}},
               "config": {"radio": "lora"}, "steps": [["open"], ["send", "01"]]}
        results, _ = run_mp("stock", lib, "tests/micropython/radio_steps.py", cfg, tmp_path,
                            air_env(air, "heltec_wifi_lora32_v3"))
    opened, sent = results
    assert opened["ok"], results
    assert not sent["ok"] and sent["msg"].startswith("lora: send failed: Internal radio "
                                                     "Status") and "0x20" in sent["msg"]
    assert air.sent == []


# -- a whole handshake -----------------------------------------------------------------------

@pytest.mark.parametrize("board", ["ttgo_lora32_v1", "heltec_wifi_lora32_v3"])
def test_handshake_through_the_real_driver(driver_lib, tmp_path, board):
    """Suite 0 with C_B by value (m2 is 230 bytes: one LoRa frame) through the real
    driver on the fake chip, lora_air's gateway and the fragment relay, then a record."""
    lib, _ = driver_lib
    fx = hs_support.fixtures()
    with FixtureResponder(hs_support.now()) as b, \
            FragmentRelay(255, ("127.0.0.1", b.port)) as relay, \
            LoraAir(Channel(868100, 7), ("127.0.0.1", relay.port)) as air:
        cfg = {"board": board, "set": {}, "config": {"radio": "lora"}, "suite": 0,
               "key": fx["suite0"]["device_key"], "anchor": fx["ca_ed25519"],
               "server_name": hs_support.SERVER_NAME, "server_cert": None, "now": fx["now"],
               "timeout": 45, "recv_wait": 1.0}
        results, out = run_mp("stock", lib, "tests/micropython/radio_handshake.py", cfg,
                              tmp_path, air_env(air, board), heap="512k", timeout=90)
    r = results[0]
    assert r["ok"], (r, out)
    assert r["reply"] == "pong" and ("ok", r["sid"]) in b.completed
    assert r["events"][:2] == ["HandshakeComplete", "HandshakeConfirmed"]
    assert r["frames_in"] >= 2 and max(r["sizes_out"]) <= 255
    print("\n%s: %s frames out, %s in, %d ms" % (board, r["frames_out"], r["frames_in"],
                                                  r["wall_ms"]))
