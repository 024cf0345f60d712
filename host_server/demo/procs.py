# host_server.demo.procs: owns the demo's subprocesses. Each starts in its own process
# group (so a process and any child it starts stop together), dies with the demo if the
# demo itself is killed (Linux PR_SET_PDEATHSIG), has its stdout and stderr read line by
# line on threads into a callback, and is stopped by stop_all(): SIGTERM to the group,
# then SIGKILL after a grace period. run() wraps everything so that a normal end, an
# error and Ctrl-C all stop every process.
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

LineSink = Callable[[str, str, str], None]      # (process name, stream, line)
PR_SET_PDEATHSIG = 1


_prctl: Callable[..., int] | None
try:
    _prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
except (OSError, AttributeError):        # not Linux/glibc: stop_all() still stops them
    _prctl = None


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """preexec_fn for Popen: the child gets sig when the process that started it dies
    (Linux; elsewhere a no-op). Only for children started from the main thread: the
    signal follows the thread that forked."""
    # runs in the child between fork and exec (so it only calls the function looked up
    # beforehand): the signal comes when the demo process goes away, even by SIGKILL
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)


def die_with_parent_here(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """die_with_parent(sig) for a Popen started on the main thread, else None (a child
    started by a thread that ends, such as a threading.Timer, would otherwise be
    signalled then). SIGKILL for a child with nothing to save when its parent is gone."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return lambda: die_with_parent(sig)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[str]
    stderr_tail: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def last_error(self) -> str:
        """The last non-empty stderr line (a one-line error, by the project's rule)."""
        lines = [ln.strip() for ln in self.stderr_tail if ln.strip()]
        return lines[-1] if lines else ""


class Supervisor:
    """Starts and stops every subprocess of one demo run."""

    def __init__(self, on_line: LineSink, pid_file: Path | None = None) -> None:
        self.on_line = on_line
        self.procs: list[Proc] = []
        self.pid_file = pid_file
        self._lock = threading.Lock()

    def start(self, name: str, argv: Sequence[str], cwd: Path | None = None,
              env: dict[str, str] | None = None, capture: bool = True) -> Proc:
        popen = subprocess.Popen(
            list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
            stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
            text=True, errors="replace", bufsize=1, start_new_session=True,
            preexec_fn=die_with_parent_here())
        proc = Proc(name, popen)
        with self._lock:
            self.procs.append(proc)
            if self.pid_file is not None:
                with open(self.pid_file, "a", encoding="utf-8") as f:
                    f.write("%d %s\n" % (popen.pid, name))
        if capture:
            for stream_name, stream in (("stdout", popen.stdout), ("stderr", popen.stderr)):
                t = threading.Thread(target=self._read, args=(proc, stream_name, stream),
                                     name="read-%s-%s" % (name, stream_name), daemon=True)
                t.start()
                proc.threads.append(t)
        return proc

    def _read(self, proc: Proc, stream_name: str, stream: IO[str] | None) -> None:
        if stream is None:
            return
        for raw in stream:
            line = raw.rstrip("\r\n")
            if stream_name == "stderr":
                proc.stderr_tail.append(line)
                del proc.stderr_tail[:-20]
            try:
                self.on_line(proc.name, stream_name, line)
            except Exception:       # the display must never kill a reader
                pass
        stream.close()

    def stop(self, proc: Proc, grace: float = 3.0) -> None:
        """SIGTERM to the process group, SIGKILL after `grace` seconds."""
        if proc.alive():
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(grace)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.popen.wait(5)
        # the group may outlive its leader (a child it started): make sure it is gone
        _signal_group(proc.pid, signal.SIGKILL)
        for t in proc.threads:
            t.join(2)

    def stop_all(self, grace: float = 3.0) -> None:
        """Stop every process, newest first; never raises."""
        with self._lock:
            procs = list(reversed(self.procs))
        for proc in procs:
            if proc.alive():
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in procs:
            try:
                self.stop(proc, grace=0.5)
            except Exception:
                pass

    def pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self.procs]


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_quiet(argv: Sequence[str], cwd: Path | None = None,
              timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """A short command (e.g. `airshake ca init`) whose output is only shown on failure."""
    return subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
