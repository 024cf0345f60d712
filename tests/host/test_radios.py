"""Radio drivers on the MicroPython unix binary, without hardware.

- AT modems (firmware/lib/radios/lorawan_at.py: RAK3172, LoRa-E5; cellular_at.py: SIM7000,
  SIM7080) run over a pty against tests/host/modem_emulator/, which speaks their AT
  dialects and relays to a UDP upstream: an echo socket here, or B.
- The raw-LoRa adapter (radios/lora.py) runs against the stand-in micropython-lib `lora`
  package (tools/linkemu/mp/lora, with a stand-in machine.SPI/Pin), this test being the
  air and the gateway (airshake_tools.linkemu.air).
- Every radio carries a whole airshake handshake (suite 0, C_B by value: m2 is 230 bytes)
  to the CPython responder, with the core's FragmentLink sized to the radio's MTU on both
  ends (tests/host/fragment_relay.py on B's side).
Each device side is a MicroPython script (tests/micropython/radio_steps.py,
radio_handshake.py) built on a real board file from boards/ and radios.open_radio."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from airshake.c509_encoder import encode as c509_encode
from testkit import hs_support
from fragment_relay import FragmentRelay
from airshake_tools.linkemu.air import Channel, LoraAir
from modem_emulator import Faults, ModemEmulator, Timing
from testkit.udp_responder import FixtureResponder

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MICROPYTHON = os.path.join(ROOT, ".venv", "bin", "micropython")
APPKEY = "2B7E151628AED2A6ABF7158809CF4F3C"
KEYS = {"deveui": "70B3D57ED0000001", "appeui": "0000000000000001", "appkey": APPKEY}
LORAWAN = ("rak3172", "lora-e5")
CELLULAR = ("sim7000", "sim7080")
TTGO_LORA = {"freq_khz": 868100, "sf": 7, "bw": "125", "syncword": 0x12}


class Echo:
    """A UDP upstream that answers every datagram with b"re:" + it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.got: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "Echo":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            self.got.append(data)
            self.sock.sendto(b"re:" + data, addr)


def run_mp(tmp_path, script: str, cfg: dict, env: dict | None = None,
           timeout: float = 60) -> tuple[list[dict], str]:
    path = tmp_path / ("cfg%d.json" % time.monotonic_ns())
    path.write_text(json.dumps(cfg))
    out = subprocess.run([MICROPYTHON, "-X", "heapsize=512k", "tests/micropython/" + script,
                          str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout, env=dict(os.environ, **(env or {})))
    assert out.returncode == 0, out.stdout + out.stderr
    results = [json.loads(line[7:]) for line in out.stdout.splitlines()
               if line.startswith("RESULT ")]
    return results, out.stdout


def at_config(dialect: str, emu: ModemEmulator, server_port: int = 0, **settings) -> dict:
    """A board file's settings, pointed at the emulator's pty, with test-sized timeouts."""
    if dialect in LORAWAN:
        radio = {"uart_path": emu.path, "module": dialect, "debug": True, "cmd_timeout": 1.0,
                 "join_timeout": 2.0, "join_attempts": 3, "join_backoff": 0.05,
                 "tx_timeout": 3.0}
        radio.update(settings)
        return {"board": "esp32_rak3172", "set": {"LORAWAN": radio},
                "config": {"lorawan": dict(KEYS)}}
    radio = {"uart_path": emu.path, "module": dialect, "debug": True, "cmd_timeout": 1.0,
             "attach_poll": 0.05, "attach_timeout": 5.0, "send_timeout": 2.0,
             "connect_timeout": 2.0}
    radio.update(settings)
    return {"board": "lilygo_t_sim7000g", "set": {"CELLULAR": radio},
            "config": {"server": {"host": "127.0.0.1", "port": server_port}}}


def by_kind(results: list[dict]) -> dict[str, dict]:
    return {r["kind"]: r for r in results}


# -- AT modems: open, send, receive -------------------------------------------------------

@pytest.mark.parametrize("dialect", LORAWAN + CELLULAR)
def test_at_radio_opens_sends_and_receives_the_reply(tmp_path, dialect):
    with Echo() as echo, ModemEmulator(dialect, ("127.0.0.1", echo.port)) as emu:
        cfg = at_config(dialect, emu, echo.port)
        cfg["steps"] = [["open"], ["send", "a1b2c3"], ["recv", 2.0], ["recv", 0.3], ["info"],
                        ["close"], ["close"]]
        results, out = run_mp(tmp_path, "radio_steps.py", cfg)
    r = results
    assert [x["ok"] for x in r] == [True] * 7, r
    assert r[0]["mtu"] == (51 if dialect in LORAWAN else 1200)
    assert r[2]["data"] == (b"re:" + bytes.fromhex("a1b2c3")).hex()
    assert r[3]["data"] is None                      # nothing more came
    assert echo.got == [bytes.fromhex("a1b2c3")]
    if dialect in LORAWAN:
        assert r[4]["rssi"] == -60 and r[4]["snr"] == 8.0
        assert APPKEY not in out and APPKEY.lower() not in out
        assert "APPKEY" in out and "***" in out      # the key command is logged, masked
        assert ("<", "AT+APPKEY=" + APPKEY) in emu.transcript or \
            ("<", 'AT+KEY=APPKEY,"%s"' % APPKEY) in emu.transcript


# -- LoRaWAN: payload limits and class A -----------------------------------------------------

@pytest.mark.parametrize("dialect", LORAWAN)
@pytest.mark.parametrize("region,dr,limit", [("EU868", 0, 51), ("EU868", 3, 115),
                                             ("US915", 0, 11)])
def test_lorawan_mtu_is_the_payload_limit_of_the_data_rate(tmp_path, dialect, region, dr, limit):
    with Echo() as echo, ModemEmulator(dialect, ("127.0.0.1", echo.port)) as emu:
        cfg = at_config(dialect, emu, region=region, dr=dr)
        big = "00" * (limit + 1)
        raw = ["at", "AT+SEND=10:" + big] if dialect == "rak3172" else \
            ["at", 'AT+MSGHEX="%s"' % big, ["+MSGHEX: Done"], ["+MSGHEX: Length error"]]
        cfg["steps"] = [["open"], ["send_len", limit], ["send_len", limit + 1], raw]
        results, _ = run_mp(tmp_path, "radio_steps.py", cfg)
    opened, fits, too_big, modem = results
    assert opened["ok"] and opened["mtu"] == limit
    assert fits["ok"] and echo.got and len(echo.got[0]) == limit
    assert not too_big["ok"] and too_big["error"] == "RadioError"
    assert "%d bytes exceeds the %d-byte payload limit of %s DR%d" % (
        limit + 1, limit, region, dr) in too_big["msg"]
    # past the driver's check, the modem itself refuses (the fragment layer must split)
    assert not modem["ok"]
    assert ("AT_PARAM_ERROR" if dialect == "rak3172" else "Length error %d" % limit) \
        in modem["msg"]
    assert len(echo.got) == 1


@pytest.mark.parametrize("dialect", LORAWAN)
def test_lorawan_downlinks_come_only_after_an_uplink(tmp_path, dialect):
    """Class A: B's queued frames wait at the network server; each uplink (a poll here)
    opens the windows for one. With the LoRa-E5's FPending, recv() polls by itself."""
    with ModemEmulator(dialect, ("127.0.0.1", 9)) as emu:
        for d in (b"first", b"x" * 60, b"second"):   # 60 bytes: too long for DR0
            emu.inject(d)
        cfg = at_config(dialect, emu)
        cfg["steps"] = [["open"], ["recv", 0.4], ["poll"], ["recv", 0.1], ["info"],
                        ["recv", 0.1], ["poll"], ["recv", 0.1]]
        results, _ = run_mp(tmp_path, "radio_steps.py", cfg)
    opened, before, poll1, first, info, second_or_none, poll2, last = results
    assert opened["ok"] and before["ok"] and before["data"] is None
    assert first["data"] == b"first".hex()
    assert emu.dropped == [b"x" * 60]
    assert emu.uplinks == []                         # polls are never relayed to B
    if dialect == "lora-e5":
        assert info["pending"] is True               # +MSGHEX: FPENDING
        assert second_or_none["data"] == b"second".hex()     # recv() polled by itself
        assert emu.polls == 3 and last["data"] is None
    else:
        assert second_or_none["data"] is None        # RUI3 does not report FPending
        assert last["data"] == b"second".hex()
        assert emu.polls == 2
        assert ("<", "AT+SEND=11:00") in emu.transcript   # poll_port = port + 1


def test_rak3172_older_rui3_events_are_understood(tmp_path):
    """RUI3 before 4.x: the downlink comes as three +EVT lines and no +EVT:TX_DONE; the
    driver then waits tx_timeout and still hands out the frame."""
    with Echo() as echo, ModemEmulator("rak3172", ("127.0.0.1", echo.port), rui3=3) as emu:
        cfg = at_config("rak3172", emu, tx_timeout=0.6)
        cfg["steps"] = [["open"], ["send", "0a0b"], ["recv", 0.5], ["info"]]
        results, out = run_mp(tmp_path, "radio_steps.py", cfg)
    opened, sent, got, info = results
    # the driver waited tx_timeout (0.6 s) for the missing TX_DONE; the upper bound only
    # catches a hang (a timing bound would belong to make soak)
    assert opened["ok"] and sent["ok"] and 550 <= sent["ms"] < 10000
    assert got["data"] == b"re:\x0a\x0b".hex()
    assert info["rssi"] == -60 and info["snr"] == 8.0
    assert "no +EVT:TX_DONE within 1 s of AT+SEND" in out


@pytest.mark.parametrize("dialect", LORAWAN)
def test_lorawan_join_retries_with_backoff(tmp_path, dialect):
    with ModemEmulator(dialect, ("127.0.0.1", 9), faults=Faults(join_failures=2)) as emu:
        cfg = at_config(dialect, emu, join_attempts=3, join_backoff=0.1)
        cfg["steps"] = [["open"]]
        results, out = run_mp(tmp_path, "radio_steps.py", cfg)
    assert results[0]["ok"], results
    assert emu.handler.joins == 3
    assert "join retry 2 in 0.1 s" in out and "join retry 3 in 0.2 s" in out


@pytest.mark.parametrize("dialect,last", [("rak3172", "+EVT:JOIN_FAILED_RX_TIMEOUT"),
                                          ("lora-e5", "+JOIN: Join failed")])
def test_lorawan_join_with_a_key_the_network_does_not_know_fails(tmp_path, dialect, last):
    faults = Faults(appkey="00" * 16)
    with ModemEmulator(dialect, ("127.0.0.1", 9), faults=faults) as emu:
        cfg = at_config(dialect, emu, join_attempts=2)
        cfg["steps"] = [["open"], ["send", "01"]]
        results, out = run_mp(tmp_path, "radio_steps.py", cfg)
    opened, send = results
    assert not opened["ok"]
    assert opened["msg"] == "%s: OTAA join failed after 2 attempts (last: %s)" % (dialect, last)
    assert not send["ok"] and send["msg"] == "lorawan: send before open"
    assert APPKEY not in out


@pytest.mark.parametrize("keys,message", [
    ({"deveui": KEYS["deveui"], "appeui": KEYS["appeui"]},
     "lorawan: config.json lorawan.appkey is missing"),
    (dict(KEYS, appkey=APPKEY[:-2]), "lorawan: config.json lorawan.appkey must be 32 hex digits"),
    (dict(KEYS, deveui="70B3D57ED000000G"),
     "lorawan: config.json lorawan.deveui must be 16 hex digits")])
def test_lorawan_keys_are_checked_before_the_modem_is_touched(tmp_path, keys, message):
    cfg = {"board": "esp32_rak3172", "set": {"LORAWAN": {"uart_path": "/nonexistent"}},
           "config": {"lorawan": keys}, "steps": [["open"]]}
    results, out = run_mp(tmp_path, "radio_steps.py", cfg)
    assert not results[0]["ok"] and results[0]["msg"] == message
    assert APPKEY[:-2] not in out


# -- errors and timeouts -------------------------------------------------------------------

ERROR_CASES = [
    ("rak3172", Faults(errors={"AT+DR=": "AT_PARAM_ERROR"}), {}, "open",
     "rak3172: AT+DR=0 failed: AT_PARAM_ERROR"),
    ("rak3172", Faults(mute=("AT+JOIN",)), {"join_attempts": 2}, "open",
     "rak3172: OTAA join failed after 2 attempts (last: rak3172: AT+JOIN=1:0:8:1 got no "
     "answer within 1.0 s)"),
    ("rak3172", Faults(errors={"AT+APPKEY": "AT_PARAM_ERROR"}), {}, "open",
     "rak3172: AT+APPKEY=*** failed: AT_PARAM_ERROR"),
    ("rak3172", Faults(mute=("AT",)), {}, "open",
     "rak3172: no answer to AT (wiring, baud 115200?)"),
    ("lora-e5", Faults(errors={"AT+MODE": "+MODE: ERROR(-12)"}), {}, "open",
     "lora-e5: AT+MODE=LWOTAA failed: +MODE: ERROR(-12)"),
    ("lora-e5", Faults(errors={"AT+KEY": "+KEY: ERROR(-1)"}), {}, "open",
     "lora-e5: AT+KEY=APPKEY,*** failed: +KEY: ERROR(-1)"),
    ("lora-e5", Faults(mute=("AT+MSGHEX",)), {"tx_timeout": 0.5}, "send",
     'lora-e5: AT+MSGHEX="0102" got no answer within 0.5 s'),
    ("sim7000", Faults(sim_ready=False), {}, "open",
     "sim7000: AT+CPIN? failed: +CME ERROR: SIM not inserted"),
    ("sim7000", Faults(errors={"AT+CIPSTART": "CONNECT FAIL"}), {}, "open",
     'sim7000: AT+CIPSTART="UDP","127.0.0.1","9" failed: CONNECT FAIL'),
    ("sim7000", Faults(mute=("AT+CIPSEND",)), {}, "send",
     "sim7000: AT+CIPSEND=2 got no '>' prompt"),
    ("sim7080", Faults(errors={"AT+CNACT=0,1": "ERROR"}), {}, "open",
     "sim7080: AT+CNACT=0,1 failed: ERROR"),
    ("sim7080", Faults(), {"attach_timeout": 0.2}, "open",
     "sim7080: not attached to the packet domain after 0 s"),
]


@pytest.mark.parametrize("dialect,faults,settings,step,message", ERROR_CASES,
                         ids=["%s-%d" % (c[0], i) for i, c in enumerate(ERROR_CASES)])
def test_modem_errors_and_timeouts_are_radio_errors_naming_the_command(
        tmp_path, dialect, faults, settings, step, message):
    timing = Timing(attach_polls=1000) if "attach_timeout" in settings else None
    with ModemEmulator(dialect, ("127.0.0.1", 9), faults=faults, timing=timing) as emu:
        cfg = at_config(dialect, emu, 9, **settings)
        cfg["steps"] = [["open"], ["send", "0102"]]
        results, out = run_mp(tmp_path, "radio_steps.py", cfg)
    r = by_kind(results)[step]
    assert not r["ok"] and r["error"] == "RadioError"
    assert r["msg"] == message
    assert APPKEY not in out and APPKEY.lower() not in out


@pytest.mark.parametrize("dialect", CELLULAR)
def test_cellular_keeps_datagram_boundaries_and_binary_bytes(tmp_path, dialect):
    """1000 bytes take two hex reads on the SIM7000 (730 max); the SIM7080 reads raw bytes
    by length, CR LF inside included; two queued datagrams stay two frames."""
    big = bytes(range(256)) * 3 + b"\r\nOK\r\n" + bytes(226)
    with ModemEmulator(dialect, None) as emu:
        cfg = at_config(dialect, emu, 9)
        cfg["steps"] = [["open"], ["sleep", 0.3], ["recv", 1.0], ["recv", 1.0], ["recv", 0.2]]

        def inject() -> None:
            time.sleep(0.1)
            while emu.handler.connected is False:
                time.sleep(0.02)
            emu.inject(big)
            emu.inject(b"\r\n+CIPRXGET: 1\r\n")
        t = threading.Thread(target=inject, daemon=True)
        t.start()
        results, _ = run_mp(tmp_path, "radio_steps.py", cfg)
        t.join()
    assert results[0]["ok"]
    assert results[2]["data"] == big.hex() and len(big) == 1000
    assert results[3]["data"] == b"\r\n+CIPRXGET: 1\r\n".hex()
    assert results[4]["data"] is None


def test_cellular_frame_over_mtu_is_refused(tmp_path):
    with Echo() as echo, ModemEmulator("sim7080", None) as emu:
        cfg = at_config("sim7080", emu, echo.port)
        cfg["steps"] = [["open"], ["send_len", 1200], ["send_len", 1201]]
        results, _ = run_mp(tmp_path, "radio_steps.py", cfg)
    assert results[1]["ok"] and len(echo.got[0]) == 1200
    assert results[2]["msg"] == "cellular: frame of 1201 bytes exceeds the MTU 1200"


# -- raw LoRa through the stand-in micropython-lib driver -----------------------------------

def lora_config(board: str, lora: dict | None = None, **extra) -> dict:
    cfg: dict[str, Any] = {"board": board, "fakes": True, "set": {}, "config": {"radio": "lora"}}
    if lora:
        cfg["set"]["LORA"] = lora
    cfg["set"].update(extra)
    return cfg


def air_env(air: LoraAir) -> dict:
    return {"AIRSHAKE_AIR": "127.0.0.1:%d" % air.port, "AIRSHAKE_AIR_SPEED": str(air.speed)}


@pytest.mark.parametrize("board,cls,pins", [
    ("ttgo_lora32_v1", "AsyncSX1276", [5, 14, 18, 19, 26, 27]),
    ("heltec_wifi_lora32_v3", "AsyncSX1262", [8, 9, 10, 11, 12, 13, 14])])
def test_lora_adapter_builds_the_driver_from_the_board_file(tmp_path, board, cls, pins):
    with Echo() as echo, LoraAir(Channel(868100, 7), ("127.0.0.1", echo.port)) as air:
        cfg = lora_config(board)
        cfg["steps"] = [["open"], ["driver"], ["send", "c0ffee"], ["recv", 2.0], ["info"],
                        ["send_len", 255], ["send_len", 256]]
        results, _ = run_mp(tmp_path, "radio_steps.py", cfg, air_env(air))
    opened, driver, sent, got, info, fits, too_big = results
    assert opened["ok"] and opened["mtu"] == 255, results
    assert driver["class"] == cls
    assert driver["pins"] == pins and driver["spi"] == [[1, 2000000]]
    # invert_iq_rx: downlinks come IQ-inverted, as gateways send them (docs/LORA_GATEWAY.md)
    expected = {"freq_khz": 868100, "sf": 7, "bw": "125", "coding_rate": 5,
                "output_power": 14, "syncword": 0x12, "preamble_len": 8,
                "invert_iq_rx": True}
    if board == "ttgo_lora32_v1":
        expected["tx_ant"] = "PA_BOOST"
        expected["crc_en"] = True     # lora-sx127x never sets it; the adapter does
    else:
        assert driver["extras"] == [1800, True]      # board.SX126X: TCXO on DIO3, RF switch
    assert driver["cfg"] == expected
    assert sent["ok"] and got["data"] == (b"re:" + bytes.fromhex("c0ffee")).hex()
    assert info["rssi"] == -57 and info["snr"] == 36
    assert fits["ok"] and not too_big["ok"]
    assert too_big["msg"] == "lora: frame of 256 bytes exceeds the MTU 255"
    assert air.uplinks[0] == bytes.fromhex("c0ffee") and len(air.uplinks[1]) == 255


def test_lora_frames_wait_for_the_duty_cycle_budget_across_wakes(tmp_path):
    """ETSI's hour at 1/10000 (360 ms an hour) with no waiting allowed: a 255-byte SF7
    frame can never go, 3-byte frames go until the hour's airtime is spent, then each is
    refused with when the sub-band frees; the budget's state, as device.app keeps it across
    deep sleep, makes the next wake's first frame wait too (refused here)."""
    from airshake_tools.linkemu import lora
    frame_ms = -(-int(lora.time_on_air(3, 7) * 1e6) // 1000)     # ms, rounded up
    fits = 360 // frame_ms
    with Echo() as echo, LoraAir(Channel(868100, 7), ("127.0.0.1", echo.port)) as air:
        cfg = lora_config("ttgo_lora32_v1")
        cfg["config"].update(duty_cycle={"policy": "etsi-hour", "dcycle": 10000},
                             duty_wait_max_s=0)
        cfg["steps"] = [["open"], ["send_len", 255]] + [["send", "c0ffee"]] * (fits + 2) \
            + [["airtime"]]
        results, _ = run_mp(tmp_path, "radio_steps.py", cfg, air_env(air))
        too_long, sends, state = results[1], results[2:-1], results[-1]["state"]
        assert not too_long["ok"] and "exceeds the hourly budget of 360 ms" in too_long["msg"]
        assert [r["ok"] for r in sends] == [True] * fits + [False, False]
        assert "duty cycle: the sub-band is free again in" in sends[-1]["msg"]
        assert state[0] == "etsi-hour" and len(state[1]) == fits
        # the next wake, with the state kept: nothing may go yet
        cfg["airtime"] = state
        cfg["steps"] = [["open"], ["send", "c0ffee"]]
        results, _ = run_mp(tmp_path, "radio_steps.py", cfg, air_env(air))
        assert not results[1]["ok"] and "free again" in results[1]["msg"]
        # without it (duty_cycle off: a band without a limit) it goes
        cfg.pop("airtime")
        cfg["config"]["duty_cycle"] = None
        results, _ = run_mp(tmp_path, "radio_steps.py", cfg, air_env(air))
        assert results[1]["ok"]
    assert len(air.uplinks) == fits + 1


@pytest.mark.parametrize("lora,message", [
    ({"sf": 13}, "lora: sx1276: Invalid lora_cfg sf"),
    ({"coding_rate": 9}, "lora: sx1276: Invalid lora_cfg coding_rate"),
    ({"bw": "99"}, "lora: sx1276: invalid LORA value '99'"),
    ({"freq_khz": 2400000}, "lora: sx1276: Invalid lora_cfg freq_khz"),
    ({"spreading": 7}, "lora: unknown LORA setting 'spreading'")])
def test_lora_adapter_reports_bad_board_settings(tmp_path, lora, message):
    with LoraAir(Channel(868100, 7), None) as air:
        cfg = lora_config("ttgo_lora32_v1", lora)
        cfg["steps"] = [["open"]]
        results, _ = run_mp(tmp_path, "radio_steps.py", cfg, air_env(air))
    r = results[0]
    assert not r["ok"] and r["error"] == "RadioError" and r["msg"] == message


def test_lora_on_another_channel_is_not_heard(tmp_path):
    """The adapter really tunes the driver: a board on 868.3 MHz is lost to an 868.1
    gateway, and hears nothing from it."""
    with LoraAir(Channel(868100, 7), None) as air:
        cfg = lora_config("ttgo_lora32_v1", {"freq_khz": 868300})
        cfg["steps"] = [["open"], ["send", "0102"], ["sleep", 0.2], ["recv", 0.5]]

        def gateway() -> None:
            time.sleep(0.4)
            air.transmit(b"for 868.1 only")
        t = threading.Thread(target=gateway, daemon=True)
        t.start()
        results, _ = run_mp(tmp_path, "radio_steps.py", cfg, air_env(air))
        t.join()
    assert all(r["ok"] for r in results)
    assert air.uplinks == [] and air.lost[0][1] == b"\x01\x02"
    assert results[3]["data"] is None


def test_lora_adapter_without_the_driver_says_how_to_install_it(tmp_path):
    cfg = lora_config("ttgo_lora32_v1")
    cfg["fakes"] = False
    cfg["steps"] = [["open"]]
    results, _ = run_mp(tmp_path, "radio_steps.py", cfg)
    assert not results[0]["ok"]
    assert "mpremote mip install lora-async lora-sx127x" in results[0]["msg"]


# -- a whole handshake through each radio ----------------------------------------------------

def handshake_config(tmp_path, radio_cfg: dict, **extra) -> dict:
    fx = hs_support.fixtures()
    cfg = dict(radio_cfg)
    cfg.update({"suite": 0, "key": fx["suite0"]["device_key"], "anchor": fx["ca_ed25519"],
                "server_name": hs_support.SERVER_NAME, "server_cert": None, "now": fx["now"],
                "timeout": 45})
    cfg.update(extra)
    return cfg


@pytest.mark.parametrize("radio", LORAWAN + CELLULAR + ("lora-sx1276", "lora-sx1262"))
def test_handshake_through_the_radio(tmp_path, radio):
    mtu = 51 if radio in LORAWAN else 1200 if radio in CELLULAR else 255
    with FixtureResponder(hs_support.now()) as b, \
            FragmentRelay(mtu, ("127.0.0.1", b.port)) as relay:
        if radio.startswith("lora-sx"):
            board = "ttgo_lora32_v1" if radio == "lora-sx1276" else "heltec_wifi_lora32_v3"
            with LoraAir(Channel(868100, 7), ("127.0.0.1", relay.port)) as air:
                cfg = handshake_config(tmp_path, lora_config(board), recv_wait=1.0)
                results, out = run_mp(tmp_path, "radio_handshake.py", cfg, air_env(air),
                                      timeout=90)
        else:
            upstream = ("127.0.0.1", relay.port)
            with ModemEmulator(radio, upstream if radio in LORAWAN else None) as emu:
                radio_cfg = at_config(radio, emu, relay.port, debug=False)
                cfg = handshake_config(tmp_path, radio_cfg,
                                       recv_wait=0.2 if radio in LORAWAN else 1.0)
                results, out = run_mp(tmp_path, "radio_handshake.py", cfg, timeout=90)
    r = results[0]
    assert r["ok"], (r, out)
    assert r["reply"] == "pong" and ("ok", r["sid"]) in b.completed
    assert r["events"][:2] == ["HandshakeComplete", "HandshakeConfirmed"]
    assert max(r["sizes_out"]) <= mtu and max(len(f) for f in relay.frames_out) <= mtu
    m2 = [m for m in relay.messages_out if m[0] >> 5 == 1]
    m2_len = 43 + len(c509_encode(hs_support.cert(0, "server_cert")))   # by value: 230 B
    assert m2 and len(m2[0]) == m2_len
    if radio in LORAWAN:
        frags = -(-m2_len // (mtu - 4))              # m2 in 5 fragments of <= 51
        assert len(relay.frames_out) >= frags and r["frames_in"] >= frags
        assert emu.polls >= frags - 1                # one uplink per downlink (the LoRa-E5
        assert emu.dropped == []                     # driver polls by itself on FPending)
    elif radio.startswith("lora-sx"):
        assert r["frames_in"] >= 2                   # m2 in one frame of <= 255, a record
    print("\n%s: %s frames out, %s in, %s polls, %d ms" % (
        radio, r["frames_out"], r["frames_in"], r["polls"], r["wall_ms"]))


# -- the emulator on its own ----------------------------------------------------------------

def test_emulator_runs_standalone_and_prints_its_pty(tmp_path):
    p = subprocess.Popen([sys.executable, "-m", "modem_emulator", "--dialect",
                          "sim7080", "--upstream", "127.0.0.1:9"], cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH="tests/host"),
                         stdout=subprocess.PIPE, text=True)
    try:
        path = p.stdout.readline().strip()
        assert path.startswith("/dev/")
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, b"ATE0\r\nAT+CPIN?\r\n")
            got = b""
            deadline = time.time() + 5
            while b"+CPIN: READY" not in got and time.time() < deadline:
                got += os.read(fd, 256)
            assert b"+CPIN: READY" in got
        finally:
            os.close(fd)
    finally:
        p.terminate()
        p.wait(timeout=5)
