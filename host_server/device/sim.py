# host_server.device.sim: `airshake device sim`, a board for people without hardware:
# the MicroPython unix binary's REPL behind a serial port made in Python (simpty), run in
# a directory that is the board's flash. A new directory gets the firmware the deploy
# code stages from this checkout for board "unix" (so `deploy` finds it up to date); an
# existing one is kept as it is, key and settings included, like a board's flash. The
# unix port exits where a board would reset (a soft reset, Ctrl-D): the sim then starts
# it again, as a board reboots; SIGUSR1 (sent by `monitor` when it stops following a
# main.py that is still running, which the unix port cannot interrupt) does the same.
# It runs until Ctrl-C or SIGTERM.
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
from host_server.errors import UserError

BOARD = "unix"


def _mark(port: str) -> Path:
    """Where a running sim notes its port (with its pid), so `monitor` can tell it from a
    board's serial port."""
    return Path(tempfile.gettempdir()) / f"airshake-sim-{os.getuid()}" / Path(port).name


def _sim_pid(port: str) -> int | None:
    real = os.path.realpath(port)
    if not real.startswith("/dev/pts/"):
        return None
    try:
        pid = int(_mark(real).read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def is_sim(port: str) -> bool:
    """True when port is served by a running `airshake device sim`."""
    return _sim_pid(port) is not None


def reset(port: str) -> bool:
    """Ask the sim serving port to reset its board (SIGUSR1): the unix port is started
    again, so whatever it was running stops. False when no sim serves port."""
    pid = _sim_pid(port)
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
    """Serve the board until stop is set, SIGTERM or Ctrl-C; restarts the unix port when
    it exits (a board's reset)."""
    show(prepare(flash))
    stop = stop or threading.Event()

    reset_asked = threading.Event()

    def on_signal(_sig: int, _frame: object) -> None:
        stop.set()

    def on_reset(_sig: int, _frame: object) -> None:
        reset_asked.set()

    old = signal.signal(signal.SIGTERM, on_signal)
    old_usr1 = signal.signal(signal.SIGUSR1, on_reset)
    port = PtyPort([micropython], cwd=flash, link=link)
    mark = _mark(port.port)
    resets, started = 0, time.monotonic()
    try:
        mark.parent.mkdir(mode=0o700, exist_ok=True)
        mark.write_text(f"{os.getpid()} {flash.resolve()}\n")
        show(f"board on {port.port}: use --port {port.port}")
        while not stop.wait(0.1):
            if reset_asked.is_set():
                reset_asked.clear()
                port.restart()
                show(f"reset by the host tools: the unix port started again on {port.port}")
                continue
            if port.alive():
                continue
            resets += 1
            if resets > 20 and time.monotonic() - started < 10:
                raise UserError(f"the MicroPython binary {micropython} keeps exiting at once: "
                                f"run it by hand in {flash} to see why")
            show(f"the unix port exited (a board's reset): started again on {port.port}")
            time.sleep(0.2)
            port.restart()
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
