# airshake.codec: the byte layout of every airshake message (docs/PROTOCOL.md §3).
# Rules: encode_* builds bytes from fields; decode_* parses strictly (exact lengths,
# reserved bits zero) and raises only DecodeError, UnsupportedVersion or
# UnsupportedSuite. No crypto here: MACs, tags and signatures are opaque bytes.
# Every message starts with one head byte: bits 7..5 the type, bits 4..0 its flags.
import struct
from airshake.const import const
from airshake import errors
from airshake.errors import UsageError
# the wire codes, re-exported for the roles and B (codec.ERR_*)
from airshake.errors import (ERR_STALE_TIME, ERR_UNSUPPORTED_SUITE, ERR_UNKNOWN_ID,  # noqa: F401
                             ERR_REVOKED, ERR_TRY_LATER, ERR_UNSUPPORTED_VERSION,  # noqa: F401
                             ERR_REJECTED)  # noqa: F401

TYPE_M1 = const(0)
TYPE_M2 = const(1)
TYPE_M3 = const(2)
TYPE_ERROR = const(3)
TYPE_RECORD = const(4)
TYPE_FRAGMENT = const(5)
TYPE_FRAGMENT_ACK = const(6)
TYPE_M1_SHORT = const(7)    # the short m1's wire type (§3.1); message_type() says TYPE_M1

VERSION = const(1)

# m1 flags
M1_CB_KNOWN = const(0x04)   # A holds B's certificate: send it by reference
M1_WANT_TIME = const(0x02)  # A's clock is unconfirmed: put B's time in m2
M1_EARLY = const(0x01)      # 0-RTT ciphertext follows G_X
# m2 flags
M2_CB_VALUE = const(0x10)   # C_B follows by value
M2_TIME = const(0x08)       # B's time (4 bytes) follows G_Y
M2_EARLY_OK = const(0x04)   # B accepted the 0-RTT data
M2_C509 = const(0x02)       # C_B by value is a C509 certificate, not DER (airshake.c509)

KEY_LEN = const(32)         # every ephemeral key on the wire (X25519, P-256 x)
MAC_LEN = const(8)
TAG_LEN = const(8)
SID_LEN = const(4)
REF_LEN = const(2)
SUITES = (0, 1, 2)

# the body length of each error code, indexed by code (the codes themselves:
# airshake.errors, the one table): STALE_TIME 4, UNSUPPORTED_SUITE 1, UNKNOWN_ID 0,
# REVOKED 0, TRY_LATER 2, UNSUPPORTED_VERSION 1, REJECTED 0; 0xFF: no such code.
# A bytes constant, in a frozen firmware's flash.
_ERR_BODY = b"\xff\x04\x01\x00\x00\x02\x01\x00"
KIND_NAMES = ("m1", "m2", "m3", "error", "record", "fragment", "fragment_ack", "m1")
SHORT_TIME_SPAN = const(65536)   # the short m1's 2-byte timestamp counts seconds mod this


def message_type(data):
    """The message type (TYPE_*) of a datagram, the short m1 as TYPE_M1; DecodeError when
    it is empty."""
    if not data:
        raise errors.DecodeError("empty datagram")
    t = data[0] >> 5
    return TYPE_M1 if t == TYPE_M1_SHORT else t


def kind_name(data):
    """A log label for a datagram's type ("m1", "record", ...; "empty" for b"")."""
    return KIND_NAMES[data[0] >> 5] if data else "empty"


def m3_hint(data):
    """The 5-bit routing hint in an m3's head byte (B routes m3 by it, §3.3)."""
    return data[0] & 0x1F


def _head(data, expected):
    if len(data) < 1 or data[0] >> 5 != expected:
        raise errors.DecodeError("not a message of type %d" % expected)
    return data[0] & 0x1F


class M1:
    def __init__(self, flags, suite, offered, id_a, timestamp, g_x, early=b"", short=False):
        self.flags = flags
        self.suite = suite        # the suite G_X belongs to (A's choice)
        self.offered = offered    # bit mask of every suite A supports
        self.id_a = id_a
        self.timestamp = timestamp
        self.g_x = g_x
        self.early = early        # 0-RTT ciphertext with its tag, or b""
        # the short form on the wire (§3.1): one suite, C_B held, clock confirmed, the
        # timestamp's low 16 bits (decode_m1 gives those; B resolves them, resolve_time)
        self.short = short


def short_m1_allowed(m):
    """The short form carries exactly: one offered suite, CB_KNOWN, no WANT_TIME."""
    return (m.offered == 1 << m.suite and m.flags & M1_CB_KNOWN
            and not m.flags & M1_WANT_TIME)


def encode_m1(m, canonical=False):
    """m1's wire bytes: the short form when m.short, else the long one. canonical=True:
    the long form always, with the full timestamp: what TH_1 and H(m1) hash (§4.1)."""
    if m.short and not canonical:
        if not short_m1_allowed(m):
            raise UsageError("a short m1 needs one suite, CB_KNOWN and no WANT_TIME")
        head = (TYPE_M1_SHORT << 5) | (m.suite << 3) | (m.flags & M1_EARLY)
        return (bytes((head,)) + m.id_a + struct.pack(">H", m.timestamp % SHORT_TIME_SPAN)
                + m.g_x + m.early)
    head = (TYPE_M1 << 5) | (VERSION << 3) | m.flags
    suites = (m.suite << 4) | m.offered
    return (bytes((head, suites)) + m.id_a + struct.pack(">I", m.timestamp)
            + m.g_x + m.early)


def is_short_m1(data):
    """The datagram is an m1 in its short form (§3.1)."""
    return bool(data) and data[0] >> 5 == TYPE_M1_SHORT


def m1_prefix_len(id_len, short=False):
    """Bytes of an m1 up to G_X (everything but 0-RTT data)."""
    return (1 + id_len + 2 + KEY_LEN) if short else (2 + id_len + 4 + KEY_LEN)


def resolve_time(low16, now):
    """The Unix time nearest `now` whose value mod 2^16 is low16: a short m1's timestamp
    as B reads it (A's clock within 9 hours of B's, which a confirmed clock is)."""
    now = int(now + 0.5)
    d = (low16 - now) % SHORT_TIME_SPAN
    if d >= SHORT_TIME_SPAN // 2:
        d -= SHORT_TIME_SPAN
    return now + d


def long_form(m, now):
    """A decoded m1 as TH_1 and H(m1) hash it (§4.1): the long form with the full
    timestamp, a short m1's resolved against `now` (m.timestamp is updated)."""
    if m.short:
        m.timestamp = resolve_time(m.timestamp, now)
    return encode_m1(m, canonical=True)


def m1_version(data):
    """The version field of an m1's head byte (decode_m1 refuses any but VERSION)."""
    return (data[0] >> 3) & 3


def _early_part(data, base, flags):
    early = data[base:]
    if flags & M1_EARLY:
        if len(early) < TAG_LEN:
            raise errors.DecodeError("m1 0-RTT ciphertext too short")
        if not flags & M1_CB_KNOWN:
            raise errors.DecodeError("m1 0-RTT without a reference to C_B")
    elif early:
        raise errors.DecodeError("m1 has trailing bytes")
    return bytes(early)


def _decode_m1_short(data, id_len):
    head = data[0]
    if head & 0x06:
        raise errors.DecodeError("short m1 reserved bits set")
    suite = (head >> 3) & 3
    if suite not in SUITES:
        raise errors.UnsupportedSuite("short m1 suite %d" % suite)
    base = m1_prefix_len(id_len, True)
    if len(data) < base:
        raise errors.DecodeError("m1 too short")
    flags = M1_CB_KNOWN | (head & M1_EARLY)
    early = _early_part(data, base, flags)
    id_a = bytes(data[1:1 + id_len])
    (low16,) = struct.unpack(">H", data[1 + id_len:3 + id_len])
    return M1(flags, suite, 1 << suite, id_a, low16, bytes(data[3 + id_len:base]), early,
              short=True)


def decode_m1(data, id_len):
    """An m1 in either form. The short form's timestamp is its low 16 bits (the caller
    resolves it against its clock: resolve_time)."""
    if is_short_m1(data):
        return _decode_m1_short(data, id_len)
    flags = _head(data, TYPE_M1)
    if flags >> 3 != VERSION:
        raise errors.UnsupportedVersion("m1 version %d" % (flags >> 3))
    flags &= 0x07
    base = m1_prefix_len(id_len)
    if len(data) < base:
        raise errors.DecodeError("m1 too short")
    early = _early_part(data, base, flags)
    suites = data[1]
    suite, offered = suites >> 4, suites & 0x0F
    if offered == 0 or not offered & (1 << suite) or suite not in SUITES:
        raise errors.UnsupportedSuite("m1 suite field 0x%02x" % suites)
    if flags & M1_EARLY and offered != 1 << suite:
        raise errors.DecodeError("m1 0-RTT must offer exactly one suite")
    id_a = bytes(data[2:2 + id_len])
    (timestamp,) = struct.unpack(">I", data[2 + id_len:6 + id_len])
    g_x = bytes(data[6 + id_len:base])
    return M1(flags, suite, offered, id_a, timestamp, g_x, early)


class M2:
    def __init__(self, flags, g_y, time=None, cert=None, pms_ct=b"", proof=b""):
        self.flags = flags
        self.g_y = g_y
        self.time = time        # B's clock (int seconds) when M2_TIME
        self.cert = cert        # C_B as sent when M2_CB_VALUE: DER, or C509 with M2_C509
        self.pms_ct = pms_ct    # suite 1: RSA-OAEP ciphertext of the pre-master secret
        self.proof = proof      # MAC_2 (suites 0, 2) or SIG_2 (suite 1)


def encode_m2_head(m):
    """Bytes of m2 up to (not including) pms_ct and proof: what TH_2 covers directly."""
    out = bytes(((TYPE_M2 << 5) | m.flags,)) + m.g_y
    if m.flags & M2_TIME:
        out += struct.pack(">I", m.time)
    if m.flags & M2_CB_VALUE:
        out += struct.pack(">H", len(m.cert)) + m.cert
    return out


def encode_m2(m):
    return encode_m2_head(m) + m.pms_ct + m.proof


def decode_m2(data, pms_len, proof_len_fn):
    """pms_len: RSA ciphertext length (0 outside suite 1). proof_len_fn(cert_or_None)
    gives the proof length, which in suite 1 depends on B's key in C_B (the cert as
    sent: C509 when M2_C509)."""
    flags = _head(data, TYPE_M2)
    if flags & 0x01:
        raise errors.DecodeError("m2 reserved flags set")
    if flags & M2_C509 and not flags & M2_CB_VALUE:
        raise errors.DecodeError("m2 says C509 without C_B by value")
    pos = 1 + KEY_LEN
    if len(data) < pos:
        raise errors.DecodeError("m2 too short")
    m = M2(flags, bytes(data[1:pos]))
    if flags & M2_TIME:
        if len(data) < pos + 4:
            raise errors.DecodeError("m2 time truncated")
        (m.time,) = struct.unpack(">I", data[pos:pos + 4])
        pos += 4
    if flags & M2_CB_VALUE:
        if len(data) < pos + 2:
            raise errors.DecodeError("m2 certificate length truncated")
        (n,) = struct.unpack(">H", data[pos:pos + 2])
        if n == 0 or len(data) < pos + 2 + n:
            raise errors.DecodeError("m2 certificate truncated")
        m.cert = bytes(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    proof_len = proof_len_fn(m.cert)
    if len(data) != pos + pms_len + proof_len:
        raise errors.DecodeError("m2 has the wrong length")
    m.pms_ct = bytes(data[pos:pos + pms_len])
    m.proof = bytes(data[pos + pms_len:])
    return m


def encode_m3_head(hint):
    return bytes(((TYPE_M3 << 5) | (hint & 0x1F),))


def decode_m3(data):
    """Returns (hint, ciphertext-with-tag)."""
    hint = _head(data, TYPE_M3)
    if len(data) < 1 + TAG_LEN:
        raise errors.DecodeError("m3 too short")
    return hint, bytes(data[1:])


def hint_of(g_y):
    """The 5-bit m3 routing hint B derives from its ephemeral key (PROTOCOL.md §3.3)."""
    return g_y[0] & 0x1F


class ErrorMessage:
    def __init__(self, code, ref, body=b""):
        self.code = code
        self.ref = ref      # the first REF_LEN bytes of TH_1 of the m1 it answers
        self.body = body

    def server_time(self):
        return struct.unpack(">I", self.body)[0]

    def retry_after(self):
        return struct.unpack(">H", self.body)[0]


def _err_body_len(code):
    return _ERR_BODY[code] if 0 <= code < len(_ERR_BODY) else 0xFF


def encode_error(code, ref, body=b""):
    if _err_body_len(code) != len(body) or len(ref) != REF_LEN:
        raise ValueError("bad error message fields")
    return bytes(((TYPE_ERROR << 5) | code,)) + ref + body


def decode_error(data):
    code = _head(data, TYPE_ERROR)
    size = _err_body_len(code)
    if size == 0xFF:
        raise errors.DecodeError("unknown error code %d" % code)
    if len(data) != 1 + REF_LEN + size:
        raise errors.DecodeError("error message has the wrong length")
    return ErrorMessage(code, bytes(data[1:1 + REF_LEN]), bytes(data[1 + REF_LEN:]))


RECORD_OVERHEAD = 1 + SID_LEN + 4 + TAG_LEN


def encode_record_head(epoch, sid, seq):
    return bytes(((TYPE_RECORD << 5) | ((epoch & 7) << 2),)) + sid + struct.pack(">I", seq)


def decode_record(data):
    """Returns (epoch, sid, seq, head bytes, ciphertext-with-tag)."""
    flags = _head(data, TYPE_RECORD)
    if flags & 0x03:
        raise errors.DecodeError("record reserved flags set")
    if len(data) < RECORD_OVERHEAD:
        raise errors.DecodeError("record too short")
    head_len = 1 + SID_LEN + 4
    (seq,) = struct.unpack(">I", data[1 + SID_LEN:head_len])
    return (flags >> 2, bytes(data[1:1 + SID_LEN]), seq, bytes(data[:head_len]),
            bytes(data[head_len:]))
