# airshake.crypto: chooses a crypto backend and refuses any that fails its self-tests.
# Backends: "pyca" (CPython, cryptography), "ucrypto" (ucryptography C module in a custom
# firmware; only its primitives that pass the known-answer tests are used, the rest come
# from "pure"), "pure" (pure Python on hashlib/cryptolib, the stock-firmware path).
# Every backend passes airshake.crypto.selftest before load_backend returns it: each
# primitive's known-answer test either runs now or passed earlier on this very code and
# backend, as a record the caller keeps says (trusted=; a device keeps one in flash,
# keyed by a hash of its code: device.backend). A failure is never recorded as a pass.

from airshake.errors import BackendError, UsageError

_loaded = {}
_passed = set()    # (backend name, primitive) whose known-answer test passed here


def _construct(name):
    if name == "pyca":
        from airshake.crypto.pyca import PycaBackend
        return PycaBackend()
    if name == "pure":
        from airshake.crypto.pure import PureBackend
        return PureBackend()
    if name == "ucrypto":
        from airshake.crypto.ucrypto import make_ucrypto_backend
        return make_ucrypto_backend()
    raise BackendError("unknown crypto backend %r (use pyca, ucrypto or pure)" % (name,))


# What each suite uses (indexed by suite), as airshake.crypto.selftest names primitives.
# A device tests only these before use (the RSA and P-256 KATs cost RAM and time it need
# not spend). Literal tuples: constants, in a frozen firmware's flash.
SUITE_PRIMITIVES = (
    ("random", "sha256", "hmac_sha256", "aes_ccm", "x25519", "ed25519"),
    ("random", "sha256", "hmac_sha256", "aes_ccm", "x25519", "ed25519", "rsa_oaep", "rsa_pss"),
    ("random", "sha256", "hmac_sha256", "aes_ccm", "p256", "ecdsa_p256"))


def primitives_for(suites):
    out = []
    for s in suites:
        for p in SUITE_PRIMITIVES[s]:
            if p not in out:
                out.append(p)
    return tuple(out)


def handshake_primitives(suite, by_reference):
    """What a device's handshake of `suite` uses: with C_B held (by reference) the anchor's
    signature algorithm is never needed, so its known-answer test is not run (ed25519,
    ecdsa_p256); by value, all of the suite's."""
    if not by_reference:
        return primitives_for((suite,))
    return tuple(p for p in SUITE_PRIMITIVES[suite] if p not in ("ed25519", "ecdsa_p256"))


def load_backend(name=None, primitives=None, trusted=(), routes=None):
    """Return a backend that passed the known-answer tests of `primitives` (default:
    all). name=None picks the best available one: pyca, then ucrypto, then pure.
    trusted: names among `primitives` whose tests passed earlier on this very code and
    backend (the caller's record, e.g. device.backend's): they are not run again.
    routes: for a composite backend (ucrypto), its per-primitive choices recorded with
    those passes ({primitive: backend name}, its .sources then), taken before any test so
    that no choice is tested again. Both only with a name and a list of primitives,
    since a record is of one backend."""
    if (trusted or routes) and (name is None or primitives is None):
        raise UsageError("trusted self-test results need a backend name and primitives")
    if name is None:
        for candidate in ("pyca", "ucrypto", "pure"):
            try:
                return load_backend(candidate, primitives)
            except (BackendError, ImportError):
                continue
        raise BackendError("no crypto backend passed its self-tests")
    key = (name, primitives)
    if key in _loaded:
        return _loaded[key]
    try:
        backend = _construct(name)
    except ImportError as e:
        raise BackendError("crypto backend %s is not available here: %s" % (name, e))
    if routes and hasattr(backend, "assume"):
        backend.assume(routes)
    for p in trusted:
        if p in primitives:
            _passed.add((name, p))
    # a primitive's KAT runs once per process and backend name: a device that loads a
    # record backend and then a handshake backend does not test sha256 and AES-CCM twice
    todo = primitives
    if primitives is not None:
        todo = tuple(p for p in primitives if (name, p) not in _passed)
    if todo != ():
        from airshake.crypto import selftest
        failed = selftest.run(backend, todo)
        _unload_selftest()
        if failed:
            raise BackendError("crypto backend %s failed self-tests: %s"
                               % (name, ", ".join(failed)))
        for p in todo or ():
            _passed.add((name, p))
    _loaded[key] = backend
    return backend


def passed_primitives(name):
    """The primitives of backend `name` that passed in this process (run or trusted), in
    a stable order: what a caller records for the next start."""
    return tuple(sorted(p for n, p in _passed if n == name))


def forget_backends():
    """Forget every loaded backend and every passed self-test, as a reboot would: the next
    load_backend() constructs and tests again (the unix port runs several wakes in one
    process)."""
    _loaded.clear()
    _passed.clear()


def _unload_selftest():
    # the KAT tables are only needed once: give their RAM back on the device
    import sys
    sys.modules.pop("airshake.crypto.selftest", None)
    globals().pop("selftest", None)
    try:
        import gc
        gc.collect()
    except ImportError:
        pass


default_backend = load_backend
