# host_server.device.monitor: watching a device. The firmware logs one "airshake: <step>
# ..." line per step on its serial console (device.app; it keeps no log file), so
# following the log means reading the console: without touching the running firmware
# (follow), by starting main.py through mpremote and streaming what it prints (run: the
# unix port, or a board sitting at its REPL), or interactively (repl). status shows the
# device's settings and wake state files; the key file is never read. A locked device
# (device.lock) has no REPL: its console, which carries the firmware's own lines, is all
# there is; run on the sim's locked board follows that console instead.
import json
import math
import time
from collections.abc import Callable

from host_server.errors import UserError
from host_server.device import console
from host_server.device.layout import DATA_DIR
from host_server.device.mpremote import Mpremote

STATUS_FILES = tuple(DATA_DIR + "/" + n for n in ("config.json", "state.json"))
PRESENCE_FILES = tuple(DATA_DIR + "/" + n for n in ("key.bin", "anchor.der", "session.bin",
                                                    "server.der")) + ("board.py", "main.py")


def _masked(value: object) -> object:
    """value with every secret setting (a key or password: the LoRaWAN AppKey) hidden."""
    if isinstance(value, dict):
        return {k: "<hidden>" if str(k).lower().endswith(("key", "password"))
                else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _stamp(line: str) -> str:
    return time.strftime("%H:%M:%S ") + line


def follow(port: str, baud: int, duration: float | None, reset: bool,
           out: Callable[[str], None]) -> int:
    return console.follow(port, baud=baud, duration=duration, reset=reset, out=out)


_MAIN_END = "AIRSHAKE-MAIN-END"


def run_main(mp: Mpremote, duration: float | None, cycles: int | None,
             out: Callable[[str], None]) -> bool:
    """Start the firmware (main.py) through mpremote and print its output as it comes;
    True when main.py returned, False when following stopped first (duration)."""
    from host_server.device import simstate
    if simstate.locked(mp.port):
        out(_stamp("the board is locked (no REPL): following its console"))
        wakes = [0]

        def ends(line: str) -> bool:       # a wake ends in its sleep line
            wakes[0] += line.startswith("airshake: sleep")
            return wakes[0] >= (cycles or 1)
        console.follow(mp.port, duration=duration, out=lambda line: out(line), until=ends)
        return True
    code = "import sys\n"
    if cycles is not None:
        # sys.argv cannot be rebound on MicroPython: change the list in place
        code += "sys.argv.clear()\nsys.argv.extend(['main.py', '--cycles', %r])\n" % str(cycles)
    code += "sys.modules.pop('main', None)\nimport main\nprint(%r)\n" % _MAIN_END
    ended = []

    def line(text: str) -> None:
        if text.strip() == _MAIN_END:
            ended.append(True)
        else:
            out(_stamp(text))
    mp.run("exec", code, what="running main.py", on_line=line,
           timeout=math.inf if duration is None else duration, until=True)
    return bool(ended)


def repl(mp: Mpremote) -> int:
    return mp.interactive("repl")


def status(mp: Mpremote, out: Callable[[str], None]) -> None:
    """The device's settings and state (JSON) and which of its files exist."""
    code = ("import os\nfor p in %r:\n try:\n  print('S', p, os.stat(p)[6])\n"
            " except OSError:\n  print('S', p, '-')\n" % (PRESENCE_FILES,))
    sizes = {}
    for line in mp.exec(code, what="listing the device's files").splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "S":
            sizes[parts[1]] = parts[2]
    for path in PRESENCE_FILES:
        size = sizes.get(path, "-")
        out(f"{path}: {'missing' if size == '-' else size + ' bytes'}")
    for path in STATUS_FILES:
        data = mp.read(path)
        if data is None:
            out(f"{path}: missing")
            continue
        try:
            value = json.loads(data)
        except ValueError:
            raise UserError(f"{path} on the device is not valid JSON: provision it again")
        out(f"{path}: {json.dumps(_masked(value), sort_keys=True)}")
