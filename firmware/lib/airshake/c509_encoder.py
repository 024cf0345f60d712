# airshake.c509_encoder: B's side of airshake.c509 (PROTOCOL.md §3.2): the C509 (type 3,
# unwrapped sequence) of a DER certificate, for C_B by value. B calls it once per C_B
# (ResponderConfig.cert_on_air); a device never loads it.
# Rules: only the profile airshake.c509 states; encode() decodes its own output with
# airshake.c509 and refuses (CertificateError) unless that gives back the same DER bytes,
# so the two stay each other's inverse and B sends DER for anything else.
import airshake.der as der  # direct submodule import: no trip through airshake.__getattr__
from airshake import c509, x509
from airshake.der import BIT_STRING, BOOLEAN, INTEGER, OCTET_STRING, OID, SEQUENCE
from airshake.errors import CertificateError, DecodeError

_UINT, _NINT, _BYTES, _TEXT, _ARRAY = 0, 1, 2, 3, 4     # CBOR major types


def _cbor_head(major, n):
    if n < 24:
        return bytes((major * 32 + n,))
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes((major * 32 + info,)) + n.to_bytes(size, "big")
    raise CertificateError("C509: value too large")


def _cbor_int(n):
    return _cbor_head(_UINT, n) if n >= 0 else _cbor_head(_NINT, -1 - n)


def _cbor_bytes(b, major=_BYTES):
    return _cbor_head(major, len(b)) + b


def _uint_bytes(n):
    return n.to_bytes(der.int_bytes_len(n), "big")


def encode(cert_der):
    """The C509 of a DER certificate; CertificateError if it is outside the profile (the
    caller then sends the DER)."""
    cert_der = bytes(cert_der)
    cert = x509.parse_certificate(cert_der)
    try:
        out = _encode(cert)
    except DecodeError as e:     # a DER shape the profile has no place for
        raise CertificateError("C509: outside the profile (%s)" % (e,))
    try:
        same = c509.decode(out) == cert_der
    except (CertificateError, DecodeError):
        same = False
    if not same:
        raise CertificateError("C509: the certificate is outside the profile that "
                               "re-encodes without loss")
    return out


def _encode(cert):
    out = _cbor_int(c509.C509_TYPE) + _cbor_bytes(_uint_bytes(cert.serial))
    out += _cbor_int(_number(c509.SIG_ALGS, cert.sig_alg))
    subject = _name_cbor(cert.subject)
    out += b"\xf6" if cert.issuer == cert.subject else _name_cbor(cert.issuer)
    out += _cbor_int(cert.not_before)
    out += b"\xf6" if cert.not_after == c509.MAX_TIME else _cbor_int(cert.not_after)
    out += subject + _cbor_int(_number(c509.KEY_ALGS, cert.key_type)) + _key_cbor(cert)
    return out + _extensions_cbor(cert.tbs) + _cbor_bytes(cert.signature)


def _number(table, kind):
    for n, (_, k) in table.items():
        if k == kind:
            return n
    raise CertificateError("C509: no registered number for %s" % kind)


def _name_cbor(name):
    """A Name of one UTF8String CN as SpecialText; CertificateError for any other Name."""
    r = der.reader(name, SEQUENCE)
    vs, ve = r.expect(der.SET)
    r.done()
    rdn = der.Reader(name, vs, ve)
    avs, ave = rdn.expect(SEQUENCE)
    rdn.done()
    pair = der.Reader(name, avs, ave)
    if pair.value(OID) != c509.OID_CN or pair.peek_tag() != c509.UTF8_STRING:
        raise CertificateError("C509: a name other than one UTF8String common name")
    value = pair.value(c509.UTF8_STRING)
    pair.done()
    if c509.is_eui64(value):
        raise CertificateError("C509: an EUI-64 common name (tag 48) is not supported")
    if c509.is_hex_name(value):
        return _cbor_bytes(bytes.fromhex(value.decode()))
    return _cbor_bytes(value, _TEXT)


def _key_cbor(cert):
    key = cert.public_key
    if cert.key_type == "rsa":
        n = _cbor_bytes(_uint_bytes(key.n))
        if key.e == c509.RSA_E:
            return n
        return _cbor_head(_ARRAY, 2) + n + _cbor_bytes(_uint_bytes(key.e))
    if cert.key_type == "p256":
        return _cbor_bytes(bytes((0xFD if key[64] % 2 else 0xFE,)) + key[1:33])
    return _cbor_bytes(key)


def _extensions_cbor(tbs):
    """The extensions of tbsCertificate in their DER order as the C509 array (or the one
    int of keyUsage alone)."""
    r = der.reader(tbs, SEQUENCE)
    while not r.at_end() and r.peek_tag() != 0xA3:
        r.expect(r.peek_tag())
    if r.at_end():
        return _cbor_head(_ARRAY, 0)
    vs, ve = r.expect(0xA3)
    exts = der.reader(tbs, SEQUENCE, vs, ve)
    items = []
    while not exts.at_end():
        es, ee = exts.expect(SEQUENCE)
        ext = der.Reader(tbs, es, ee)
        oid = ext.value(OID)
        critical = ext.peek_tag() == BOOLEAN and der.read_bool(ext.value(BOOLEAN))
        value = ext.value(OCTET_STRING)
        ext_id = _number_of_oid(oid)
        items.append((-ext_id if critical else ext_id, value))
    if len(items) == 1 and abs(items[0][0]) == c509.EXT_KU:
        ext_id, value = items[0]
        ku = _key_usage_bits(value)
        return _cbor_int(-ku if ext_id < 0 else ku)
    out = _cbor_head(_ARRAY, 2 * len(items))
    for ext_id, value in items:
        out += _cbor_int(ext_id) + _ext_value_cbor(abs(ext_id), value)
    return out


def _key_usage_bits(value):
    vs, ve = der.read_whole(value, BIT_STRING)
    bits = 0
    for n in range(8 * (ve - vs - 1)):
        if value[vs + 1 + n // 8] & (0x80 >> (n % 8)):
            bits |= 1 << n
    return bits


def _number_of_oid(oid):
    for n, o in c509.EXT_OID.items():
        if o == oid:
            return n
    raise CertificateError("C509: an extension outside the profile")


def _ext_value_cbor(ext_id, value):
    if ext_id == c509.EXT_SKI:
        vs, ve = der.read_whole(value, OCTET_STRING)
        return _cbor_bytes(value[vs:ve])
    if ext_id == c509.EXT_AKI:
        r = der.reader(value, SEQUENCE)
        vs, ve = r.expect(0x80)
        r.done()
        return _cbor_bytes(value[vs:ve])
    if ext_id == c509.EXT_KU:
        return _cbor_int(_key_usage_bits(value))
    if ext_id == c509.EXT_BC:
        r = der.reader(value, SEQUENCE)
        ca = r.peek_tag() == BOOLEAN and der.read_bool(r.value(BOOLEAN))
        path = der.read_int(r.value(INTEGER)) if not r.at_end() else None
        r.done()
        return _cbor_int(-2 if not ca else -1 if path is None else path)
    vs, ve = der.read_whole(value, SEQUENCE)          # extendedKeyUsage
    purposes = []
    for tag, cs, ce, _ in der.children(value, vs, ve):
        n = [k for k, o in c509.EKU_OID.items() if tag == OID and o == value[cs:ce]]
        if not n:
            raise CertificateError("C509: a key purpose outside the profile")
        purposes.append(_cbor_int(n[0]))
    if len(purposes) == 1:
        return purposes[0]
    return _cbor_head(_ARRAY, len(purposes)) + b"".join(purposes)
