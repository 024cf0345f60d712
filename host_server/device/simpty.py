# host_server.device.simpty: a serial port made in Python (the pty module) for a
# program that stands in for a board: the MicroPython unix binary's REPL, or anything
# else that talks on stdin/stdout. The program gets its own pty as its controlling
# terminal (raw, no echo); the host tools open the other pty, whose path `port` is,
# and a thread copies bytes both ways between the two masters (what socat did). Two
# ptys, because mpremote needs a path to open and MicroPython needs a terminal.
# Bytes the program writes while no host program has the port open are dropped, as a
# UART with nobody listening drops them (keep_unheard=True keeps the last 64 KB instead,
# for the next program that opens the port). While `holding` is set, what the host sends
# is kept (the last 64 KB) instead of reaching the program: restart(replay=True) hands
# it to the next program, as an ESP32's UART keeps what arrives while boot.py and main.py
# run for the REPL that follows them.
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import select
import signal
import subprocess
import termios
import threading
import tty
from collections.abc import Callable, Sequence
from pathlib import Path

_CHUNK = 4096
_KEEP = 65536


def _raw(fd: int) -> None:
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~(termios.ECHO | termios.ECHONL)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


try:
    _prctl: Callable[..., int] | None = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):        # not Linux/glibc: close() still stops the child
    _prctl = None


def _child_setup() -> None:
    # in the child between fork and exec (after setsid), so only calls looked up
    # beforehand: its pty becomes its controlling terminal, and it gets SIGTERM when the
    # thread that made the pty goes away (PR_SET_PDEATHSIG)
    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError:
        pass
    if _prctl is not None:
        _prctl(1, signal.SIGTERM, 0, 0, 0)


class PtyPort:
    """`argv` run in `cwd` behind a serial port at self.port (a /dev/pts path); `link`,
    if given, is a symlink to it. on_output sees every byte the program writes."""

    def __init__(self, argv: Sequence[str], cwd: Path | str | None = None,
                 link: Path | None = None, env: dict[str, str] | None = None,
                 on_output: Callable[[bytes], None] | None = None,
                 keep_unheard: bool = False) -> None:
        self.on_output = on_output
        self.keep_unheard = keep_unheard
        self._unheard = bytearray()
        self._attached = False      # a host program holds the port open (see _pump)
        self.holding = False
        self._held = bytearray()
        # the host side: the port the tools open. Its slave is closed here: while no
        # host program holds it, its master reads EIO and what the board says is dropped
        self._host_master, host_slave = os.openpty()
        _raw(host_slave)
        self.port = os.ttyname(host_slave)
        os.close(host_slave)
        os.set_blocking(self._host_master, False)
        self.link = link
        if link is not None:
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(self.port)
        self._argv, self._cwd, self._env = list(argv), cwd, env
        self._stop_r, self._stop_w = os.pipe()
        try:
            self._spawn()
        except OSError:
            self._close_fds()
            raise

    def _spawn(self) -> None:
        """The program on its own pty, and the thread that copies between the two."""
        self._prog_master, prog_slave = os.openpty()
        _raw(prog_slave)
        try:
            self.proc = subprocess.Popen(
                self._argv, cwd=self._cwd, env=self._env, stdin=prog_slave,
                stdout=prog_slave, stderr=prog_slave, start_new_session=True,
                preexec_fn=_child_setup)
        finally:
            os.close(prog_slave)
        self._thread = threading.Thread(target=self._pump, name="pty-" + self.port,
                                         daemon=True)
        self._thread.start()

    def restart(self, argv: Sequence[str] | None = None, replay: bool = False,
                hold: bool | None = None) -> None:
        """Stop the program and start it again behind the same port (a board's reset), or
        start argv in its place. replay: what the host sent while input was held goes to
        the new program first (otherwise it is dropped); hold: whether the new program's
        input is held (default: as before)."""
        self._stop_program()
        os.close(self._prog_master)
        held = bytes(self._held) if replay else b""
        self._held.clear()
        if argv is not None:
            self._argv = list(argv)
        if hold is not None:
            self.holding = hold
        self._spawn()
        if held:
            _write(self._prog_master, held)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _pump(self) -> None:
        host, prog = self._host_master, self._prog_master
        # whether a host program holds the port open lives on self: a restart (a board's
        # reset) starts a new pump, which must not drop the new program's first output
        while True:
            watch = [prog, self._stop_r] + ([host] if self._attached else [])
            try:
                ready, _, _ = select.select(watch, [], [], None if self._attached else 0.05)
            except InterruptedError:
                continue
            if self._stop_r in ready:
                return
            if prog in ready:
                data = _read(prog)
                if data is None:          # the program is gone (its pty hung up)
                    return
                if self.on_output is not None:
                    self.on_output(data)
                if self._attached:
                    _write(host, data)
                elif self.keep_unheard:
                    self._unheard += data
                    del self._unheard[:-_KEEP]
            if self._attached and host not in ready:
                continue
            try:                          # non-blocking: EIO while nobody holds the port
                data = os.read(host, _CHUNK)
            except BlockingIOError:
                self._attached = self._attach(host)
                continue
            except OSError as e:
                if e.errno != errno.EIO:
                    raise
                self._attached = False
                continue
            self._attached = self._attach(host)
            if data and self.holding:
                self._held += data
                del self._held[:-_KEEP]
            elif data:
                _write(prog, data)

    def _attach(self, host: int) -> bool:
        if self._unheard:
            _write(host, bytes(self._unheard))
            self._unheard.clear()
        return True

    def close(self, grace: float = 3.0) -> int | None:
        """Stop the program (SIGTERM to its group, then SIGKILL) and the pty."""
        self._stop_program(grace)
        self._close_fds()
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()
        return self.proc.returncode

    def _stop_program(self, grace: float = 3.0) -> None:
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        _signal_group(self.proc.pid, signal.SIGKILL)
        if self._thread.is_alive():
            os.write(self._stop_w, b"x")
            self._thread.join(2)
            os.read(self._stop_r, 16)

    def _close_fds(self) -> None:
        for fd in (self._host_master, self._prog_master,
                   getattr(self, "_stop_r", -1), getattr(self, "_stop_w", -1)):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _read(fd: int) -> bytes | None:
    try:
        return os.read(fd, _CHUNK) or None
    except OSError as e:
        if e.errno == errno.EIO:
            return None
        raise


def _write(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            select.select([], [fd], [], 1.0)
            continue
        except OSError as e:
            if e.errno == errno.EIO:
                return
            raise
        data = data[n:]


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
