# airshake.x509: the minimal X.509 v3 reader of airshake. The device uses it to check
# the server certificate C_B against its trust anchor; the core uses it to take a
# peer's public key out of a certificate, and spki_for() to build the SPKI DER that
# device identifiers hash.
# Rules: v3 only; DER only (airshake.der); every algorithm is matched as exact DER
# bytes against the short list below, anything else is refused; a critical extension
# other than basicConstraints, keyUsage, extendedKeyUsage, subjectKeyIdentifier and
# authorityKeyIdentifier is refused, and so are unique identifiers; fields the device does
# not need (names, other extensions) are kept raw or skipped. check_role() tells a server
# certificate (C_B) from a device certificate (C_A) by extendedKeyUsage (PROTOCOL.md §2.3).
# Every failure out of parse_certificate, verify_certificate and check_role is
# CertificateError (DER faults are wrapped); local misuse of spki_for is UsageError.

import airshake.der as der  # direct submodule import: no trip through airshake.__getattr__
from airshake.der import BIT_STRING, BOOLEAN, INTEGER, OCTET_STRING, OID, SEQUENCE
from airshake import errors
from airshake.errors import UsageError

KEY_TYPES = ("x25519", "ed25519", "p256", "rsa")
SIG_ALGS = ("ed25519", "ecdsa-sha256", "rsa-pss-sha256", "rsa-pkcs1-sha256")

# keyUsage bits (bit n of Certificate.key_usage is the named bit n of RFC 5280 4.2.1.3)
KU_DIGITAL_SIGNATURE = 1 << 0
KU_KEY_ENCIPHERMENT = 1 << 2
KU_KEY_AGREEMENT = 1 << 4
KU_KEY_CERT_SIGN = 1 << 5

# OID contents bytes
_OID_X25519 = b"\x2b\x65\x6e"  # 1.3.101.110
_OID_ED25519 = b"\x2b\x65\x70"  # 1.3.101.112
_OID_EC_PUBLIC_KEY = b"\x2a\x86\x48\xce\x3d\x02\x01"  # 1.2.840.10045.2.1
_OID_PRIME256V1 = b"\x2a\x86\x48\xce\x3d\x03\x01\x07"  # 1.2.840.10045.3.1.7
_OID_ECDSA_SHA256 = b"\x2a\x86\x48\xce\x3d\x04\x03\x02"  # 1.2.840.10045.4.3.2
_OID_RSA = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01"  # 1.2.840.113549.1.1.1
_OID_MGF1 = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x08"  # 1.2.840.113549.1.1.8
_OID_RSA_PSS = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0a"  # 1.2.840.113549.1.1.10
_OID_RSA_SHA256 = b"\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b"  # 1.2.840.113549.1.1.11
_OID_SHA256 = b"\x60\x86\x48\x01\x65\x03\x04\x02\x01"  # 2.16.840.1.101.3.4.2.1
_OID_SKI = b"\x55\x1d\x0e"  # 2.5.29.14
_OID_KEY_USAGE = b"\x55\x1d\x0f"  # 2.5.29.15
_OID_BASIC_CONSTRAINTS = b"\x55\x1d\x13"  # 2.5.29.19
_OID_EKU = b"\x55\x1d\x25"  # 2.5.29.37
_OID_AKI = b"\x55\x1d\x23"  # 2.5.29.35
_OID_CN = b"\x55\x04\x03"  # 2.5.4.3
OID_SERVER_AUTH = b"\x2b\x06\x01\x05\x05\x07\x03\x01"  # 1.3.6.1.5.5.7.3.1 id-kp-serverAuth
OID_CLIENT_AUTH = b"\x2b\x06\x01\x05\x05\x07\x03\x02"  # 1.3.6.1.5.5.7.3.2 id-kp-clientAuth

# the two roles of an airshake leaf certificate (PROTOCOL.md §2.3)
ROLE_SERVER = "server"
ROLE_DEVICE = "device"
_ROLE_OID = {ROLE_SERVER: OID_SERVER_AUTH, ROLE_DEVICE: OID_CLIENT_AUTH}
_NULL = b"\x05\x00"


def _alg(oid, params=b""):
    """DER of an AlgorithmIdentifier."""
    return der.encode_tlv(SEQUENCE, der.encode_tlv(OID, oid) + params)


def _pss_alg(hash_params):
    """RSASSA-PSS with SHA-256, MGF1-SHA-256, salt 32, default trailer."""
    sha256 = _alg(_OID_SHA256, hash_params)
    params = (der.encode_tlv(0xA0, sha256)
              + der.encode_tlv(0xA1, _alg(_OID_MGF1, sha256))
              + der.encode_tlv(0xA2, der.encode_uint(32)))
    return _alg(_OID_RSA_PSS, der.encode_tlv(SEQUENCE, params))


_KEY_ALG = {
    "x25519": _alg(_OID_X25519),
    "ed25519": _alg(_OID_ED25519),
    "p256": _alg(_OID_EC_PUBLIC_KEY, der.encode_tlv(OID, _OID_PRIME256V1)),
    "rsa": _alg(_OID_RSA, _NULL),
}
_RAW_KEY_SIZE = {"x25519": 32, "ed25519": 32, "p256": 65}

# Accepted signature AlgorithmIdentifier encodings (NULL parameters present or absent
# where RFC 4055 allows both) -> sig_alg
_SIG_ALG = {
    _alg(_OID_ED25519): "ed25519",
    _alg(_OID_ECDSA_SHA256): "ecdsa-sha256",
    _alg(_OID_RSA_SHA256, _NULL): "rsa-pkcs1-sha256",
    _alg(_OID_RSA_SHA256): "rsa-pkcs1-sha256",
    _pss_alg(_NULL): "rsa-pss-sha256",
    _pss_alg(b""): "rsa-pss-sha256",
}
# sig_alg -> the key type that signs with it
_SIGNER = {"ed25519": "ed25519", "ecdsa-sha256": "p256",
           "rsa-pss-sha256": "rsa", "rsa-pkcs1-sha256": "rsa"}

_RSA_MIN_BYTES = 256  # 2048-bit modulus
_RSA_MAX_BYTES = 512  # 4096-bit modulus; with e < 2**32 this bounds a verification
_SHA256_DIGEST_INFO = b"\x30\x31\x30\x0d\x06\x09" + _OID_SHA256 + b"\x05\x00\x04\x20"


class Certificate:
    """A parsed certificate. All byte fields are bytes; times are Unix seconds (UTC)."""

    def __init__(self, data):
        self.der = data          # the whole certificate as received
        self.tbs = b""           # tbsCertificate TLV: what the signature covers
        self.serial = 0
        self.issuer = b""        # Name TLV, compared as bytes
        self.subject = b""
        self.not_before = 0
        self.not_after = 0
        self.spki = b""          # SubjectPublicKeyInfo TLV
        self.key_type = ""       # one of KEY_TYPES
        self.public_key = None   # bytes, or RsaPublic for "rsa"
        self.sig_alg = ""        # one of SIG_ALGS
        self.signature = b""     # Ed25519 64 bytes; ECDSA r||s 64 bytes; RSA as is
        self.ski = None          # subjectKeyIdentifier, or None
        self.is_ca = False       # basicConstraints cA
        self.key_usage = None    # KU_* bits, or None without the extension
        self.eku = None          # extendedKeyUsage: tuple of OID contents, or None
        self.aki = None          # authorityKeyIdentifier keyIdentifier, or None


def parse_certificate(data):
    """Parse DER bytes into a Certificate. Raises CertificateError on anything else."""
    try:
        return _parse(bytes(data))
    except errors.DecodeError as e:
        raise errors.CertificateError("certificate: %s" % (e,))


def _parse(buf):
    cert = Certificate(buf)
    top = der.reader(buf, SEQUENCE)
    tbs_start = top.pos
    tbs_vs, tbs_ve = top.expect(SEQUENCE)
    cert.tbs = buf[tbs_start:tbs_ve]
    sig_alg = top.expect_raw(SEQUENCE)
    signature = der.bit_string_bytes(top.value(BIT_STRING))
    top.done()
    if sig_alg not in _SIG_ALG:
        raise errors.CertificateError("unsupported signature algorithm")
    cert.sig_alg = _SIG_ALG[sig_alg]
    _parse_tbs(cert, der.Reader(buf, tbs_vs, tbs_ve), sig_alg)
    cert.signature = _signature_bytes(cert.sig_alg, signature)
    return cert


def _parse_tbs(cert, r, sig_alg):
    if r.peek_tag() != 0xA0:
        raise errors.CertificateError("not an X.509 v3 certificate (v1)")
    vs, ve = r.expect(0xA0)
    version = der.Reader(r.buf, vs, ve)
    if der.read_int(version.value(INTEGER), True) != 2:
        raise errors.CertificateError("not an X.509 v3 certificate")
    version.done()
    serial = r.value(INTEGER)
    cert.serial = der.read_int(serial)
    if cert.serial == 0 or len(serial) > 20:
        raise errors.CertificateError("serial number out of range")
    if r.expect_raw(SEQUENCE) != sig_alg:
        raise errors.CertificateError("inner and outer signature algorithms differ")
    cert.issuer = _name(r)
    vs, ve = r.expect(SEQUENCE)
    validity = der.Reader(r.buf, vs, ve)
    cert.not_before = _time(validity)
    cert.not_after = _time(validity)
    validity.done()
    cert.subject = _name(r)
    cert.spki = r.expect_raw(SEQUENCE)
    cert.key_type, cert.public_key = parse_spki(cert.spki)
    if r.peek_tag() == 0xA3:
        vs, ve = r.expect(0xA3)
        _extensions(cert, r.buf, vs, ve)
    r.done()  # also refuses issuer/subjectUniqueID ([1], [2])


def _time(r):
    tag = r.peek_tag()
    if tag != der.UTC_TIME and tag != der.GENERALIZED_TIME:
        raise errors.DecodeError("time: expected UTCTime or GeneralizedTime")
    return der.read_time(tag, r.value(tag))


def _name(r):
    """Name TLV as raw bytes; checks only that it is a SEQUENCE OF non-empty SETs
    of SEQUENCEs."""
    raw = r.expect_raw(SEQUENCE)
    name = der.reader(raw, SEQUENCE)
    while not name.at_end():
        vs, ve = name.expect(der.SET)
        if vs == ve:
            raise errors.DecodeError("DER: empty RelativeDistinguishedName")
        for tag, _, _, _ in der.children(raw, vs, ve):
            if tag != SEQUENCE:
                raise errors.DecodeError("DER: bad AttributeTypeAndValue")
    return raw


# -- keys ----------------------------------------------------------------------------

def parse_spki(spki):
    """(key_type, public_key) of SubjectPublicKeyInfo DER. DecodeError if malformed,
    CertificateError if of an unsupported algorithm or size."""
    r = der.reader(spki, SEQUENCE)
    alg = r.expect_raw(SEQUENCE)
    key = der.bit_string_bytes(r.value(BIT_STRING))
    r.done()
    for key_type in KEY_TYPES:
        if _KEY_ALG[key_type] == alg:
            break
    else:
        raise errors.CertificateError("unsupported public key algorithm")
    if key_type == "rsa":
        return key_type, _rsa_public(key)
    if len(key) != _RAW_KEY_SIZE[key_type]:
        raise errors.CertificateError("bad %s public key length" % key_type)
    if key_type == "p256" and key[0] != 0x04:
        raise errors.CertificateError("P-256 key is not an uncompressed point")
    return key_type, key


def _rsa_public(key):
    r = der.reader(key, SEQUENCE)
    n_bytes = r.value(INTEGER)
    n = der.read_int(n_bytes)
    e = der.read_int(r.value(INTEGER))
    r.done()
    size = len(n_bytes) - (1 if n_bytes[0] == 0 else 0)
    if size < _RSA_MIN_BYTES or size > _RSA_MAX_BYTES:
        raise errors.CertificateError("RSA modulus size not supported")
    if n % 2 == 0 or e < 3 or e % 2 == 0 or e >> 32:
        raise errors.CertificateError("bad RSA public key")
    from airshake.crypto.contract import RsaPublic   # RSA keys only
    return RsaPublic(n, e)


def spki_for(key_type, public_key):
    """SubjectPublicKeyInfo DER for a key, byte-identical to what pyca and OpenSSL
    produce. public_key: raw bytes (x25519, ed25519: 32; p256: 65-byte point) or
    RsaPublic (rsa)."""
    if key_type == "rsa":
        from airshake.crypto.contract import RsaPublic
        if not isinstance(public_key, RsaPublic):
            raise UsageError("spki_for: rsa needs an RsaPublic")
        ints = der.encode_uint(public_key.n) + der.encode_uint(public_key.e)
        body = der.encode_tlv(SEQUENCE, ints)
    elif key_type in _RAW_KEY_SIZE:
        if len(public_key) != _RAW_KEY_SIZE[key_type]:
            raise UsageError("spki_for: bad %s key length" % key_type)
        if key_type == "p256" and public_key[0] != 0x04:
            raise UsageError("spki_for: p256 needs an uncompressed point")
        body = bytes(public_key)
    else:
        raise UsageError("spki_for: unknown key type %r" % (key_type,))
    key = der.encode_tlv(BIT_STRING, b"\x00" + body)
    return der.encode_tlv(SEQUENCE, _KEY_ALG[key_type] + key)


# -- extensions ------------------------------------------------------------------------

def _extensions(cert, buf, start, end):
    r = der.reader(buf, SEQUENCE, start, end)
    if r.at_end():
        raise errors.DecodeError("DER: empty extensions")
    seen = []
    while not r.at_end():
        vs, ve = r.expect(SEQUENCE)
        ext = der.Reader(buf, vs, ve)
        oid = der.check_oid(ext.value(OID))
        critical = False
        if ext.peek_tag() == BOOLEAN:
            critical = der.read_bool(ext.value(BOOLEAN))
            if not critical:
                raise errors.DecodeError("DER: default critical=FALSE encoded")
        value = ext.value(OCTET_STRING)
        ext.done()
        if oid in seen:
            raise errors.CertificateError("duplicate extension")
        seen.append(oid)
        handler = _EXTENSION_HANDLERS.get(oid)
        if handler is not None:
            handler(cert, value)
        elif critical:
            raise errors.CertificateError("unknown critical extension")


def _ski(cert, value):
    vs, ve = der.read_whole(value, OCTET_STRING)
    if vs == ve:
        raise errors.DecodeError("DER: empty subjectKeyIdentifier")
    cert.ski = value[vs:ve]


def _basic_constraints(cert, value):
    r = der.reader(value, SEQUENCE)
    if r.peek_tag() == BOOLEAN:
        cert.is_ca = der.read_bool(r.value(BOOLEAN))
        if not cert.is_ca:
            raise errors.DecodeError("DER: default cA=FALSE encoded")
    if r.peek_tag() == INTEGER:
        der.read_int(r.value(INTEGER))
        if not cert.is_ca:
            raise errors.CertificateError("pathLenConstraint without cA")
    r.done()


def _key_usage(cert, value):
    vs, ve = der.read_whole(value, BIT_STRING)
    bits = value[vs:ve]
    if len(bits) < 2 or len(bits) > 3 or bits[0] > 7:
        raise errors.DecodeError("DER: bad keyUsage")
    unused = bits[0]
    if bits[-1] & ((1 << unused) - 1) or not (bits[-1] >> unused) & 1:
        raise errors.DecodeError("DER: keyUsage bits not minimal")
    usage = 0
    for n in range(8 * (len(bits) - 1)):
        if bits[1 + n // 8] & (0x80 >> (n % 8)):
            usage |= 1 << n
    cert.key_usage = usage


def _eku(cert, value):
    vs, ve = der.read_whole(value, SEQUENCE)
    oids = []
    for tag, cs, ce, _ in der.children(value, vs, ve):
        if tag != OID:
            raise errors.DecodeError("DER: extendedKeyUsage holds a non-OID")
        oids.append(der.check_oid(value[cs:ce]))
    if not oids:
        raise errors.DecodeError("DER: empty extendedKeyUsage")
    cert.eku = tuple(oids)


def _aki(cert, value):
    r = der.reader(value, SEQUENCE)
    if r.at_end() or r.peek_tag() != 0x80:
        raise errors.CertificateError("authorityKeyIdentifier without keyIdentifier")
    vs, ve = r.expect(0x80)
    if vs == ve:
        raise errors.DecodeError("DER: empty keyIdentifier")
    cert.aki = value[vs:ve]
    # authorityCertIssuer [1] and authorityCertSerialNumber [2] are skipped
    while not r.at_end():
        if r.peek_tag() not in (0xA1, 0x82):
            raise errors.DecodeError("DER: bad authorityKeyIdentifier")
        r.expect(r.peek_tag())


_EXTENSION_HANDLERS = {
    _OID_SKI: _ski,
    _OID_BASIC_CONSTRAINTS: _basic_constraints,
    _OID_KEY_USAGE: _key_usage,
    _OID_EKU: _eku,
    _OID_AKI: _aki,
}


# -- roles and names (PROTOCOL.md §2.3) -------------------------------------------------

def check_role(cert, role):
    """CertificateError unless cert is a leaf of this role: not a CA; extendedKeyUsage
    present, with the role's purpose and without the other role's; keyUsage, if present,
    allowing what the key does (X25519 and P-256: keyAgreement; RSA: digitalSignature for a
    server, which signs m2, keyEncipherment for a device, which decrypts the PMS).
    cert: a Certificate, or anything with its is_ca, eku, key_usage, key_type (a
    keys.ServerRef)."""
    if role not in _ROLE_OID:
        raise UsageError("check_role: unknown role %r" % (role,))
    if cert.is_ca:
        raise errors.CertificateError("a CA certificate cannot be a %s certificate" % role)
    other = ROLE_DEVICE if role == ROLE_SERVER else ROLE_SERVER
    if cert.eku is None or _ROLE_OID[role] not in cert.eku:
        raise errors.CertificateError("not a %s certificate (extendedKeyUsage)" % role)
    if _ROLE_OID[other] in cert.eku:
        raise errors.CertificateError("certificate claims both the server and the device role")
    if cert.key_usage is None:
        return
    if cert.key_type == "rsa":
        need = KU_DIGITAL_SIGNATURE if role == ROLE_SERVER else KU_KEY_ENCIPHERMENT
    else:
        need = KU_KEY_AGREEMENT
    if not cert.key_usage & need:
        raise errors.CertificateError("keyUsage does not allow the %s's key to be used" % role)


def cn_name(name):
    """DER of the Name CN=name (one UTF8String CN, as pyca and airshake's CA encode it):
    what A's server-name pin compares C_B's subject with."""
    if isinstance(name, str):
        name = name.encode()
    if not name or len(name) > 64:
        raise UsageError("server name must be 1 to 64 bytes")
    atv = der.encode_tlv(SEQUENCE, der.encode_tlv(OID, _OID_CN) + der.encode_tlv(0x0C, name))
    return der.encode_tlv(SEQUENCE, der.encode_tlv(der.SET, atv))


# -- signatures ------------------------------------------------------------------------

def ecdsa_der_to_raw(sig):
    """DER Ecdsa-Sig-Value -> 64-byte r||s. DecodeError if malformed or out of range."""
    r = der.reader(sig, SEQUENCE)
    out = b""
    for _ in range(2):
        v = der.read_int(r.value(INTEGER))
        if v == 0 or v >> 256:
            raise errors.DecodeError("ECDSA: signature value out of range")
        out += v.to_bytes(32, "big")
    r.done()
    return out


def _signature_bytes(sig_alg, sig):
    if sig_alg == "ed25519":
        if len(sig) != 64:
            raise errors.CertificateError("bad Ed25519 signature length")
        return sig
    if sig_alg == "ecdsa-sha256":
        return ecdsa_der_to_raw(sig)
    return sig  # RSA: length checked against the signer's modulus in verification


def verify_certificate(cert, anchor, backend, now):
    """Check that cert was issued by anchor and is valid at now (Unix seconds).
    anchor: a Certificate, or any object with subject, is_ca, key_type, public_key
    (and optionally key_usage). Raises CertificateError; returns None on success.
    The anchor's own validity period is not checked (it is trusted as configured)."""
    if cert.issuer != anchor.subject:
        raise errors.CertificateError("issuer is not the trust anchor")
    if not anchor.is_ca:
        raise errors.CertificateError("trust anchor is not a CA")
    usage = getattr(anchor, "key_usage", None)
    if usage is not None and not usage & KU_KEY_CERT_SIGN:
        raise errors.CertificateError("trust anchor may not sign certificates")
    if now < cert.not_before:
        raise errors.CertificateError("certificate not yet valid")
    if now > cert.not_after:
        raise errors.CertificateError("certificate expired")
    if not _signature_ok(cert, anchor, backend):
        raise errors.CertificateError("bad certificate signature")


def _signature_ok(cert, anchor, backend):
    alg = cert.sig_alg
    if anchor.key_type != _SIGNER[alg]:
        raise errors.CertificateError("trust anchor key cannot check this signature")
    key, tbs, sig = anchor.public_key, cert.tbs, cert.signature
    if alg == "ed25519":
        return backend.ed25519_verify(key, tbs, sig)
    if alg == "ecdsa-sha256":
        return backend.ecdsa_p256_verify(key, tbs, sig)
    if alg == "rsa-pss-sha256":
        return backend.rsa_pss_verify(key, tbs, sig)
    return rsa_pkcs1_sha256_verify(backend, key, tbs, sig)


def rsa_pkcs1_sha256_verify(backend, pub, msg, sig):
    """RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 8.2.2): rebuilds the whole expected
    encoding and compares, never parses it. Needs only backend.sha256."""
    k = der.int_bytes_len(pub.n)
    if len(sig) != k or k < len(_SHA256_DIGEST_INFO) + 32 + 11:
        return False
    s = int.from_bytes(sig, "big")
    if s >= pub.n:
        return False
    em = pow(s, pub.e, pub.n).to_bytes(k, "big")
    t = _SHA256_DIGEST_INFO + backend.sha256(msg)
    return em == b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
