# host_server.device.watchdog: the one way the device tools run a child process that must
# not hang them (esptool, mpremote): stdout handed over line by line as it comes, stderr
# collected apart (or merged into stdout), the child killed when its time limit passes.
from __future__ import annotations

import math
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str      # "" when merged into stdout
    expired: bool    # killed at the time limit


def run_watched(argv: list[str], timeout: float, env: Mapping[str, str],
                on_line: Callable[[str], None] | None = None,
                merge_stderr: bool = False) -> Finished:
    """Run argv (stdin closed) for at most timeout seconds (math.inf: no limit). on_line
    sees each stdout line, without its line end, as it comes. Raises OSError when the
    program cannot be started; the caller turns that into its one-line UserError."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
                            env=dict(env), text=True, errors="replace")
    expired = threading.Event()

    def kill() -> None:
        expired.set()
        proc.kill()

    timer = threading.Timer(timeout if math.isfinite(timeout) else 1e9, kill)
    timer.daemon = True
    timer.start()
    err_chunks: list[str] = []
    reader = threading.Thread(target=_drain, args=(proc.stderr, err_chunks), daemon=True)
    reader.start()
    out_lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            out_lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\r\n"))
        proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
    return Finished(proc.returncode, "".join(out_lines), "".join(err_chunks),
                    expired.is_set())


def _drain(stream: IO[str] | None, into: list[str]) -> None:
    if stream is not None:
        into.append(stream.read())
