# tests/portable/test_symmetric.py: AES, AES-CCM and HMAC-SHA256 against published vectors
# (FIPS 197, RFC 3610, Wycheproof), for the pure modules and every backend's contract methods.
# Runs on CPython (pytest) and MicroPython (tests/mprun.py): plain functions, plain asserts.
from testkit.support import wycheproof_cases, unhex, raises_, backends

from airshake.consttime import equal
from airshake.crypto import aes, ccm
from airshake.crypto.hmac256 import hmac_sha256
from airshake.errors import AuthenticationFailed, UsageError

# RFC 3610 §8 packet vectors #1-#3: key C0..CF, 8-byte header, 8-byte tag.
RFC3610_KEY = unhex("c0c1c2c3c4c5c6c7c8c9cacbcccdcecf")
RFC3610 = (
    ("00000003020100a0a1a2a3a4a5", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e",
     "588c979a61c663d2f066d0c2c0f989806d5f6b61dac38417e8d12cfdf926e0"),
    ("00000004030201a0a1a2a3a4a5", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "72c91a36e135f8cf291ca894085c87e3cc15c439c9e43a3ba091d56e10400916"),
    ("00000005040302a0a1a2a3a4a5", "08090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
     "51b1e5f44a197d1da46b0f8e2d282ae871e838bb64da8596574adaa76fbd9fb0c5"),
)
RFC3610_AAD = unhex("0001020304050607")


def _ccm_supports(group):
    """Nonce 7..13 bytes and tag 4..16 bytes, even (RFC 3610 §2). Wycheproof marks every
    vector outside these limits invalid; the API must refuse them with UsageError."""
    iv_bytes, tag_bytes = group["ivSize"] // 8, group["tagSize"] // 8
    return (group["ivSize"] % 8 == 0 and 7 <= iv_bytes <= 13
            and 4 <= tag_bytes <= 16 and tag_bytes % 2 == 0)


def _ccm_case(test):
    return (unhex(test["key"]), unhex(test["iv"]), unhex(test["aad"]), unhex(test["msg"]),
            unhex(test["ct"]) + unhex(test["tag"]))


def test_aes_tables_are_the_fips197_sbox_and_xtime():
    # airshake.crypto.aes_tables holds them as constants: derived here from GF(2^8)
    from airshake.crypto.aes_tables import SBOX, XTIME
    xtime = bytes(((i << 1) ^ (0x1B if i & 0x80 else 0)) & 0xFF for i in range(256))
    exp, log, x = bytearray(256), bytearray(256), 1
    for i in range(255):        # powers and logarithms of the generator 3
        exp[i] = x
        log[x] = i
        x ^= xtime[x]
    sbox = bytearray(256)
    for i in range(256):
        b = exp[(255 - log[i]) % 255] if i else 0     # the multiplicative inverse
        s = b
        for _ in range(4):      # the affine map of FIPS 197 §5.1.1
            b = ((b << 1) | (b >> 7)) & 0xFF
            s ^= b
        sbox[i] = s ^ 0x63
    assert XTIME == xtime and SBOX == bytes(sbox)
    assert SBOX[0x53] == 0xED and len(SBOX) == len(XTIME) == 256   # FIPS 197 §5.1.1 example


def test_fips197_aes128_pure_and_default():
    # FIPS 197 Appendix C.1 (AES-128), plus C.3 (AES-256) for the 32-byte key path.
    pt = unhex("00112233445566778899aabbccddeeff")
    key = unhex("000102030405060708090a0b0c0d0e0f")
    assert aes.PureAes(key).encrypt_block(pt) == unhex("69c4e0d86a7b0430d8cdb78070b4c55a")
    assert aes.new_ecb(key).encrypt_block(pt) == unhex("69c4e0d86a7b0430d8cdb78070b4c55a")
    key256 = unhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
    assert aes.PureAes(key256).encrypt_block(pt) == unhex("8ea2b7ca516745bfeafc49904b496089")
    raises_(UsageError, aes.PureAes, bytes(15))
    raises_(UsageError, aes.new_ecb(key).encrypt_block, bytes(15))


def test_rfc3610_vectors_pure_module():
    for nonce, pt, out in RFC3610:
        nonce, pt, out = unhex(nonce), unhex(pt), unhex(out)
        assert ccm.encrypt(RFC3610_KEY, nonce, RFC3610_AAD, pt) == out
        assert ccm.decrypt(RFC3610_KEY, nonce, RFC3610_AAD, out) == pt
        bad = bytearray(out)
        bad[-1] ^= 0x80
        raises_(AuthenticationFailed, ccm.decrypt, RFC3610_KEY, nonce, RFC3610_AAD, bytes(bad))


def test_rfc3610_vectors_backends():
    for backend in backends():
        for nonce, pt, out in RFC3610:
            nonce, pt, out = unhex(nonce), unhex(pt), unhex(out)
            assert backend.aes_ccm_encrypt(RFC3610_KEY, nonce, RFC3610_AAD, pt) == out
            assert backend.aes_ccm_decrypt(RFC3610_KEY, nonce, RFC3610_AAD, out) == pt
            raises_(AuthenticationFailed, backend.aes_ccm_decrypt, RFC3610_KEY, nonce,
                    RFC3610_AAD, out[:-1] + bytes((out[-1] ^ 1,)))


def test_ccm_parameter_limits():
    key = bytes(16)
    raises_(UsageError, ccm.encrypt, key, bytes(6), b"", b"x")
    raises_(UsageError, ccm.encrypt, key, bytes(14), b"", b"x")
    raises_(UsageError, ccm.encrypt, key, bytes(13), b"", b"x", 5)
    raises_(UsageError, ccm.encrypt, key, bytes(13), b"", b"x", 18)
    raises_(UsageError, ccm.encrypt, key, bytes(13), b"", b"x", 2)
    raises_(UsageError, ccm.encrypt, key, bytes(13), b"", bytes(65536))  # L = 2 limit
    raises_(AuthenticationFailed, ccm.decrypt, key, bytes(13), b"", bytes(7))  # < tag
    assert ccm.decrypt(key, bytes(13), b"", ccm.encrypt(key, bytes(13), b"", b"")) == b""


def test_ccm_failed_decrypt_leaks_nothing():
    # The exception carries no plaintext, and a wrong tag never yields output.
    key, nonce = bytes(range(16)), bytes(range(13))
    out = ccm.encrypt(key, nonce, b"hdr", b"secret message!!")
    bad = out[:-8] + bytes(8)
    e = raises_(AuthenticationFailed, ccm.decrypt, key, nonce, b"hdr", bad)
    assert b"secret" not in repr(e.args).encode()


def test_wycheproof_aes_ccm_pure_module():
    # Every vector: all key sizes (16, 24, 32), nonces of 7..13 bytes (the 13-byte group
    # included), tags 4..16 bytes even. Vectors with other nonce or tag sizes are all
    # "invalid" in Wycheproof; the API must refuse them (UsageError), never decrypt them.
    ran = refused = 0
    for group, test in wycheproof_cases("aes_ccm_test.json"):
        key, iv, aad, msg, sealed = _ccm_case(test)
        tag_len = group["tagSize"] // 8
        if not _ccm_supports(group):
            assert test["result"] == "invalid"
            raises_(UsageError, ccm.decrypt, key, iv, aad, sealed, tag_len)
            refused += 1
            continue
        if test["result"] == "valid":
            assert ccm.encrypt(key, iv, aad, msg, tag_len) == sealed, test["tcId"]
            assert ccm.decrypt(key, iv, aad, sealed, tag_len) == msg, test["tcId"]
        else:
            raises_(AuthenticationFailed, ccm.decrypt, key, iv, aad, sealed, tag_len)
        ran += 1
    assert ran == 486 and refused == 66


def test_wycheproof_aes_ccm_backends():
    # The contract fixes AES-128 and an 8-byte tag; Wycheproof's only such group has
    # 12-byte nonces (its 13-byte group has 16-byte tags, covered by the module test).
    for backend in backends():
        ran = 0
        for group, test in wycheproof_cases("aes_ccm_test.json"):
            if group["keySize"] != 128 or group["tagSize"] != 64 or not _ccm_supports(group):
                continue
            key, iv, aad, msg, sealed = _ccm_case(test)
            if test["result"] == "valid":
                assert backend.aes_ccm_encrypt(key, iv, aad, msg) == sealed
                assert backend.aes_ccm_decrypt(key, iv, aad, sealed) == msg
            else:
                raises_(AuthenticationFailed, backend.aes_ccm_decrypt, key, iv, aad, sealed)
            ran += 1
        assert ran > 0


def _check_hmac(fn):
    count = 0
    for group, test in wycheproof_cases("hmac_sha256_test.json"):
        tag_len = group["tagSize"] // 8  # 16-byte groups: compare the truncated prefix
        mac = fn(unhex(test["key"]), unhex(test["msg"]))
        assert len(mac) == 32
        ok = equal(mac[:tag_len], unhex(test["tag"]))
        assert ok == (test["result"] == "valid"), test["tcId"]
        count += 1
    assert count == 174


def test_wycheproof_hmac_sha256_module():
    _check_hmac(hmac_sha256)


def test_wycheproof_hmac_sha256_backends():
    for backend in backends():
        _check_hmac(backend.hmac_sha256)
