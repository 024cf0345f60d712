# tests/portable/test_ed25519_keys.py: the Ed25519 public keys and signature encodings
# that every backend refuses, whatever its library would accept (issue 11, item 6).
# The small-order list is the 14 encodings of the 8 points of order dividing 8 (Chalkias,
# Garillot, Nikolaenko, "Taming the many EdDSAs", 2020; libsodium's blacklist), written
# out here independently of airshake.crypto.ed25519. Each refusal is checked against a
# real forgery: a signature that the bare cofactorless equation accepts (_equation_holds,
# which decodes keys leniently, as OpenSSL does), so a refusal proves the rule, not a
# broken signature. Runs on CPython (pure, pyca) and MicroPython (pure).
from testkit.support import backends, load_json, unhex, vectors_dir, wycheproof_cases

import airshake.x509 as x509
from airshake.crypto import ed25519, selftest
from airshake.crypto.pure import PureBackend
from airshake.crypto.sha512 import sha512
from airshake.crypto.ucrypto import UcryptoPart
from airshake.errors import CertificateError

_P = 2 ** 255 - 19
_L = 2 ** 252 + 27742317777372353535851937790883648493
_MASK = 2 ** 255 - 1

SMALL_ORDER_KEYS = tuple(unhex(h) for h in (
    "0100000000000000000000000000000000000000000000000000000000000000",  # identity
    "0100000000000000000000000000000000000000000000000000000000000080",  # identity, x = -0
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # order 2, x = -0
    "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
    "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p (= 0)
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # y = p (= 0)
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # y = p + 1 (= 1)
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",  # y = p + 1 (= 1)
))

SEED = bytes(range(32))
_r_points = []  # encodings of [s]B for s = 1, 2, ...: the R of the forgeries


def _point(pub):
    """The point pub names if y is read mod p and x = -0 taken as 0 (OpenSSL's reading)."""
    y = (int.from_bytes(pub, "little") & _MASK) % _P
    sign = pub[31] >> 7
    a = ed25519._decode((y | (sign << 255)).to_bytes(32, "little"))
    return a if a is not None else ed25519._decode(y.to_bytes(32, "little"))


def _equation_holds(pub, msg, sig):
    """The bare cofactorless check, with no rule on the key: encode([S]B - [k]A) == R."""
    s = int.from_bytes(sig[32:], "little")
    a = _point(pub)
    if s >= _L or a is None:
        return False
    k = int.from_bytes(sha512(sig[:32] + pub + msg), "little") % _L
    return ed25519._encode(ed25519._verify_mult(s, k, a)) == sig[:32]


def _forge(pub, msg):
    """(R, S) = ([s]B, s) with k = H(R || pub || msg) = 0 mod 8: then [k]A is the identity
    for any A of order dividing 8, and [S]B - [k]A = R."""
    s = 0
    while True:
        s += 1
        if len(_r_points) < s:
            _r_points.append(ed25519._encode(ed25519.base_mult(s)))
        r = _r_points[s - 1]
        if int.from_bytes(sha512(r + pub + msg), "little") % _L % 8 == 0:
            return r + s.to_bytes(32, "little")


def _times_eight_is_identity(a):
    for _ in range(3):
        a = ed25519._double(a, True)
    return ed25519._encode(a) == b"\x01" + bytes(31)


class _AcceptAllModule:
    """Stands in for a ucryptography build whose Ed25519 checks nothing at all."""

    class ed25519:
        class Ed25519PublicKey:
            @staticmethod
            def from_public_bytes(data):
                return _AcceptAllModule.ed25519.Ed25519PublicKey()

            def verify(self, sig, msg):
                return None


class _EquationOnlyBackend(PureBackend):
    """A backend that verifies with the bare equation (models OpenSSL's key handling)."""
    name = "equation-only"

    def ed25519_verify(self, pub, msg, sig):
        return len(pub) == 32 and len(sig) == 64 and _equation_holds(pub, msg, sig)


def _edge_cases():
    """(name, pub, msg, sig, expected) for the edges where implementations differ."""
    pub = ed25519.public_key(SEED)
    a = ed25519._expand(SEED)[0]
    msg = b"edge"
    good = ed25519.sign(SEED, msg)
    s = int.from_bytes(good[32:], "little")
    cases = [("valid", pub, msg, good, True),
             ("S + L", pub, msg, good[:32] + (s + _L).to_bytes(32, "little"), False),
             ("S = L", pub, msg, good[:32] + _L.to_bytes(32, "little"), False)]
    for r in (b"\x01" + bytes(31), b"\x01" + bytes(30) + b"\x80",
              (_P + 1).to_bytes(32, "little"), (_P + 1 + 2 ** 255).to_bytes(32, "little")):
        # R names the identity; S = k*a makes [S]B - [k]A the identity, so only R's
        # encoding decides (the canonical one is valid under RFC 8032)
        k = int.from_bytes(sha512(r + pub + msg), "little") % _L
        canonical = r == b"\x01" + bytes(31)
        cases.append(("R " + r.hex(), pub, msg, r + (k * a % _L).to_bytes(32, "little"),
                      canonical))
    for key in SMALL_ORDER_KEYS:
        cases.append(("A " + key.hex(), key, msg, _forge(key, msg), False))
    return cases


# -- the rule ------------------------------------------------------------------------------

def test_acceptable_public_key_refuses_small_order_and_y_not_below_p_only():
    for key in SMALL_ORDER_KEYS:
        assert ed25519.acceptable_public_key(key) is False, key.hex()
    for y in range(_P, 2 ** 255):
        for sign in (0, 2 ** 255):
            assert ed25519.acceptable_public_key((y + sign).to_bytes(32, "little")) is False
    assert ed25519.acceptable_public_key(ed25519.public_key(SEED)) is True
    assert ed25519.acceptable_public_key((_P - 2).to_bytes(32, "little")) is True
    assert ed25519.acceptable_public_key(bytes(31)) is False


# -- every backend -------------------------------------------------------------------------

def test_every_backend_refuses_forged_signatures_under_small_order_keys():
    # the list: 14 encodings of the 8 points of order dividing 8
    assert len(set(SMALL_ORDER_KEYS)) == 14
    points = set()
    for key in SMALL_ORDER_KEYS:
        a = _point(key)
        assert a is not None and _times_eight_is_identity(a), key.hex()
        points.add(ed25519._encode(a))
        # what the rule protects against: the bare equation accepts the forgery
        assert _equation_holds(key, b"any message", _forge(key, b"any message")), key.hex()
    assert len(points) == 8
    for backend in backends():
        for key in SMALL_ORDER_KEYS:
            for msg in (b"", b"reading 42"):
                sig = _forge(key, msg)
                assert backend.ed25519_verify(key, msg, sig) is False, (backend.name, key.hex())


def test_every_backend_refuses_public_keys_with_y_not_below_p():
    pub = ed25519.public_key(SEED)
    sig = ed25519.sign(SEED, b"m")
    for backend in backends():
        for y in range(_P, 2 ** 255):
            for sign in (0, 2 ** 255):
                key = (y + sign).to_bytes(32, "little")
                forged = _forge(key, b"m") if y - _P < 2 else sig
                assert backend.ed25519_verify(key, b"m", forged) is False, (backend.name, y)
        assert backend.ed25519_verify(pub, b"m", sig) is True


def test_every_backend_gives_the_same_answer_at_the_encoding_edges():
    for name, pub, msg, sig, expected in _edge_cases():
        for backend in backends():
            assert backend.ed25519_verify(pub, msg, sig) is expected, (backend.name, name)


def test_every_backend_passes_wycheproof_ed25519_and_refuses_none_of_its_keys():
    for backend in backends():
        count = 0
        for group, case in wycheproof_cases("ed25519_test.json"):
            pub = unhex(group["publicKey"]["pk"])
            assert ed25519.acceptable_public_key(pub), "tcId %d" % case["tcId"]
            ok = backend.ed25519_verify(pub, unhex(case["msg"]), unhex(case["sig"]))
            assert ok is (case["result"] == "valid"), (backend.name, case["tcId"])
            count += 1
        assert count == 151


def test_ucrypto_backend_applies_the_key_rule_before_its_c_module():
    part = UcryptoPart(_AcceptAllModule())
    pub = ed25519.public_key(SEED)
    assert part.ed25519_verify(pub, b"m", bytes(64)) is True  # the stand-in accepts all
    for key in SMALL_ORDER_KEYS:
        assert part.ed25519_verify(key, b"m", _forge(key, b"m")) is False, key.hex()
    assert part.ed25519_verify((_P + 2).to_bytes(32, "little"), b"m", bytes(64)) is False


def test_selftest_fails_a_backend_that_takes_small_order_keys():
    assert selftest.check(_EquationOnlyBackend(), "ed25519") == "fail"
    assert selftest.check(PureBackend(), "ed25519") == "ok"


# -- the CA path ---------------------------------------------------------------------------

def _der(name):
    with open(vectors_dir() + "x509/" + name + ".der", "rb") as f:
        return f.read()


def test_ca_anchor_with_a_small_order_key_verifies_no_certificate():
    now = load_json("x509/expected.json")["_now"]
    ca_der, leaf_der = _der("ca_ed25519"), _der("server_x25519")
    real_key = x509.parse_certificate(ca_der).public_key
    assert ca_der.count(real_key) == 1
    tbs = x509.parse_certificate(leaf_der).tbs
    for backend in backends():
        x509.verify_certificate(x509.parse_certificate(leaf_der),
                                x509.parse_certificate(ca_der), backend, now)
        for key in SMALL_ORDER_KEYS:
            anchor = x509.parse_certificate(ca_der.replace(real_key, key))
            assert anchor.public_key == key and anchor.is_ca
            sig = _forge(key, tbs)
            forged = x509.parse_certificate(leaf_der[:-64] + sig)
            assert forged.signature == sig and _equation_holds(key, forged.tbs, sig)
            try:
                x509.verify_certificate(forged, anchor, backend, now)
            except CertificateError as e:
                assert str(e) == "bad certificate signature", (backend.name, key.hex(), e)
            else:
                raise AssertionError("%s: anchor %s verified a forgery"
                                     % (backend.name, key.hex()))
