# tests/portable/test_p256_rsa.py: airshake.crypto.p256 and airshake.crypto.rsa against
# Wycheproof, RFC 6979 and round trips; runs under pytest (CPython) and tests/mprun.py.
# Every Wycheproof vector of the files used here runs on both runtimes. Compressed
# (33-byte, 02/03-prefixed) points are not an accepted encoding: the one "acceptable"
# compressed ECDH vector is expected to be rejected, and its bare x-coordinate (the
# compact form we do accept) must give the vector's shared secret.
from testkit.support import wycheproof_cases, unhex, raises_, IS_MICROPYTHON
from airshake.crypto import p256, rsa
from airshake.crypto.contract import RsaPrivate, RsaPublic
from airshake.errors import InvalidPoint, DecodeError, AuthenticationFailed, UsageError

# RFC 6979 A.2.5 (P-256, SHA-256).
RFC6979_KEY = unhex("c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721")
RFC6979_PUB = unhex(
    "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6"
    "7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299")
RFC6979_SIGS = (
    (b"sample",
     "efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716"
     "f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"),
    (b"test",
     "f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367"
     "019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083"),
)
KEY_B = unhex("0612465c89a023ab17855b0a6bcebfd3febb53aef84138647b5352e02c10c346")


# -- P-256 ---------------------------------------------------------------------------------

def test_rfc6979_public_key_and_signatures():
    assert p256.public_key(RFC6979_KEY) == RFC6979_PUB
    for msg, sig_hex in RFC6979_SIGS:
        sig = p256.ecdsa_sign(RFC6979_KEY, msg)
        assert sig == unhex(sig_hex), msg
        assert p256.ecdsa_verify(RFC6979_PUB, msg, sig)
        # This key's x decodes to -y first: exercises the compact-key retry with -y.
        assert p256.ecdsa_verify(RFC6979_PUB[1:33], msg, sig)
        assert not p256.ecdsa_verify(RFC6979_PUB[1:33], msg + b".", sig)


def test_ecdsa_round_trip_and_rejections():
    pub = p256.public_key(KEY_B)
    for msg in (b"", b"airshake", bytes(range(200))):
        sig = p256.ecdsa_sign(KEY_B, msg)
        assert p256.ecdsa_verify(pub, msg, sig)
        assert p256.ecdsa_verify(pub[1:33], msg, sig)  # compact key: either y accepted
        assert not p256.ecdsa_verify(pub, msg + b"x", sig)
        assert not p256.ecdsa_verify(RFC6979_PUB, msg, sig)
        bad = bytearray(sig)
        bad[40] ^= 1
        assert not p256.ecdsa_verify(pub, msg, bytes(bad))
    sig = p256.ecdsa_sign(KEY_B, b"m")
    for junk_sig in (b"", sig[:63], sig + b"\x00", bytes(64), b"\xff" * 64):
        assert not p256.ecdsa_verify(pub, b"m", junk_sig)
    for junk_pub in (b"", pub[:64], b"\x02" + pub[1:], b"\x04" + bytes(64), None):
        assert not p256.ecdsa_verify(junk_pub, b"m", sig)


def test_ecdsa_wycheproof_p1363():
    for group, case in wycheproof_cases("ecdsa_secp256r1_sha256_p1363_test.json"):
        pub = unhex(group["publicKey"]["uncompressed"])
        ok = p256.ecdsa_verify(pub, unhex(case["msg"]), unhex(case["sig"]))
        assert ok == (case["result"] == "valid"), case["tcId"]


def test_ecdsa_wycheproof_der():
    # Strict DER: every vector that parses must verify exactly when it is valid.
    for group, case in wycheproof_cases("ecdsa_secp256r1_sha256_test.json"):
        try:
            sig = p256.ecdsa_der_to_raw(unhex(case["sig"]))
        except DecodeError:
            assert case["result"] == "invalid", case["tcId"]
            continue
        pub = unhex(group["publicKey"]["uncompressed"])
        ok = p256.ecdsa_verify(pub, unhex(case["msg"]), sig)
        assert ok == (case["result"] == "valid"), case["tcId"]


def test_der_to_raw_strictness():
    r = "00" + "ff" * 32
    good = unhex("3046" + "0221" + r + "0221" + r)
    assert p256.ecdsa_der_to_raw(good) == b"\xff" * 64
    assert p256.ecdsa_der_to_raw(unhex("3006020101020102")) == (
        bytes(31) + b"\x01" + bytes(31) + b"\x02")
    bad_cases = (
        "", "30", "3006020101020102" + "00",   # empty, header only, trailing byte
        "3007020101020102", "3106020101020102",  # length mismatch, wrong outer tag
        "308106020101020102",                   # long-form length
        "300702020001020102",                   # non-minimal r (00 01)
        "300602010102018f",                     # negative s
        "3006020101030102",                     # s is not an INTEGER
        "30050201010201", "30050201010200",     # truncated s, zero-length s
        "3003020101", "3009020101020102020103",  # one integer, three integers
        "3026" + "0221" + "01" + "00" * 32 + "020101",  # r 33 bytes, too large
        "3027" + "0222" + "00" + "ff" * 33 + "020101",  # r 34 bytes
    )
    for bad in bad_cases:
        raises_(DecodeError, p256.ecdsa_der_to_raw, unhex(bad))


def test_ecdh_wycheproof_ecpoint():
    for group, case in wycheproof_cases("ecdh_secp256r1_ecpoint_test.json"):
        public = unhex(case["public"])
        priv = unhex(case["private"])[-32:]
        priv = bytes(32 - len(priv)) + priv
        if len(public) == 65:
            if case["result"] == "valid":
                shared = unhex(case["shared"])
                assert p256.ecdh(priv, public) == shared, case["tcId"]
                assert p256.ecdh(priv, public[1:33]) == shared, case["tcId"]
            else:
                raises_(InvalidPoint, p256.ecdh, priv, public)
            continue
        # Compressed (33 bytes) and empty encodings are not accepted at all.
        assert case["result"] != "valid", case["tcId"]
        raises_(InvalidPoint, p256.ecdh, priv, public)
        if len(public) == 33:
            if case["result"] == "acceptable":
                assert p256.ecdh(priv, public[1:]) == unhex(case["shared"]), case["tcId"]
            else:
                raises_(InvalidPoint, p256.ecdh, priv, public[1:])


def test_ecdh_compact_equals_uncompressed():
    pub_a = p256.public_key(RFC6979_KEY)
    pub_b = p256.public_key(KEY_B)
    shared = p256.ecdh(KEY_B, pub_a)
    assert len(shared) == 32
    assert p256.ecdh(KEY_B, pub_a[1:33]) == shared
    assert p256.ecdh(RFC6979_KEY, pub_b) == shared
    assert p256.ecdh(RFC6979_KEY, pub_b[1:33]) == shared
    x, y = p256.decode_point(pub_a)
    assert p256.decode_point(pub_a[1:33])[0] == x
    assert p256.decode_point(pub_a[1:33])[1] in (y, p256.P - y)


def _no_root_x():
    x = 0
    while True:
        rhs = (x * x * x - 3 * x + p256.B) % p256.P
        if pow(rhs, (p256.P - 1) // 2, p256.P) == p256.P - 1:
            return x
        x += 1


def test_decode_point_rejections():
    good = p256.public_key(KEY_B)
    x_bad = _no_root_x().to_bytes(32, "big")
    rejects = [
        x_bad, b"\x04" + x_bad + good[33:],
        p256.P.to_bytes(32, "big"), b"\xff" * 32,                 # x >= p
        b"\x04" + p256.P.to_bytes(32, "big") + good[33:],
        good[:33] + (p256.decode_point(good)[1] + p256.P).to_bytes(33, "big")[1:],
        good[:64] + bytes([good[64] ^ 1]),                         # off curve
        b"\x00", b"", bytes(65), b"\x04" + bytes(64),              # infinity / zero
        b"\x02" + good[1:33], b"\x03" + good[1:], b"\x06" + good[1:], good[:33], good + b"\x00",
    ]
    for data in rejects:
        raises_(InvalidPoint, p256.decode_point, data)
        raises_(InvalidPoint, p256.ecdh, KEY_B, data)
    assert p256.decode_point(good[1:33])[0] == int.from_bytes(good[1:33], "big")


def test_private_scalar_range():
    n = p256.N
    for bad in (bytes(32), n.to_bytes(32, "big"), (n + 1).to_bytes(32, "big"),
                b"\xff" * 32, b"\x01" * 31):
        raises_(InvalidPoint, p256.public_key, bad)
        raises_(InvalidPoint, p256.ecdh, bad, RFC6979_PUB)
    top = (n - 1).to_bytes(32, "big")
    pub = p256.public_key(top)  # (n-1)G = -G
    assert pub[1:33] == p256.GX.to_bytes(32, "big")
    assert pub[33:] == (p256.P - p256.GY).to_bytes(32, "big")
    assert p256.public_key((1).to_bytes(32, "big"))[1:33] == p256.GX.to_bytes(32, "big")


# -- RSA -----------------------------------------------------------------------------------

def _int(h):
    return int(h, 16)


def _oaep_key():
    for group, _ in wycheproof_cases("rsa_oaep_2048_sha256_mgf1sha256_test.json"):
        k = group["privateKey"]
        return RsaPrivate(_int(k["modulus"]), _int(k["publicExponent"]),
                          _int(k["privateExponent"]), _int(k["prime1"]), _int(k["prime2"]),
                          _int(k["exponent1"]), _int(k["exponent2"]), _int(k["coefficient"]))


def test_rsa_oaep_wycheproof():
    # All 37 vectors, including the 13 with a non-empty label (oaep_decrypt takes label=).
    cache = {}
    messages = set()
    for group, case in wycheproof_cases("rsa_oaep_2048_sha256_mgf1sha256_test.json"):
        key = cache.get(group["privateKey"]["modulus"])
        if key is None:
            key = cache[group["privateKey"]["modulus"]] = _oaep_key()
        ct, label = unhex(case["ct"]), unhex(case["label"])
        if case["result"] == "valid":
            assert rsa.oaep_decrypt(key, ct, label) == unhex(case["msg"]), case["tcId"]
        else:
            e = raises_(AuthenticationFailed, rsa.oaep_decrypt, key, ct, label)
            assert type(e) is AuthenticationFailed
            messages.add(str(e))
    assert len(messages) == 1  # one uniform error, whatever went wrong


def test_rsa_oaep_round_trip_and_tamper():
    key = _oaep_key()
    pub = key.public()
    seed = bytes(range(32))
    longest = bytes(range(190))  # k - 2*32 - 2 = 190 bytes for 2048 bits
    for msg in (b"", b"hello airshake", longest):
        ct = rsa.oaep_encrypt(pub, msg, seed)
        assert len(ct) == 256
        assert rsa.oaep_decrypt(key, ct) == msg
        bad = bytearray(ct)
        bad[100] ^= 0x40
        raises_(AuthenticationFailed, rsa.oaep_decrypt, key, bytes(bad))
        raises_(AuthenticationFailed, rsa.oaep_decrypt, key, ct[1:])
        raises_(AuthenticationFailed, rsa.oaep_decrypt, key, ct, b"label")
    labelled = rsa.oaep_encrypt(pub, b"x", seed, b"label")
    assert rsa.oaep_decrypt(key, labelled, b"label") == b"x"
    raises_(AuthenticationFailed, rsa.oaep_decrypt, key, labelled)
    assert rsa.oaep_encrypt(pub, b"m", seed) != rsa.oaep_encrypt(pub, b"m", b"\x01" * 32)
    raises_(UsageError, rsa.oaep_encrypt, pub, longest + b"!", seed)
    raises_(UsageError, rsa.oaep_encrypt, pub, b"m", seed[:31])
    # Fault check: a CRT parameter that is wrong must not yield a plaintext.
    broken = RsaPrivate(key.n, key.e, key.d, key.p, key.q, key.dp ^ 2, key.dq, key.qinv)
    raises_(AuthenticationFailed, rsa.oaep_decrypt, broken, rsa.oaep_encrypt(pub, b"m", seed))


def test_rsa_pss_wycheproof():
    for group, case in wycheproof_cases("rsa_pss_2048_sha256_mgf1_32_test.json"):
        key = group["publicKey"]
        pub = RsaPublic(_int(key["modulus"]), _int(key["publicExponent"]))
        ok = rsa.pss_verify(pub, unhex(case["msg"]), unhex(case["sig"]))
        assert ok == (case["result"] == "valid"), case["tcId"]


def test_rsa_pss_round_trip():
    key = _oaep_key()
    pub = key.public()
    salt = b"\x5a" * 32
    for msg in (b"", b"airshake certificate"):
        sig = rsa.pss_sign(key, msg, salt)
        assert len(sig) == 256
        assert rsa.pss_verify(pub, msg, sig)
        assert not rsa.pss_verify(pub, msg + b"!", sig)
        assert rsa.pss_sign(key, msg, b"\x01" * 32) != sig
    sig = rsa.pss_sign(key, b"m", salt)
    bad = bytearray(sig)
    bad[5] ^= 1
    for junk in (bytes(bad), sig[1:], b"\x00" + sig, bytes(256), b"\xff" * 256, b"", None):
        assert not rsa.pss_verify(pub, b"m", junk)
    raises_(UsageError, rsa.pss_sign, key, b"m", salt[:16])


def test_cross_check_with_pyca():
    # CPython only, when the cryptography package is installed: our outputs are standard.
    if IS_MICROPYTHON:
        return
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
        from cryptography.hazmat.primitives.asymmetric import rsa as pyca_rsa
    except ImportError:
        return
    sha = hashes.SHA256()
    k = _oaep_key()
    nums = pyca_rsa.RSAPrivateNumbers(k.p, k.q, k.d, k.dp, k.dq, k.qinv,
                                      pyca_rsa.RSAPublicNumbers(k.e, k.n))
    pk = nums.private_key()
    ct = rsa.oaep_encrypt(k.public(), b"cross", b"\x07" * 32, b"lbl")
    oaep = padding.OAEP(padding.MGF1(sha), sha, b"lbl")
    assert pk.decrypt(ct, oaep) == b"cross"
    assert rsa.oaep_decrypt(k, pk.public_key().encrypt(b"back", oaep), b"lbl") == b"back"
    sig = rsa.pss_sign(k, b"cross", b"\x09" * 32)
    pss = padding.PSS(padding.MGF1(sha), 32)
    pk.public_key().verify(sig, b"cross", pss, sha)
    assert rsa.pss_verify(k.public(), b"back", pk.sign(b"back", pss, sha))
    ek = ec.derive_private_key(int.from_bytes(KEY_B, "big"), ec.SECP256R1())
    der = ek.sign(b"cross", ec.ECDSA(sha))
    assert p256.ecdsa_verify(p256.public_key(KEY_B), b"cross", p256.ecdsa_der_to_raw(der))
    raw = p256.ecdsa_sign(KEY_B, b"cross")
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    ek.public_key().verify(utils.encode_dss_signature(r, s), b"cross", ec.ECDSA(sha))
    other = ec.derive_private_key(int.from_bytes(RFC6979_KEY, "big"), ec.SECP256R1())
    assert ek.exchange(ec.ECDH(), other.public_key()) == p256.ecdh(KEY_B, RFC6979_PUB)
