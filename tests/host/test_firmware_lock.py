"""A provisioned device is locked (device.lock): the real firmware on the MicroPython
binary, alone and as `airshake device sim`'s board behind a pty made in Python, with
mpremote and `airshake device monitor` talking to it as to an ESP32. A locked board
never gives a REPL (mpremote cannot enter it; one line says why), its console still
carries the firmware's log (monitor follows it), and the unlock pin held at boot
($AIRSHAKE_UNLOCK_PIN=1 on the unix port) or provisioning with the REPL kept opens it."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.device_server import Device, TestServerB, lines

ROOT = Path(__file__).resolve().parents[2]
AIRSHAKE = Path(sys.executable).parent / "airshake"
PIN = {"AIRSHAKE_UNLOCK_PIN": "1"}


@pytest.fixture
def server():
    with TestServerB() as b:
        yield b


# -- the firmware alone --------------------------------------------------------------------

def test_locked_device_runs_one_wake_then_ends_as_in_deep_sleep(tmp_path, server):
    dev = Device(tmp_path / "dev", server, console="locked")
    out = dev.run(cycles=3)
    assert lines(out, "lock") == ["console locked: no REPL"]
    assert len(lines(out, "wake")) == 1 and lines(out, "confirmed")
    assert lines(out, "sleep") == ["deep 0s"]        # the process ends: no REPL after it
    dev.assert_no_secret_printed()


def test_device_provisioned_with_the_repl_kept_runs_as_before(tmp_path, server):
    dev = Device(tmp_path / "dev", server, console="repl")
    out = dev.run(cycles=3)
    assert lines(out, "lock") == [] and len(lines(out, "wake")) == 3


def test_unlock_pin_held_at_boot_opens_the_repl_and_skips_the_wake(tmp_path, server):
    """...and only after the device forgot its secrets: with the board in hand one gets a
    REPL, never the key. It is then a device to provision again (open, no key)."""
    dev = Device(tmp_path / "dev", server, console="locked", radio="udp",
                 lorawan={"dev_eui": "70b3d57ed0000001", "app_key": "00" * 16})
    dev.run()
    with open(dev.path("wifi.json"), "w") as f:
        f.write('{"ssid": "s", "password": "p"}')
    out = dev.run(cycles=3, env=PIN)
    assert lines(out) == ["lock open: the unlock pin is held: secrets erased, REPL on, no "
                          "wake; provision again"]
    for name in ("key.bin", "seed.bin", "session.bin", "wifi.json"):
        assert not os.path.exists(dev.path(name)), name
    cfg = json.loads(dev.read("config.json"))
    assert "lorawan" not in cfg and cfg["console"] == "locked"
    assert os.path.exists(dev.path("anchor.der"))
    out = dev.run(cycles=2)
    assert lines(out) == ["stop no device key: run `airshake device provision`"]
    assert server.count("up", "m1") == 1                 # only the wake before the pin


def test_unreadable_settings_keep_a_provisioned_device_locked(tmp_path, server):
    dev = Device(tmp_path / "dev", server, console="repl")
    with open(dev.path("config.json"), "w") as f:
        f.write("{\"console\": ")
    out = dev.run(cycles=2)
    assert lines(out, "lock") == ["console locked: no REPL"]


# -- the sim's board, mpremote and monitor over a pty ---------------------------------------

class Sim:
    """`airshake device sim --dir FLASH` in the background (env: extra variables)."""

    def __init__(self, flash: Path, env=None):
        self.proc = subprocess.Popen([str(AIRSHAKE), "device", "sim", "--dir", str(flash)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     env=dict(os.environ, **(env or {})))
        line = self.proc.stdout.readline()
        while line and not line.startswith("board on "):
            line = self.proc.stdout.readline()
        found = re.fullmatch(r"board on (\S+): use --port \S+\n", line)
        assert found, line + self.proc.stderr.read()
        self.port = found.group(1)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)


def airshake(*args, timeout=90):
    return subprocess.run([str(AIRSHAKE), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, stdin=subprocess.DEVNULL)


def sim_device(tmp_path, server, console):
    """A provisioned device whose root is the sim's flash: wakes every second."""
    return Device(tmp_path / "flash", server, console=console, interval_s=1)


def test_locked_sim_board_gives_no_repl_and_monitor_follows_its_log(tmp_path, server):
    dev = sim_device(tmp_path, server, "locked")
    sim = Sim(Path(dev.root))
    try:
        out = airshake("device", "monitor", "--port", sim.port, "--status", "--timeout",
                       "20")
        assert out.returncode != 0
        err = out.stderr.strip().splitlines()
        assert len(err) == 1 and "unlock pin" in err[0], out.stderr
        out = airshake("device", "monitor", "--port", sim.port, "--cycles", "2",
                       "--duration", "60")
        assert out.returncode == 0, out.stderr
        assert "the board is locked (no REPL): following its console" in out.stdout
        assert "airshake: sleep deep 1s" in out.stdout
        assert re.search(r"airshake: (reply|confirmed)", out.stdout), out.stdout
    finally:
        assert sim.stop() == 0
    assert [how for how, _ in server.received][:1] == ["m3"]
    assert len(server.received) >= 2                   # it woke, and woke again
    assert "Traceback" not in out.stdout


def test_unlock_pin_at_boot_gives_the_sim_board_its_repl(tmp_path, server):
    dev = sim_device(tmp_path, server, "locked")
    sim = Sim(Path(dev.root), env=PIN)
    try:
        out = airshake("device", "monitor", "--port", sim.port, "--status", "--timeout",
                       "20")
        assert out.returncode == 0, out.stderr
        config = [ln for ln in out.stdout.splitlines() if "config.json:" in ln][0]
        assert json.loads(config.split(": ", 1)[1])["console"] == "locked"
        assert "airshake-data/key.bin: missing" in out.stdout      # forgotten first
    finally:
        sim.stop()
    assert server.wire == []                             # no wake on a pin boot


def test_sim_board_provisioned_with_the_repl_kept_answers_mpremote(tmp_path, server):
    dev = sim_device(tmp_path, server, "repl")
    sim = Sim(Path(dev.root))
    try:
        out = subprocess.run([sys.executable, "-m", "mpremote", "connect", sim.port,
                              "resume", "exec", "print(6 * 7)"], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0 and out.stdout.strip() == "42", out.stderr
        # main.py run in this boot runs as the board booted: open, every cycle
        out = airshake("device", "monitor", "--port", sim.port, "--cycles", "2",
                       "--duration", "60")
        assert out.stdout.count("airshake: wake") == 2, out.stdout + out.stderr
    finally:
        sim.stop()
