# airshake_tools.build_firmware: MicroPython firmware with the airshake code frozen in.
# `firmware` builds an ESP32 board (boards/esp32/<name>/, with ESP-IDF installed); `twin`
# builds the 32-bit unix "device twin" (boards/twin/) that the tests run, cached in
# build/twin/; `twin --ucrypto` the same twin with the ucryptography C module on Mbed TLS,
# cached in build/twin-ucrypto/ (its own patched copy of the source: the plain twin's
# tree stays untouched). All take the MicroPython source from MICROPYTHON_SRC, else
# ../shared/micropython's tarball unpacked into build/, else a clone of MPY_TAG (the same
# order for micropython-lib and MPY_LIB_DIR, ucryptography and UCRYPTOGRAPHY_SRC, Mbed TLS
# and MBEDTLS_SRC: those two cloned at their pinned commits). Without ESP-IDF, `firmware`
# stops in one line before anything slow. Every failure is one UserError line (no traceback).
import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
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
FROZEN_MANIFEST = ROOT / "boards" / "frozen" / "manifest.py"
BUILD_ID_ENV = "AIRSHAKE_BUILD_ID_DIR"   # read by boards/frozen/manifest.py
TWIN_DIR = BUILD / "twin"
# the unix port as the twin: 32-bit, without the features that need git submodules
# (btree: berkeley-db, ssl: mbedtls, ffi: libffi), as ../shared/micropython/README.md says
TWIN_MAKE_ARGS = ["VARIANT=standard", "MICROPY_FORCE_32BIT=1", "MICROPY_PY_BTREE=0",
                  "MICROPY_PY_SSL=0", "MICROPY_PY_FFI=0"]
# the heap the twin runs the firmware with (`-X heapsize`): a classic ESP32 without PSRAM
# gives MicroPython roughly 100-160 KB, less with Wi-Fi on (issue 12)
TWIN_HEAP = "96k"

# ucryptography (github.com/dmazzella/ucryptography) with its c25519 and BLAKE2 submodules,
# and the Mbed TLS commit MicroPython v1.28.0 pins as lib/mbedtls: the commits
# ../shared/micropython/README.md names, cloned at them when no copy is given or shared
UCRYPTO_TWIN_DIR = BUILD / "twin-ucrypto"
UCRYPTO_GIT = "https://github.com/dmazzella/ucryptography.git"
UCRYPTO_COMMIT = "3eb8a0016e6f57b445ded8ef543aaef8b5a62cbd"
UCRYPTO_TARBALL = "ucryptography-3eb8a00.tar.gz"
MBEDTLS_GIT = "https://github.com/Mbed-TLS/mbedtls.git"
MBEDTLS_COMMIT = "107ea89daaefb9867ea9121002fbbdf926780e98"
MBEDTLS_TARBALL = "mbedtls-3.6.2-107ea89.tar.gz"
# the Mbed TLS options ucryptography needs on top of MicroPython's (PKCS#1 v2.1 for OAEP
# and PSS, PEM/PK writing, prime generation, ...): its own patch of the common config
UCRYPTO_PATCH = "patches/extmod__mbedtls__mbedtls_config_common.h.patch"
# MBEDTLS_ECP_NIST_OPTIM (fast reduction modulo the NIST primes): on in ESP-IDF's Mbed TLS
# (CONFIG_MBEDTLS_ECP_NIST_OPTIM=y by default), off in MicroPython's own configuration; on
# here so that the twin's P-256 runs the code an ESP32 runs
UCRYPTO_TWIN_MAKE_ARGS = [a for a in TWIN_MAKE_ARGS if a != "MICROPY_PY_SSL=0"] + [
    "MICROPY_PY_SSL=1", "MICROPY_SSL_MBEDTLS=1", "CFLAGS_EXTRA=-DMBEDTLS_ECP_NIST_OPTIM"]


class Missing(UserError):
    """A build cannot start here: a source, a tool or the network it needs is missing
    (`twin --or-skip` says so in one line and succeeds; anything else is a failure)."""


def _log(msg: str) -> None:
    print("build_firmware: " + msg, file=sys.stderr, flush=True)


def _run(cmd: list[str], what: str, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> None:
    _log(" ".join(cmd))
    # the tools' output goes to stderr: stdout carries only the result (a path), for
    # callers such as make test-twin that read it
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=sys.stderr)
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
        raise Missing(f"no source for {dest.name} and git is not installed: set the path "
                      "to a copy (MICROPYTHON_SRC / MPY_LIB_DIR)")
    cmd = ["git", "clone", "--depth", "1"] + (["-b", tag] if tag else []) + [url, str(dest)]
    try:
        _run(cmd, f"cloning {url}")
    except UserError as e:
        raise Missing(f"no source for {dest.name} ({e}): set the path to a copy "
                      "(MICROPYTHON_SRC / MPY_LIB_DIR)") from e
    return dest


def _clone_commit(url: str, dest: Path, commit: str, env_name: str) -> Path:
    """dest cloned at one commit, submodules included (into a temporary name first)."""
    if shutil.which("git") is None:
        raise Missing(f"no source for {dest.name} and git is not installed: set {env_name} "
                      "to a copy")
    tmp = dest.with_name(dest.name + ".cloning")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _run(["git", "clone", url, str(tmp)], f"cloning {url}")
    except UserError as e:
        raise Missing(f"no source for {dest.name} ({e}): set {env_name} to a copy") from e
    _run(["git", "-C", str(tmp), "checkout", "-q", commit], f"checking out {commit}")
    _run(["git", "-C", str(tmp), "submodule", "update", "--init", "--depth", "1"],
         f"fetching the submodules of {url}")
    tmp.rename(dest)
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


def _given(env_name: str, marker: str, what: str) -> Path | None:
    given = os.environ.get(env_name)
    if not given:
        return None
    path = Path(given).resolve()
    if not (path / marker).is_file():
        raise UserError(f"{env_name}={given} is not {what} (no {marker})")
    return path


def _source(env_name: str, marker: str, what: str, name: str, tarball: str, git: str,
            commit: str) -> Path:
    """A source tree: $env_name if given, else build/<name> (unpacked from ../shared's
    tarball where it exists, else cloned at commit with its submodules)."""
    given = _given(env_name, marker, what)
    if given:
        return given
    dest = BUILD / name
    if (dest / marker).is_file():
        return dest
    if (SHARED / tarball).is_file():
        return _unpack(SHARED / tarball, dest)
    return _clone_commit(git, dest, commit, env_name)


def ucryptography_src() -> Path:
    """ucryptography's folder (micropython.mk, micropython.cmake, c25519/ and BLAKE2/ filled
    in): UCRYPTOGRAPHY_SRC, else build/ucryptography (from ../shared's tarball, else cloned
    at UCRYPTO_COMMIT with its submodules)."""
    return _source("UCRYPTOGRAPHY_SRC", "c25519/src/c25519.c",
                   "a ucryptography checkout with its submodules", "ucryptography",
                   UCRYPTO_TARBALL, UCRYPTO_GIT, UCRYPTO_COMMIT)


def mbedtls_src() -> Path:
    """Mbed TLS (include/ and library/): MBEDTLS_SRC, else build/mbedtls (from ../shared's
    tarball, else cloned at MBEDTLS_COMMIT)."""
    return _source("MBEDTLS_SRC", "include/mbedtls/build_info.h", "an Mbed TLS 3.6 source tree",
                   "mbedtls", MBEDTLS_TARBALL, MBEDTLS_GIT, MBEDTLS_COMMIT)


def ucrypto_micropython_src(src: Path, ucrypto: Path, mbedtls: Path) -> Path:
    """build/twin-ucrypto/<source>: a copy of the MicroPython source with Mbed TLS at
    lib/mbedtls and ucryptography's config patch applied (the plain twin and a source the
    user gave stay unpatched). Made again when the source, ucryptography or Mbed TLS
    changed (their paths and the source's file sizes and times); a half-made copy never
    keeps the final name."""
    dest = UCRYPTO_TWIN_DIR / src.name
    h = hashlib.sha256(f"{src}\n{ucrypto}\n{mbedtls}\n".encode())
    for part in ("py", "extmod", "shared", "lib", "ports/unix", "mpy-cross"):
        _tree_stamp(src / part, h)
    if (ucrypto / UCRYPTO_PATCH).is_file():
        h.update((ucrypto / UCRYPTO_PATCH).read_bytes())
    made = dest / ".airshake-ucrypto"
    if made.is_file() and made.read_text() == h.hexdigest():
        return dest
    if shutil.which("patch") is None:
        raise UserError("the ucrypto twin needs `patch` (apt-get install -y patch)")
    _log(f"copying {src} to {dest} (Mbed TLS at lib/mbedtls, ucryptography's config patch)")
    tmp = dest.with_name(dest.name + ".making")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, tmp, symlinks=True,
                    ignore=shutil.ignore_patterns("build", "build-*", ".git"))
    pinned = tmp / "lib" / "mbedtls"    # the submodule folder, empty or absent in a tarball
    if pinned.is_symlink():
        pinned.unlink()
    shutil.rmtree(pinned, ignore_errors=True)
    pinned.parent.mkdir(parents=True, exist_ok=True)
    pinned.symlink_to(mbedtls)
    _run(["patch", "-p1", "--forward", "--no-backup-if-mismatch", "-i",
          str(ucrypto / UCRYPTO_PATCH)], "applying ucryptography's Mbed TLS config patch",
         cwd=tmp)
    (tmp / ".airshake-ucrypto").write_text(h.hexdigest())
    tmp.rename(dest)
    return dest


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


def twin_key(src: Path, lib: Path, manifest: Path = TWIN_MANIFEST,
             make_args: list[str] = TWIN_MAKE_ARGS, trees: tuple[Path, ...] = ()) -> str:
    """What the twin binary depends on: the frozen files' contents, the make flags and the
    C source the unix port compiles (sizes and times of py/, extmod/, shared/, lib/,
    ports/unix, and of `trees`: the user C modules and Mbed TLS of the ucrypto twin)."""
    h = hashlib.sha256(" ".join(make_args).encode() + str(src).encode())
    for full, target in manifest_files(manifest, src, lib, "unix"):
        h.update(target.encode() + b"\0" + full.read_bytes() + b"\0")
    for top in [src / part for part in ("py", "extmod", "shared", "lib", "ports/unix")] \
            + list(trees):
        _tree_stamp(top, h)
    return h.hexdigest()


def build_id_env(folder: Path, src: Path, lib: Path, port: str) -> dict[str, str]:
    """The frozen module airshake_build (ID: SHA-256 of every frozen file), written under
    folder for boards/frozen/manifest.py to freeze: the firmware keys its self-test record
    by it (firmware/lib/device/backend.py), so new frozen code is tested again."""
    h = hashlib.sha256()
    for full, target in manifest_files(FROZEN_MANIFEST, src, lib, port):
        h.update(target.encode() + b"\0" + full.read_bytes() + b"\0")
    out = folder / "buildid"
    out.mkdir(parents=True, exist_ok=True)
    (out / "airshake_build.py").write_text(
        "# airshake_build: this firmware image's build id (tools/build_firmware.py)\n"
        f'ID = "{h.hexdigest()}"\n')
    return {BUILD_ID_ENV: str(out)}


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


def gcc_builds_32bit() -> bool:
    """gcc links a 32-bit program (gcc-multilib installed)."""
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(["gcc", "-m32", "-x", "c", "-", "-o", str(Path(tmp) / "a.out")],
                           input=b"int main(void) { return 0; }\n", capture_output=True)
    return r.returncode == 0


def build_twin(force: bool = False, ucrypto: bool = False) -> Path:
    """The twin binary, built only when twin_key changed; returns its runner script.
    ucrypto: the twin with the ucryptography module, in build/twin-ucrypto/."""
    src = micropython_src()
    lib = micropython_lib(src)
    folder, make_args, extra = TWIN_DIR, TWIN_MAKE_ARGS, []
    trees: tuple[Path, ...] = ()
    if ucrypto:
        ucrypto_dir, mbedtls = ucryptography_src(), mbedtls_src()
        src = ucrypto_micropython_src(src, ucrypto_dir, mbedtls)
        # USER_C_MODULES is a folder of modules: one holding only ucryptography
        mods = UCRYPTO_TWIN_DIR / "usermods"
        mods.mkdir(parents=True, exist_ok=True)
        link = mods / "ucryptography"
        if not link.is_symlink() or link.resolve() != ucrypto_dir:
            link.unlink(missing_ok=True)
            link.symlink_to(ucrypto_dir)
        folder, make_args, trees = UCRYPTO_TWIN_DIR, UCRYPTO_TWIN_MAKE_ARGS, (ucrypto_dir,
                                                                             mbedtls)
        extra = [f"USER_C_MODULES={mods}"]
    name = "ucrypto twin" if ucrypto else "twin"
    binary = folder / "micropython"
    stamp = folder / "key"
    key = twin_key(src, lib, TWIN_MANIFEST, make_args, trees)
    if not force and binary.is_file() and stamp.is_file() and stamp.read_text() == key:
        _log(f"{name} up to date: {binary}")
        return _write_runner(binary)
    if shutil.which("make") is None or shutil.which("gcc") is None or not gcc_builds_32bit():
        raise Missing(f"the {name} needs make and a gcc that builds 32-bit programs: "
                      "apt-get install -y build-essential gcc-multilib")
    obj = folder / "obj"
    flags = obj / ".make-args"    # make tracks sources, not flags: new flags, clean build
    if flags.is_file() and flags.read_text() != " ".join(make_args):
        shutil.rmtree(obj)
    obj.mkdir(parents=True, exist_ok=True)
    flags.write_text(" ".join(make_args))
    started = time.monotonic()
    _log(f"building the {name} in {obj} (a few minutes on 2 cores; cached afterwards)")
    # mpy-cross first, in its own tree: a BUILD= given to the port's make would reach the
    # sub-make that builds it and mix the two builds' objects
    _run(["make", "-C", str(src / "mpy-cross"), f"-j{os.cpu_count() or 1}"],
         "building mpy-cross")
    _run(["make", "-C", str(src / "ports" / "unix"), f"-j{os.cpu_count() or 1}",
          *make_args, *extra, f"BUILD={obj}", f"FROZEN_MANIFEST={TWIN_MANIFEST}",
          f"MPY_LIB_DIR={lib}"], f"building the {name} (make -C ports/unix)",
         env=dict(os.environ, **build_id_env(folder, src, lib, "unix")))
    built = obj / "micropython"
    if not built.is_file():
        raise UserError(f"the unix build made no {built}: see the output above")
    # a new file renamed over the old one: a twin running now (another test) keeps its own
    tmp = binary.with_name(binary.name + ".new")
    shutil.copy2(built, tmp)
    os.replace(tmp, binary)
    stamp.write_text(key)
    _log(f"{name} built in {time.monotonic() - started:.0f} s: {binary}")
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


def build_firmware(board: str, production: bool = False, ucrypto: bool = True) -> Path:
    """boards/esp32/<board>/ built with the port's make wrapper around idf.py; returns
    the firmware image (bootloader, partition table and app in one .bin). ucrypto: with
    the ucryptography C module (boards/esp32/common.cmake reads AIRSHAKE_UCRYPTOGRAPHY);
    without it the device runs the pure backend."""
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
    if ucrypto:
        env["AIRSHAKE_UCRYPTOGRAPHY"] = str(ucryptography_src())   # boards/esp32/common.cmake
    else:
        env.pop("AIRSHAKE_UCRYPTOGRAPHY", None)
    out = BUILD / ("esp32-" + board + ("-production" if production else "")
                   + ("" if ucrypto else "-pure"))
    env.update(build_id_env(out, src, lib, "esp32"))
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
    fw.add_argument("--no-ucrypto", action="store_true",
                    help="leave out the ucryptography C module (the device runs pure Python)")
    tw = sub.add_parser("twin", help="the 32-bit unix twin, cached in build/twin/")
    tw.add_argument("--force", action="store_true", help="rebuild even when up to date")
    tw.add_argument("--ucrypto", action="store_true",
                    help="with the ucryptography C module, cached in build/twin-ucrypto/")
    tw.add_argument("--or-skip", action="store_true",
                    help="where a source or tool is missing, say so in one line, print "
                         "nothing on stdout and exit 0 (make test)")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "firmware":
            print(build_firmware(args.board, args.production, not args.no_ucrypto))
        else:
            print(build_twin(args.force, args.ucrypto))
    except Missing as e:
        if args.cmd == "twin" and args.or_skip:
            print(f"build_firmware: skipped: {e}", file=sys.stderr)
            return 0
        print(f"build_firmware: {e}", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"build_firmware: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
