# airshake.c509: C_B on the air as a C509 certificate (draft-ietf-cose-cbor-encoded-cert-18,
# c509CertificateType 3, "CBOR re-encoded X.509 v3", as the unwrapped CBOR sequence
# ~C509Certificate); PROTOCOL.md §3.2. Operators keep X.509 in the CA and the store.
#   decode(c509) -> the exact DER it stands for: A rebuilds C_B's DER, then checks it with
#                   airshake.x509 as before; H(C_B) is the hash of that DER (§4.1).
#   airshake.c509_encoder.encode(der) is its inverse (B only: a device never loads it).
# Profile (what airshake's CA issues, and nothing else): v3; issuer and subject one CN in a
# UTF8String; times as RFC 5280 encodes them; keys X25519, Ed25519, P-256 (point
# compressed on the air), RSA; signatures Ed25519, ECDSA-SHA256, RSA-PKCS1-SHA256 and
# RSA-PSS-SHA256 (NULL parameters); extensions subjectKeyIdentifier, keyUsage,
# basicConstraints, authorityKeyIdentifier (keyIdentifier only) and extendedKeyUsage
# (serverAuth, clientAuth), each at most once, in any order.
# Rules: the CBOR reader is strict (definite lengths, shortest heads, the draft's one
# encoding of each value, nothing trailing): malformed input is DecodeError, well-formed
# input outside the profile CertificateError.
import airshake.der as der  # direct submodule import: no trip through airshake.__getattr__
from airshake.der import BIT_STRING, BOOLEAN, OCTET_STRING, OID, SEQUENCE
from airshake import errors

C509_TYPE = 3                   # CBOR re-encoded X.509 v3 (the draft's registry)

_UINT, _NINT, _BYTES, _TEXT, _ARRAY, _TAG, _SIMPLE = 0, 1, 2, 3, 4, 6, 7
_NULL_BYTE = 0xF6
MAX_TIME = 253402300799        # 9999-12-31T23:59:59Z: RFC 5280's "no expiry", CBOR null
_GENERALIZED_FROM = 2524608000  # 2050-01-01: from here RFC 5280 uses GeneralizedTime
_MAX_SERIAL = 20


def _alg(oid, params=b""):
    return der.encode_tlv(SEQUENCE, der.encode_tlv(OID, oid) + params)


_ASN1_NULL = b"\x05\x00"
_OID_SHA256 = b"\x60\x86\x48\x01\x65\x03\x04\x02\x01"
_SHA256_NULL = _alg(_OID_SHA256, _ASN1_NULL)
_PSS_PARAMS = der.encode_tlv(SEQUENCE, der.encode_tlv(0xA0, _SHA256_NULL)
                             + der.encode_tlv(0xA1, _alg(b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x08",
                                                         _SHA256_NULL))
                             + der.encode_tlv(0xA2, der.encode_uint(32)))
# C509 Signature Algorithms registry: int -> (AlgorithmIdentifier DER, x509 sig_alg)
SIG_ALGS = {
    0: (_alg(b"\x2a\x86\x48\xce\x3d\x04\x03\x02"), "ecdsa-sha256"),
    12: (_alg(b"\x2b\x65\x70"), "ed25519"),
    23: (_alg(b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b", _ASN1_NULL), "rsa-pkcs1-sha256"),
    26: (_alg(b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a", _PSS_PARAMS), "rsa-pss-sha256"),
}
# C509 Public Key Algorithms registry: int -> (AlgorithmIdentifier DER, x509 key_type)
KEY_ALGS = {
    0: (_alg(b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01", _ASN1_NULL), "rsa"),
    1: (_alg(b"\x2a\x86\x48\xce\x3d\x02\x01",
             der.encode_tlv(OID, b"\x2a\x86\x48\xce\x3d\x03\x01\x07")), "p256"),
    8: (_alg(b"\x2b\x65\x6e"), "x25519"),
    12: (_alg(b"\x2b\x65\x70"), "ed25519"),
}
_RAW_KEY = {"x25519": 32, "ed25519": 32}
# C509 Extensions registry: int -> extension OID contents
EXT_OID = {1: b"\x55\x1d\x0e", 2: b"\x55\x1d\x0f", 4: b"\x55\x1d\x13", 7: b"\x55\x1d\x23",
            8: b"\x55\x1d\x25"}
EXT_SKI, EXT_KU, EXT_BC, EXT_AKI, EXT_EKU = 1, 2, 4, 7, 8
# C509 Extended Key Usages registry: int -> KeyPurposeId OID contents
EKU_OID = {1: b"\x2b\x06\x01\x05\x05\x07\x03\x01", 2: b"\x2b\x06\x01\x05\x05\x07\x03\x02"}
OID_CN = b"\x55\x04\x03"
UTF8_STRING = 0x0C

_P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
_P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
RSA_E = 65537


# -- CBOR, the strict subset (RFC 8949 §3, §4.2.1 preferred serialization) --------------

class _Cbor:
    def __init__(self, buf):
        self.buf = buf
        self.pos = 0

    def peek(self):
        """The major type of the next item."""
        if self.pos >= len(self.buf):
            raise errors.DecodeError("C509: truncated")
        return self.buf[self.pos] // 32

    def head(self):
        """(major type, argument) of the next item; shortest forms only."""
        self.peek()
        major, info = divmod(self.buf[self.pos], 32)
        self.pos += 1
        if info < 24:
            return major, info
        if info > 27:
            raise errors.DecodeError("C509: indefinite length or reserved CBOR head")
        n = 1 << (info - 24)
        if self.pos + n > len(self.buf):
            raise errors.DecodeError("C509: truncated")
        value = int.from_bytes(self.buf[self.pos:self.pos + n], "big")
        self.pos += n
        if value < (24 if n == 1 else 1 << (4 * n)):
            raise errors.DecodeError("C509: CBOR argument not in its shortest form")
        return major, value

    def take(self, major):
        got, value = self.head()
        if got != major:
            raise errors.DecodeError("C509: CBOR major type %d where %d belongs" % (got, major))
        if major in (_BYTES, _TEXT):
            if self.pos + value > len(self.buf):
                raise errors.DecodeError("C509: truncated")
            self.pos += value
            return bytes(self.buf[self.pos - value:self.pos])
        return value

    def integer(self):
        major, value = self.head()
        if major == _UINT:
            return value
        if major == _NINT:
            return -1 - value
        raise errors.DecodeError("C509: expected an integer")

    def null(self):
        """True (and consumed) when the next item is null."""
        if self.pos < len(self.buf) and self.buf[self.pos] == _NULL_BYTE:
            self.pos += 1
            return True
        return False

    def done(self):
        if self.pos != len(self.buf):
            raise errors.DecodeError("C509: trailing bytes")


# -- pieces both directions share -------------------------------------------------------

def _biguint(c, what):
    b = c.take(_BYTES)
    if not b or b[0] == 0:
        raise errors.DecodeError("C509: %s is not a minimal unsigned bignum" % what)
    return int.from_bytes(b, "big")


def is_hex_name(b):
    """The draft's SpecialText rule: an even-length lowercase hex string goes as bytes."""
    return len(b) >= 2 and len(b) % 2 == 0 and all(48 <= x <= 57 or 97 <= x <= 102 for x in b)


def is_eui64(b):
    """HH-HH-HH-HH-HH-HH-HH-HH (uppercase hex): the draft sends it as tag 48."""
    if len(b) != 23:
        return False
    for i, x in enumerate(b):
        if (x != 45) if i % 3 == 2 else not (48 <= x <= 57 or 65 <= x <= 70):
            return False
    return True


def _check_utf8(b):
    """Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF) without
    control characters: CBOR text and a DER UTF8String both require it, and MicroPython's
    decode() does not check."""
    i, n = 0, len(b)
    while i < n:
        x = b[i]
        if x < 0x80:
            if x < 0x20 or x == 0x7F:
                raise errors.DecodeError("C509: control character in a name")
            i += 1
            continue
        size, low = (2, 0x80) if 0xC2 <= x <= 0xDF else (3, 0x800) if 0xE0 <= x <= 0xEF \
            else (4, 0x10000) if 0xF0 <= x <= 0xF4 else (0, 0)
        if size == 0 or i + size > n:
            raise errors.DecodeError("C509: bad UTF-8 in a name")
        cp = x & (0xFF >> (size + 1))
        for y in b[i + 1:i + size]:
            if y & 0xC0 != 0x80:
                raise errors.DecodeError("C509: bad UTF-8 in a name")
            cp = cp * 64 + (y & 0x3F)
        if cp < low or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            raise errors.DecodeError("C509: bad UTF-8 in a name")
        i += size


def _cn_der(value):
    atv = der.encode_tlv(SEQUENCE, der.encode_tlv(OID, OID_CN)
                         + der.encode_tlv(UTF8_STRING, value))
    return der.encode_tlv(SEQUENCE, der.encode_tlv(der.SET, atv))


def _civil(days):
    """(year, month, day) of a count of days since 1970-01-01 (H. Hinnant's algorithm)."""
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month, doy - (153 * mp + 2) // 5 + 1


def _time_der(t):
    """RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050."""
    days, sec = divmod(t, 86400)
    y, mo, d = _civil(days)
    hms = "%02d%02d%02d%02d%02dZ" % (mo, d, sec // 3600, sec // 60 % 60, sec % 60)
    if t < _GENERALIZED_FROM:
        return der.encode_tlv(der.UTC_TIME, ("%02d" % (y % 100) + hms).encode())
    return der.encode_tlv(der.GENERALIZED_TIME, ("%04d" % y + hms).encode())


# -- decode: C509 -> DER (A) --------------------------------------------------------------

def decode(data):
    """The DER certificate a C509 (type 3, unwrapped sequence) stands for."""
    c = _Cbor(bytes(data))
    if c.integer() != C509_TYPE:
        raise errors.CertificateError("C509: not a re-encoded X.509 certificate (type 3)")
    serial = _biguint(c, "serial number")
    if der.int_bytes_len(serial) > _MAX_SERIAL:
        raise errors.DecodeError("C509: serial number too long")
    sig_alg = _registered(SIG_ALGS, c.integer(), "signature algorithm")[0]
    issuer = None if c.null() else _name(c)
    not_before = c.take(_UINT)
    not_after = MAX_TIME if c.null() else c.take(_UINT)
    if not_before > MAX_TIME or not_after >= MAX_TIME:
        raise errors.DecodeError("C509: time out of range")
    subject = _name(c)
    if issuer == subject:
        raise errors.DecodeError("C509: an issuer equal to the subject must be null")
    spki = _spki(c)
    extensions = _extensions(c)
    signature = _signature(c, sig_alg)
    c.done()
    validity = der.encode_tlv(SEQUENCE, _time_der(not_before) + _time_der(not_after))
    tbs = (der.encode_tlv(0xA0, der.encode_uint(2)) + der.encode_uint(serial) + sig_alg
           + (issuer or subject) + validity + subject + spki)
    if extensions:
        tbs += der.encode_tlv(0xA3, der.encode_tlv(SEQUENCE, extensions))
    return der.encode_tlv(SEQUENCE, der.encode_tlv(SEQUENCE, tbs) + sig_alg
                          + der.encode_tlv(BIT_STRING, b"\x00" + signature))


def _registered(table, n, what):
    if n not in table:
        raise errors.CertificateError("C509: unsupported %s %d" % (what, n))
    return table[n]


def _name(c):
    major = c.peek()
    if major == _TEXT:
        value = c.take(_TEXT)
        _check_utf8(value)
        if not value or is_hex_name(value) or is_eui64(value):
            raise errors.DecodeError("C509: name text in a form the draft sends otherwise")
    elif major == _BYTES:
        value = c.take(_BYTES)
        if not value:
            raise errors.DecodeError("C509: empty name")
        value = value.hex().encode()
    else:
        raise errors.CertificateError("C509: only a name of one common name is supported")
    return _cn_der(value)


def _spki(c):
    alg, kind = _registered(KEY_ALGS, c.integer(), "public key algorithm")
    if kind == "rsa":
        if c.peek() == _ARRAY:
            if c.take(_ARRAY) != 2:
                raise errors.DecodeError("C509: RSA key is not [modulus, exponent]")
            n, e = _biguint(c, "modulus"), _biguint(c, "exponent")
            if e == RSA_E:
                raise errors.DecodeError("C509: exponent 65537 must be left out")
        else:
            n, e = _biguint(c, "modulus"), RSA_E
        key = der.encode_tlv(SEQUENCE, der.encode_uint(n) + der.encode_uint(e))
    elif kind == "p256":
        key = _p256_point(c.take(_BYTES))
    else:
        key = c.take(_BYTES)
        if len(key) != _RAW_KEY[kind]:
            raise errors.DecodeError("C509: bad %s key length" % kind)
    return der.encode_tlv(SEQUENCE, alg + der.encode_tlv(BIT_STRING, b"\x00" + key))


def _p256_point(b):
    """The uncompressed point of a C509 P-256 key: 0x04 x y as is, or 0xfe / 0xfd x (the
    re-encoding's compressed forms, even / odd y) with y recomputed."""
    if len(b) == 65 and b[0] == 4:
        return b
    if len(b) != 33 or b[0] not in (0xFE, 0xFD):
        raise errors.DecodeError("C509: bad P-256 key encoding")
    x = int.from_bytes(b[1:], "big")
    if x >= _P256_P:
        raise errors.DecodeError("C509: P-256 x out of range")
    rhs = (x * x * x - 3 * x + _P256_B) % _P256_P
    y = pow(rhs, (_P256_P + 1) // 4, _P256_P)
    if y * y % _P256_P != rhs:
        raise errors.DecodeError("C509: P-256 key not on the curve")
    if y % 2 != (1 if b[0] == 0xFD else 0):
        y = _P256_P - y
    return b"\x04" + b[1:] + y.to_bytes(32, "big")


def _extensions(c):
    """The DER of the extensions (the contents of the SEQUENCE), b"" when there are none."""
    if c.peek() != _ARRAY:
        ku = c.integer()           # keyUsage alone: one int, its sign the criticality
        if ku == 0:
            raise errors.DecodeError("C509: keyUsage 0")
        return _extension(EXT_KU, ku < 0, _key_usage_der(abs(ku)))
    n = c.take(_ARRAY)
    if n % 2:
        raise errors.DecodeError("C509: extensions are (id, value) pairs")
    out, seen = b"", []
    for _ in range(n // 2):
        ext_id = c.integer()
        if ext_id == 0 or abs(ext_id) in seen:
            raise errors.DecodeError("C509: extension id 0 or repeated")
        seen.append(abs(ext_id))
        out += _extension(abs(ext_id), ext_id < 0, _extension_value(c, abs(ext_id), n))
    return out


def _extension(ext_id, critical, value):
    body = der.encode_tlv(OID, _registered(EXT_OID, ext_id, "extension"))
    if critical:
        body += der.encode_tlv(BOOLEAN, b"\xff")
    return der.encode_tlv(SEQUENCE, body + der.encode_tlv(OCTET_STRING, value))


def _extension_value(c, ext_id, count):
    _registered(EXT_OID, ext_id, "extension")
    if ext_id == EXT_KU:
        if count == 2:
            raise errors.DecodeError("C509: keyUsage alone must be sent as one int")
        return _key_usage_der(c.take(_UINT))
    if ext_id == EXT_BC:
        v = c.integer()
        if v < -2:
            raise errors.DecodeError("C509: bad basicConstraints")
        ca = b"" if v == -2 else der.encode_tlv(BOOLEAN, b"\xff")
        return der.encode_tlv(SEQUENCE, ca + (der.encode_uint(v) if v >= 0 else b""))
    if ext_id == EXT_EKU:
        return der.encode_tlv(SEQUENCE, _eku(c))
    key_id = c.take(_BYTES)
    if not key_id:
        raise errors.DecodeError("C509: empty key identifier")
    if ext_id == EXT_SKI:
        return der.encode_tlv(OCTET_STRING, key_id)
    return der.encode_tlv(SEQUENCE, der.encode_tlv(0x80, key_id))    # AKI: keyIdentifier


def _eku(c):
    if c.peek() != _ARRAY:
        return der.encode_tlv(OID, _registered(EKU_OID, c.integer(), "extended key usage"))
    n = c.take(_ARRAY)
    if n < 2:
        raise errors.DecodeError("C509: one key purpose must be sent without an array")
    return b"".join(der.encode_tlv(OID, _registered(EKU_OID, c.integer(),
                                                    "extended key usage"))
                    for _ in range(n))


def _key_usage_der(bits):
    """keyUsage as a uint (bit n of RFC 5280 §4.2.1.3 is 2**n) -> its minimal BIT STRING."""
    if bits == 0 or bits >> 9:
        raise errors.DecodeError("C509: keyUsage out of range")
    size = 1 if bits < 256 else 2
    octets = bytearray(size)
    for n in range(9):
        if bits & (1 << n):
            octets[n // 8] |= 0x80 >> (n % 8)
    last = octets[-1]
    unused = 0
    while not last & (1 << unused):
        unused += 1
    return der.encode_tlv(BIT_STRING, bytes((unused,)) + bytes(octets))


def _signature(c, sig_alg):
    sig = c.take(_BYTES)
    kind = _kind_of(sig_alg)
    if kind == "ed25519" and len(sig) != 64:
        raise errors.DecodeError("C509: bad Ed25519 signature length")
    if kind == "ecdsa-sha256":
        if len(sig) != 64:
            raise errors.DecodeError("C509: bad ECDSA signature length")
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        if r == 0 or s == 0:
            raise errors.DecodeError("C509: ECDSA signature value zero")
        return der.encode_tlv(SEQUENCE, der.encode_uint(r) + der.encode_uint(s))
    if not sig:
        raise errors.DecodeError("C509: empty signature")
    return sig


def _kind_of(sig_alg):
    for alg, kind in SIG_ALGS.values():
        if alg == sig_alg:
            return kind
    raise errors.CertificateError("C509: unsupported signature algorithm")
