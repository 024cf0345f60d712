# host_server.device.simstate: the note a running `airshake device sim` keeps for the
# other device tools, $TMPDIR/airshake-sim-<uid>/<pts name>: "<pid> <flash> <state>",
# state "boot" (its board runs boot.py and, when locked, its firmware) or "repl". How
# `monitor` and `mpremote` tell the sim's port from a board's, and a locked board (no
# REPL to wait for) from one about to reach its REPL.
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path


def mark_path(port: str) -> Path:
    """Where a running sim notes its port (with its pid), so `monitor` can tell it from a
    board's serial port."""
    return Path(tempfile.gettempdir()) / f"airshake-sim-{os.getuid()}" / Path(port).name


def sim_pid(port: str) -> int | None:
    real = os.path.realpath(port)
    if not real.startswith("/dev/pts/"):
        return None
    try:
        pid = int(mark_path(real).read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    return pid


def is_sim(port: str) -> bool:
    """True when port is served by a running `airshake device sim`."""
    return sim_pid(port) is not None


def locked(port: str, settle: float = 3.0) -> bool:
    """True when port is the sim's board and it stays in its boot program (a locked
    board running its firmware) instead of reaching the REPL within settle seconds."""
    deadline = time.monotonic() + settle
    while board_state(port) == "boot":
        if time.monotonic() > deadline:
            return True
        time.sleep(0.1)
    return False


def board_state(port: str) -> str | None:
    """What the sim's board runs: "boot" (boot.py and, on a locked board, its firmware),
    "repl", or None (no sim serves port)."""
    if sim_pid(port) is None:
        return None
    try:
        fields = mark_path(os.path.realpath(port)).read_text().split()
    except OSError:
        return None
    return fields[2] if len(fields) > 2 else None
