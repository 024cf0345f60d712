# host_server.demo.display: owns what the demo writes to the terminal while it runs: one
# line per step, and on a terminal a status line kept under them with a progress bar per
# device (redrawn in place with a carriage return; no curses). Off a terminal (CI, a
# pipe) the status line is left out and only the step lines are printed.
from __future__ import annotations

import shutil
import sys
import threading
from typing import TextIO

STAGES = ("provisioned", "m1 sent", "m2 verified", "m3 sent", "confirmed", "record sent",
          "reply")


class Display:
    def __init__(self, devices: int, out: TextIO | None = None,
                 live: bool | None = None) -> None:
        self.out = out if out is not None else sys.stdout
        self.devices = devices
        self.live = self.out.isatty() if live is None else live
        self.progress = {i: 0 for i in range(1, devices + 1)}
        self.state = {i: "waiting" for i in range(1, devices + 1)}
        self._lock = threading.Lock()
        self._status_shown = False
        self.bars_on = False          # shown once the devices exist

    def show_bars(self) -> None:
        with self._lock:
            self.bars_on = True
            self._draw()
            self.out.flush()

    def line(self, text: str) -> None:
        with self._lock:
            self._clear()
            self.out.write(text + "\n")
            self._draw()
            self.out.flush()

    def advance(self, device: int, stage: str) -> None:
        """Mark a stage reached (stages only move forward)."""
        if stage not in STAGES:
            return
        n = STAGES.index(stage) + 1
        with self._lock:
            if n > self.progress.get(device, 0):
                self.progress[device] = n
                self.state[device] = stage
            self._clear()
            self._draw()
            self.out.flush()

    def note(self, device: int, text: str) -> None:
        with self._lock:
            self.state[device] = text
            self._clear()
            self._draw()
            self.out.flush()

    def close(self) -> None:
        with self._lock:
            self._clear()
            self.bars_on = False
            self.out.flush()

    def bars(self) -> str:
        total = len(STAGES)
        parts = []
        for i in sorted(self.progress):
            done = self.progress[i]
            bar = "#" * done + "-" * (total - done)
            parts.append("dev%d [%s] %s" % (i, bar, self.state[i]) if self.devices <= 2
                         else "%d[%s]" % (i, bar))
        return "  ".join(parts)

    def _clear(self) -> None:
        if self.live and self._status_shown:
            self.out.write("\r\x1b[K")
            self._status_shown = False

    def _draw(self) -> None:
        if not (self.live and self.bars_on) or self._status_shown:
            return
        width = shutil.get_terminal_size((100, 20)).columns
        self.out.write(self.bars()[:max(10, width - 1)])
        self._status_shown = True
