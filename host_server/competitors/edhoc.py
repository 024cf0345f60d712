"""EDHOC (RFC 9528) method 3 measured with the real implementation, lakers-python.

What this module owns: building CCS credentials (RFC 9528 §3.5.2, the layout of the RFC 9529
traces), running one complete EDHOC handshake between lakers' EdhocInitiator and
EdhocResponder in one process, and timing it.

Rules:
- Nothing is quoted: every size comes from the bytes lakers returns in this run, and every run
  checks that both sides derived the same PRK_out and the same exporter output.
- Method 3 (static DH both sides) is the only method lakers-python implements (the responder is
  created with EDHOCMethod::StatStat); cipher suite 2 (P-256, AES-CCM-16-64-128, SHA-256) is
  the only suite it offers (message_1 carries SUITES_I = 2 and the initiator reports suite 2).
- Connection identifiers are the 1-byte CBOR integers of RFC 9529 trace 2 (C_I = -24 = 0x37,
  C_R = -8 = 0x27); lakers' own default draws a random 1-byte identifier of the same size.
- "kid": ID_CRED_x = {4: h'kid'} with a 1-byte kid; RFC 9528 §3.5.3.2 sends it as the bare
  CBOR int (1 byte). The kids are 0x32 and 0x2b, as in RFC 9529 trace 2.
- "value": ID_CRED_x = {14: CCS} (kccs), the whole credential inside the encrypted
  PLAINTEXT_2 / PLAINTEXT_3. lakers supports CCS credentials only (no X.509 "x5chain").
"""

import time

import lakers
from cryptography.hazmat.primitives.asymmetric import ec

SUITE = 2
C_I = b"\x37"  # CBOR -24, RFC 9529 trace 2
C_R = b"\x27"  # CBOR -8
KID_R = b"\x32"
KID_I = b"\x2b"
SUBJECT_R = "example.edu"  # the subjects of RFC 9529 trace 2
SUBJECT_I = "42-50-31-FF-EF-37-32-39"
VARIANTS = {
    "kid": lakers.CredentialTransfer.ByReference,
    "value": lakers.CredentialTransfer.ByValue,
}


# --- a minimal deterministic CBOR encoder (unsigned/negative ints, bstr, tstr, map) ---

def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    if n < 0x100:
        return bytes([major << 5 | 24, n])
    if n < 0x10000:
        return bytes([major << 5 | 25]) + n.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + n.to_bytes(4, "big")


def cbor(value):
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode()
        return _head(3, len(raw)) + raw
    if isinstance(value, list):  # a map given as ordered (key, value) pairs
        return _head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value)
    raise TypeError("cannot encode %r" % (value,))


def make_ccs(subject, kid, x, y):
    """CCS (RFC 8392 claims set) with a cnf COSE_Key, laid out as in RFC 9529:
    {2: subject, 8: {1: {1: 2 (EC2), 2: kid, -1: 1 (P-256), -2: x, -3: y}}}."""
    cose_key = [(1, 2), (2, kid), (-1, 1), (-2, x), (-3, y)]
    return cbor([(2, subject), (8, [(1, cose_key)])])


class Party:
    """A static P-256 key (private scalar and CCS credential) for one side."""

    def __init__(self, subject, kid):
        key = ec.generate_private_key(ec.SECP256R1())
        pub = key.public_key().public_numbers()
        self.private = key.private_numbers().private_value.to_bytes(32, "big")
        self.cred = make_ccs(subject, kid, pub.x.to_bytes(32, "big"), pub.y.to_bytes(32, "big"))
        self.kid = kid


def new_parties():
    return Party(SUBJECT_I, KID_I), Party(SUBJECT_R, KID_R)


def run_handshake(initiator_party, responder_party, variant="kid"):
    """One complete EDHOC method 3 handshake; returns the three messages and what both sides
    derived. Raises AssertionError if the handshake did not complete identically."""
    transfer = VARIANTS[variant]
    ini = lakers.EdhocInitiator()
    res = lakers.EdhocResponder(responder_party.private, responder_party.cred)
    m1 = ini.prepare_message_1(c_i=C_I)
    c_i, ead_1 = res.process_message_1(m1)
    m2 = res.prepare_message_2(transfer, C_R)
    c_r, id_cred_r, ead_2 = ini.parse_message_2(m2)
    # I looks CRED_R up (kid) or checks the transported one against what it trusts (value).
    valid_cred_r = lakers.credential_check_or_fetch(id_cred_r, responder_party.cred)
    ini.verify_message_2(initiator_party.private, initiator_party.cred, valid_cred_r)
    m3, prk_out_i = ini.prepare_message_3(transfer)
    id_cred_i, ead_3 = res.parse_message_3(m3)
    valid_cred_i = lakers.credential_check_or_fetch(id_cred_i, initiator_party.cred)
    prk_out_r = res.verify_message_3(valid_cred_i)
    ini.completed_without_message_4()
    res.completed_without_message_4()
    exp_i = ini.edhoc_exporter(0, b"", 16)  # label 0: the OSCORE master secret
    exp_r = res.edhoc_exporter(0, b"", 16)
    assert bytes(prk_out_i) == bytes(prk_out_r), "PRK_out differs"
    assert exp_i == exp_r, "exporter output differs"
    assert bytes(c_i) == C_I and bytes(c_r) == C_R
    assert not ead_1 and not ead_2 and not ead_3
    return {
        "messages": [bytes(m1), bytes(m2), bytes(m3)],
        "suite": ini.selected_cipher_suite(),
        "prk_out": bytes(prk_out_i),
        "exporter": exp_i,
        "id_cred_r": bytes(id_cred_r),
        "id_cred_i": bytes(id_cred_i),
    }


def edhoc_messages(variant="kid"):
    """Bytes of message_1, message_2, message_3 of one real lakers handshake."""
    result = run_handshake(*new_parties(), variant=variant)
    return [len(m) for m in result["messages"]]


def edhoc_handshakes_per_second(seconds=2.0, variant="kid", side="both"):
    """Complete handshakes per CPU-second of one thread (one core), both ends in this
    process, run for `seconds` of wall time. CPU time (time.thread_time) rather than wall
    time, so that other load on the machine does not dilute the rate.
    side="both": CPU time of the whole loop (initiator and responder work);
    side="responder": CPU time spent inside the responder's calls only (the number to
    compare with a server's per-core throughput)."""
    parties = new_parties()
    transfer = VARIANTS[variant]
    ini_p, res_p = parties
    count = 0
    responder_time = 0.0
    clock = time.thread_time  # CPU time of this thread: one core, not diluted by other load
    start = clock()
    deadline = time.perf_counter() + seconds
    while True:
        ini = lakers.EdhocInitiator()
        m1 = ini.prepare_message_1(c_i=C_I)
        t0 = clock()
        res = lakers.EdhocResponder(res_p.private, res_p.cred)
        res.process_message_1(m1)
        m2 = res.prepare_message_2(transfer, C_R)
        responder_time += clock() - t0
        _, id_cred_r, _ = ini.parse_message_2(m2)
        ini.verify_message_2(ini_p.private, ini_p.cred,
                             lakers.credential_check_or_fetch(id_cred_r, res_p.cred))
        m3, prk_i = ini.prepare_message_3(transfer)
        t0 = clock()
        id_cred_i, _ = res.parse_message_3(m3)
        prk_r = res.verify_message_3(lakers.credential_check_or_fetch(id_cred_i, ini_p.cred))
        responder_time += clock() - t0
        if bytes(prk_i) != bytes(prk_r):
            raise AssertionError("PRK_out differs")
        count += 1
        if time.perf_counter() >= deadline:
            break
    if side == "responder":
        return count / responder_time
    return count / (clock() - start)
