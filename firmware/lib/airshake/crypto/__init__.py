# airshake.crypto: chooses a crypto backend and refuses any that fails its self-tests.
# Backends: "pyca" (CPython, cryptography), "ucrypto" (ucryptography C module in a custom
# firmware; only its primitives that pass the known-answer tests are used, the rest come
# from "pure"), "pure" (pure Python on hashlib/cryptolib, the stock-firmware path).
# Every backend passes airshake.crypto.selftest before load_backend returns it.

from airshake.errors import BackendError

_loaded = {}


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


def load_backend(name=None):
    """Return a self-tested backend. name=None picks the best available one:
    pyca, then ucrypto, then pure."""
    if name is None:
        for candidate in ("pyca", "ucrypto", "pure"):
            try:
                return load_backend(candidate)
            except (BackendError, ImportError):
                continue
        raise BackendError("no crypto backend passed its self-tests")
    if name in _loaded:
        return _loaded[name]
    try:
        backend = _construct(name)
    except ImportError as e:
        raise BackendError("crypto backend %s is not available here: %s" % (name, e))
    from airshake.crypto.selftest import run as run_selftests
    failed = run_selftests(backend)
    if failed:
        raise BackendError("crypto backend %s failed self-tests: %s" % (name, ", ".join(failed)))
    _loaded[name] = backend
    return backend


default_backend = load_backend
