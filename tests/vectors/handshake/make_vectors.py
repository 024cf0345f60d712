"""Makes tests/vectors/handshake/vectors.json: complete airshake v1 handshakes with fixed
randomness and every intermediate value (TH_1..TH_4, DH outputs, PRKs, MAC_2, K_3, IV_3,
session secrets), computed by THIS script straight from docs/PROTOCOL.md with hashlib,
hmac and pyca/cryptography, without importing airshake. Suite 1's RSA-OAEP (fixed seed)
and RSA-PSS (fixed salt) are encoded here from RFC 8017 §7.1.1 and §9.1.1 with pow(),
since pyca draws its own randomness, and checked by pyca's decrypt and verify. The portable test
(tests/portable/test_vectors.py) runs the core with the same randomness and must produce
the same bytes, so the spec and the code are checked against each other.
C_B by value goes as a C509 certificate (type 3, draft-ietf-cose-cbor-encoded-cert-18), made
here by c509() below from the draft and pyca's reading of the DER, not by airshake.c509.
Run: python tests/vectors/handshake/make_vectors.py"""
import hashlib
import hmac
import json
import os
import struct

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID, \
    SignatureAlgorithmOID
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

HERE = os.path.dirname(os.path.abspath(__file__))
P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


def H(b):
    return hashlib.sha256(b).digest()


def extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def expand(prk, info, n):
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def kdf(prk, label, context, n):
    return expand(prk, bytes([len(label)]) + label + context, n)


def aead(k, nonce, aad, pt):
    return AESCCM(k, tag_length=8).encrypt(nonce, pt, aad)


# -- the curves, from raw private bytes ------------------------------------------------
def x_pub(priv):
    return x25519.X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def x_dh(priv, pub):
    return x25519.X25519PrivateKey.from_private_bytes(priv).exchange(
        x25519.X25519PublicKey.from_public_bytes(pub))


def p_key(priv):
    return ec.derive_private_key(int.from_bytes(priv, "big"), ec.SECP256R1())


def p_pub(priv):
    return p_key(priv).public_key().public_bytes(serialization.Encoding.X962,
                                                 serialization.PublicFormat.UncompressedPoint)


def p_dh(priv, peer):
    if len(peer) == 32:                       # compact x: recover y (PROTOCOL.md §2.1)
        x = int.from_bytes(peer, "big")
        y = pow((x**3 - 3 * x + P256_B) % P256_P, (P256_P + 1) // 4, P256_P)
        peer = b"\x04" + peer + y.to_bytes(32, "big")
    pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), peer)
    return p_key(priv).exchange(ec.ECDH(), pub)


def spki(suite, pub):
    if suite == 0:
        key = x25519.X25519PublicKey.from_public_bytes(pub)
    else:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pub)
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


# -- C509 (draft-ietf-cose-cbor-encoded-cert-18 §3), for the certificates of fixtures.json
def cbor_head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    size = 1 if n < 256 else 2 if n < 65536 else 4 if n < 2**32 else 8
    return bytes([major << 5 | {1: 24, 2: 25, 4: 26, 8: 27}[size]]) + n.to_bytes(size, "big")


def cbor_int(n):
    return cbor_head(0, n) if n >= 0 else cbor_head(1, -1 - n)


def cbor_bytes(b):
    return cbor_head(2, len(b)) + b


def biguint(n):
    return cbor_bytes(n.to_bytes((n.bit_length() + 7) // 8, "big"))


def c509_name(name):
    (cn,) = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert len(name.rdns) == 1 and cn.value                 # one CN: SpecialText (§3.1.4)
    v = cn.value.encode()
    if len(v) % 2 == 0 and all(c in b"0123456789abcdef" for c in v):
        return cbor_bytes(bytes.fromhex(cn.value))
    return cbor_head(3, len(v)) + v


def key_usage_bits(v):
    """KeyUsage as the draft's uint: bit n of RFC 5280 §4.2.1.3 is 2**n."""
    names = ["digital_signature", "content_commitment", "key_encipherment",
             "data_encipherment", "key_agreement", "key_cert_sign", "crl_sign"]
    return sum(1 << i for i, n in enumerate(names) if getattr(v, n))


def c509_extension(ext):
    """(C509 extension id, value) of §3.3 and the Extensions registry (§7.5)."""
    v, oid = ext.value, ext.oid
    if oid == ExtensionOID.SUBJECT_KEY_IDENTIFIER:
        return 1, cbor_bytes(v.digest)
    if oid == ExtensionOID.KEY_USAGE:
        return 2, cbor_int(key_usage_bits(v))
    if oid == ExtensionOID.BASIC_CONSTRAINTS:
        return 4, cbor_int(-2 if not v.ca else -1 if v.path_length is None else v.path_length)
    if oid == ExtensionOID.AUTHORITY_KEY_IDENTIFIER:
        assert v.authority_cert_issuer is None
        return 7, cbor_bytes(v.key_identifier)
    assert oid == ExtensionOID.EXTENDED_KEY_USAGE
    eku = {ExtendedKeyUsageOID.SERVER_AUTH: 1, ExtendedKeyUsageOID.CLIENT_AUTH: 2}
    purposes = [cbor_int(eku[p]) for p in v]
    return 8, purposes[0] if len(purposes) == 1 else cbor_head(4, len(purposes)) + b"".join(
        purposes)


def c509(cert_der):
    """The unwrapped CBOR sequence ~C509Certificate of a DER certificate, type 3 (CBOR
    re-encoded X.509 v3): its DER is what the signature covers and what TH_2 hashes."""
    c = x509.load_der_x509_certificate(cert_der)
    sig_alg = {SignatureAlgorithmOID.ED25519: 12, SignatureAlgorithmOID.ECDSA_WITH_SHA256: 0,
               SignatureAlgorithmOID.RSA_WITH_SHA256: 23}[c.signature_algorithm_oid]
    out = cbor_int(3) + biguint(c.serial_number) + cbor_int(sig_alg)
    out += b"\xf6" if c.issuer == c.subject else c509_name(c.issuer)
    out += cbor_int(int(c.not_valid_before_utc.timestamp()))
    out += cbor_int(int(c.not_valid_after_utc.timestamp()))
    out += c509_name(c.subject)
    pub = c.public_key()
    if isinstance(pub, x25519.X25519PublicKey | ed25519.Ed25519PublicKey):
        raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        out += cbor_int(8 if isinstance(pub, x25519.X25519PublicKey) else 12) + cbor_bytes(raw)
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        nums = pub.public_numbers()       # compressed, 0xfe even y / 0xfd odd y (§3.2.1)
        out += cbor_int(1) + cbor_bytes(bytes([0xFD if nums.y & 1 else 0xFE])
                                        + nums.x.to_bytes(32, "big"))
    else:
        nums = pub.public_numbers()
        assert nums.e == 65537                                # the modulus alone
        out += cbor_int(0) + biguint(nums.n)
    exts = [c509_extension(e) + (e.critical,) for e in c.extensions]
    if len(exts) == 1 and exts[0][0] == 2:                    # keyUsage alone: one int
        bits = key_usage_bits(c.extensions[0].value)
        out += cbor_int(-bits if exts[0][2] else bits)
    else:
        out += cbor_head(4, 2 * len(exts))
        for ext_id, value, critical in exts:
            out += cbor_int(-ext_id if critical else ext_id) + value
    sig = c.signature
    if sig_alg == 0:
        r, s = decode_dss_signature(sig)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return out + cbor_bytes(sig)


def cert_by_value(c_b):
    """m2's C_B field by value (§3.2): the length, then C_B as C509."""
    c = c509(c_b)
    return struct.pack(">H", len(c)) + c


# -- RSA (suite 1), RFC 8017, with the randomness given ------------------------------
def rsa_key(v):
    n = int(v["n"], 16)
    pub = rsa.RSAPublicNumbers(v["e"], n)
    return rsa.RSAPrivateNumbers(int(v["p"], 16), int(v["q"], 16), int(v["d"], 16),
                                 int(v["dp"], 16), int(v["dq"], 16), int(v["qinv"], 16),
                                 pub).private_key()


def mgf1(seed, n):
    out, i = b"", 0
    while len(out) < n:
        out += H(seed + struct.pack(">I", i))
        i += 1
    return out[:n]


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def oaep_encrypt(key, msg, seed):
    """RSAES-OAEP-ENCRYPT (§7.1.1), SHA-256, MGF1-SHA-256, empty label, seed given."""
    nums = key.public_key().public_numbers()
    k = (nums.n.bit_length() + 7) // 8
    db = H(b"") + bytes(k - len(msg) - 2 * 32 - 2) + b"\x01" + msg
    masked_db = xor(db, mgf1(seed, k - 32 - 1))
    em = b"\x00" + xor(seed, mgf1(masked_db, 32)) + masked_db
    c = pow(int.from_bytes(em, "big"), nums.e, nums.n).to_bytes(k, "big")
    assert key.decrypt(c, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(),
                                       None)) == msg
    return c


def pss_sign(key, msg, salt):
    """RSASSA-PSS-SIGN (§8.1.1, EMSA-PSS §9.1.1), SHA-256, MGF1-SHA-256, salt given."""
    nums = key.private_numbers()
    n = nums.public_numbers.n
    em_bits = n.bit_length() - 1
    em_len = (em_bits + 7) // 8
    h = H(bytes(8) + H(msg) + salt)
    db = bytes(em_len - len(salt) - 32 - 2) + b"\x01" + salt
    masked_db = bytearray(xor(db, mgf1(h, em_len - 32 - 1)))
    masked_db[0] &= 0xFF >> (8 * em_len - em_bits)
    em = bytes(masked_db) + h + b"\xbc"
    sig = pow(int.from_bytes(em, "big"), nums.d, n).to_bytes((n.bit_length() + 7) // 8, "big")
    key.public_key().verify(sig, msg, padding.PSS(padding.MGF1(hashes.SHA256()), 32),
                            hashes.SHA256())
    return sig


def after_th3(prk4e3m, th3, g_y, data):
    """PROTOCOL.md §3.3, §4.2, §5.1, §5.2: m3 with data, PRK_out, the session secrets and
    A's first record (b"after", seq 0), every suite alike."""
    k3, iv3 = kdf(prk4e3m, b"k_3", th3, 16), kdf(prk4e3m, b"iv_3", th3, 13)
    head3 = bytes([(2 << 5) | (g_y[0] & 0x1F)])
    m3 = head3 + aead(k3, iv3, head3 + th3, data)
    th4 = H(th3 + m3)
    prkout = kdf(prk4e3m, b"prk_out", th4, 32)
    ab, ba = kdf(prkout, b"traffic_ab", b"", 32), kdf(prkout, b"traffic_ba", b"", 32)
    sid = kdf(prkout, b"sid", b"", 4)
    key_ab, iv_ab = kdf(ab, b"key", b"", 16), kdf(ab, b"iv", b"", 13)
    first_record_head = bytes([4 << 5]) + sid + struct.pack(">I", 0)
    record = first_record_head + aead(key_ab, iv_ab, first_record_head, b"after")
    return k3, iv3, m3, th4, prkout, ab, ba, sid, record


def handshake_rsa(name, fx, e_a, e_b, pms, seed, salt, now, by_ref, data, want_time=False):
    """Suite 1 (PROTOCOL.md §4.2): X25519 ephemerals, B encrypts a PMS to A's RSA key and
    signs TH_2; A draws e_a, B draws e_b, then the PMS, the OAEP seed, the PSS salt."""
    suite = 1
    s_a, s_b = rsa_key(fx["suite1"]["device_key"]), rsa_key(fx["suite1"]["server_key"])
    c_b = bytes.fromhex(fx["suite1"]["server_cert"])
    spki_a = s_a.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    id_a = H(spki_a)[:8]
    g_x, g_y = x_pub(e_a), x_pub(e_b)
    v = {"name": name, "suite": suite, "now": now, "e_a": e_a.hex(), "e_b": e_b.hex(),
         "pms": pms.hex(), "oaep_seed": seed.hex(), "pss_salt": salt.hex(),
         "by_reference": by_ref, "early": False, "data": data.hex(), "want_time": want_time,
         "clock_skew": 0}
    flags = (0x04 if by_ref else 0) | (0x02 if want_time else 0)
    m1 = bytes([(0 << 5) | (1 << 3) | flags, (suite << 4) | (1 << suite)]) + id_a \
        + struct.pack(">I", now) + g_x
    th1 = H(m1)
    flags2 = (0 if by_ref else 0x12) | (0x08 if want_time else 0)     # by value: C509
    head2 = bytes([(1 << 5) | flags2])
    time_bytes = struct.pack(">I", now) if want_time else b""
    cert_part = b"" if by_ref else cert_by_value(c_b)
    c_pms = oaep_encrypt(s_a, pms, seed)
    ee = x_dh(e_a, g_y)
    th2 = H(th1 + head2 + g_y + time_bytes + H(c_b) + H(spki_a) + H(c_pms))
    sig2 = pss_sign(s_b, b"airshake v1 m2 signature" + th2, salt)
    m2 = head2 + g_y + time_bytes + cert_part + c_pms + sig2
    prk2e = extract(th2, ee)
    prk4e3m = extract(prk2e, pms)
    th3 = H(th2 + sig2)
    k3, iv3, m3, th4, prkout, ab, ba, sid, record = after_th3(prk4e3m, th3, g_y, data)
    v.update(short_m1=False, m1_long=m1.hex())     # suite 1: C_B by reference, no 0-RTT
    v.update(id_a=id_a.hex(), g_x=g_x.hex(), g_y=g_y.hex(), th1=th1.hex(), m1=m1.hex(),
             m1_hash=th1.hex(), ee=ee.hex(), spki_a_hash=H(spki_a).hex(),
             c_b_hash=H(c_b).hex(), c_pms=c_pms.hex(), th2=th2.hex(), sig_2=sig2.hex(),
             prk_2e=prk2e.hex(), m2=m2.hex(), th3=th3.hex(), prk_4e3m=prk4e3m.hex(),
             k_3=k3.hex(), iv_3=iv3.hex(), m3=m3.hex(), th4=th4.hex(),
             prk_out=prkout.hex(), secret_ab=ab.hex(), secret_ba=ba.hex(), sid=sid.hex(),
             record_ab_0=record.hex())
    return v


def handshake(name, suite, fx, e_a, e_b, now, by_ref, data, early=False, want_time=False,
              clock_skew=0, short=False):
    pub, dh = (x_pub, x_dh) if suite == 0 else (lambda k: p_pub(k)[1:33], p_dh)
    static_pub = x_pub if suite == 0 else p_pub
    s_a = bytes.fromhex(fx["suite%d" % suite]["device_key"])
    s_b = bytes.fromhex(fx["suite%d" % suite]["server_key"])
    c_b = bytes.fromhex(fx["suite%d" % suite]["server_cert"])
    spki_a = spki(suite, static_pub(s_a))
    id_a = H(spki_a)[:8]
    g_x, g_y = pub(e_a), pub(e_b)
    v = {"name": name, "suite": suite, "now": now, "e_a": e_a.hex(), "e_b": e_b.hex(),
         "by_reference": by_ref, "early": early, "data": data.hex(), "want_time": want_time,
         "clock_skew": clock_skew, "short_m1": short}
    # m1 (§3.1): the long form is what the transcript hashes (§4.1), whichever is sent
    ts = now + clock_skew
    flags = (0x04 if by_ref else 0) | (0x02 if want_time else 0) | (0x01 if early else 0)
    head1 = (0 << 5) | (1 << 3) | flags
    prefix = bytes([head1, (suite << 4) | (1 << suite)]) + id_a + struct.pack(">I", ts) + g_x
    th1 = H(prefix)
    v.update(id_a=id_a.hex(), g_x=g_x.hex(), g_y=g_y.hex(), th1=th1.hex())
    m1 = prefix
    if early:                                              # §4.3
        es0 = dh(e_a, static_pub(s_b))
        ss = dh(s_a, static_pub(s_b))
        prk0 = extract(th1, es0 + ss)
        k0, iv0 = kdf(prk0, b"k_0", th1, 16), kdf(prk0, b"iv_0", th1, 13)
        m1 = prefix + aead(k0, iv0, th1, data)
        v.update(ss=ss.hex(), prk_0=prk0.hex(), k_0=k0.hex(), iv_0=iv0.hex())
    m1h = H(m1)
    v.update(m1_long=m1.hex())
    if short:   # one head byte (type 7, the suite, EARLY), the timestamp's low 16 bits
        assert by_ref and not want_time
        head = (7 << 5) | (suite << 3) | (0x01 if early else 0)
        m1 = bytes([head]) + id_a + struct.pack(">H", ts % 65536) + m1[6 + len(id_a):]
    # m2 (§3.2, §4.1, §4.2)
    flags2 = (0 if by_ref else 0x12) | (0x08 if want_time or clock_skew else 0) \
        | (0x04 if early else 0)                                        # by value: C509
    head2 = bytes([(1 << 5) | flags2])
    time_bytes = struct.pack(">I", now) if flags2 & 0x08 else b""
    cert_part = b"" if by_ref else cert_by_value(c_b)
    ee, es, se = dh(e_a, g_y), dh(e_a, static_pub(s_b)), dh(s_a, g_y)
    th2 = H(m1h + head2 + g_y + time_bytes + H(c_b) + H(spki_a))
    prk2e = extract(th2, ee)
    prk3e2m = extract(prk2e, es)
    mac2 = kdf(prk3e2m, b"mac_2", th2, 8)
    m2 = head2 + g_y + time_bytes + cert_part + mac2
    th3 = H(th2 + mac2)
    prk4e3m = extract(prk3e2m, se)
    k3, iv3, m3, th4, prkout, ab, ba, sid, record = after_th3(prk4e3m, th3, g_y,
                                                              b"" if early else data)
    v.update(m1=m1.hex(), m1_hash=m1h.hex(), ee=ee.hex(), es=es.hex(), se=se.hex(),
             spki_a_hash=H(spki_a).hex(), c_b_hash=H(c_b).hex(), th2=th2.hex(),
             prk_2e=prk2e.hex(), prk_3e2m=prk3e2m.hex(), mac_2=mac2.hex(), m2=m2.hex(),
             th3=th3.hex(), prk_4e3m=prk4e3m.hex(), k_3=k3.hex(), iv_3=iv3.hex(),
             m3=m3.hex(), th4=th4.hex(), prk_out=prkout.hex(), secret_ab=ab.hex(),
             secret_ba=ba.hex(), sid=sid.hex(), record_ab_0=record.hex())
    return v


def main():
    with open(os.path.join(HERE, "fixtures.json")) as f:
        fx = json.load(f)
    now = fx["now"]
    e_a = bytes.fromhex("a0" * 31 + "01")
    e_b = bytes.fromhex("b0" * 31 + "02")
    p_a = bytes.fromhex("1a" * 32)          # < n, valid P-256 scalars
    p_b = bytes.fromhex("2b" * 32)
    pms = bytes.fromhex("3c" * 32)          # suite 1: B's pre-master secret, OAEP seed and
    seed = bytes.fromhex("4d" * 32)         # PSS salt, in the order B draws them
    salt = bytes.fromhex("5e" * 32)
    cases = [
        handshake("suite0-reference", 0, fx, e_a, e_b, now, True, b"reading=21.5"),
        handshake("suite0-value-want-time", 0, fx, e_a, e_b, now, False, b"",
                  want_time=True),
        handshake("suite0-reference-0rtt", 0, fx, e_a, e_b, now, True, b"temp=4",
                  early=True),
        handshake("suite0-reference-skewed-clock", 0, fx, e_a, e_b, now, True, b"x",
                  clock_skew=-30),
        handshake("suite2-reference", 2, fx, p_a, p_b, now, True, b"reading=21.5"),
        handshake("suite0-reference-short", 0, fx, e_a, e_b, now, True, b"reading=21.5",
                  short=True),
        handshake("suite0-reference-0rtt-short", 0, fx, e_a, e_b, now, True, b"temp=4",
                  early=True, short=True),
        handshake("suite0-reference-skewed-clock-short", 0, fx, e_a, e_b, now, True, b"x",
                  clock_skew=-30, short=True),
        handshake("suite2-reference-short", 2, fx, p_a, p_b, now, True, b"reading=21.5",
                  short=True),
        handshake("suite2-value", 2, fx, p_a, p_b, now, False, b""),
        handshake("suite0-value-c509", 0, fx, e_a, e_b, now, False, b"reading=21.5"),
        handshake_rsa("suite1-reference", fx, e_a, e_b, pms, seed, salt, now, True,
                      b"reading=21.5"),
        handshake_rsa("suite1-value-want-time", fx, e_a, e_b, pms, seed, salt, now, False,
                      b"", want_time=True),
    ]
    out = {"description": __doc__.splitlines()[0], "id_len": 8, "cases": cases}
    with open(os.path.join(HERE, "vectors.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
