# host_server.device.sim: `airshake device sim`, a board for people without hardware:
# the MicroPython unix binary behind a serial port made in Python (simpty), run in a
# directory that is the board's flash. A new directory gets the firmware the deploy code
# stages from this checkout for board "unix" (so `deploy` finds it up to date); an
# existing one is kept as it is, key and settings included, like a board's flash.
# Each boot does what an ESP32 does at reset (BOOT_CODE): boot.py, then the firmware's
# console lock (device.lock) decides. An open board (no firmware, not provisioned,
# provisioned with --keep-repl, or $AIRSHAKE_UNLOCK_PIN=1, the held unlock button) gets
# the REPL, with what the host sent meanwhile (simpty holds it, as a UART does); unlike
# an ESP32 it does not run main.py first, since nothing interrupts the unix port (`monitor`
# starts main.py there). A locked board runs main.py and never gives a REPL: its wake
# ends in the unix port's stand-in for deep sleep (the process ends) and the sim boots it
# again, the next wake; `monitor` follows its console. The unix port also exits where a
# board would reset (a soft reset, Ctrl-D): the sim boots it again; SIGUSR1 (sent by
# `monitor` when it stops following a main.py that is still running, which the unix port
# cannot interrupt) does the same. It runs until Ctrl-C or SIGTERM.
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from host_server.device import layout
from host_server.device.simpty import PtyPort
from host_server.device.simstate import mark_path, sim_pid, board_state, is_sim, locked

__all__ = ["board_state", "is_sim", "locked", "reset", "run", "prepare", "fill_flash"]
from host_server.errors import UserError

BOARD = "unix"
# BOOT_CODE's exit status for an open board: start the REPL (the unlock pin held, or not)
REPL_EXIT = {64: "open", 65: "pin"}
# What an ESP32 runs at reset, for the unix port (run with -c in the board's flash):
# boot.py, then device.lock's decision; a locked board runs main.py, which ends its
# process (deep sleep) and never returns to a REPL.
BOOT_CODE = """\
import sys
def _run(path):
    try:
        src = open(path).read()
    except OSError:
        return
    exec(src, {'__name__': '__main__'})
_run('boot.py')
sys.path.insert(0, 'lib')
try:
    from device import lock
    state = lock.decide()
except ImportError:
    state = 'open'
if state == 'locked':
    _run('main.py')
    sys.exit(0)
sys.exit(65 if state == 'pin' else 64)
"""
# The REPL that continues an open boot: the firmware keeps the boot's decision (as an
# ESP32's interpreter does after main.py), so main.py run through mpremote in this boot
# runs as the board booted, even if provisioning locked it meanwhile.
REPL_CODE = """\
import sys
sys.path.insert(0, 'lib')
try:
    from device import lock
    lock.booted(%r)
except ImportError:
    pass
sys.path.pop(0)
"""


def reset(port: str) -> bool:
    """Ask the sim serving port to reset its board (SIGUSR1): the unix port is started
    again, so whatever it was running stops. False when no sim serves port."""
    pid = sim_pid(port)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError:
        return False
    return True


def fill_flash(flash: Path) -> int:
    """The files `airshake device deploy --board unix` puts on a board, staged by the
    deploy code itself, copied into flash; returns how many."""
    from host_server.device import deploy
    with tempfile.TemporaryDirectory(prefix="airshake-sim-") as tmp:
        stage = Path(tmp) / "stage"
        deploy.deploy(None, layout.project_root(), BOARD, skip_mip=True, stage_only=stage,
                      show=lambda _line: None)
        shutil.copytree(stage / "files", flash, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("package.json", "package-changed.json"))
    return sum(1 for p in flash.rglob("*") if p.is_file())


def prepare(flash: Path) -> str:
    """The board's flash directory, filled on first use; a line saying what is in it."""
    if flash.exists() and not flash.is_dir():
        raise UserError(f"{flash} is a file: pass --dir a directory for the board's flash")
    if (flash / "main.py").is_file():
        return f"flash {flash} kept as it is (its firmware, key and settings)"
    try:
        flash.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot make the board's flash directory {flash} ({e.strerror}): "
                        "pass --dir a writable directory")
    count = fill_flash(flash)
    return f"flash {flash}: the firmware of this checkout for board {BOARD} ({count} files)"


def run(flash: Path, micropython: str, link: Path | None,
        show: Callable[[str], None], stop: threading.Event | None = None) -> int:
    """Serve the board until stop is set, SIGTERM or Ctrl-C; boots it again when the unix
    port exits (a board's reset or a locked board's deep sleep)."""
    show(prepare(flash))
    stop = stop or threading.Event()

    reset_asked = threading.Event()

    def on_signal(_sig: int, _frame: object) -> None:
        stop.set()

    def on_reset(_sig: int, _frame: object) -> None:
        reset_asked.set()

    boot = [micropython, "-c", BOOT_CODE]
    old = signal.signal(signal.SIGTERM, on_signal)
    old_usr1 = signal.signal(signal.SIGUSR1, on_reset)
    port = PtyPort(boot, cwd=flash, link=link)
    port.holding = True
    mark = mark_path(port.port)
    resets, started = 0, time.monotonic()

    def note(state: str) -> None:        # atomic: `monitor` may read it any time
        tmp = mark.with_name(mark.name + ".tmp")
        tmp.write_text(f"{os.getpid()} {flash.resolve()} {state}\n")
        os.replace(tmp, mark)
    try:
        mark.parent.mkdir(mode=0o700, exist_ok=True)
        note("boot")
        show(f"board on {port.port}: use --port {port.port}")
        while not stop.wait(0.1):
            if reset_asked.is_set():
                reset_asked.clear()
                note("boot")
                port.restart(boot, hold=True)
                show(f"reset by the host tools: the unix port started again on {port.port}")
                continue
            if port.alive():
                continue
            code = port.proc.returncode
            if port.holding and code in REPL_EXIT:      # booted open: the REPL
                repl = [micropython, "-i", "-c", REPL_CODE % REPL_EXIT[code]]
                port.restart(repl, replay=True, hold=False)
                note("repl")
                continue
            resets += 1
            if resets > 20 and time.monotonic() - started < 10:
                raise UserError(f"the MicroPython binary {micropython} keeps exiting at once: "
                                f"run it by hand in {flash} to see why")
            if not (port.holding and code == 0):       # not a locked board's deep sleep
                show(f"the unix port exited (a board's reset): started again on {port.port}")
            time.sleep(0.2)
            note("boot")
            port.restart(boot, hold=True)
    except KeyboardInterrupt:
        pass
    finally:
        port.close()
        try:
            mark.unlink()
        except OSError:
            pass
        signal.signal(signal.SIGTERM, old)
        signal.signal(signal.SIGUSR1, old_usr1)
    return 0
