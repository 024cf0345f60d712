# device.backend: owns which crypto backend the firmware uses and the record of its
# self-tests in airshake-data/selftest.json.
# The choice: "ucrypto" when the firmware holds the ucryptography C module (importable as
# `cryptography`): its primitives where their known-answer tests pass on this firmware,
# the pure code for the rest (airshake.crypto.ucrypto); "pure" otherwise.
# The record: the known-answer tests cost seconds per wake on an ESP32, so they run when
# a firmware or backend is first used and their passes are kept, keyed by code_key():
# SHA-256 over the MicroPython build (sys.version names its commit and date,
# sys.implementation its version and .mpy ABI), the backend's name, and the bytes of
# every file of the crypto package on the filesystem (lib/airshake/crypto/*.py or *.mpy,
# what a deploy replaces). Frozen code is not on the filesystem: the firmware image's
# build id (the frozen module `airshake_build`, ID, made by the frozen build) stands for
# it; frozen code without one is never recorded, its tests run on every wake.
# A composite backend (ucrypto) also has its choice of source per primitive recorded
# ("routes", its .sources), so a later boot routes without testing ucryptography again.
# Rules: the RNG check ("random") runs every time (a health test of the hardware, not
# of the code; microseconds). The record holds passes only: a failure is never kept, let
# alone as a pass. A record of another key, or an unreadable one, is ignored and
# everything runs again. It is written (atomically, device.files) only when a new
# primitive passed.
import sys

from device import files

_CHUNK = 512
# code_key() of this boot, once computed (None: not recordable)
_key = []  # type: list


def choose():
    """"ucrypto" where the firmware has ucryptography built in, else "pure"."""
    try:
        import cryptography
    except ImportError:
        return "pure"
    return "ucrypto" if hasattr(cryptography, "ec") else "pure"


def _crypto_dir():
    """The crypto package's folder on the filesystem, or None (frozen into the image)."""
    import os
    import airshake.crypto as pkg
    path = getattr(pkg, "__file__", "") or ""
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    if not folder:
        return None
    try:
        os.stat(path)                     # a frozen module's __file__ is no real file
    except OSError:
        return None
    return folder


def code_key(name):
    """Hex key of this firmware's crypto code and build for backend `name`, or None when
    it cannot be known (frozen code without a build id)."""
    if _key:
        return _key[0] + name if _key[0] is not None else None
    import hashlib
    import os
    h = hashlib.sha256(b"airshake selftest 1\n")
    h.update(repr((sys.version, sys.implementation)).encode())
    folder = _crypto_dir()
    if folder is None:
        try:
            import airshake_build  # type: ignore[import-not-found]  # frozen builds only
            h.update(b"frozen " + str(airshake_build.ID).encode())
        except (ImportError, AttributeError):
            _key.append(None)
            return None
    else:
        for entry in sorted(os.listdir(folder)):
            if not entry.endswith((".py", ".mpy")):
                continue
            h.update(b"\nfile " + entry.encode() + b"\n")
            with open(folder + "/" + entry, "rb") as f:
                while True:
                    chunk = f.read(_CHUNK)
                    if not chunk:
                        break
                    h.update(chunk)
    _key.append(h.digest().hex()[:32] + ":")
    return _key[0] + name


def recorded(key):
    """(passed primitives, composite routes) the record holds under key; empty when there
    is no record, or one of another key, or one it cannot read."""
    rec = files.read_json(files.SELFTEST) if key is not None else None
    if rec is None or rec.get("key") != key:
        return (), {}
    passed, routes = rec.get("passed"), rec.get("routes")
    if not isinstance(passed, list):
        return (), {}
    if not isinstance(routes, dict):
        routes = {}
    return (tuple(p for p in passed if isinstance(p, str)),
            dict((k, v) for k, v in routes.items() if isinstance(v, str)))


def load(primitives, log=None):
    """The backend of choose() with the known-answer tests of `primitives` passed: run now,
    or recorded for this very code and build (with, for ucrypto, the recorded choice of
    each primitive's source). Returns (backend, ms spent on tests). Raises BackendError
    when a test fails (nothing of that is recorded)."""
    import time
    from airshake.crypto import load_backend, passed_primitives
    name = choose()
    key = code_key(name)
    passed, routes = recorded(key)
    # the RNG check is a health test of the hardware, not of the code: always run
    trusted = tuple(p for p in passed if p != "random")
    before = passed_primitives(name)
    ran = [p for p in primitives if p not in trusted and p not in before]
    t0 = time.ticks_ms()
    backend = load_backend(name, primitives, trusted=trusted, routes=routes)
    ms = time.ticks_diff(time.ticks_ms(), t0)
    decided = dict(routes)
    decided.update(getattr(backend, "sources", None) or {})
    if ran or decided != routes:
        saved = key is not None and _save(key, passed_primitives(name), passed, decided,
                                          routes)
        if log is not None and ran:
            log("selftest", "backend=%s" % name, "ran=%s" % ",".join(ran), "ms=%d" % ms,
                "recorded" if saved else "not-recorded")
    return backend, ms


def _save(key, passed, before, routes, routes_before):
    """Add this boot's passes and routes to the record of key (what it held stays)."""
    if set(passed) <= set(before) and routes == routes_before:
        return True
    try:
        files.write_json(files.SELFTEST, {"key": key,
                                          "passed": sorted(set(passed) | set(before)),
                                          "routes": routes})
    except OSError:
        return False
    return True


def forget():
    """Forget this boot's key (the unix port runs several wakes in one process)."""
    del _key[:]
