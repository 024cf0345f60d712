# boards/frozen/manifest.py: the airshake firmware as MicroPython freezes it (a manifest in
# the format of MicroPython's tools/manifestfile.py, run by the port's build, never by
# the device). Every ESP32 board manifest (boards/esp32/<name>/manifest.py) and the
# 32-bit unix twin (boards/twin/manifest.py) include it, so all freeze the same code:
# asyncio, the protocol core (firmware/lib/airshake, without the CPython-only `pyca`
# backend), the device application (firmware/lib/device), the radio adapters
# (firmware/lib/radios), and boot.py/main.py. A frozen boot.py/main.py runs before a file
# of the same name on the filesystem (shared/runtime/pyexec.c pyexec_file_if_exists), and
# on the ESP32 "/lib" comes after ".frozen" in sys.path, so files copied later by
# `airshake device deploy` do not replace frozen code there.
# ruff: noqa: F821 (include/package/module are the manifest's built-ins)
_LIB = "../../firmware/lib"
# never on a device: CPython's `cryptography` backend, and B's C509 encoder
_HOST_ONLY = ("crypto/pyca.py", "c509_encoder.py")

include("$(MPY_DIR)/extmod/asyncio")


def _files(root, pkg):
    # the package's .py files, relative to it, without the host-only ones (relative
    # paths: manifestfile.py runs each manifest in its own directory)
    import os
    top = os.path.join(root, pkg)
    found = []
    for folder, _, names in os.walk(top):
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), top).replace(os.sep, "/")
            if name.endswith(".py") and rel not in _HOST_ONLY:
                found.append(rel)
    return sorted(found)


for _pkg in ("airshake", "device", "radios"):
    package(_pkg, files=_files(_LIB, _pkg), base_path=_LIB)
module("boot.py", base_path="../../firmware")
module("main.py", base_path="../../firmware")

# the build id, airshake_build.ID (a hash of the files above), written by
# tools/build_firmware.py: the firmware's self-test record is keyed by it
_build_id_dir = __import__("os").environ.get("AIRSHAKE_BUILD_ID_DIR")
if _build_id_dir:
    module("airshake_build.py", base_path=_build_id_dir)
