# tests/portable/test_x509.py: airshake.der and airshake.x509 against the frozen
# certificates of tests/vectors/x509/ (made by make_fixtures.py with pyca; expected.json
# holds what pyca read from each). Runs on CPython (pytest) and MicroPython (mprun.py).
from testkit.support import unhex, raises_, IS_MICROPYTHON, backends, load_json, vectors_dir

import airshake.der as der
import airshake.x509 as x509
from airshake.crypto.contract import RsaPublic
from airshake.errors import AirshakeError, CertificateError, DecodeError, UsageError

EXPECTED = load_json("x509/expected.json")
NOW = EXPECTED["_now"]

KEY_TYPE = {"ca_ed25519": "ed25519", "server_x25519": "x25519", "ca_p256": "p256",
            "server_p256": "p256", "rsa_ed25519": "rsa", "ca_rsa": "rsa",
            "server_rsa_pkcs1": "x25519", "server_rsa_pss": "x25519", "expired": "x25519",
            "other_ca": "ed25519", "other_server": "x25519"}
SIG_ALG = {"1.3.101.112": "ed25519", "1.2.840.10045.4.3.2": "ecdsa-sha256",
           "1.2.840.113549.1.1.11": "rsa-pkcs1-sha256", "1.2.840.113549.1.1.10": "rsa-pss-sha256"}
# (anchor, certificate) pairs that verify at NOW
GOOD_PAIRS = (("ca_ed25519", "server_x25519"), ("ca_ed25519", "ca_ed25519"),
              ("ca_p256", "server_p256"), ("ca_p256", "ca_p256"),
              ("ca_ed25519", "rsa_ed25519"), ("ca_rsa", "ca_rsa"),
              ("ca_rsa", "server_rsa_pkcs1"), ("ca_rsa", "server_rsa_pss"),
              ("other_ca", "other_server"))


def fixture(name):
    with open(vectors_dir() + "x509/" + name + ".der", "rb") as f:
        return f.read()


def cert(name):
    return x509.parse_certificate(fixture(name))


def _backend():
    return backends()[0]


# -- der ------------------------------------------------------------------------------

def test_der_read_tlv_forms():
    assert der.read_tlv(b"\x04\x00", 0) == (4, 2, 2, 2)
    assert der.read_tlv(b"\x00\x02\x04\x01\xaa", 2) == (4, 4, 5, 5)
    long_form = b"\x04\x81\x80" + bytes(128)
    assert der.read_tlv(long_form, 0) == (4, 3, 131, 131)
    two = b"\x04\x82\x01\x00" + bytes(256)
    assert der.read_tlv(two, 0) == (4, 4, 260, 260)
    assert der.read_tlv(b"\x30\x03\x02\x01\x05\xff", 0)[3] == 5


def test_der_read_tlv_rejects():
    bad = ("", "04", "0402aa", "0480", "048100", "04817f" + "00" * 127,
           "0482007f" + "00" * 127, "048200ff" + "00" * 255, "0485" + "00" * 8,
           "1f0100", "0481", "048201")
    for h in bad:
        raises_(DecodeError, der.read_tlv, unhex(h), 0)
    raises_(DecodeError, der.read_tlv, b"\x04\x02\xaa\xbb", 0, 3)  # past the given end
    raises_(DecodeError, der.read_tlv, b"\x04\x00", 1)
    raises_(DecodeError, der.read_tlv, b"\x04\x00", -1)


def test_der_encode_round_trip():
    for n in (0, 1, 127, 128, 255, 256, 65535, 65536):
        tlv = der.encode_tlv(0x04, bytes(n))
        tag, vs, ve, nxt = der.read_tlv(tlv, 0)
        assert (tag, ve - vs, nxt) == (4, n, len(tlv))
    assert der.encode_length(0x80) == b"\x81\x80"
    assert der.encode_length(0x100) == b"\x82\x01\x00"


def test_der_integers():
    assert der.read_int(b"\x00") == 0
    assert der.read_int(b"\x7f") == 127
    assert der.read_int(b"\x00\x80") == 128
    assert der.read_int(b"\x01\x00") == 256
    assert der.read_int(b"\xff", True) == -1
    assert der.read_int(b"\xff\x7f", True) == -129
    assert der.read_int(b"\x80", True) == -128
    for h in ("", "0000", "007f", "ffff", "ff80"):
        raises_(DecodeError, der.read_int, unhex(h), True)
    raises_(DecodeError, der.read_int, b"\x80")
    for n in (0, 1, 127, 128, 255, 256, 1 << 64, (1 << 2048) - 1):
        tlv = der.encode_uint(n)
        tag, vs, ve, _ = der.read_tlv(tlv, 0)
        assert tag == der.INTEGER and der.read_int(tlv[vs:ve]) == n
    assert der.encode_uint(128) == b"\x02\x02\x00\x80"
    assert der.int_bytes_len(1) == 1 and der.int_bytes_len(256) == 2


def test_der_bool_bits_oid():
    assert der.read_bool(b"\xff") is True and der.read_bool(b"\x00") is False
    for h in ("", "01", "ffff"):
        raises_(DecodeError, der.read_bool, unhex(h))
    assert der.bit_string_bytes(b"\x00\xab") == b"\xab"
    raises_(DecodeError, der.bit_string_bytes, b"")
    raises_(DecodeError, der.bit_string_bytes, b"\x01\xaa")
    assert der.check_oid(b"\x2b\x65\x70") == b"\x2b\x65\x70"
    for h in ("", "2b65f0", "2b8001", "802b"):
        raises_(DecodeError, der.check_oid, unhex(h))
    buf = b"\x06\x03\x2b\x65\x70"
    assert der.oid_is(buf, 2, 5, b"\x2b\x65\x70")
    assert not der.oid_is(buf, 2, 5, b"\x2b\x65\x6e")
    assert not der.oid_is(buf, 2, 4, b"\x2b\x65\x70")


def test_der_children_and_reader():
    seq = der.encode_tlv(0x30, unhex("020101") + unhex("0401aa") + unhex("0500"))
    vs, ve = der.read_whole(seq, 0x30)
    assert [c[0] for c in der.children(seq, vs, ve)] == [2, 4, 5]
    r = der.reader(seq, 0x30)
    assert r.peek_tag() == 2 and r.value(2) == b"\x01"
    assert r.expect_raw(4) == b"\x04\x01\xaa"
    raises_(DecodeError, r.expect, 2)
    raises_(DecodeError, r.done)
    r.expect(5)
    r.done()
    assert r.at_end() and r.peek_tag() is None
    raises_(DecodeError, r.expect, 5)
    raises_(DecodeError, der.read_whole, seq + b"\x00", 0x30)
    raises_(DecodeError, der.read_whole, seq, 0x31)
    raises_(DecodeError, lambda: list(der.children(seq, vs, ve - 1)))


# -- parsing the fixtures --------------------------------------------------------------------

def _check_fields(name, want):
    c = cert(name)
    assert c.der == fixture(name)
    assert c.tbs == unhex(want["tbs"]), name
    assert c.serial == want["serial"], name
    assert c.issuer == unhex(want["issuer"]) and c.subject == unhex(want["subject"]), name
    assert (c.not_before, c.not_after) == (want["not_before"], want["not_after"]), name
    assert c.spki == unhex(want["spki"]), name
    assert c.key_type == KEY_TYPE[name], name
    if c.key_type == "rsa":
        assert isinstance(c.public_key, RsaPublic)
        assert c.public_key.n == int(want["public_key"]["n"], 16)
        assert c.public_key.e == want["public_key"]["e"]
    else:
        assert c.public_key == unhex(want["public_key"]), name
    assert c.sig_alg == SIG_ALG[want["sig_alg_oid"]], name
    assert c.signature == unhex(want["signature"]), name
    assert c.ski == (unhex(want["ski"]) if want["ski"] else None), name
    assert c.is_ca == want["is_ca"], name
    usage = x509.KU_KEY_CERT_SIGN if c.is_ca else 0
    assert c.key_usage & usage == usage


def test_parse_fields_of_every_fixture():
    for name in KEY_TYPE:
        _check_fields(name, EXPECTED[name])


def test_suite0_server_certificate():
    c = cert("server_x25519")
    assert c.key_type == "x25519" and c.sig_alg == "ed25519" and len(c.public_key) == 32
    assert not c.is_ca and c.key_usage == x509.KU_KEY_AGREEMENT
    assert c.not_before == 1748736000 and c.not_after == 2379933296  # 2045-06-01T12:34:56Z
    assert len(fixture("server_x25519")) == EXPECTED["server_x25519"]["size"]
    assert cert("ca_ed25519").not_after == 2682374400  # GeneralizedTime 20550101000000Z


def test_parse_rejects_bad_fixtures():
    for name in ("v1", "truncated", "critical_unknown"):
        raises_(CertificateError, x509.parse_certificate, fixture(name))
    raises_(CertificateError, x509.parse_certificate, fixture("server_x25519") + b"\x00")
    raises_(CertificateError, x509.parse_certificate, b"")


def test_parse_accepts_bytearray_and_memoryview():
    data = fixture("server_x25519")
    assert x509.parse_certificate(bytearray(data)).tbs == cert("server_x25519").tbs
    assert x509.parse_certificate(memoryview(data)).serial == 2


# -- hand-edited certificates (signature not re-made: parsing must reject them first) ----

def _split(data):
    """([tbs element TLVs], signatureAlgorithm TLV, signatureValue TLV)."""
    vs, ve = der.read_whole(data, 0x30)
    parts = [data[s:e] for _, _, e, s in der.children(data, vs, ve)]
    _, tvs, tve, _ = der.read_tlv(parts[0], 0)
    return [parts[0][s:e] for _, _, e, s in der.children(parts[0], tvs, tve)], parts[1], parts[2]


def _join(items, alg, sig):
    return der.encode_tlv(0x30, der.encode_tlv(0x30, b"".join(items)) + alg + sig)


def _edited(index, new, name="server_x25519"):
    items, alg, sig = _split(fixture(name))
    if new is None:
        del items[index]
    else:
        items[index] = new
    return _join(items, alg, sig)


def test_split_join_round_trip():
    items, alg, sig = _split(fixture("server_x25519"))
    assert len(items) == 8 and _join(items, alg, sig) == fixture("server_x25519")
    assert x509.parse_certificate(_join(items, alg, sig)).serial == 2


def test_parse_rejects_edited_tbs():
    t = der.encode_tlv
    ts = lambda s: t(0x30, t(0x17, s) + t(0x17, b"450601000000Z"))
    ed_spki = lambda key: t(0x30, t(0x30, t(0x06, b"\x2b\x65\x6e")) + t(0x03, key))
    cases = [
        (0, t(0xA0, t(0x02, b"\x01"))),          # version v2
        (0, t(0xA0, t(0x02, b"\x02") + b"\x05\x00")),
        (0, None),                                # no version: v1
        (1, t(0x02, b"\x00")),                    # serial 0
        (1, t(0x02, b"\xff")),                    # negative serial
        (1, t(0x02, b"\x01" * 21)),               # serial longer than 20 bytes
        (1, t(0x02, b"\x00\x05")),                # serial not minimal
        (2, t(0x30, t(0x06, b"\x2a\x86\x48\xce\x3d\x04\x03\x02"))),  # inner alg differs
        (3, t(0x30, t(0x31, b""))),               # empty RDN in issuer
        (3, t(0x30, t(0x31, b"\x05\x00"))),       # RDN holding no SEQUENCE
        (3, t(0x31, b"")),                        # issuer not a SEQUENCE
        (4, ts(b"250601000000+0000")),            # not 'Z'
        (4, ts(b"2506010000Z")),                  # no seconds
        (4, ts(b"2506010000000")),                # right length, no 'Z'
        (4, t(0x30, t(0x18, b"202506010000000") + t(0x17, b"450601000000Z"))),
        (4, ts(b"250631000000Z")),                # June 31st
        (4, ts(b"250601240000Z")),                # hour 24
        (4, ts(b"25060100000aZ")),                # not a digit
        (4, t(0x30, t(0x18, b"20250601000000.5Z") + t(0x17, b"450601000000Z"))),
        (4, t(0x30, t(0x04, b"250601000000Z") + t(0x17, b"450601000000Z"))),
        (4, t(0x30, t(0x17, b"250601000000Z") * 3)),  # three times
        (4, t(0x30, t(0x17, b"250601000000Z"))),      # one time
        (6, ed_spki(b"\x00" + bytes(31))),        # short X25519 key
        (6, ed_spki(b"\x01" + bytes(32))),        # unused bits
        (6, t(0x30, t(0x30, t(0x06, b"\x2b\x65\x71")) + t(0x03, bytes(58)))),  # Ed448
        (6, t(0x30, t(0x30, t(0x06, b"\x2a\x86\x48\xce\x3d\x02\x01")
                          + t(0x06, b"\x2a\x86\x48\xce\x3d\x03\x01\x07"))
              + t(0x03, b"\x00\x05" + bytes(64)))),  # 65 bytes, not 04||x||y
        (6, t(0x30, t(0x30, t(0x06, b"\x2b\x65\x6e") + b"\x05\x00") + t(0x03, bytes(33)))),
        (6, t(0x30, t(0x30, t(0x06, b"\x2a\x86\x48\xce\x3d\x02\x01")
                          + t(0x06, b"\x2a\x86\x48\xce\x3d\x03\x01\x07"))
              + t(0x03, b"\x00\x02" + bytes(32)))),  # compressed P-256 point
    ]
    for index, new in cases:
        raises_(CertificateError, x509.parse_certificate, _edited(index, new))


def test_parse_rejects_extra_tbs_elements():
    items, alg, sig = _split(fixture("server_x25519"))
    for extra in (b"\x81\x01\x00", b"\x82\x01\x00", b"\x05\x00", items[7]):
        raises_(CertificateError, x509.parse_certificate, _join(items + [extra], alg, sig))
    raises_(CertificateError, x509.parse_certificate,
            _join(items[:7] + [b"\x81\x01\x00", items[7]], alg, sig))
    assert x509.parse_certificate(_join(items[:7], alg, sig)).ski is None  # no extensions


def _with_extensions(*exts):
    return _edited(7, der.encode_tlv(0xA3, der.encode_tlv(0x30, b"".join(exts))))


def _ext(oid, value, critical=None):
    crit = b"" if critical is None else der.encode_tlv(0x01, critical)
    return der.encode_tlv(0x30, der.encode_tlv(0x06, oid) + crit + der.encode_tlv(0x04, value))


BC, KU, SKI = b"\x55\x1d\x13", b"\x55\x1d\x0f", b"\x55\x1d\x0e"
EKU, AKI = b"\x55\x1d\x25", b"\x55\x1d\x23"
SERVER_AUTH = "3014" + "0608" + "2b06010505070301" + "0608" + "2b06010505070302"


def test_extensions_accepted():
    c = x509.parse_certificate(_with_extensions(_ext(BC, unhex("30060101ff020100"), b"\xff")))
    assert c.is_ca and c.key_usage is None and c.ski is None
    c = x509.parse_certificate(_with_extensions(_ext(KU, unhex("03020204")),
                                                _ext(b"\x55\x1d\x11", b"\x30\x00")))
    assert c.key_usage == x509.KU_KEY_CERT_SIGN and not c.is_ca
    c = x509.parse_certificate(_with_extensions(_ext(KU, unhex("0303070080"))))
    assert c.key_usage == 1 << 8  # decipherOnly
    c = x509.parse_certificate(_with_extensions(_ext(SKI, unhex("0401aa"))))
    assert c.ski == b"\xaa"
    c = x509.parse_certificate(_with_extensions(_ext(EKU, unhex(SERVER_AUTH), b"\xff"),
                                                _ext(AKI, unhex("30038001bb"))))
    assert c.eku == (x509.OID_SERVER_AUTH, x509.OID_CLIENT_AUTH) and c.aki == b"\xbb"
    c = x509.parse_certificate(_with_extensions(_ext(AKI, unhex("30088001bba100820101"))))
    assert c.aki == b"\xbb"                      # issuer and serial forms are skipped


def test_extensions_rejected():
    cases = [
        (),                                            # empty Extensions
        (_ext(BC, b"\x30\x00"), _ext(BC, b"\x30\x00")),  # duplicate
        (_ext(BC, b"\x30\x00", b"\x00"),),             # critical FALSE encoded
        (_ext(BC, b"\x30\x00", b"\x01"),),             # BOOLEAN not DER
        (_ext(BC, unhex("3003010100")),),              # cA FALSE encoded
        (_ext(BC, unhex("3003020100")),),              # pathLen without cA
        (_ext(BC, unhex("30060101ff0201ff")),),        # negative pathLen
        (_ext(BC, unhex("3000") + b"\x00"),),          # trailing bytes
        (_ext(KU, unhex("030100")),),                  # no bits
        (_ext(KU, unhex("03020300")),),                # unused bits not zero / not minimal
        (_ext(KU, unhex("03020584")),),                # unused bit set
        (_ext(KU, unhex("03020285")),),                # unused bit set, last used bit set
        (_ext(KU, unhex("030400800001")),),            # more bits than keyUsage has
        (_ext(KU, unhex("0303000000")),),              # trailing zero bits
        (_ext(SKI, unhex("0400")),),                   # empty key identifier
        (_ext(b"\x55\x1d\x11", b"\x30\x00", b"\xff"),),  # unknown critical (SAN)
        (_ext(b"\x55\x80\x1d", b"\x30\x00"),),         # OID not minimal
        (_ext(EKU, b"\x30\x00"),),                     # empty extendedKeyUsage
        (_ext(EKU, unhex("30020400")),),               # a purpose that is not an OID
        (_ext(EKU, unhex("3002060180")),),             # bad OID in it
        (_ext(AKI, b"\x30\x00"),),                     # no keyIdentifier
        (_ext(AKI, unhex("30028000")),),               # empty keyIdentifier
        (_ext(AKI, unhex("30058001bb0400")),),         # unknown field
    ]
    for exts in cases:
        raises_(CertificateError, x509.parse_certificate, _with_extensions(*exts))


def test_outer_structure_rejected():
    items, alg, sig = _split(fixture("server_x25519"))
    t = der.encode_tlv
    tbs = t(0x30, b"".join(items))
    for body in (tbs + alg, tbs + alg + sig + b"\x05\x00", tbs + alg + t(0x03, b"\x01" + sig[3:]),
                 tbs + t(0x30, t(0x06, b"\x2b\x65\x71")) + sig,    # Ed448 signature
                 tbs + alg + t(0x03, b"\x00" + bytes(63))):        # short Ed25519 signature
        raises_(CertificateError, x509.parse_certificate, t(0x30, body))


def test_time_conversion():
    cases = ((0x17, "700101000000Z", 0), (0x17, "000229000000Z", 951782400),
             (0x17, "491231235959Z", 2524607999), (0x17, "500101000000Z", -631152000),
             (0x17, "691231235959Z", -1), (0x18, "20500101000000Z", 2524608000),
             (0x18, "99991231235959Z", 253402300799), (0x18, "21000301000000Z", 4107542400),
             (0x18, "16000229120000Z", -11670955200))
    for tag, s, want in cases:
        assert der.read_time(tag, s.encode()) == want, s
    for tag, s in ((0x17, "010229000000Z"), (0x18, "21000229000000Z"), (0x18, "20251301000000Z"),
                   (0x18, "20250100000000Z"), (0x17, "250101006000Z"), (0x17, "250101000060Z"),
                   (0x17, "20250101000000Z"), (0x18, "250101000000Z"), (0x04, "250101000000Z"),
                   (0x17, "2501010000000"), (0x17, "-25101000000Z")):
        raises_(DecodeError, der.read_time, tag, s.encode())


# -- truncation and bit flips -----------------------------------------------------------

def test_every_truncation_is_rejected():
    data = fixture("server_x25519")
    for n in range(len(data)):
        raises_(CertificateError, x509.parse_certificate, data[:n])


def test_every_bit_flip_is_rejected_or_fails_verification():
    data = fixture("server_x25519")
    anchor = cert("ca_ed25519")
    backend = _backend()
    parsed = 0
    for i in range(len(data)):
        flipped = bytearray(data)
        flipped[i] ^= 1 << (i % 8)
        try:
            c = x509.parse_certificate(bytes(flipped))
        except AirshakeError as e:
            assert isinstance(e, CertificateError), (i, e)
            continue
        parsed += 1
        raises_(CertificateError, x509.verify_certificate, c, anchor, backend, NOW)
    assert 0 < parsed < len(data)


# -- verification -----------------------------------------------------------------------

def test_verify_good_pairs_with_every_backend():
    assert len(backends()) == (1 if IS_MICROPYTHON else 2)  # pure; pure and pyca
    for backend in backends():
        for anchor, name in GOOD_PAIRS:
            assert x509.verify_certificate(cert(name), cert(anchor), backend, NOW) is None


def test_verify_validity_window():
    backend = _backend()
    c, anchor = cert("server_x25519"), cert("ca_ed25519")
    x509.verify_certificate(c, anchor, backend, c.not_before)
    x509.verify_certificate(c, anchor, backend, c.not_after)
    raises_(CertificateError, x509.verify_certificate, c, anchor, backend, c.not_before - 1)
    raises_(CertificateError, x509.verify_certificate, c, anchor, backend, c.not_after + 1)
    raises_(CertificateError, x509.verify_certificate, cert("expired"), anchor, backend, NOW)
    x509.verify_certificate(cert("expired"), anchor, backend, 1590000000)  # May 2020


def test_verify_rejects_wrong_ca_and_bad_signatures():
    for backend in backends():
        ca, other = cert("ca_ed25519"), cert("other_ca")
        assert ca.subject == other.subject  # same name, other key: only the signature tells
        for c, anchor in ((cert("other_server"), ca), (cert("server_x25519"), other),
                          (cert("tampered"), ca), (cert("server_x25519"), cert("ca_p256")),
                          (cert("server_p256"), cert("ca_rsa")),
                          (cert("server_rsa_pss"), ca), (cert("rsa_ed25519"), other)):
            raises_(CertificateError, x509.verify_certificate, c, anchor, backend, NOW)


def _flip_signature(c):
    c.signature = c.signature[:-1] + bytes([c.signature[-1] ^ 0x40])
    return c


def test_verify_rejects_flipped_signatures_for_each_algorithm():
    for backend in backends():
        for anchor, name in GOOD_PAIRS:
            c = _flip_signature(cert(name))
            raises_(CertificateError, x509.verify_certificate, c, cert(anchor), backend, NOW)


class _Anchor:
    def __init__(self, base, **changes):
        for k in ("subject", "is_ca", "key_type", "public_key", "key_usage"):
            setattr(self, k, getattr(base, k))
        for k in changes:
            setattr(self, k, changes[k])


def test_verify_anchor_rules():
    backend = _backend()
    c, ca = cert("server_x25519"), cert("ca_ed25519")
    x509.verify_certificate(c, _Anchor(ca), backend, NOW)
    x509.verify_certificate(c, _Anchor(ca, key_usage=None), backend, NOW)
    for changes in ({"is_ca": False}, {"key_usage": x509.KU_DIGITAL_SIGNATURE},
                    {"key_type": "p256"}, {"subject": c.subject},
                    {"public_key": cert("other_ca").public_key}):
        raises_(CertificateError, x509.verify_certificate, c, _Anchor(ca, **changes), backend, NOW)
    # a leaf (not a CA) is never an anchor, even for a certificate that names it
    raises_(CertificateError, x509.verify_certificate, c, cert("server_x25519"), backend, NOW)


def test_rsa_pkcs1_verify_direct():
    backend = _backend()
    ca, c = cert("ca_rsa"), cert("server_rsa_pkcs1")
    assert x509.rsa_pkcs1_sha256_verify(backend, ca.public_key, c.tbs, c.signature)
    assert not x509.rsa_pkcs1_sha256_verify(backend, ca.public_key, c.tbs + b"x", c.signature)
    assert not x509.rsa_pkcs1_sha256_verify(backend, ca.public_key, c.tbs, c.signature[1:])
    too_big = (ca.public_key.n + 1).to_bytes(256, "big")
    assert not x509.rsa_pkcs1_sha256_verify(backend, ca.public_key, c.tbs, too_big)
    # with e = 1 the encoding itself is a valid signature: check the range and length rules
    pub = RsaPublic((1 << 2046) + 1, 1)
    em = b"\x00\x01" + b"\xff" * 202 + b"\x00" + x509._SHA256_DIGEST_INFO + backend.sha256(b"m")
    assert x509.rsa_pkcs1_sha256_verify(backend, pub, b"m", em)
    wrapped = (int.from_bytes(em, "big") + pub.n).to_bytes(256, "big")
    assert not x509.rsa_pkcs1_sha256_verify(backend, pub, b"m", wrapped)
    assert not x509.rsa_pkcs1_sha256_verify(backend, pub, b"m", b"\x00" + em)
    pss = cert("server_rsa_pss")  # a PSS signature is no PKCS#1 v1.5 signature
    assert not x509.rsa_pkcs1_sha256_verify(backend, ca.public_key, pss.tbs, pss.signature)


def test_ecdsa_der_to_raw():
    t = der.encode_tlv
    raw = x509.ecdsa_der_to_raw(t(0x30, t(0x02, b"\x01") + t(0x02, b"\x00\xff")))
    assert raw == bytes(31) + b"\x01" + bytes(31) + b"\xff"
    top = b"\x00" + b"\xff" * 32
    assert x509.ecdsa_der_to_raw(t(0x30, t(0x02, top) + t(0x02, top))) == b"\xff" * 64
    for body in (t(0x02, b"\x01"), t(0x02, b"\x00") + t(0x02, b"\x01"),
                 t(0x02, b"\x01") + t(0x02, b"\xff"),
                 t(0x02, b"\x01") + t(0x02, b"\x01\x00" + bytes(32)),
                 t(0x02, b"\x01") + t(0x02, b"\x00\x01"), t(0x02, b"\x01") * 3):
        raises_(DecodeError, x509.ecdsa_der_to_raw, t(0x30, body))


# -- spki_for ---------------------------------------------------------------------------

def test_spki_for_matches_pyca():
    for name in KEY_TYPE:
        c = cert(name)
        assert x509.spki_for(c.key_type, c.public_key) == unhex(EXPECTED[name]["spki"]), name
        assert x509.parse_spki(c.spki)[0] == c.key_type


def test_spki_for_rejects_misuse():
    raises_(UsageError, x509.spki_for, "x25519", bytes(31))
    raises_(UsageError, x509.spki_for, "p256", b"\x02" + bytes(64))
    raises_(UsageError, x509.spki_for, "p256", bytes(33))
    raises_(UsageError, x509.spki_for, "rsa", bytes(256))
    raises_(UsageError, x509.spki_for, "ed448", bytes(57))


def test_rsa_key_rules():
    t = der.encode_tlv

    def spki(n, e):
        key = t(0x30, der.encode_uint(n) + der.encode_uint(e))
        return t(0x30, unhex("300d06092a864886f70d0101010500") + t(0x03, b"\x00" + key))
    n = cert("ca_rsa").public_key.n
    assert x509.parse_spki(spki(n, 65537))[1].n == n
    key = t(0x30, der.encode_uint(n) + der.encode_uint(65537) + b"\x05\x00")
    raises_(DecodeError, x509.parse_spki,
            t(0x30, unhex("300d06092a864886f70d0101010500") + t(0x03, b"\x00" + key)))
    for bad_n, e in ((n >> 8 | 1, 65537), (n, 65536), (n, 1), (n + 1, 65537), (n, (1 << 32) + 1),
                     ((1 << 4104) + 1, 3)):
        raises_(CertificateError, x509.parse_spki, spki(bad_n, e))
