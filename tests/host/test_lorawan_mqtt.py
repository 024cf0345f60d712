"""Server B behind a LoRaWAN network server's MQTT integration (host_server/lorawan/), with
real parts: Debian's mosquitto, `airshake server --lorawan chirpstack|tts` as a process,
the certificate store, and the real firmware (main.py on the MicroPython unix binary)
speaking RAK3172 AT commands to tests/host/modem_emulator/, whose air reaches the network
server stand-in (host_server.lorawan.standin: ChirpStack's UplinkEvent / command/down, or
The Things Stack's up / down/replace, with the payload limit of EU868 DR0, one downlink
per uplink in RX1/RX2, the gateway's duty cycle, loss and duplicate uplinks).
Skipped with one line when mosquitto is not installed."""
from __future__ import annotations

import argparse
import base64
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from b_support import BProcess, make_pki, SERVER_NAME  # noqa: E402
from modem_emulator import ModemEmulator, Timing  # noqa: E402
from testkit.cs_support import ADMIN_HEADERS, CSProcess  # noqa: E402
from testkit.device_server import lines, make_device_root, provision, run_cycles  # noqa: E402

from host_server.errors import UserError  # noqa: E402
from host_server.lorawan import formats  # noqa: E402
from host_server.lorawan.broker import INSTALL, Mosquitto, find_mosquitto  # noqa: E402
from host_server.lorawan.pacing import ClassAPacer  # noqa: E402
from host_server.lorawan.standin import NetworkStandin  # noqa: E402
from host_server.server_b import config as b_config  # noqa: E402

APP = "3f2a0c2e-5b9e-4d41-9a57-0d4bde0c11aa"     # a ChirpStack application ID is a UUID
DEVEUI = "70B3D57ED0000001"
KEYS = {"deveui": DEVEUI, "appeui": "0000000000000001",
        "appkey": "2B7E151628AED2A6ABF7158809CF4F3C"}
FPORT = 10
DR = 5                  # EU868 SF7 uplinks; RX2 stays DR0 (51 bytes), so B keeps --mtu 51
# the duty cycle's clock runs as fast as the emulator's class A timing (RX1 0.15 s for 1 s)
SPEEDUP = 1.0 / Timing().rx1
RESTART_AFTER = 2.0
# between wakes (the device sleeps): 27 modelled seconds, so the gateway's RX2 sub-band
# (10 %) has reopened after a DR0 downlink; a record's reply then finds a window
GAP = 4.0     # seconds into the lossy wakes: the broker restarts

needs_mosquitto = pytest.mark.skipif(
    find_mosquitto() is None, reason="lorawan MQTT tests (need mosquitto: %s)" % INSTALL)


# -- formats and pacing, no broker ----------------------------------------------------------

def test_chirpstack_uplink_event_round_trips_in_both_marshalers():
    for marshaler in ("json", "protobuf"):
        body = formats.chirpstack_make_uplink(APP, DEVEUI.lower(), 7, FPORT, b"\x01\x02", 0,
                                              gateways=2, marshaler=marshaler)
        up = formats.chirpstack_uplink(body, marshaler)
        assert up == formats.Uplink(DEVEUI.lower(), 7, FPORT, b"\x01\x02")
        down = formats.chirpstack_downlink(DEVEUI.lower(), FPORT, b"\xff", marshaler)
        assert formats.chirpstack_parse_downlink(down, marshaler) == (DEVEUI.lower(), FPORT,
                                                                      b"\xff")
    # the documented JSON names (ChirpStack v4 integrations/mqtt), not Python's
    assert b'"fPort": 10' in formats.chirpstack_downlink("0102030405060708", 10, b"x") \
        or b'"fPort":10' in formats.chirpstack_downlink("0102030405060708", 10, b"x")
    assert b'"devEui"' in formats.chirpstack_downlink("0102030405060708", 10, b"x")


def test_tts_uplink_and_downlink_json():
    body = formats.tts_make_uplink("app1", "ttn", "dev-1", DEVEUI, 3, FPORT, b"abc", 0)
    assert formats.tts_uplink(body) == formats.Uplink("dev-1", 3, FPORT, b"abc")
    down = formats.tts_downlink(FPORT, b"xyz")
    assert formats.tts_parse_downlink(down) == [(FPORT, b"xyz")]
    topics = formats.Topics("tts", "app1", "ttn")
    assert topics.uplinks() == "v3/app1@ttn/devices/+/up"
    assert topics.downlink("dev-1") == "v3/app1@ttn/devices/dev-1/down/replace"
    assert topics.device_of("v3/app1@ttn/devices/dev-1/up") == "dev-1"


@pytest.mark.parametrize("body", [b"", b"{", b'{"deviceInfo": {}}', b"\xff\x00garbage"])
def test_unusable_uplink_messages_are_refused_with_a_reason(body):
    with pytest.raises(formats.UplinkError):
        formats.chirpstack_uplink(body)
    with pytest.raises(formats.UplinkError):
        formats.tts_uplink(body)


def test_pacer_one_downlink_per_uplink_duplicates_ignored_fresher_replaces_pending():
    p = ClassAPacer()
    assert p.answer("d", b"early") is None                 # no uplink yet: pending
    assert p.answer("d", b"fresher") is None               # replaces it
    assert p.uplink("d", 1, b"m1")
    assert p.flush("d") == b"fresher"                      # the uplink's one window
    assert p.answer("d", b"next") is None                  # no credit left
    assert not p.uplink("d", 1, b"m1")                     # a second gateway: same frame
    assert p.flush("d") is None                            # ... gives no window
    assert p.uplink("d", 5, b"ack")                        # an FCnt gap is fine
    assert p.answer("d", b"now") == b"now"                 # B's answer takes the credit
    assert p.flush("d") is None
    assert p.uplink("d", 1, b"after rejoin")               # FCnt again, new payload: new
    assert p.flush("d") == b"next"
    assert p.stats.replaced == 1 and p.stats.duplicates == 1 and p.stats.downlinks == 3


def _flags(**kw):
    ns = argparse.Namespace(**{name: None for name in b_config._SCALARS})
    ns.ca_cert, ns.key_dir, ns.key, ns.config = "ca.der", "keys", None, None
    ns.rate_per_source = ns.rate_per_id = ns.rate_per_id_all = None
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


@pytest.mark.parametrize("flags, needle", [
    (dict(lorawan="chirpstack"), "--mqtt mqtt://HOST:1883"),
    (dict(lorawan="chirpstack", mqtt="http://x"), "is not a broker URL"),
    (dict(lorawan="chirpstack", mqtt="mqtt://u:p@x"), "no credentials in the URL"),
    (dict(lorawan="chirpstack", mqtt="mqtt://x"), "needs --application ID"),
    (dict(lorawan="chirpstack", mqtt="mqtt://x", application="a/b"), "MQTT topics forbid"),
    (dict(lorawan="chirpstack", mqtt="mqtt://x", application="a", tenant="ttn"),
     "tenant is The Things Stack's"),
    (dict(lorawan="tts", mqtt="mqtt://x", application="a", marshaler="protobuf"),
     "ChirpStack's only"),
    (dict(lorawan="chirpstack", mqtt="mqtt://x", application="a", workers=2),
     "leave --workers at 1"),
    (dict(lorawan="chirpstack", mqtt="mqtt://x", application="a",
          mqtt_password_file="/nonexistent/pw"), "cannot read the MQTT password file"),
    (dict(mqtt="mqtt://x"), "needs lorawan"),
    (dict(lorawan="chirpstack", mqtt="mqtt://x", application="a", fport=0), "out of range"),
])
def test_lorawan_settings_errors_are_one_line(monkeypatch, flags, needle):
    monkeypatch.setenv("AIRSHAKE_CS_TOKEN", "t" * 32)
    with pytest.raises(UserError) as e:
        b_config.from_sources(_flags(**flags))
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_lorawan_sets_class_a_fragmenting_unless_given(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRSHAKE_CS_TOKEN", "t" * 32)
    monkeypatch.setenv("AIRSHAKE_MQTT_PASSWORD", "secret-from-env")
    cfg = b_config.from_sources(_flags(lorawan="tts", mqtt="mqtts://eu1.cloud.thethings."
                                       "network", application="app1", tenant="ttn"))
    lc = cfg.lorawan_config
    assert (cfg.mtu, cfg.fragment_resend) == (51, 1)
    assert (lc.host, lc.port, lc.tls, lc.password) == ("eu1.cloud.thethings.network", 8883,
                                                       True, "secret-from-env")
    assert "secret" not in repr(lc) and "secret" not in repr(cfg)
    toml = tmp_path / "b.toml"
    (tmp_path / "pw").write_text("from-file\n")
    toml.write_text('[server]\nca_cert = "ca.der"\nkey_dir = "k"\nlorawan = "chirpstack"\n'
                    'mqtt = "mqtt://127.0.0.1:1884"\napplication = "%s"\nmtu = 115\n'
                    'mqtt_password_file = "pw"\nfport = 200\n' % APP)
    ns = _flags(config=str(toml))
    ns.ca_cert = ns.key_dir = None
    cfg = b_config.from_sources(ns)
    assert (cfg.mtu, cfg.fragment_resend, cfg.fport) == (115, 1, 200)
    assert cfg.lorawan_config.password == "from-file" and cfg.lorawan_config.port == 1884


# -- end to end --------------------------------------------------------------------------

BOARD = '''# a unix board with a RAK3172 on a pty (tests/host/test_lorawan_mqtt.py)
NAME = "unix-rak3172"
CHIP = "unix"
RADIO = "lorawan"
PINS = {}
LED = None
SENSOR = None
DEEP_SLEEP = False
LORAWAN = %r
'''


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    if find_mosquitto() is None:
        pytest.skip("lorawan MQTT tests (need mosquitto: %s)" % INSTALL)
    tmp = tmp_path_factory.mktemp("lorawan")
    ca_dir, key_dir = make_pki(tmp)
    (tmp / "cs").mkdir()
    cs = CSProcess(tmp / "cs", ca_dir)
    broker = Mosquitto(tmp / "mqtt").start()
    yield argparse.Namespace(tmp=tmp, ca_dir=ca_dir, key_dir=key_dir, cs=cs, broker=broker)
    broker.stop()
    cs.stop()


def _device(world, root: Path, emu) -> bytes:
    settings = {"uart_path": emu.path, "module": "rak3172", "region": "EU868", "dr": DR,
                "port": FPORT, "cmd_timeout": 1.0, "join_timeout": 2.0, "join_attempts": 3,
                "join_backoff": 0.05, "tx_timeout": 3.0}
    cfg = {"server_name": SERVER_NAME, "suite": 0, "id_len": 8, "interval_s": 60,
           "max_records": 100, "max_age_s": 86400, "early_data": False, "rto_s": 0.6,
           "retries": 30, "reply_timeout_s": 2.5, "radio": "lorawan", "lorawan": dict(KEYS)}
    make_device_root(str(root), cfg, (world.ca_dir / "ca.der").read_bytes())
    (root / "board.py").write_text(BOARD % settings)
    spki = provision(str(root), 0)
    r = httpx.post(world.cs.url + "/enroll", headers=ADMIN_HEADERS, timeout=10,
                   json={"name": "lorawan-" + root.name,
                         "public_key": base64.b64encode(spki).decode()})
    assert r.status_code == 201, r.text
    return bytes.fromhex(r.json()["id"])


def _outbox(root: Path) -> list[bytes]:
    """The readings the device still holds (device/outbox.py: "AOB1" | (len | item)* | check)."""
    path = root / "airshake-data" / "outbox.bin"
    if not path.exists():
        return []
    data = path.read_bytes()[4:-4]
    out, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 2], "big")
        out.append(data[i + 2:i + 2 + n])
        i += 2 + n
    return out


def _sink(db: Path, id_a: bytes) -> list[bytes]:
    with sqlite3.connect(str(db)) as c:
        return [bytes(row[0]) for row in c.execute(
            "SELECT data FROM records WHERE id_a = ? ORDER BY received_at", (id_a.hex(),))]


def _wake(root: Path, cycles: int = 1) -> subprocess.CompletedProcess:
    time.sleep(GAP)
    out = run_cycles(str(root), cycles)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stdout + out.stderr
    return out


def _figures(ns: NetworkStandin, before: dict) -> dict:
    now = ns.counters.snapshot()
    return {k: round(now[k] - before[k], 3) for k in now}


@needs_mosquitto
@pytest.mark.parametrize("kind", ["chirpstack", "tts"])
def test_firmware_over_lorawan_at_through_the_network_server_to_b(world, tmp_path, kind):
    """Handshakes and records from the real firmware over its RAK3172 AT radio, through the
    network server stand-in and mosquitto to `airshake server --lorawan`; with 10 % loss
    each way, 30 % duplicate uplinks (two gateways) and a broker restart mid-run, every
    reading the device saw acknowledged is in B's sink."""
    tenant = "ttn" if kind == "tts" else ""
    app = APP if kind == "chirpstack" else "airshake-test"
    flags = dict(lorawan=kind, mqtt=world.broker.url, application=app, reply="ack")
    if tenant:
        flags["tenant"] = tenant
    b = BProcess(tmp_path, world.ca_dir, world.key_dir, world.cs.url, name="b-" + kind,
                 **flags)
    ns = NetworkStandin(kind, ("127.0.0.1", world.broker.port), app, tenant, fport=FPORT,
                        dr=DR, duty_cycle=True, speedup=SPEEDUP).start()
    try:
        assert ns.wait_connected(), "the stand-in never reached the broker"
        assert _wait(lambda: any(ln.get("event") == "mqtt_connected" for ln in b.log_lines()))
        with ModemEmulator("rak3172", None, app_port=FPORT, network=ns) as emu:
            root = tmp_path / "dev"
            id_a = _device(world, root, emu)
            # 1. a clean handshake (C_B by value) with the first reading in m3
            c0 = ns.counters.snapshot()
            out = _wake(root)
            assert lines(out, "confirmed"), out.stdout
            first = _figures(ns, c0)
            # 2. a record on the saved session; its reply must make RX1 or RX2 of the one
            # uplink (0.18 / 0.33 s here): on a loaded machine it may miss them, and the
            # device sends the reading again at its next wake (the outbox)
            for _ in range(3):
                c1 = ns.counters.snapshot()
                out = _wake(root)
                if lines(out, "reply"):
                    break
            assert lines(out, "reply"), out.stdout
            record = _figures(ns, c1)
            # 3. a later handshake: C_B by reference
            (root / "airshake-data" / "session.bin").unlink()
            c2 = ns.counters.snapshot()
            out = _wake(root)
            assert lines(out, "confirmed"), out.stdout
            later = _figures(ns, c2)
            # 4. loss, duplicates and a broker restart in the middle of 4 wakes
            ns.loss, ns.duplicates = 0.1, 0.3
            ns.rng.seed(4)     # these draws do not hang on how many frames 1-3 took
            connects = ns.connects
            restart = threading.Timer(RESTART_AFTER, world.broker.restart, (0.5,))
            restart.start()                # in the middle of the next wakes
            outputs = []
            for _ in range(4):
                time.sleep(GAP / 2)
                outputs.append(run_cycles(str(root), 1))
            restart.join()
            assert ns.wait_connected(15, connects + 1), "the stand-in did not reconnect"
        wakes = json.loads((root / "airshake-data" / "state.json").read_text())["counter"]
        readings = [b"n=%d" % n for n in range(1, wakes + 1)]
        stored = set(_sink(b.db, id_a))
        held = set(_outbox(root))
        lost = [r for r in readings if r not in stored and r not in held]
        assert not lost, (lost, stored, held, [o.stdout[-2000:] for o in outputs])
        assert b"n=1" in stored and b"n=2" in stored and b"n=3" in stored
        log = b.log_lines()
        assert sum(1 for ln in log if ln.get("event") == "mqtt_down") >= 1
        assert sum(1 for ln in log if ln.get("event") == "mqtt_connected") >= 2
        assert b.proc.poll() is None, "B stopped"
        assert ns.counters.duplicated > 0 and ns.counters.refused_up == 0
        assert ns.counters.lost_up + ns.counters.lost_down > 0
        assert ns.counters.too_long_down == 0
        for name, fig in (("first handshake, C_B by value", first),
                          ("later handshake, C_B by reference", later),
                          ("one record on the session", record)):
            print("\n%s %s: up %d frames %d B (airshake %d), down %d frames %d B, "
                  "modelled airtime up %.1f s down %.1f s, duty-cycle skips %d"
                  % (kind, name, fig["uplinks"], fig["uplink_bytes"], fig["app_uplinks"],
                     fig["downlinks"], fig["downlink_bytes"], fig["airtime_up"],
                     fig["airtime_down"], fig["duty_skipped"]))
        print("%s with loss/duplicates/restart: %d of %d readings stored, %d held by the "
              "device" % (kind, len(stored & set(readings)), wakes, len(held)))
    finally:
        ns.stop()
        assert b.stop() == 0


def _wait(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


# -- credentials and TLS to the broker -------------------------------------------------------

def _pem_chain(tmp: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    files = {}

    def issue(name, key, issuer, issuer_key, ca=False, san=None):
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
             .issuer_name(issuer).public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName(san), critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mqtt test CA")])
    ca = issue("mqtt test CA", ca_key, ca_name, ca_key, ca=True)
    for name, san in (("server", [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                      ("client", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = issue(name, key, ca_name, ca_key, san=san)
        files[name + ".crt"] = tmp / (name + ".crt")
        files[name + ".crt"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[name + ".key"] = tmp / (name + ".key")
        files[name + ".key"].write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    files["ca.crt"] = tmp / "ca.crt"
    files["ca.crt"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return files


def _events(b, name):
    return [ln for ln in b.log_lines() if ln.get("event") == name]


@needs_mosquitto
def test_broker_credentials_wrong_password_keeps_b_up_then_the_right_one_connects(world,
                                                                                 tmp_path):
    with Mosquitto(tmp_path / "mqtt", user="airshake-b", password="right-one") as broker:
        b = BProcess(tmp_path, world.ca_dir, world.key_dir, world.cs.url, name="b-wrong",
                     lorawan="chirpstack", mqtt=broker.url, application=APP,
                     mqtt_user="airshake-b", mqtt_password_file=_write(tmp_path / "bad",
                                                                      "wrong-one"))
        try:
            assert _wait(lambda: _events(b, "mqtt_down"))
            time.sleep(1.5)                            # backoff retries: still one line
            down = _events(b, "mqtt_down")
            assert len(down) == 1 and "authori" in down[0]["error"].lower(), down
            assert b.proc.poll() is None and not _events(b, "mqtt_connected")
            assert "wrong-one" not in b.stderr_path.read_text()
            health = _health(b)
            assert health["mqtt"] == "down" and health["status"] == "degraded"
        finally:
            assert b.stop() == 0
        b = BProcess(tmp_path, world.ca_dir, world.key_dir, world.cs.url, name="b-right",
                     lorawan="chirpstack", mqtt=broker.url, application=APP,
                     mqtt_user="airshake-b", mqtt_password_file=_write(tmp_path / "good",
                                                                      "right-one"))
        try:
            assert _wait(lambda: _events(b, "mqtt_connected"))
            assert "right-one" not in b.stderr_path.read_text()
            assert _health(b)["mqtt"] == "up"
        finally:
            assert b.stop() == 0


@needs_mosquitto
def test_mqtts_with_the_broker_ca_and_a_client_certificate(world, tmp_path):
    pem = _pem_chain(tmp_path)
    tls = {"cafile": str(pem["ca.crt"]), "certfile": str(pem["server.crt"]),
           "keyfile": str(pem["server.key"]), "require_certificate": "true"}
    with Mosquitto(tmp_path / "mqtt", tls=tls) as broker:
        assert broker.url.startswith("mqtts://127.0.0.1:")
        b = BProcess(tmp_path, world.ca_dir, world.key_dir, world.cs.url, name="b-tls",
                     lorawan="tts", mqtt=broker.url, application="app1", tenant="ttn",
                     mqtt_ca=pem["ca.crt"], mqtt_cert=pem["client.crt"],
                     mqtt_key=pem["client.key"])
        try:
            assert _wait(lambda: _events(b, "mqtt_connected"))
            assert _events(b, "mqtt_connected")[0]["subscription"] == "v3/app1@ttn/devices/+/up"
        finally:
            assert b.stop() == 0
        b = BProcess(tmp_path, world.ca_dir, world.key_dir, world.cs.url, name="b-nocert",
                     lorawan="tts", mqtt=broker.url, application="app1", tenant="ttn",
                     mqtt_ca=pem["ca.crt"])
        try:        # no client certificate: refused (TLS 1.3: after the 10 s CONNACK wait)
            assert _wait(lambda: _events(b, "mqtt_down"), 25)
            assert b.proc.poll() is None and not _events(b, "mqtt_connected")
        finally:
            assert b.stop() == 0


def _health(b) -> dict:
    return httpx.get("http://127.0.0.1:%d/health" % b.metrics_port, timeout=5).json()


def _write(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    return path


# -- the bridge inside B, without a broker ------------------------------------------------------

def test_bridge_hands_b_each_new_uplink_once_and_paces_its_answers():
    from host_server.lorawan.bridge import LorawanBridge
    from host_server.lorawan.settings import LorawanConfig

    class Log:
        def __getattr__(self, name):
            return lambda event, **fields: None

    got = []
    cfg = LorawanConfig("chirpstack", "127.0.0.1", 1883, False, APP)
    bridge = LorawanBridge(cfg, lambda data, addr: got.append((data, addr)), Log(), "t")
    eui = DEVEUI.lower()
    topic = "application/%s/device/%s/event/up" % (APP, eui)
    up = formats.chirpstack_make_uplink(APP, eui, 1, FPORT, b"m1", 0, gateways=2)
    bridge.on_message(topic, up)
    bridge.on_message(topic, up)                           # the second gateway's copy
    assert got == [(b"m1", ("lorawan:" + eui, FPORT))] and bridge.pacer.stats.duplicates == 1
    addr = got[0][1]
    assert bridge.owns(addr) and not bridge.owns(("127.0.0.1", 5000))
    bridge.send(b"m2-frag0", addr)                         # the uplink's one window
    bridge.send(b"m2-frag0", addr)                         # B answers a repeat: waits
    assert bridge.outbox == {eui: b"m2-frag0"}
    bridge.outbox.clear()
    poll = formats.chirpstack_make_uplink(APP, eui, 2, FPORT + 1, b"\x00", 0)
    bridge.on_message(topic, poll)                         # a poll: no datagram for B,
    assert len(got) == 1 and bridge.outbox == {}           # and no txack yet: nothing out
    bridge.on_message("application/%s/device/%s/event/txack" % (APP, eui), b"{}")
    assert bridge.outbox == {}                             # the pending copy was the sent one
    bridge.send(b"m2-frag1", addr)                         # the poll's window is still open
    assert bridge.outbox == {eui: b"m2-frag1"}
    bridge.on_message(topic, b"not json")
    assert bridge.dropped == 1 and len(got) == 1


def test_bridge_with_chirpstacks_protobuf_marshaler():
    from host_server.lorawan.bridge import LorawanBridge
    from host_server.lorawan.settings import LorawanConfig

    got = []
    cfg = LorawanConfig("chirpstack", "127.0.0.1", 1883, False, APP, marshaler="protobuf")
    bridge = LorawanBridge(cfg, lambda data, addr: got.append(data), None, "t")
    eui = DEVEUI.lower()
    bridge.on_message("application/%s/device/%s/event/up" % (APP, eui),
                      formats.chirpstack_make_uplink(APP, eui, 9, FPORT, b"m1", 0,
                                                     marshaler="protobuf"))
    bridge.send(b"answer", ("lorawan:" + eui, FPORT))
    assert got == [b"m1"] and bridge.outbox == {eui: b"answer"}
    body = formats.make_downlink("chirpstack", eui, FPORT, b"answer", "protobuf")
    assert formats.chirpstack_parse_downlink(body, "protobuf") == (eui, FPORT, b"answer")


def test_pacer_gated_waits_for_txack_and_presumes_a_downlink_lost_after_three_uplinks():
    p = ClassAPacer(gated=True)
    assert p.uplink("d", 1, b"a") and p.answer("d", b"x") == b"x"
    assert p.uplink("d", 2, b"b") and p.answer("d", b"y") is None   # x not yet sent
    assert p.txack("d") == b"y"                                     # sent: y may follow
    for n in range(3, 6):
        assert p.uplink("d", n, b"c%d" % n)
        assert p.answer("d", b"z%d" % n) is None
    assert p.uplink("d", 6, b"d") and p.stats.presumed_lost == 1
    assert p.flush("d") == b"z5"                                    # the freshest

