# tests/portable/test_curve25519.py: X25519 (RFC 7748), Ed25519 (RFC 8032) and SHA-512
# of the pure-Python core, on CPython and on MicroPython (tests/mprun.py).
# Vectors: all of Wycheproof x25519_test.json and ed25519_test.json, the RFC 7748 §5.2
# and §6.1 examples, RFC 8032 §7.1 TEST 1, 2, 3 and 1024.
from testkit.support import wycheproof_cases, unhex, raises_, IS_MICROPYTHON

from airshake.crypto.x25519 import x25519, invert, pow_p58
from airshake.crypto import ed25519
from airshake.crypto import sha512 as sha512_module
from airshake.errors import DecodeError, UsageError

# -- X25519 ----------------------------------------------------------------------------


def test_x25519_wycheproof():
    count = 0
    for group, case in wycheproof_cases("x25519_test.json"):
        out = x25519(unhex(case["private"]), unhex(case["public"]))
        # "acceptable" cases (twist points, non-canonical u, low-order u giving the
        # all-zero secret) still have a defined RFC 7748 output: the raw function
        # must produce it; rejecting zeros is the backend's job.
        assert out == unhex(case["shared"]), "tcId %d" % case["tcId"]
        count += 1
    assert count == 518


def test_x25519_rfc7748_section_5_2():
    cases = (
        ("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
         "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
         "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"),
        ("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
         "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
         "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"),
    )
    for k, u, out in cases:
        assert x25519(unhex(k), unhex(u)) == unhex(out)


def test_x25519_rfc7748_iterated():
    # §5.2: k = u = 9, then k, u = X25519(k, u), k. After 1 and 1000 iterations.
    k = u = b"\x09" + bytes(31)
    for i in range(1000):
        k, u = x25519(k, u), k
        if i == 0:
            assert k == unhex("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
    assert k == unhex("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")


def x25519_base(k):
    return x25519(k, b"\x09" + bytes(31))


def test_x25519_rfc7748_section_6_1():
    alice = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob = unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    alice_pub = x25519_base(alice)
    bob_pub = x25519_base(bob)
    assert alice_pub == unhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    assert bob_pub == unhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = unhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    assert x25519(alice, bob_pub) == shared
    assert x25519(bob, alice_pub) == shared


def test_field_exponent_chains():
    p = 2 ** 255 - 19
    for z in (1, 2, 9, p - 1, p + 5, 2 ** 255 - 1, -7, 3 ** 200, 12345678901234567890 ** 4):
        assert invert(z) == pow(z % p, p - 2, p), z
        assert invert(z) * z % p == 1, z
        assert pow_p58(z) == pow(z % p, (p - 5) // 8, p), z
    assert invert(0) == 0 and invert(p) == 0


def test_x25519_lengths():
    raises_(UsageError, x25519, bytes(31), bytes(32))
    raises_(DecodeError, x25519, bytes(32), bytes(33))


# -- SHA-512 -----------------------------------------------------------------------------

SHA512_CASES = (
    (b"abc",
     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"),
    (b"",
     "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
     "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"),
    (bytes((i * 31 + 7) & 255 for i in range(1000)),
     "b41d42e106eca6bf57123566b7ed1550c37d33af23afbfa8e302dfd44c988b30"
     "03a26b4140ef42f535e66ea424e7c4a31616307269e6d520a6508f726da23d0a"),
)


def test_sha512_known_digests():
    for data, digest in SHA512_CASES:
        assert sha512_module.sha512(data) == unhex(digest)
        # the pure path too, also where the runtime has hashlib.sha512
        assert sha512_module._sha512_pure(data) == unhex(digest)


def test_sha512_padding_boundaries():
    # lengths around the 111/112-byte padding edge and the 128-byte block edge
    for n in (110, 111, 112, 127, 128, 129, 239, 240):
        data = bytes(range(n))
        assert sha512_module._sha512_pure(data) == sha512_module.sha512(data), n
        assert len(sha512_module._sha512_pure(data)) == 64


# -- Ed25519 -----------------------------------------------------------------------------

RFC8032_TEST_1024_MSG = (
    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12"
    "ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe57"
    "38829adb26c81b37c93a1b270b20329d658675fc6ea534e0810a4432826bf58c941efb65d57a338b"
    "bd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
    "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e06203b33890cc9b8"
    "32f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10"
    "3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53"
    "f1d8ac70bdcb7ed185ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
    "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6"
    "079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f27088d78b7e883c8759d2c4f5c65adb7553"
    "878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2"
    "cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae078"
    "4504df543af8969be3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8"
    "fcffead94f3c7ca495e056a9b47acdb751fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301"
    "651339e22904cc8c42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
    "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34dff7310fdc82aebfd9"
    "04b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7"
    "984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a"
    "3ca8e1b939ae49e488acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
    "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a4"
    "3dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5fb93246f6b1116398a346f1a641f3b041"
    "e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d9"
    "0d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef"
    "68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0"
)

RFC8032_CASES = (
    # TEST 1, 2, 3, 1024 of RFC 8032 §7.1: seed, public key, message, signature
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
     "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
     "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
     "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ("f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
     "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
     RFC8032_TEST_1024_MSG,
     "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
     "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03"),
)


def test_ed25519_rfc8032():
    for seed, pub, msg, sig in RFC8032_CASES:
        seed, pub, msg, sig = unhex(seed), unhex(pub), unhex(msg), unhex(sig)
        assert ed25519.public_key(seed) == pub
        assert ed25519.sign(seed, msg) == sig
        assert ed25519.verify(pub, msg, sig) is True
        assert ed25519.verify(pub, msg + b"\x00", sig) is False
    assert len(unhex(RFC8032_CASES[3][2])) == 1023


def test_ed25519_wycheproof():
    count = 0
    for group, case in wycheproof_cases("ed25519_test.json"):
        pub = unhex(group["publicKey"]["pk"])
        ok = ed25519.verify(pub, unhex(case["msg"]), unhex(case["sig"]))
        assert ok is (case["result"] == "valid"), "tcId %d" % case["tcId"]
        count += 1
    assert count == 151


def test_ed25519_round_trip_lengths():
    seed = unhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
    pub = ed25519.public_key(seed)
    for n in (63, 64, 65, 200):
        msg = bytes((i * 7 + n) & 255 for i in range(n))
        sig = ed25519.sign(seed, msg)
        assert len(sig) == 64
        assert ed25519.verify(pub, msg, sig) is True
        assert ed25519.verify(pub, msg[:-1], sig) is False
        bad = bytearray(sig)
        bad[40] ^= 0x10
        assert ed25519.verify(pub, msg, bytes(bad)) is False
        if not IS_MICROPYTHON:
            _cross_check_pyca(seed, msg, sig)


def _cross_check_pyca(seed, msg, sig):
    try:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError:
        return
    assert Ed25519PrivateKey.from_private_bytes(seed).sign(msg) == sig


def test_ed25519_verify_never_raises():
    seed = bytes(range(32))
    pub = ed25519.public_key(seed)
    sig = ed25519.sign(seed, b"m")
    assert ed25519.verify(pub, b"m", sig) is True
    assert ed25519.verify(pub[:31], b"m", sig) is False
    assert ed25519.verify(pub, b"m", sig[:63]) is False
    assert ed25519.verify(pub, b"m", sig + b"\x00") is False
    assert ed25519.verify(b"\xff" * 32, b"m", sig) is False  # y >= p: undecodable
    assert ed25519.verify(None, b"m", sig) is False
    assert ed25519.verify(pub, None, sig) is False
    raises_(UsageError, ed25519.sign, bytes(31), b"m")
