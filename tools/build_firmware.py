# airshake_tools.build_firmware: MicroPython firmware with the airshake code frozen in.
# `firmware` builds an ESP32 board (boards/esp32/<name>/, with ESP-IDF installed); `twin`
# builds the 32-bit unix "device twin" (boards/twin/) that the tests run, cached in
# build/twin/. Both take the MicroPython source from MICROPYTHON_SRC, else
# ../shared/micropython's tarball unpacked into build/, else a clone of MPY_TAG (the same
# order for micropython-lib and MPY_LIB_DIR). Without ESP-IDF, `firmware` stops in one line
# before anything slow. Every failure is one UserError line (no traceback).
import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

from host_server.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
SHARED = ROOT.parent / "shared" / "micropython"   # offline copies (may not exist)
MPY_TAG = "v1.28.0"
MPY_DIRNAME = "micropython-1.28.0"
MPY_GIT = "https://github.com/micropython/micropython.git"
MPY_LIB_GIT = "https://github.com/micropython/micropython-lib.git"
IDF_VERSION = "v5.5.1"   # ports/esp32/README.md of MPY_TAG: recommended (v5.3, v5.4.x work)

ESP32_BOARDS = ROOT / "boards" / "esp32"
TWIN_MANIFEST = ROOT / "boards" / "twin" / "manifest.py"
TWIN_DIR = BUILD / "twin"
# the unix port as the twin: 32-bit, without the features that need git submodules
# (btree: berkeley-db, ssl: mbedtls, ffi: libffi), as ../shared/micropython/README.md says
TWIN_MAKE_ARGS = ["VARIANT=standard", "MICROPY_FORCE_32BIT=1", "MICROPY_PY_BTREE=0",
                  "MICROPY_PY_SSL=0", "MICROPY_PY_FFI=0"]
# the heap the twin runs the firmware with (`-X heapsize`): a classic ESP32 without PSRAM
# gives MicroPython roughly 100-160 KB, less with Wi-Fi on (issue 12)
TWIN_HEAP = "96k"


def _log(msg: str) -> None:
    print("build_firmware: " + msg, file=sys.stderr, flush=True)


def _run(cmd: list[str], what: str, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> None:
    _log(" ".join(cmd))
    r = subprocess.run(cmd, cwd=cwd, env=env)
    if r.returncode != 0:
        raise UserError(f"{what} failed (exit {r.returncode}): see the output above")


# -- sources -----------------------------------------------------------------------------

def _unpack(tarball: Path, dest: Path) -> Path:
    """Unpack tarball's single top folder as dest (atomically: a half-unpacked tree never
    stays under the final name)."""
    _log(f"unpacking {tarball} into {dest}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=dest.parent))
    try:
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
        tops = list(tmp.iterdir())
        if len(tops) != 1 or not tops[0].is_dir():
            raise UserError(f"{tarball} does not hold one top folder: unpack it yourself "
                            "and pass its path")
        tops[0].rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _clone(url: str, dest: Path, tag: str | None) -> Path:
    if shutil.which("git") is None:
        raise UserError(f"no source for {dest.name} and git is not installed: set the path "
                        "to a copy (MICROPYTHON_SRC / MPY_LIB_DIR)")
    cmd = ["git", "clone", "--depth", "1"] + (["-b", tag] if tag else []) + [url, str(dest)]
    _run(cmd, f"cloning {url}")
    return dest


def micropython_src() -> Path:
    """The MicroPython source tree: MICROPYTHON_SRC, else build/micropython-1.28.0 (from
    ../shared's tarball if it exists, else cloned at MPY_TAG)."""
    given = os.environ.get("MICROPYTHON_SRC")
    if given:
        src = Path(given).resolve()
        if not (src / "py" / "mpconfig.h").is_file():
            raise UserError(f"MICROPYTHON_SRC={given} is not a MicroPython source tree "
                            "(no py/mpconfig.h)")
        return src
    src = BUILD / MPY_DIRNAME
    if (src / "py" / "mpconfig.h").is_file():
        return src
    tarball = SHARED / (MPY_DIRNAME + ".tar.gz")
    if tarball.is_file():
        return _unpack(tarball, src)
    return _clone(MPY_GIT, src, MPY_TAG)


def micropython_lib(src: Path) -> Path:
    """micropython-lib: MPY_LIB_DIR, else the source's submodule if checked out, else
    build/micropython-lib (from ../shared's tarball, else cloned)."""
    given = os.environ.get("MPY_LIB_DIR")
    if given:
        lib = Path(given).resolve()
        if not (lib / "README.md").is_file() or not (lib / "micropython").is_dir():
            raise UserError(f"MPY_LIB_DIR={given} is not a micropython-lib checkout")
        return lib
    for lib in (src / "lib" / "micropython-lib", BUILD / "micropython-lib"):
        if (lib / "README.md").is_file():
            return lib
    tarball = SHARED / "micropython-lib.tar.gz"
    if tarball.is_file():
        return _unpack(tarball, BUILD / "micropython-lib")
    return _clone(MPY_LIB_GIT, BUILD / "micropython-lib", None)


# -- manifests ---------------------------------------------------------------------------

def _manifestfile(src: Path) -> ModuleType:
    """MicroPython's own manifest interpreter (tools/manifestfile.py of the source)."""
    path = src / "tools" / "manifestfile.py"
    spec = importlib.util.spec_from_file_location("mpy_manifestfile", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise UserError(f"{path} is missing: MICROPYTHON_SRC is not a full source tree")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def manifest_files(manifest: Path, src: Path, lib: Path, port: str) -> list[tuple[Path, str]]:
    """(source file, frozen name) for every file the manifest freezes, resolved as the
    port's build resolves it (require() reads micropython-lib)."""
    mf = _manifestfile(src)
    path_vars = {"MPY_DIR": str(src), "MPY_LIB_DIR": str(lib),
                 "PORT_DIR": str(src / "ports" / port), "BOARD_DIR": str(manifest.parent)}
    m = mf.ManifestFile(mf.MODE_FREEZE, path_vars)
    try:
        m.execute(str(manifest))
    except mf.ManifestFileError as e:
        raise UserError(f"{manifest}: {e}")
    return [(Path(f.full_path), f.target_path) for f in m.files()]


# -- the 32-bit unix twin ----------------------------------------------------------------

def _tree_stamp(top: Path, h: "hashlib._Hash") -> None:
    if not top.is_dir():
        return
    for folder, dirs, names in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("build", ".")))
        for name in sorted(names):
            st = os.stat(os.path.join(folder, name))
            h.update(f"{folder}/{name}:{st.st_size}:{st.st_mtime_ns}\n".encode())


def twin_key(src: Path, lib: Path, manifest: Path = TWIN_MANIFEST) -> str:
    """What the twin binary depends on: the frozen files' contents, the make flags and the
    C source the unix port compiles (sizes and times of py/, extmod/, shared/, lib/,
    ports/unix)."""
    h = hashlib.sha256(" ".join(TWIN_MAKE_ARGS).encode() + str(src).encode())
    for full, target in manifest_files(manifest, src, lib, "unix"):
        h.update(target.encode() + b"\0" + full.read_bytes() + b"\0")
    for part in ("py", "extmod", "shared", "lib", "ports/unix"):
        _tree_stamp(src / part, h)
    return h.hexdigest()


def _write_runner(binary: Path) -> Path:
    """build/twin/micropython-twin: the twin as the tests run it. The heap is TWIN_HEAP
    unless the caller passes its own -X heapsize (the later one wins), and frozen modules
    come before a device root's lib/ (MICROPYPATH: main.py then leaves sys.path alone).
    Also build/twin/run/, where tests/mprun.py runs on the frozen core: its tests/ and testkit/
    link to the checkout's, and it has no firmware/lib for mprun to put first on sys.path."""
    run = binary.parent / "run"
    run.mkdir(exist_ok=True)
    for tree in ("tests", "testkit"):
        if not (run / tree).exists():
            (run / tree).symlink_to(os.path.relpath(ROOT / tree, run))
    runner = binary.with_name("micropython-twin")
    runner.write_text(
        "#!/bin/sh\n"
        "# the 32-bit device twin (written by tools/build_firmware.py): frozen firmware\n"
        "# first on sys.path, an ESP32-sized heap unless the caller passes its own\n"
        f'MICROPYPATH="${{MICROPYPATH-.frozen:lib}}" exec "{binary}" '
        f'-X heapsize="${{TWIN_HEAP:-{TWIN_HEAP}}}" "$@"\n')
    runner.chmod(0o755)
    return runner


def build_twin(force: bool = False) -> Path:
    """The twin binary, built only when twin_key changed; returns its runner script."""
    src = micropython_src()
    lib = micropython_lib(src)
    binary = TWIN_DIR / "micropython"
    stamp = TWIN_DIR / "key"
    key = twin_key(src, lib)
    if not force and binary.is_file() and stamp.is_file() and stamp.read_text() == key:
        _log(f"twin up to date: {binary}")
        return _write_runner(binary)
    if shutil.which("make") is None or shutil.which("gcc") is None:
        raise UserError("the twin needs make and gcc (with gcc-multilib for -m32): "
                        "apt-get install -y build-essential gcc-multilib")
    obj = TWIN_DIR / "obj"
    # mpy-cross first, in its own tree: a BUILD= given to the port's make would reach the
    # sub-make that builds it and mix the two builds' objects
    _run(["make", "-C", str(src / "mpy-cross"), f"-j{os.cpu_count() or 1}"],
         "building mpy-cross")
    _run(["make", "-C", str(src / "ports" / "unix"), f"-j{os.cpu_count() or 1}",
          *TWIN_MAKE_ARGS, f"BUILD={obj}", f"FROZEN_MANIFEST={TWIN_MANIFEST}",
          f"MPY_LIB_DIR={lib}"], "building the unix twin (make -C ports/unix)")
    built = obj / "micropython"
    if not built.is_file():
        raise UserError(f"the unix build made no {built}: see the output above")
    shutil.copy2(built, binary)
    stamp.write_text(key)
    _log(f"twin built: {binary}")
    return _write_runner(binary)


# -- ESP32 firmware ----------------------------------------------------------------------

def esp32_board_names() -> list[str]:
    return sorted(p.name for p in ESP32_BOARDS.iterdir() if (p / "manifest.py").is_file())


def esp32_board_dir(board: str) -> Path:
    path = ESP32_BOARDS / board
    if not board or not (path / "mpconfigboard.cmake").is_file():
        known = ", ".join(esp32_board_names())
        raise UserError(f"no ESP32 board definition boards/esp32/{board}/: choose one of "
                        f"{known}")
    return path


def check_idf() -> None:
    """ESP-IDF present (idf.py on PATH and IDF_PATH set, as `. export.sh` leaves them)."""
    if shutil.which("idf.py") is None or not os.environ.get("IDF_PATH"):
        raise UserError(f"ESP-IDF not found (no idf.py on PATH or IDF_PATH unset): install "
                        f"ESP-IDF {IDF_VERSION} and run `. $IDF_PATH/export.sh` "
                        "(boards/README.md)")


def build_firmware(board: str, production: bool = False) -> Path:
    """boards/esp32/<board>/ built with the port's make wrapper around idf.py; returns
    the firmware image (bootloader, partition table and app in one .bin)."""
    board_dir = esp32_board_dir(board)
    check_idf()
    variant = "PRODUCTION" if production else ""
    env = dict(os.environ)
    if production:
        key = env.get("AIRSHAKE_SECURE_BOOT_KEY", "")
        if not key or not Path(key).is_file():
            raise UserError("a production build signs the bootloader and app: set "
                            "AIRSHAKE_SECURE_BOOT_KEY to your RSA-3072 signing key (.pem); "
                            "`espsecure.py generate_signing_key --version 2 key.pem` makes one")
        env["AIRSHAKE_SECURE_BOOT_KEY"] = str(Path(key).resolve())
    src = micropython_src()
    lib = micropython_lib(src)
    env["MPY_LIB_DIR"] = str(lib)   # read by boards/esp32/<board>/mpconfigboard.cmake
    out = BUILD / ("esp32-" + board + ("-production" if production else ""))
    _run(["make", "-C", str(src / "mpy-cross")], "building mpy-cross", env=env)
    cmd = ["make", "-C", str(src / "ports" / "esp32"), f"BOARD_DIR={board_dir}",
           f"BUILD={out}"] + ([f"BOARD_VARIANT={variant}"] if variant else [])
    _run(cmd, f"building the {board} firmware (idf.py)", env=env)
    image = out / "firmware.bin"
    if not image.is_file():
        raise UserError(f"the ESP32 build made no {image}: see the output above")
    _log(f"firmware: {image}")
    return image


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m airshake_tools.build_firmware",
                                 description="MicroPython firmware with airshake frozen in")
    sub = ap.add_subparsers(dest="cmd", required=True)
    fw = sub.add_parser("firmware", help="an ESP32 board's firmware (needs ESP-IDF)")
    fw.add_argument("--board", required=True)
    fw.add_argument("--production", action="store_true",
                    help="flash encryption and secure boot v2 (boards/README.md)")
    tw = sub.add_parser("twin", help="the 32-bit unix twin, cached in build/twin/")
    tw.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "firmware":
            print(build_firmware(args.board, args.production))
        else:
            print(build_twin(args.force))
    except UserError as e:
        print(f"build_firmware: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
