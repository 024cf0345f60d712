# airshake.c509 (C_B on the air as C509, PROTOCOL.md §3.2): every fixture certificate
# re-encodes and comes back byte for byte; the sizes by value; the strict reader refuses
# every other encoding of the same values with a typed error; the encoder refuses what the
# profile has no place for (B then sends DER); the handshake by value completes with
# H(C_B) = H(DER); A loads airshake.c509 only for a C509 C_B and may release it after.
import sys

import airshake
from airshake import c509, c509_encoder, codec
from airshake.ram import release
from airshake.errors import AirshakeError, CertificateError, DecodeError
from airshake.initiator import CONFIRMED, WAIT_ACK, WAIT_M2
from airshake.keys import ServerKey, ServerRef
from airshake.responder import ResponderConfig
from testkit.hs_support import Pair, cert, fixtures, initiator, private
from testkit.support import backends, raises_, unhex

CERT_NAMES = ("server_cert", "device_cert", "rogue_cert_device_role", "rogue_cert_other_name",
              "device_cert_server_role", "server_cert_expired", "server_cert_other_ca")
# C_B of the fixtures (make_fixtures.py, the CA's profile): DER -> C509 bytes
SIZES = {0: (336, 187), 1: (587, 412), 2: (407, 194)}


def _every_fixture_cert():
    fx = fixtures()
    out = [unhex(fx[k]) for k in ("ca_ed25519", "ca_p256", "ca_other")]
    for suite in (0, 1, 2):
        out += [cert(suite, name) for name in CERT_NAMES]
    return out


def test_every_fixture_certificate_round_trips_byte_for_byte():
    for der in _every_fixture_cert():
        small = c509_encoder.encode(der)
        assert c509.decode(small) == der
        assert len(small) < len(der) * 3 // 4


def test_c_b_sizes_per_suite():
    for suite, (der_len, c509_len) in SIZES.items():
        der = cert(suite, "server_cert")
        assert (len(der), len(c509_encoder.encode(der))) == (der_len, c509_len)


def _split(data):
    """The top-level items of a CBOR sequence (the test's own minimal reader)."""
    items, pos = [], 0
    while pos < len(data):
        end = _skip(data, pos)
        items.append(data[pos:end])
        pos = end
    return items


def _skip(data, pos):
    major, info = data[pos] // 32, data[pos] % 32
    pos += 1
    n = info
    if info >= 24:
        size = 1 << (info - 24)
        n = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    if major in (2, 3):
        return pos + n
    if major in (4, 6):
        for _ in range(n if major == 4 else 1):
            pos = _skip(data, pos)
    return pos


def _fields(suite=0, name="server_cert"):
    return _split(c509_encoder.encode(cert(suite, name)))


def test_a_self_signed_ca_sends_a_null_issuer():
    items = _split(c509_encoder.encode(unhex(fixtures()["ca_ed25519"])))
    assert items[3] == b"\xf6" and items[6] == b"\x70airshake test CA"


def _with(items, i, value):
    return b"".join(items[:i] + [value] + items[i + 1:])


def test_the_fields_are_the_drafts_sequence():
    items = _fields()
    assert len(items) == 11
    assert items[0] == b"\x03"                       # type 3: re-encoded X.509 v3
    assert items[2] == b"\x0c"                       # Ed25519 signature (12)
    assert items[3] == b"\x70airshake test CA"       # one CN as text
    assert items[6] == b"\x6fb.airshake.test"
    assert items[7] == b"\x08"                       # X25519 (8)
    assert items[9][:3] == b"\x8a\x23\x21"           # 5 extensions; basicConstraints
    assert len(items[10]) == 66                      # 64-byte signature
    p256 = _fields(2)
    assert p256[7] == b"\x01" and len(p256[8]) == 35 and p256[8][2] in (0xFE, 0xFD)


def test_truncations_and_trailing_bytes_are_refused():
    data = c509_encoder.encode(cert(2, "server_cert"))
    for n in range(len(data)):
        raises_(AirshakeError, c509.decode, data[:n])
    raises_(DecodeError, c509.decode, data + b"\x00")


def test_other_encodings_of_the_same_values_are_refused():
    items = _fields()
    cases = [
        (0, b"\x18\x03", DecodeError),                       # not the shortest head
        (0, b"\x00", CertificateError),                      # another certificate type
        (0, b"\x02", CertificateError),                      # natively signed
        (1, b"\x42\x00" + items[1][1:], DecodeError),        # serial with a leading zero
        (2, b"\x18\x63", CertificateError),                  # an unregistered algorithm
        (3, items[6], DecodeError),                          # issuer = subject, not null
        (3, b"\x64cafe", DecodeError),                       # hex text goes as bytes
        (3, b"\x77" + b"00-11-22-33-44-55-66-77", DecodeError),  # EUI-64 goes as tag 48
        (3, b"\x80", CertificateError),                      # a Name array: not supported
        (3, b"\xd8\x30\x46" + bytes(6), CertificateError),   # tag 48 (EUI-64)
        (3, b"\x62a\x01", DecodeError),                      # a control character
        (3, b"\x62\xc0\xaf", DecodeError),                   # overlong UTF-8
        (3, b"\x5f\x41a\xff", DecodeError),                  # indefinite length
        (5, b"\x1b\x00\x00\x00\x3a\xff\xf4\x41\x7f", DecodeError),   # 9999-12-31 not null
        (8, b"\x58\x1f" + bytes(31), DecodeError),           # a short X25519 key
        (10, b"\x58\x3f" + bytes(63), DecodeError),          # a short signature
    ]
    for i, value, exc in cases:
        raises_(exc, c509.decode, _with(items, i, value))


def test_extension_encodings_outside_the_draft_are_refused():
    items = _fields()
    ski = b"\x01\x48" + bytes(range(1, 9))
    cases = [
        (b"\x82\x21\x10", DecodeError),                      # keyUsage alone as an array
        (b"\x84\x01\x48" + bytes(8) + b"\x01\x41\x01", DecodeError),   # repeated id
        (b"\x82\x00\x41\x01", DecodeError),                  # extension id 0
        (b"\x82\x03\x61a", CertificateError),                # subjectAltName: not profiled
        (b"\x84\x08\x81\x01" + ski, DecodeError),            # one key purpose in an array
        (b"\x84\x08\x05" + ski, CertificateError),           # an unprofiled key purpose
        (b"\x84\x04\x22" + ski, DecodeError),                # basicConstraints -3
        (b"\x84\x07\x40" + ski, DecodeError),                # empty key identifier
        (b"\x83\x01\x41\x01", DecodeError),                  # odd count
        (b"\x00", DecodeError),                              # keyUsage 0
    ]
    for value, exc in cases:
        raises_(exc, c509.decode, _with(items, 9, value))
    # keyUsage alone, critical: one negative int -> the critical extension in DER
    der = c509.decode(_with(items, 9, b"\x2f"))              # -16: keyUsage 16, critical
    assert b"\x06\x03\x55\x1d\x0f\x01\x01\xff\x04\x04\x03\x02\x03\x08" in der


def test_p256_keys_decompress_and_off_curve_points_are_refused():
    items = _fields(2)
    der = cert(2, "server_cert")
    point = ServerRef(backends()[0], 2, der).public
    assert point in c509.decode(b"".join(items))
    # the uncompressed form is a C509 too (the draft: keys MAY be compressed)
    assert c509.decode(_with(items, 8, b"\x58\x41" + point)) == der
    flipped = bytes((items[8][2] ^ 0x03,))                 # 0xfe <-> 0xfd: the other y
    assert c509.decode(_with(items, 8, items[8][:2] + flipped + items[8][3:])) != der
    raises_(DecodeError, c509.decode, _with(items, 8, b"\x58\x21\xfe" + b"\xff" * 32))
    raises_(DecodeError, c509.decode, _with(items, 8, b"\x58\x21\x02" + point[1:33]))
    x = 0
    while True:                                            # an x with no point on P-256
        x += 1
        bad = _with(items, 8, b"\x58\x21\xfe" + x.to_bytes(32, "big"))
        try:
            c509.decode(bad)
        except DecodeError:
            break
    # an ECDSA signature value of zero
    raises_(DecodeError, c509.decode, _with(items, 10, b"\x58\x40" + bytes(64)))


def test_rsa_keys_take_the_short_form_for_65537():
    items = _fields(1)
    modulus = items[8]
    assert modulus[:3] == b"\x59\x01\x00"                  # 256 bytes, no array: e = 65537
    raises_(DecodeError, c509.decode, _with(items, 8, b"\x82" + modulus + b"\x43\x01\x00\x01"))


def _swap(der, old, new):
    assert len(old) == len(new) and der.count(old) == 1
    return der.replace(old, new)


def test_the_encoder_refuses_what_the_profile_cannot_carry():
    der = cert(0, "server_cert")
    printable = _swap(der, b"\x0c\x0fb.airshake.test", b"\x13\x0fb.airshake.test")
    san = _swap(der, b"\x06\x03\x55\x1d\x0e", b"\x06\x03\x55\x1d\x11")
    for bad in (printable, san):
        raises_(CertificateError, c509_encoder.encode, bad)
    raises_(CertificateError, c509_encoder.encode, b"\x30\x00")


def test_a_lowercase_hex_name_goes_as_bytes():
    der = _swap(cert(0, "device_cert"), b"\x0c\x08device-0", b"\x0c\x08deadbeef")
    small = c509_encoder.encode(der)
    assert _split(small)[6] == b"\x44\xde\xad\xbe\xef"
    assert c509.decode(small) == der


def test_b_sends_der_when_c_b_is_outside_the_profile():
    backend = backends()[0]
    der = _swap(cert(0, "server_cert"), b"\x0c\x0fb.airshake.test", b"\x13\x0fb.airshake.test")
    skey = ServerKey(backend, 0, private(0, "server_key"), der)
    cfg = ResponderConfig(backend, [skey])
    assert cfg.cert_on_air(skey) == (0, der)
    good = ServerKey(backend, 0, private(0, "server_key"), cert(0, "server_cert"))
    flag, small = cfg.cert_on_air(good)
    assert flag == codec.M2_C509 and c509.decode(small) == cert(0, "server_cert")
    assert cfg.cert_on_air(good)[1] is small                 # encoded once per C_B


def test_handshake_by_value_sends_c509_and_hashes_the_der():
    expected = {0: [46, 230, 9], 1: [46, 959, 9], 2: [46, 237, 9]}
    for backend in backends():
        for suite in (0, 1, 2):
            pair = Pair(backend, suite)
            assert pair.run() == expected[suite]
            m2 = pair.wire[1][1]
            assert m2[0] & codec.M2_C509 and m2[0] & codec.M2_CB_VALUE
            der = cert(suite, "server_cert")
            assert pair.ini.state == CONFIRMED
            assert pair.ini.server.der == der
            assert pair.ini.server.cert_hash == backend.sha256(der)


def test_m2_flag_rules():
    raw = codec.encode_m2(codec.M2(codec.M2_C509, bytes(32), proof=bytes(8)))
    raises_(DecodeError, codec.decode_m2, raw, 0, lambda cert: codec.MAC_LEN)   # C509 alone
    raw = bytes((raw[0] | 0x01,)) + raw[1:]
    raises_(DecodeError, codec.decode_m2, raw, 0, lambda cert: codec.MAC_LEN)   # reserved


def test_a_tampered_c509_fails_the_handshake_with_a_typed_refusal():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.ini.connect(pair.t)
    pair.a_to_b()
    m2 = pair.res.datagrams_to_send(pair.t)[0]
    at = m2.index(b"b.airshake.test")               # B's subject name in the C509
    for bad in (m2[:at] + b"c" + m2[at + 1:], m2[:at - 1] + b"\x00" + m2[at:]):
        pair.ini.receive(bad, pair.t)
        pair.a_drain()
        assert isinstance(pair.a_events[-1].error, AirshakeError)
        assert pair.ini.state == WAIT_M2
    assert isinstance(pair.a_events[0].error, CertificateError)   # another name, same DER
    pair.ini.receive(m2, pair.t)                    # the real m2 still goes through
    assert pair.ini.state == WAIT_ACK


def test_a_loads_c509_only_for_a_c509_c_b_and_lets_it_go():
    backend = backends()[0]
    saved = sys.modules.get("airshake.c509")
    try:
        release("airshake.c509")
        ref = ServerRef(backend, 0, cert(0, "server_cert"))
        by_ref = Pair(backend, 0, ini=initiator(backend, 0, server=ref))
        assert by_ref.run() == [43, 41, 9]
        assert "airshake.c509" not in sys.modules
        by_value = Pair(backend, 0)
        assert by_value.run() == [46, 230, 9]
        assert by_value.wire[1][1][0] & codec.M2_C509
        # A let the decoder go once it had the DER (B's encoder loaded it before A ran)
        assert "airshake.c509" not in sys.modules
        assert "c509" not in airshake.__dict__
    finally:
        if saved is not None:
            sys.modules["airshake.c509"] = saved
            airshake.c509 = saved
