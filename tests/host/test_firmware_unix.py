"""The full device loop, no hardware: the firmware (main.py, lib/device, lib/radios, the
core) runs on the real MicroPython unix binary in a device root directory laid out as on
an ESP32, against a server B over UDP (tests/host/device_server.py; the real server B
can take its place). Each `micropython main.py` process is a wake-up with RAM lost;
--cycles N runs N wakes in one process, re-reading every file from disk."""
import datetime
import json
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testkit.device_server import (ROOT, SERVER_NAME, START, Device,  # noqa: E402
                                   TestServerB, compile_lib, config, forge_error, lines,
                                   make_device_root, mp, run_cycles)

from airshake.c509_encoder import encode as c509_encode  # noqa: E402
from airshake.crypto import load_backend  # noqa: E402
from airshake.session import Session  # noqa: E402
from host_server.device.layout import DATA_DIR  # noqa: E402


def m2_by_value(c_b):
    """m2 with C_B by value (as C509, PROTOCOL.md §3.2) and B's time: 41 + 2 + n + 4."""
    return len(c509_encode(c_b)) + 2 + 41 + 4


YEAR = 365 * 86400


def saved_session(dev):
    """session.bin: "ASE1" | binding (8) | Session.export() | check (4)."""
    data = dev.read("session.bin")
    return Session.from_bytes(load_backend("pyca"), data[12:-4])


@pytest.fixture
def server():
    with TestServerB() as b:
        yield b


def test_full_device_loop(tmp_path, server):
    """Handshake (C_B by value) with the reading in m3 and B's reply; one record per wake
    on the saved session; after max_records a new handshake, C_B by reference (m2 41 B)."""
    dev = Device(tmp_path / "dev", server)
    t0 = time.time()
    out = dev.run(cycles=5)
    elapsed = time.time() - t0
    # wake 1: full handshake, C_B by value, the reading rides in m3, B replies
    assert server.sizes("m1")[0] == 46
    assert server.sizes("m2")[0] == m2_by_value(server.c_b)
    assert ("m3", b"n=1") in server.received
    assert lines(out, "cached") and os.path.exists(dev.path("server.der"))
    assert dev.read("server.der") == server.c_b
    # wakes 2..4: one record each, no m1
    assert [d for how, d in server.received if how == "record"] == [b"n=2", b"n=3", b"n=4"]
    assert server.count("up", "m1") == 2                # wake 1 and wake 5 only
    assert len(lines(out, "record")) == 3
    assert len([ln for ln in lines(out, "reply")]) == 5  # every wake got B's reply
    # wake 5: max_records reached -> handshake again, C_B by reference
    assert any(ln.startswith("expired") for ln in lines(out, "session"))
    assert server.sizes("m2")[1] == 41
    assert ("m3", b"n=5") in server.received
    assert len(server.sessions) == 2
    assert dev.state()["wakes"] == 5 and dev.state()["counter"] == 5
    assert len(lines(out, "sleep")) == 4               # between the 5 wakes
    assert not server.errors, server.errors
    dev.assert_no_secret_printed()
    print("\n5 wakes (2 handshakes, 3 records) in %.2f s" % elapsed)
    for ln in lines(out, "confirmed"):
        print("  " + ln)


def test_each_wake_in_its_own_process(tmp_path, server):
    """RAM really lost between wakes: the session survives in session.bin only."""
    dev = Device(tmp_path / "dev", server)
    dev.run()
    dev.run()
    dev.run()
    assert [how for how, _ in server.received] == ["m3", "record", "record"]
    session = saved_session(dev)
    assert session.send_seq == 2 and session.recv_top == 2
    dev.assert_no_secret_printed()


def test_data_directory_of_earlier_firmware_is_renamed_and_kept(tmp_path, server):
    """A device updated from firmware that kept its files in `airshake/` (a directory
    that shadowed the core package) keeps its key, settings and session: the next wake
    renames the directory and continues the session with one record."""
    dev = Device(tmp_path / "dev", server)
    dev.run()
    key = dev.read("key.bin")
    os.rename(os.path.join(dev.root, DATA_DIR), os.path.join(dev.root, "airshake"))
    out = dev.run()
    assert not os.path.exists(os.path.join(dev.root, "airshake"))
    assert dev.read("key.bin") == key
    assert lines(out, "record") and server.count("up", "m1") == 1
    assert [how for how, _ in server.received] == ["m3", "record"]
    # a directory that is not the old data directory is left alone
    os.makedirs(os.path.join(dev.root, "airshake"))
    dev.run()
    assert os.path.isdir(os.path.join(dev.root, "airshake"))
    assert [how for how, _ in server.received] == ["m3", "record", "record"]


def test_data_directory_name_is_the_same_on_device_and_host():
    with open(os.path.join(ROOT, "firmware", "lib", "device", "files.py")) as f:
        assert 'DATA = "%s"' % DATA_DIR in f.read()
    assert not DATA_DIR.isidentifier()      # so it can never be imported as a package


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "garbage", "other_key"])
def test_corrupt_session_means_fresh_handshake(tmp_path, server, damage):
    dev = Device(tmp_path / "dev", server)
    dev.run()
    data = bytearray(dev.read("session.bin"))
    if damage == "flip":
        data[20] ^= 0x40
    elif damage == "truncate":
        data = data[:50]
    elif damage == "empty":
        data = b""
    elif damage == "garbage":
        data = os.urandom(len(data))
    elif damage == "other_key":   # a session made with another key (device re-provisioned)
        data[4] ^= 1
    with open(dev.path("session.bin"), "wb") as f:
        f.write(bytes(data))
    out = dev.run()
    assert lines(out, "session") == ["none"]
    assert server.count("up", "m1") == 2
    assert ("m3", b"n=2") in server.received
    assert lines(out, "confirmed")
    assert saved_session(dev).send_seq == 0


def test_missing_session_means_fresh_handshake(tmp_path, server):
    dev = Device(tmp_path / "dev", server)
    dev.run()
    os.remove(dev.path("session.bin"))
    out = dev.run()
    assert lines(out, "session") == ["none"] and lines(out, "confirmed")
    assert server.sizes("m2")[1] == 41                   # C_B still cached: by reference
    dev.run()
    assert [how for how, _ in server.received] == ["m3", "m3", "record"]


def test_session_expires_by_age(tmp_path, server):
    dev = Device(tmp_path / "dev", server, max_records=100, max_age_s=3600)
    dev.run()
    # two hours later (the RTC moved on: emulate it through the stored clock offset)
    dev.write_state(clock_offset=dev.state().get("clock_offset", 0) + 7200)
    out = dev.run()
    assert any(ln.startswith("expired") for ln in lines(out, "session"))
    # B's m2 corrects the device's clock (+2 h is outside B's window: STALE_TIME first)
    assert server.count("up", "m1") >= 2 and lines(out, "confirmed")


def test_clock_a_year_behind_recovers_through_stale_time(tmp_path, server):
    dev = Device(tmp_path / "dev", server)
    dev.write_state(clock_offset=-YEAR, clock_synced=True)
    out = dev.run()
    assert any("code=1" in ln for ln in lines(out, "rejected"))     # STALE_TIME
    assert server.count("down", "error") == 1
    assert lines(out, "clock") and lines(out, "confirmed")
    assert abs(dev.state()["clock_offset"]) < 5 and dev.state()["clock_synced"]
    session = saved_session(dev)
    assert abs(session.created - time.time()) < 10      # the session lives in real time
    out = dev.run()                                      # next wake: a record, no handshake
    assert lines(out, "record") and lines(out, "reply")
    assert server.count("up", "m1") == 2 and server.received[-1] == ("record", b"n=2")


def test_device_without_time_asks_for_it(tmp_path, server):
    """First boot: no state at all (an ESP32 RTC at its epoch): WANT_TIME, m2 carries B's
    time under MAC_2, and the device trusts its clock from then on."""
    dev = Device(tmp_path / "dev", server, max_records=1)
    out = dev.run()
    assert "clock=unsure" in lines(out, "handshake")[0]
    assert server.sizes("m2")[0] == m2_by_value(server.c_b)
    dev.run()                  # the session's one record
    out = dev.run()            # session used up: handshake again, clock now trusted
    assert "clock=ok" in lines(out, "handshake")[0]
    assert server.sizes("m2")[1] == 41


def test_early_data_with_cached_server_certificate(tmp_path):
    with TestServerB(accept_early=True) as server:
        dev = Device(tmp_path / "dev", server, early_data=True, max_records=1)
        dev.run(cycles=3)
    # wake 1 had no C_B: normal handshake; wake 2: the session's one record; wake 3 sends
    # the reading as 0-RTT data in m1 (B runs with accept_early on: it is off by default)
    # wake 1: long m1 (clock not yet confirmed, no C_B); wake 3: the short one, 0-RTT
    assert server.sizes("m1") == [46, 43 + len(b"n=3") + 8]
    assert [how for how, _ in server.received] == ["m3", "record", "early"]
    assert server.sizes("m3")[1] == 9                    # nothing left for m3


def test_unanswered_records_then_handshake(tmp_path, server):
    dev = Device(tmp_path / "dev", server, max_records=100, reply_timeout_s=0.3,
                 max_missed=2)
    dev.run()
    server.reply = False
    out = dev.run()
    assert lines(out, "noreply") and not lines(out, "handshake")
    server.reply = True
    server.sessions.clear()               # B lost its sessions (restart)
    out = dev.run()
    # second unanswered record in a row: the session is dropped, handshake in this wake
    assert lines(out, "noreply") and lines(out, "handshake") and lines(out, "confirmed")
    assert dev.state()["misses"] == 0


def test_fragmented_link_with_lost_fragment(tmp_path):
    """A 51-byte link (LoRaWAN DR0-like): m2 by value travels as fragments; one is lost
    once, the device answers with a FRAGMENT_ACK and B repeats only that one."""
    lost = []

    def drop(direction, frame):
        if direction == "down" and frame[0] >> 5 == 5 and frame[2] == 2 and not lost:
            lost.append(frame)
            return True
        return False

    with TestServerB(mtu=51, drop=drop) as b:
        dev = Device(tmp_path / "dev", b, mtu=51, rto_s=1.0)
        out = dev.run()
        assert lost and lines(out, "acks") and lines(out, "confirmed")
        assert b.count("up", "ack") >= 1
        frags = b.count("down", "fragment")
        assert frags == -(-m2_by_value(b.c_b) // 47) + 1     # all once, plus the lost one
        assert b.count("up", "m1") == 1                      # no whole-message resend


def test_server_key_rotation_drops_the_cached_certificate(tmp_path, server):
    """B's new key and C_B: m2 by reference cannot verify against the cached C_B; the
    device drops it after that failed handshake and gets the new C_B by value next time."""
    dev = Device(tmp_path / "dev", server, max_records=0, rto_s=0.2, retries=1)
    dev.run()
    old = dev.read("server.der")
    server.rotate_key()
    out = dev.run()
    assert lines(out, "drop") and "dropped" in lines(out, "cached")[0]
    assert not os.path.exists(dev.path("server.der"))
    out = dev.run()
    assert lines(out, "confirmed") and dev.read("server.der") == server.c_b != old


# -- B's identity: the pin, the role, the cached C_B (docs/PROTOCOL.md §2.3) ---------------

def test_device_without_server_pin_stops_before_any_handshake(tmp_path, server):
    dev = Device(tmp_path / "dev", server)
    cfg = json.loads(dev.read("config.json"))
    del cfg["server_name"]
    with open(dev.path("config.json"), "w") as f:
        json.dump(cfg, f)
    out = dev.run(cycles=3)
    assert lines(out, "stop") == [
        "no server pin: run airshake device provision --server-name NAME"]
    assert server.wire == [] and not lines(out, "sleep")
    assert not os.path.exists(dev.path("session.bin"))


def refused_by_the_device(dev, server, out, received_before=0):
    """The wake's m2 was refused: no completion, nothing of the device reached B after it."""
    assert any(ln.startswith("m2 CertificateError") for ln in lines(out, "drop")), out.stdout
    assert not lines(out, "complete") and not lines(out, "confirmed")
    assert lines(out, "failed")
    assert len(server.received) == received_before      # no m3: the reading stayed home


@pytest.mark.parametrize("role, name", [("device", SERVER_NAME),
                                        ("server", "rogue.airshake.test")],
                         ids=["device_cert_under_b_name", "server_cert_of_another_name"])
def test_server_certificate_must_have_the_server_role_and_the_pinned_name(
        tmp_path, server, role, name):
    """A rogue B holding a certificate of the fleet's CA: a device's, issued under B's name,
    or a server's of another name. The device never completes with it and caches nothing."""
    server.serve(role, name)
    dev = Device(tmp_path / "dev", server, rto_s=0.2, retries=1)
    out = dev.run()
    refused_by_the_device(dev, server, out)
    assert server.count("up", "m3") == 0
    assert not os.path.exists(dev.path("server.der"))
    assert not os.path.exists(dev.path("session.bin"))


def test_held_server_certificate_is_never_replaced_by_one_that_fails_a_check(tmp_path,
                                                                             server):
    """The device holds the real C_B (CB_KNOWN); a rogue with a device certificate under
    B's name sends its certificate by value anyway: refused, server.der unchanged."""
    dev = Device(tmp_path / "dev", server, rto_s=0.2, retries=1)
    dev.run()
    held = dev.read("server.der")
    os.remove(dev.path("session.bin"))
    server.serve("device", SERVER_NAME)
    server.cert_by_value = True
    out = dev.run()
    assert "c_b=ref" in lines(out, "handshake")[0]
    refused_by_the_device(dev, server, out, received_before=1)
    assert dev.read("server.der") == held and not lines(out, "cached")


def test_dropping_the_held_certificate_never_lowers_the_checks(tmp_path, server):
    """A rogue answers m2 by reference (it cannot make MAC_2): the device drops its held
    C_B, as after a key rotation of B, and asks for C_B by value next time, where the
    rogue's certificate (a device's, under B's name) is refused all the same."""
    dev = Device(tmp_path / "dev", server, rto_s=0.2, retries=1)
    dev.run()
    os.remove(dev.path("session.bin"))
    server.serve("device", SERVER_NAME)
    out = dev.run()
    assert lines(out, "drop") and "dropped" in lines(out, "cached")[0]
    assert not os.path.exists(dev.path("server.der"))
    out = dev.run()
    assert "c_b=value" in lines(out, "handshake")[0]
    refused_by_the_device(dev, server, out, received_before=1)
    assert not os.path.exists(dev.path("server.der"))


def test_held_certificate_is_replaced_by_a_new_one_that_passes_every_check(tmp_path, server):
    """B moved to a new key under the same name and sends its new C_B by value to a device
    that holds the old one (CB_KNOWN): the device adopts it and says so."""
    dev = Device(tmp_path / "dev", server)
    dev.run()
    old = dev.read("server.der")
    os.remove(dev.path("session.bin"))
    server.rotate_key()
    server.cert_by_value = True
    out = dev.run()
    assert "c_b=ref" in lines(out, "handshake")[0] and lines(out, "confirmed")
    assert lines(out, "cached") == ["C_B replaced %dB" % len(server.c_b)]
    assert dev.read("server.der") == server.c_b != old


def test_held_certificate_that_fails_the_pin_is_deleted(tmp_path, server):
    """server.der holds a certificate that fails the role check (what a firmware without
    the pin may have cached from a rogue): the device deletes it at the next wake and
    completes with the real B, C_B by value, in that same wake."""
    dev = Device(tmp_path / "dev", server)
    dev.run()
    _, rogue = server.certificate("device", SERVER_NAME)
    with open(dev.path("server.der"), "wb") as f:
        f.write(rogue)
    os.remove(dev.path("session.bin"))
    out = dev.run()
    assert lines(out, "cached")[0] == "C_B dropped: not the pinned server"
    assert "c_b=value" in lines(out, "handshake")[0] and lines(out, "confirmed")
    assert dev.read("server.der") == server.c_b


# -- what an unauthenticated error message can do (docs/PROTOCOL.md §6.1) -------------------

def test_unauthenticated_try_later_keeps_the_device_quiet_at_most_900_s(tmp_path):
    with TestServerB(forge=forge_error(5, (65535).to_bytes(2, "big"))) as server:
        dev = Device(tmp_path / "dev", server)
        out = dev.run()
        assert lines(out, "rejected") == ["code=5 try_later retry_after=900"]
        wait = dev.state()["not_before"] - time.time() - dev.state().get("clock_offset", 0)
        assert 890 <= wait <= 900
        out = dev.run()                         # quiet until then
        assert lines(out, "wait") and server.count("up", "m1") == 1


def test_unauthenticated_time_never_moves_a_confirmed_clock(tmp_path, server):
    """The device's clock was confirmed by B. A rogue holding B's old key, whose C_B (B's
    name, the fleet's CA) expired 100 days ago, runs its clock 200 days back: its
    STALE_TIME must not move the device's clock into that C_B's lifetime. The device
    refuses the expired C_B, its clock offset stays, and it sends the rogue nothing."""
    dev = Device(tmp_path / "dev", server, rto_s=0.2, retries=1)
    dev.run()
    confirmed = dev.state()
    assert confirmed["clock_synced"]
    os.remove(dev.path("session.bin"))
    day = 86400
    now = time.time()
    assert START.timestamp() < now - 200 * day
    server.serve(end=datetime.datetime.fromtimestamp(now - 100 * day, datetime.timezone.utc))
    server.clock_shift = -200 * day
    server.cert_by_value = True
    out = dev.run()
    assert "code=1 stale_time retry_after=None" in lines(out, "rejected")
    refused_by_the_device(dev, server, out, received_before=1)
    after = dev.state()
    assert after["clock_offset"] == confirmed["clock_offset"] and after["clock_synced"]
    assert not lines(out, "clock")
    assert dev.read("server.der") != server.c_b


def test_unknown_device_is_refused_and_sleeps(tmp_path, server):
    dev = Device(tmp_path / "dev", server)
    server.certs.clear()
    out = dev.run()
    assert any("code=3" in ln for ln in lines(out, "rejected"))
    assert lines(out, "failed") and not os.path.exists(dev.path("session.bin"))


def test_server_unreachable_fails_and_sleeps(tmp_path, server):
    dev = Device(tmp_path / "dev", server, rto_s=0.1, retries=2)
    cfg = json.loads(dev.read("config.json"))
    cfg["server"]["port"] = 9                     # nobody there
    with open(dev.path("config.json"), "w") as f:
        json.dump(cfg, f)
    out = dev.run(cycles=2)
    assert len(lines(out, "failed")) >= 2 and len(lines(out, "wake")) == 2


def test_any_error_in_a_cycle_still_sleeps(tmp_path, server):
    dev = Device(tmp_path / "dev", server)
    os.remove(dev.path("anchor.der"))
    out = dev.run(cycles=2)
    errors = lines(out, "error")
    assert len(errors) == 2 and "anchor" in errors[0]
    assert lines(out, "sleep") and len(lines(out, "wake")) == 2


def test_broken_board_file_still_ends_in_deep_sleep(tmp_path, server):
    """board.py unreadable (an interrupted deploy): the wake fails, and the device still
    deep-sleeps where the platform can (a stand-in machine.deepsleep here), instead of
    returning to the REPL awake."""
    dev = Device(tmp_path / "dev", server)
    with open(os.path.join(dev.root, "board.py"), "w") as f:
        f.write("RADIO = (\n")                      # a syntax error
    with open(os.path.join(dev.root, "machine.py"), "w") as f:
        f.write("def deepsleep(ms):\n    print('airshake: deepsleep %d' % ms)\n"
                "    raise SystemExit(0)\n")
    out = dev.run()
    assert any("board.py" in ln for ln in lines(out, "error"))
    assert lines(out, "deepsleep") == ["60000"]


def test_corrupt_config_and_state_do_not_crash(tmp_path, server):
    dev = Device(tmp_path / "dev", server)
    with open(dev.path("state.json"), "w") as f:
        f.write("{not json")
    dev.run()
    assert lines(dev.outputs[-1], "confirmed")
    with open(dev.path("config.json"), "w") as f:
        f.write("[]")
    # (no session and no anchor either, so the default server is never contacted)
    os.remove(dev.path("session.bin"))
    os.remove(dev.path("anchor.der"))
    out = dev.run(cycles=2)
    assert lines(out, "wake") and "using defaults" in lines(out, "error")[0]
    # a key with settings it cannot read: the console stays locked (device.lock), so
    # the stop (no server pin in the defaults) ends in the locked device's sleep, not at
    # a REPL, and the process ends there
    assert lines(out, "lock") == ["console locked: no REPL"]
    assert lines(out, "stop") and lines(out, "sleep") == ["deep 0s"]
    assert len(lines(out, "wake")) == 1 and out.returncode == 0


def test_no_key_prints_one_line_and_stops(tmp_path, server):
    root = make_device_root(str(tmp_path / "dev"), config(server), server.anchor_der)
    out = run_cycles(root, cycles=3)
    assert out.returncode == 0 and not out.stderr
    assert out.stdout.strip().splitlines() == [
        "airshake: stop no device key: run `airshake device provision`"]


def test_keystore_contract(tmp_path, server):
    """generate() refuses to replace a key; public_spki() and device_id() agree between
    the device and CPython; the seed is refreshed; nothing prints the private key."""
    dev = Device(tmp_path / "dev", server)
    seed = dev.read("seed.bin")
    code = ("import sys; sys.path.append('lib'); from device import keystore; "
            "keystore.generate(0)")
    out = mp(dev.root, code=code)
    assert out.returncode != 0 and "exists already" in out.stdout + out.stderr
    out = mp(dev.root, code="import sys; sys.path.append('lib'); from device import keystore; "
                            "print(keystore.device_id(8)); print(keystore.exists())")
    assert out.stdout.split() == [dev.id_a.hex(), "True"]
    import subprocess
    host = subprocess.run([sys.executable, "-c",
                           "import sys; sys.path.insert(0, 'lib'); from device import keystore; "
                           "print(keystore.public_spki().hex())"],
                          cwd=dev.root, capture_output=True, text=True)
    assert host.stdout.strip() == dev.spki.hex()
    dev.run()                          # a handshake reseeds
    assert dev.read("seed.bin") != seed
    # force=True makes a new identity (new ID)
    out = mp(dev.root, code="import sys; sys.path.append('lib'); from device import keystore; "
                            "keystore.generate(0, force=True); print(keystore.device_id())")
    assert out.returncode == 0 and out.stdout.strip() != dev.id_a.hex()
    dev.outputs.append(out)
    dev.assert_no_secret_printed()


# heap budgets on this 64-bit unix build, with lib/ as .mpy (bench/firmware_cost.py
# measures the minimum: about 182 KB for a handshake wake, 131 KB for a record wake)
HANDSHAKE_HEAP = "224k"
RECORD_HEAP = "168k"


def test_wakes_fit_the_heap_budget(tmp_path, server):
    dev = Device(tmp_path / "dev", server)
    compile_lib(dev.root)
    out = run_cycles(dev.root, heap=HANDSHAKE_HEAP)
    assert lines(out, "confirmed"), out.stdout + out.stderr
    out = run_cycles(dev.root, heap=RECORD_HEAP)
    assert lines(out, "reply") and not lines(out, "handshake"), out.stdout + out.stderr
    dev.outputs.append(out)
    dev.assert_no_secret_printed()


def test_suite_2_p256_device(tmp_path):
    with TestServerB(suite=2) as b:
        dev = Device(tmp_path / "dev", b)
        out = dev.run(cycles=2)
        assert lines(out, "confirmed") and lines(out, "record")
        assert [how for how, _ in b.received] == ["m3", "record"]
        assert dev.read("key.bin")[0] == 2
