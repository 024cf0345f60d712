"""The README's walk-through ("Running it for real"), run as written: its commands are read
out of README.md (the code block after the `tests/host/test_walkthrough.py runs` marker),
so the README cannot go stale without this test failing. Real processes throughout: the
CA, the certificate store, server B, `airshake device sim` (the MicroPython unix port on
a Python-made pty), deploy, provision and monitor.

The substitutions a test must make, and nothing else:
- `source .venv/bin/activate` is skipped; `airshake` is this venv's `bin/airshake`, with
  that `bin/` first on PATH (what activating does);
- the commands run in a fresh temporary directory, with no AIRSHAKE_* variable set;
- the ports 8470 (CS), 8471 (B) and 9471 (B's metrics) become free ports, wherever they
  appear in an argument;
- `/dev/pts/N` becomes the port `airshake device sim` printed;
- `cs serve`, `server` and `device sim` (the "terminal 1/2/3" commands) run in the
  background until the end; every other command must exit 0.
"""
import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from testkit.cs_support import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MARKER = "tests/host/test_walkthrough.py runs"
BACKGROUND = (("cs", "serve"), ("server",), ("device", "sim"))
SIM_LINE = re.compile(r"board on (\S+): use --port (\S+)")

pytestmark = pytest.mark.skipif(not (BIN / "micropython").exists(),
                                reason="needs the MicroPython unix binary (make setup)")


def walkthrough_commands(readme: str) -> list[list[str]]:
    """The argv of every command in the walk-through block, comments and continuation
    lines resolved as a shell would."""
    lines = readme.splitlines()
    at = next(i for i, ln in enumerate(lines) if MARKER in ln)
    start = next(i for i in range(at, len(lines)) if lines[i].startswith("```")) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    commands, pending = [], ""
    for line in lines[start:end]:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        argv = shlex.split(pending + line, comments=True)
        pending = ""
        if argv:
            commands.append(argv)
    return commands


def test_the_readme_block_is_the_walkthrough_this_test_expects():
    commands = walkthrough_commands((ROOT / "README.md").read_text())
    heads = [" ".join(c[:3]) for c in commands]
    assert heads == ["source .venv/bin/activate", "airshake ca init", "airshake ca issue-server",
                     "airshake cs serve", "airshake server --ca-cert",
                     "airshake device sim", "airshake device deploy",
                     "airshake device provision", "airshake device monitor"], heads
    provision = next(c for c in commands if c[1:3] == ["device", "provision"])
    assert "--cs-url" in provision and "--server-name" in provision


class Walk:
    def __init__(self, work: Path):
        self.work = work
        self.ports = {"8470": str(free_port()), "8471": str(free_port()),
                      "9471": str(free_port())}
        self.pty = ""
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRSHAKE_")}
        self.env["PATH"] = str(BIN) + os.pathsep + self.env.get("PATH", "")
        self.background: list[tuple[subprocess.Popen, Path]] = []

    def argv(self, command: list[str]) -> list[str]:
        out = []
        for arg in command:
            for old, new in self.ports.items():
                arg = arg.replace(old, new)
            out.append(arg.replace("/dev/pts/N", self.pty))
        assert out[0] == "airshake", out
        return [str(BIN / "airshake"), *out[1:]]

    def start(self, command: list[str]) -> subprocess.Popen:
        name = "-".join(a for a in command[1:3] if not a.startswith("-"))
        log = self.work / (name + ".log")
        proc = subprocess.Popen(self.argv(command), cwd=self.work, env=self.env,
                                stdin=subprocess.DEVNULL, stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append((proc, log))
        return proc

    def wait_for(self, proc: subprocess.Popen, log: Path, ready, what: str,
                 timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = log.read_text()
            if ready(text):
                return text
            assert proc.poll() is None, f"{what} exited: {text}"
            assert time.monotonic() < deadline, f"{what} not ready: {text}"
            time.sleep(0.1)

    def stop(self):
        for proc, _log in reversed(self.background):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, _log in self.background:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def _cs_up(url: str):
    def ready(_text: str) -> bool:
        try:
            return httpx.get(url + "/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False
    return ready


def test_the_readme_walkthrough_gives_a_handshake_and_acknowledged_readings(tmp_path):
    commands = walkthrough_commands((ROOT / "README.md").read_text())
    walk = Walk(tmp_path)
    outputs = {}
    started = time.monotonic()
    try:
        for command in commands:
            if command[0] == "source":
                continue
            if tuple(command[1:1 + 2]) in BACKGROUND or tuple(command[1:2]) in BACKGROUND:
                proc = walk.start(command)
                log = walk.background[-1][1]
                if command[1:3] == ["cs", "serve"]:
                    url = "http://127.0.0.1:" + walk.ports["8470"]
                    walk.wait_for(proc, log, _cs_up(url), "cs serve")
                elif command[1] == "server":
                    walk.wait_for(proc, log, lambda t: '"ready"' in t, "airshake server")
                else:
                    text = walk.wait_for(proc, log, SIM_LINE.search, "device sim")
                    board, port = SIM_LINE.search(text).groups()
                    assert board == port and Path(port).exists(), text
                    walk.pty = port
                continue
            out = subprocess.run(walk.argv(command), cwd=tmp_path, env=walk.env,
                                 capture_output=True, text=True, timeout=120,
                                 stdin=subprocess.DEVNULL)
            assert out.returncode == 0, (command, out.stdout, out.stderr)
            outputs[" ".join(command[1:3])] = out.stdout
        seconds = time.monotonic() - started
    finally:
        walk.stop()
        logs = {log.name: log.read_text() for _proc, log in walk.background}
    assert "0 files sent" in outputs["device deploy"], outputs["device deploy"]
    assert "enrolled" in outputs["device provision"]
    log = [ln.split("airshake: ", 1)[1] for ln in outputs["device monitor"].splitlines()
           if "airshake: " in ln]
    steps = [ln.split()[0] for ln in log]
    assert steps.count("wake") == 3, log
    assert "complete" in steps and "confirmed" in steps, log
    # wakes 2 and 3: one record each on the saved session, each acknowledged by B
    records = [ln for ln in log if ln.startswith("record ")]
    assert [r.split()[1] for r in records] == ["seq=0", "seq=1"], log
    assert steps.count("reply") == 3, log          # m3's reading and both records
    assert "noreply" not in steps and "handshake" in steps and steps.count("handshake") == 1
    assert not [ln for ln in log if ln.startswith(("error", "session dropped"))], log
    assert all(r.split()[2] == "20B" for r in records), records   # 17 B overhead + reading
    # B: one handshake for this device, and the three readings stored once each
    id_hex = next(ln.split("id=")[1].split()[0] for ln in log if ln.startswith("handshake"))
    events = [json.loads(ln) for ln in logs["server.log"].splitlines() if ln.startswith("{")]
    assert [e["outcome"] for e in events if e["event"] == "handshake"
            and e.get("id") == id_hex] == ["ok"], logs["server.log"]
    with sqlite3.connect(tmp_path / "airshake-b.db") as db:
        kinds = sorted(k for (k,) in db.execute("SELECT kind FROM records WHERE id_a = ?",
                                                (id_hex,)))
    assert kinds == ["m3", "record", "record"], kinds
    print(f"walk-through: {seconds:.1f} s")
