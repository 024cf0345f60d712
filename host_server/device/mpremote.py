# host_server.device.mpremote: the one way the device tools talk to a MicroPython board:
# `python -m mpremote connect PORT resume ...` subprocesses with a deadline, and mpremote's
# or the board's failures turned into one UserError line (no device, port busy, no REPL,
# timeout, a traceback on the board).
#
# `resume` (no soft reset on connect) is the default: the MicroPython unix port exits on a
# soft reset, and a board keeps its state. soft_reset=True gives a clean heap instead.
import os
import subprocess
import sys
from collections.abc import Callable

from host_server.errors import UserError
from host_server.device import ports
from host_server.device.watchdog import run_watched

DEFAULT_TIMEOUT = 60.0


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def device_traceback(stdout: str) -> str | None:
    """The exception line of a MicroPython traceback in stdout, if there is one."""
    if "Traceback (most recent call last):" not in stdout:
        return None
    tail = stdout.split("Traceback (most recent call last):")[-1]
    for line in reversed(tail.strip().splitlines()):
        if line.strip() and not line.startswith(" "):
            return line.strip()
    return _last_line(tail)


class Mpremote:
    """mpremote on one serial port. Every method raises UserError on failure."""

    def __init__(self, port: str, timeout: float = DEFAULT_TIMEOUT,
                 soft_reset: bool = False) -> None:
        self.port = port
        self.timeout = timeout
        self.soft_reset = soft_reset

    def argv(self, *args: str) -> list[str]:
        head = [sys.executable, "-m", "mpremote", "connect", self.port]
        if not self.soft_reset:
            head.append("resume")
        return head + list(args)

    def explain(self, stdout: str, stderr: str, what: str) -> UserError:
        """One line for a failed mpremote run."""
        err = _last_line(stderr)
        if "failed to access" in err or "could not open port" in err.lower():
            if ports.missing(self.port):
                return ports.no_device(self.port)
            return UserError(f"cannot open {self.port}: another program holds it (close any "
                             "serial monitor) or you lack permission (join the dialout group)")
        if "no device found" in err:
            return UserError("no device found: plug in the board or pass --port")
        if "could not enter raw repl" in err:
            return UserError(f"the device at {self.port} does not answer as a MicroPython REPL: "
                             "is MicroPython flashed (`airshake device flash`)? if it is asleep "
                             "or busy, retry with --reset (or press its reset button); a "
                             "provisioned device keeps its REPL off: hold its unlock pin at "
                             "boot (firmware/README.md)")
        trace = device_traceback(stdout)
        if trace:
            return UserError(f"{what} failed on the device: {trace}")
        detail = err.removeprefix("mpremote: ") or _last_line(stdout) or "no output"
        return UserError(f"{what} failed on {self.port}: {detail}")

    def run(self, *args: str, what: str = "mpremote", timeout: float | None = None,
            on_line: Callable[[str], None] | None = None, until: bool = False) -> str:
        """Run mpremote with args; its stdout. on_line sees each stdout line as it comes.
        timeout: seconds (None: the default, math.inf: none); until=True makes reaching it
        a normal end (following output for a while) instead of an error."""
        if ports.missing(self.port):
            raise ports.no_device(self.port)
        from host_server.device import simstate
        if simstate.locked(self.port):
            raise UserError(f"the board at {self.port} is locked (provisioned without "
                            "--keep-repl): no REPL; `airshake device monitor` follows its "
                            "log; hold its unlock pin at boot to open the REPL "
                            "(firmware/README.md)")
        limit = self.timeout if timeout is None else timeout
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        try:
            done = run_watched(self.argv(*args), limit, env, on_line=on_line)
        except OSError as e:
            raise UserError(f"cannot run mpremote ({e}): install it with `pip install mpremote`")
        if done.expired and until:
            return done.stdout
        if done.expired:
            raise UserError(f"{what}: the device at {self.port} did not answer within "
                            f"{limit:g} s: is it a MicroPython board? retry with --reset (or "
                            "press its reset button), or raise --timeout; a provisioned "
                            "device keeps its REPL off: hold its unlock pin at boot "
                            "(firmware/README.md)")
        if done.returncode != 0:
            raise self.explain(done.stdout, done.stderr, what)
        return done.stdout

    def exec(self, code: str, what: str = "a command", timeout: float | None = None) -> str:
        """Run code on the device; what it printed."""
        return self.run("exec", code, what=what, timeout=timeout)

    def read(self, path: str, timeout: float | None = None) -> bytes | None:
        """A device file's bytes (sent as hex, binary-safe), None when it does not exist."""
        code = ("import binascii\n"
                "try:\n f = open(%r, 'rb')\nexcept OSError:\n print('AIRSHAKE-NOFILE')\n"
                "else:\n print('AIRSHAKE-FILE')\n"
                " while True:\n  b = f.read(512)\n  if not b:\n   break\n"
                "  print(binascii.hexlify(b).decode())\n f.close()\n"
                " print('AIRSHAKE-END')\n" % path)
        out = self.exec(code, what=f"reading {path}", timeout=timeout)
        lines = [ln.strip() for ln in out.splitlines()]
        if "AIRSHAKE-NOFILE" in lines:
            return None
        if "AIRSHAKE-FILE" not in lines or "AIRSHAKE-END" not in lines:
            raise UserError(f"reading {path} from {self.port} gave garbled output: retry")
        body = lines[lines.index("AIRSHAKE-FILE") + 1:lines.index("AIRSHAKE-END")]
        return bytes.fromhex("".join(body))

    def interactive(self, *args: str) -> int:
        """mpremote with the terminal attached (the REPL); its exit status."""
        if ports.missing(self.port):
            raise ports.no_device(self.port)
        return subprocess.call(self.argv(*args))

