"""The prior-art flow of WO 99/25093 (Fig. 1), sized from real objects and run once.

What this module owns: a model of the four-message handshake that the patent improves on,
in which BOTH certificates cross the slow link, rebuilt with the primitives airshake uses
(X25519, Ed25519, SHA-256, 8-byte MACs, airshake's 1-byte head and suites bytes), so the
difference to airshake is the flow and not the cryptography.

Source. The patent's claim 1 (granted as US 6,931,528 B1) describes the invention against
this prior art: A's first message carries "an identifier of the first party" and B "uses said
identifier to obtain the certificate of the first party over a connection which is
significantly faster than the communications channel", and the handshake ends after the
third message, which can carry data. The prior art of Fig. 1 is the SSL/TLS-style handshake
that does the opposite: a hello with A's cipher suites and random, B's reply with its
certificate, A's message carrying A's certificate C_A over the air with its key exchange and
proof, and B's finished message. The description text of Fig. 1 itself was not available to
this module's author; the field list below is this model's mapping, not a quotation.

Messages (sizes in bytes; C_B and C_A are DER X.509 made here with pyca):
  1 A->B hello     head 1 | suites 1 | R_A 32                                     = 34
  2 B->A reply     head 1 | R_B 32 | len 2 | C_B | G_Y 32 | SIG_B 64              = 131 + C_B
                   SIG_B = Ed25519 by B's certified key over R_A|R_B|G_Y (as TLS 1.2's
                   ServerKeyExchange); C_B certifies an Ed25519 key (B must sign).
  3 A->B cert+kx   head 1 | len 2 | C_A | G_X 32 | MAC_A 8                        = 43 + C_A
                   C_A certifies A's static X25519 key (Ed25519 CA, like airshake's C_A);
                   A cannot sign with it, so A proves it with a MAC keyed from
                   ee = DH(x, G_Y) and se = DH(a, G_Y) (SSL's "fixed DH" client certificate,
                   plus an ephemeral for forward secrecy).
  4 B->A finished  head 1 | MAC_B 8                                               = 9
No timestamp (freshness comes from R_A and R_B), no identifiers, no application data.
"""

import datetime
import hashlib
import hmac
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.x509.oid import NameOID

DER = serialization.Encoding.DER
RAW = serialization.Encoding.Raw
_START = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
_END = datetime.datetime(2035, 1, 1, tzinfo=datetime.timezone.utc)
HEAD_HELLO, HEAD_REPLY, HEAD_CERT_KX, HEAD_FINISHED = 0x00, 0x20, 0x40, 0x60
SUITES = 0x01  # suite 0 offered and chosen, in airshake's 1-byte encoding
MAC_LEN = 8


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def issue(ca_key, ca_name, public_key, cn, serial, ca=False):
    """A certificate in the profile of tests/vectors/handshake/make_fixtures.py: CN only,
    basicConstraints (critical) and an 8-byte subjectKeyIdentifier, Ed25519-signed."""
    spki = public_key.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    builder = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca_name)
               .public_key(public_key).serial_number(serial)
               .not_valid_before(_START).not_valid_after(_END)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None),
                              critical=True))
    if not ca:
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier(hashlib.sha256(spki).digest()[:8]), critical=False)
    return builder.sign(ca_key, None)


def _raw(public_key):
    return public_key.public_bytes(RAW, serialization.PublicFormat.Raw)


def _verify_cert(cert, ca_cert):
    ca_cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes)


def _keys(ee, se, transcript):
    prk = HKDF(hashes.SHA256(), 64, hashlib.sha256(transcript).digest(), b"prior-art")
    okm = prk.derive(ee + se)
    return okm[:32], okm[32:]


def _mac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()[:MAC_LEN]


def _lv(blob):
    return len(blob).to_bytes(2, "big") + blob


def run_prior_art():
    """Runs the four messages between A and B with fresh keys and real certificates.
    Returns a dict with the messages, both certificates' DER sizes and the field table.
    Raises on any failed check (certificate, signature, MAC)."""
    ca_key = ed25519.Ed25519PrivateKey.generate()
    ca_cert = issue(ca_key, _name("airshake test CA"), ca_key.public_key(),
                    "airshake test CA", 1, ca=True)
    b_key = ed25519.Ed25519PrivateKey.generate()
    a_key = x25519.X25519PrivateKey.generate()
    c_b = issue(ca_key, ca_cert.subject, b_key.public_key(), "b.airshake.test", 101)
    c_a = issue(ca_key, ca_cert.subject, a_key.public_key(), "device-0", 102)
    c_b_der, c_a_der = c_b.public_bytes(DER), c_a.public_bytes(DER)

    # 1: A's hello
    r_a = os.urandom(32)
    m1 = bytes([HEAD_HELLO, SUITES]) + r_a
    # 2: B's reply, signed over both randoms and its ephemeral key
    r_b, y = os.urandom(32), x25519.X25519PrivateKey.generate()
    g_y = _raw(y.public_key())
    sig_b = b_key.sign(r_a + r_b + g_y)
    m2 = bytes([HEAD_REPLY]) + r_b + _lv(c_b_der) + g_y + sig_b
    # A: verify C_B and SIG_B, send C_A, its key exchange and its MAC
    _verify_cert(c_b, ca_cert)
    c_b.public_key().verify(sig_b, r_a + r_b + g_y)
    x = x25519.X25519PrivateKey.generate()
    g_x = _raw(x.public_key())
    body3 = bytes([HEAD_CERT_KX]) + _lv(c_a_der) + g_x
    k_a, k_b = _keys(x.exchange(y.public_key()), a_key.exchange(y.public_key()),
                     m1 + m2 + body3)
    m3 = body3 + _mac(k_a, m1 + m2 + body3)
    # B: verify C_A (received over the air), derive, check MAC_A, answer finished
    c_a_len = int.from_bytes(m3[1:3], "big")
    received_c_a = x509.load_der_x509_certificate(m3[3:3 + c_a_len])
    _verify_cert(received_c_a, ca_cert)
    g_x_rx = x25519.X25519PublicKey.from_public_bytes(m3[3 + c_a_len:-MAC_LEN])
    transcript3 = m1 + m2 + m3[:-MAC_LEN]
    kb_a, kb_b = _keys(y.exchange(g_x_rx), y.exchange(received_c_a.public_key()), transcript3)
    if not hmac.compare_digest(_mac(kb_a, transcript3), m3[-MAC_LEN:]):
        raise AssertionError("MAC_A does not verify")
    m4 = bytes([HEAD_FINISHED]) + _mac(kb_b, m1 + m2 + m3)
    # A: check B's finished
    if not hmac.compare_digest(_mac(k_b, m1 + m2 + m3), m4[1:]):
        raise AssertionError("MAC_B does not verify")
    fields = [
        [("head", 1), ("suites", 1), ("R_A", 32)],
        [("head", 1), ("R_B", 32), ("len", 2), ("C_B", len(c_b_der)), ("G_Y", 32),
         ("SIG_B", len(sig_b))],
        [("head", 1), ("len", 2), ("C_A", len(c_a_der)), ("G_X", 32), ("MAC_A", MAC_LEN)],
        [("head", 1), ("MAC_B", MAC_LEN)],
    ]
    messages = [m1, m2, m3, m4]
    assert [sum(n for _, n in f) for f in fields] == [len(m) for m in messages]
    return {"messages": messages, "fields": fields, "c_a_der": len(c_a_der),
            "c_b_der": len(c_b_der)}


def prior_art_messages():
    """Bytes of the four messages of the prior-art flow (Fig. 1 model)."""
    return [len(m) for m in run_prior_art()["messages"]]
