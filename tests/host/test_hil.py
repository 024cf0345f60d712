"""Hardware in the loop (host_server/device/hil.py, `make hil`) against the board of
`airshake device sim`: the MicroPython unix port running this checkout's firmware behind a
pty, reached as a board's serial port is. The same run as on a real board: local CA,
certificate store and B, deploy, provision, then the end-to-end checks read from the
console (handshake, records, deep-sleep wakes, revocation). What only a real board
confirms is in boards/README.md and the module's header: the radio or Wi-Fi path, the
ESP32's deep sleep and reset, flashing."""
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host_server.device import hil

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SIM_LINE = re.compile(r"board on (\S+): use --port")

pytestmark = pytest.mark.skipif(not (BIN / "micropython").exists(),
                                reason="needs the MicroPython unix binary (make setup)")


@pytest.fixture
def sim_port(tmp_path):
    log = tmp_path / "sim.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([str(BIN / "airshake"), "device", "sim", "--dir",
                                 str(tmp_path / "flash")], cwd=tmp_path, stdout=f,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not SIM_LINE.search(log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield SIM_LINE.search(log.read_text()).group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def test_hil_on_the_sim_board(tmp_path, sim_port):
    lines = []
    opts = hil.Options(port=sim_port, board="unix", interval=1, records=2, wake_timeout=60,
                       work=str(tmp_path / "work"))
    code = hil.run(opts, lines.append)
    print("\n".join(lines))
    assert code == 0, lines
    passed = [ln.split(":", 2)[1].strip() for ln in lines if ln.startswith("hil: PASS")]
    assert [p.split()[1] for p in passed] == ["handshake", "deep-sleep", "records",
                                              "revocation"], lines


def test_without_a_board_it_says_so_and_exits_0(tmp_path):
    for argv in ([], ["--port", str(tmp_path / "ttyUSB9")]):
        out = subprocess.run([sys.executable, "-m", "host_server.device.hil", *argv],
                             cwd=ROOT, capture_output=True, text=True, timeout=60,
                             env={"PATH": "/usr/bin:/bin"})
        assert out.returncode == 0 and out.stderr == "", out
        assert out.stdout.count("\n") == 1 and "nothing to run" in out.stdout, out.stdout
