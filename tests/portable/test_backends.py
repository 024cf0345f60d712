# tests/portable/test_backends.py: backend self-tests, contract completeness, and the
# per-primitive selection (build_composite) that keeps defective primitives out.
# The defective stand-in models ucryptography's documented defects: AEAD decryption that
# returns zeros without checking the tag, and Ed25519 wrong for messages >= 64 bytes.
from testkit.support import raises_, backends, IS_MICROPYTHON

import airshake.crypto as crypto
from airshake.crypto import selftest
from airshake.crypto.contract import Backend
from airshake.crypto.pure import PureBackend
from airshake.crypto.ucrypto import build_composite, make_ucrypto_backend
from airshake.errors import AuthenticationFailed, BackendError, InvalidPoint


class DefectiveBackend(PureBackend):
    name = "defective"

    def aes_ccm_decrypt(self, key, nonce, aad, data):
        return bytes(len(data) - 8)  # no tag check, zeros instead of plaintext

    def ed25519_verify(self, pub, msg, sig):
        if len(msg) >= 64:
            return True  # long messages: accepts anything
        return PureBackend.ed25519_verify(self, pub, msg, sig)


class HashOnlyBackend(Backend):
    """Provides one primitive; every other method raises BackendError (not provided)."""
    name = "hash-only"

    def sha256(self, data):
        import hashlib
        return hashlib.sha256(data).digest()


class LenientX25519Backend(PureBackend):
    name = "lenient-x25519"

    def x25519(self, priv, peer):
        from airshake.crypto.x25519 import x25519
        return x25519(priv, peer)  # forgets the all-zero (low-order) check


class HalfProvidedCcmBackend(PureBackend):
    name = "half-ccm"

    def aes_ccm_decrypt(self, key, nonce, aad, data):
        raise BackendError("primitive not provided by this backend: aes_ccm_decrypt")


def _contract_methods():
    """The primitives of the contract (use_random is the one shared, non-primitive hook)."""
    return [n for n in dir(Backend)
            if not n.startswith("_") and callable(getattr(Backend, n)) and n != "use_random"]


def test_use_random_replaces_the_source_of_every_draw():
    backend = PureBackend()
    backend.use_random(lambda n: b"\x07" * n)
    assert backend.random(3) == b"\x07\x07\x07"


def test_selftests_pass_for_each_backend():
    for backend in backends():
        assert selftest.run(backend) == [], backend.name


def test_every_contract_method_is_covered_by_a_selftest_primitive():
    covered = []
    for _, methods in selftest.PRIMITIVES:
        covered.extend(methods)
    assert sorted(covered) == sorted(_contract_methods())
    assert "random" in covered and "rsa_pss_verify" in covered


def test_every_contract_method_exists_on_pure_and_pyca():
    classes = [PureBackend]
    if not IS_MICROPYTHON:
        from airshake.crypto.pyca import PycaBackend
        classes.append(PycaBackend)
    for cls in classes:
        for name in _contract_methods():
            assert getattr(cls, name) is not getattr(Backend, name), (cls.name, name)


def test_selftest_flags_the_defective_primitives_only():
    bad = DefectiveBackend()
    assert selftest.check(bad, "aes_ccm") == "fail"
    assert selftest.check(bad, "ed25519") == "fail"
    assert selftest.run(bad, {"aes_ccm", "ed25519", "sha256", "x25519"}) == ["ed25519", "aes_ccm"]
    assert selftest.run(LenientX25519Backend(), {"x25519"}) == ["x25519"]
    # BackendError after the primitive has worked is a failure, not "not provided".
    assert selftest.check(HalfProvidedCcmBackend(), "aes_ccm") == "fail"


def test_selftest_skips_what_a_backend_does_not_provide():
    partial = HashOnlyBackend()
    assert selftest.check(partial, "sha256") == "ok"
    assert selftest.check(partial, "sha512") == "skip"
    assert selftest.run(partial) == []
    raises_(BackendError, Backend().sha256, b"")


def test_composite_refuses_and_replaces_defective_primitives():
    composite = build_composite(DefectiveBackend(), PureBackend())
    assert composite.sources["aes_ccm"] == "pure"
    assert composite.sources["ed25519"] == "pure"
    assert composite.sources["sha256"] == "defective"
    assert composite.sources["x25519"] == "defective"
    assert selftest.run(composite) == []
    # The replaced methods behave: a forged tag and a forged long-message signature fail.
    key, nonce = bytes(16), bytes(13)
    sealed = composite.aes_ccm_encrypt(key, nonce, b"", b"attack at dawn")
    forged = sealed[:-1] + bytes((sealed[-1] ^ 1,))
    raises_(AuthenticationFailed, composite.aes_ccm_decrypt, key, nonce, b"", forged)
    assert composite.aes_ccm_decrypt(key, nonce, b"", sealed) == b"attack at dawn"
    pub = composite.ed25519_public(bytes(32))
    assert composite.ed25519_verify(pub, bytes(100), bytes(64)) is False


def test_composite_fills_missing_primitives_from_fallback():
    composite = build_composite(HashOnlyBackend(), PureBackend(), "mixed")
    assert composite.name == "mixed"
    assert composite.sources["sha256"] == "hash-only"
    for name in selftest.names():
        if name != "sha256":
            assert composite.sources[name] == "pure", name
    assert selftest.run(composite, {"sha256", "x25519", "aes_ccm"}) == []
    raises_(InvalidPoint, composite.x25519, bytes(32), bytes(32))


def test_load_backend_refuses_a_backend_that_fails():
    original = crypto._construct
    crypto._construct = lambda name: DefectiveBackend()
    try:
        e = raises_(BackendError, crypto.load_backend, "defective-for-test")
    finally:
        crypto._construct = original
    assert "aes_ccm" in str(e) and "ed25519" in str(e)
    assert "defective-for-test" not in crypto._loaded


def test_a_passed_known_answer_test_is_not_run_again_in_the_process():
    """A device loads a record backend (sha256, hmac, aes_ccm), then a handshake backend:
    the second runs only the KATs the first did not."""
    calls = []

    class Counting(PureBackend):
        def sha256(self, data):
            calls.append("sha256")
            return PureBackend.sha256(self, data)

        def hmac_sha256(self, key, data):
            calls.append("hmac")
            return PureBackend.hmac_sha256(self, key, data)

    original = crypto._construct
    crypto._construct = lambda name: Counting()
    try:
        crypto.load_backend("counting-for-test", ("sha256",))
        assert "sha256" in calls and "hmac" not in calls
        del calls[:]
        b = crypto.load_backend("counting-for-test", ("sha256", "hmac_sha256"))
    finally:
        crypto._construct = original
        for key in [k for k in crypto._loaded if k[0] == "counting-for-test"]:
            del crypto._loaded[key]
    assert "hmac" in calls and "sha256" not in calls
    assert isinstance(b, Counting)


def test_ucrypto_unavailable_here_is_refused_cleanly():
    # Neither CPython nor the unix MicroPython build has the ucryptography module.
    raises_(ImportError, make_ucrypto_backend)
    raises_(BackendError, crypto.load_backend, "ucrypto")


def test_unknown_selftest_primitive_is_a_usage_error():
    from airshake.errors import UsageError
    raises_(UsageError, selftest.run, PureBackend(), {"sha3"})


def test_ucrypto_adapter_speaks_the_pyca_api():
    # ucryptography mirrors pyca's API; on CPython, feed UcryptoPart pyca's own modules to
    # check the adapter's calls (the real C module exists only in custom firmware).
    if IS_MICROPYTHON:
        return
    from cryptography.hazmat.primitives import hashes, hmac, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
    from airshake.crypto.ucrypto import UcryptoPart

    class Module:
        pass
    module = Module()
    for name, value in (("hashes", hashes), ("hmac", hmac), ("serialization", serialization),
                        ("ec", ec), ("ed25519", ed25519), ("padding", padding),
                        ("rsa", rsa), ("utils", utils)):
        setattr(module, name, value)
    composite = build_composite(UcryptoPart(module), PureBackend(), "ucrypto")
    for name in ("sha256", "sha512", "hmac_sha256", "ed25519", "p256", "ecdsa_p256",
                 "rsa_oaep", "rsa_pss"):
        assert composite.sources[name] == "ucrypto", name
    for name in ("random", "x25519", "aes_ccm"):  # not in ucryptography
        assert composite.sources[name] == "pure", name
    assert selftest.run(composite) == []
