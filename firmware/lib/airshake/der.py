# airshake.der: the strict DER reader and the small DER writer of airshake.
# Owns: reading one TLV (read_tlv), walking the TLVs of a constructed value
# (children, Reader), INTEGER, BOOLEAN, BIT STRING and time contents, OID checks and
# comparison, and encoding TLVs (encode_tlv, encode_uint).
# Rules: DER only, never BER. Single-byte tags only; definite lengths only, in the
# minimal form; every length is checked against the end of its enclosing value.
# Anything else raises airshake.errors.DecodeError. OIDs are never decoded to text:
# they are kept and compared as the DER bytes of their contents.

from airshake import errors
from airshake.errors import UsageError

BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
SEQUENCE = 0x30
SET = 0x31

_MAX_LENGTH_BYTES = 3  # values up to 16 MiB: far beyond anything airshake reads


def read_tlv(buf, offset, end=None):
    """Read the TLV at buf[offset:]; end (default len(buf)) bounds it.
    Returns (tag, value_start, value_end, next_offset); next_offset == value_end."""
    if end is None:
        end = len(buf)
    if offset < 0 or end > len(buf) or offset + 2 > end:
        raise errors.DecodeError("DER: truncated TLV header")
    tag = buf[offset]
    if tag & 0x1F == 0x1F:
        raise errors.DecodeError("DER: multi-byte tags are not supported")
    first = buf[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0:
            raise errors.DecodeError("DER: indefinite length")
        if count > _MAX_LENGTH_BYTES or pos + count > end:
            raise errors.DecodeError("DER: bad length field")
        if buf[pos] == 0:
            raise errors.DecodeError("DER: length not minimal")
        length = 0
        for i in range(count):
            length = (length << 8) | buf[pos + i]
        if length < 0x80:
            raise errors.DecodeError("DER: length not minimal")
        pos += count
    if length > end - pos:
        raise errors.DecodeError("DER: value runs past its container")
    return tag, pos, pos + length, pos + length


def read_whole(buf, tag):
    """The single TLV that must fill buf exactly; returns (value_start, value_end)."""
    t, start, end, nxt = read_tlv(buf, 0)
    if t != tag:
        raise errors.DecodeError("DER: unexpected tag 0x%02x" % t)
    if nxt != len(buf):
        raise errors.DecodeError("DER: trailing bytes")
    return start, end


def children(buf, start, end):
    """Yield (tag, value_start, value_end, tlv_start) for each TLV in buf[start:end]."""
    pos = start
    while pos < end:
        tag, vs, ve, nxt = read_tlv(buf, pos, end)
        yield tag, vs, ve, pos
        pos = nxt


class Reader:
    """Sequential reader of the TLVs inside one constructed value."""

    def __init__(self, buf, start, end):
        self.buf = buf
        self.pos = start
        self.end = end

    def at_end(self):
        return self.pos >= self.end

    def peek_tag(self):
        """Tag of the next TLV, or None at the end."""
        if self.pos >= self.end:
            return None
        return self.buf[self.pos]

    def expect(self, tag):
        """Read the next TLV, which must have this tag; returns (value_start, value_end)."""
        if self.pos >= self.end:
            raise errors.DecodeError("DER: missing element 0x%02x" % tag)
        t, vs, ve, nxt = read_tlv(self.buf, self.pos, self.end)
        if t != tag:
            raise errors.DecodeError("DER: expected tag 0x%02x, got 0x%02x" % (tag, t))
        self.pos = nxt
        return vs, ve

    def expect_raw(self, tag):
        """Like expect() but returns the bytes of the whole TLV (tag and length included)."""
        start = self.pos
        self.expect(tag)
        return bytes(self.buf[start:self.pos])

    def value(self, tag):
        """Contents bytes of the next TLV, which must have this tag."""
        vs, ve = self.expect(tag)
        return bytes(self.buf[vs:ve])

    def done(self):
        if self.pos != self.end:
            raise errors.DecodeError("DER: unexpected trailing element")


def reader(buf, tag, start=0, end=None):
    """A Reader over the contents of the TLV at buf[start:], which must have this tag
    and fill buf[start:end] exactly."""
    if end is None:
        end = len(buf)
    t, vs, ve, nxt = read_tlv(buf, start, end)
    if t != tag:
        raise errors.DecodeError("DER: expected tag 0x%02x, got 0x%02x" % (tag, t))
    if nxt != end:
        raise errors.DecodeError("DER: trailing bytes")
    return Reader(buf, vs, ve)


def read_int(value, allow_negative=False):
    """The int encoded by INTEGER contents bytes (minimal two's complement)."""
    if len(value) == 0:
        raise errors.DecodeError("DER: empty INTEGER")
    if len(value) > 1:
        if (value[0] == 0x00 and value[1] < 0x80) or (value[0] == 0xFF and value[1] >= 0x80):
            raise errors.DecodeError("DER: INTEGER not minimal")
    n = int.from_bytes(value, "big")
    if value[0] & 0x80:
        if not allow_negative:
            raise errors.DecodeError("DER: negative INTEGER")
        n -= 1 << (8 * len(value))
    return n


def read_bool(value):
    """BOOLEAN contents: DER allows exactly 0x00 or 0xFF."""
    if len(value) != 1 or value[0] not in (0x00, 0xFF):
        raise errors.DecodeError("DER: bad BOOLEAN")
    return value[0] == 0xFF


def bit_string_bytes(value):
    """Contents of a BIT STRING holding whole bytes (zero unused bits)."""
    if len(value) == 0 or value[0] != 0:
        raise errors.DecodeError("DER: BIT STRING with unused bits")
    return value[1:]


def _digits(s, start, count):
    n = 0
    for i in range(start, start + count):
        c = s[i]
        if c < 0x30 or c > 0x39:
            raise errors.DecodeError("DER time: not a digit")
        n = n * 10 + c - 0x30
    return n


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((m + 9) % 12) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def _days_in_month(y, m):
    if m == 2:
        return 29 if (y % 4 == 0 and y % 100 != 0) or y % 400 == 0 else 28
    return 30 if m in (4, 6, 9, 11) else 31


def read_time(tag, value):
    """Unix seconds of UTCTime YYMMDDHHMMSSZ (YY < 50 is 20YY, RFC 5280) or
    GeneralizedTime YYYYMMDDHHMMSSZ contents. Only these 'Z' forms are DER here."""
    if tag == UTC_TIME and len(value) == 13:
        year = _digits(value, 0, 2)
        year += 1900 if year >= 50 else 2000
    elif tag == GENERALIZED_TIME and len(value) == 15:
        year = _digits(value, 0, 4)
    else:
        raise errors.DecodeError("DER time: bad tag or length")
    if value[-1] != 0x5A:  # 'Z'
        raise errors.DecodeError("DER time: not UTC ('Z')")
    o = len(value) - 11
    month, day = _digits(value, o, 2), _digits(value, o + 2, 2)
    hour, minute, sec = _digits(value, o + 4, 2), _digits(value, o + 6, 2), _digits(value, o + 8, 2)
    if not 1 <= month <= 12 or not 1 <= day <= _days_in_month(year, month):
        raise errors.DecodeError("DER time: bad date")
    if hour > 23 or minute > 59 or sec > 59:
        raise errors.DecodeError("DER time: bad time of day")
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec


def check_oid(value):
    """OID contents: non-empty, every subidentifier minimal and terminated."""
    if len(value) == 0 or value[-1] & 0x80:
        raise errors.DecodeError("DER: bad OBJECT IDENTIFIER")
    prev = 0
    for b in value:
        if b == 0x80 and not prev & 0x80:
            raise errors.DecodeError("DER: OBJECT IDENTIFIER not minimal")
        prev = b
    return value


def oid_is(buf, start, end, oid):
    """True if buf[start:end] (OID contents) equals oid (contents bytes)."""
    if end - start != len(oid):
        return False
    for i in range(len(oid)):
        if buf[start + i] != oid[i]:
            return False
    return True


# -- writing ---------------------------------------------------------------------------

def encode_length(n):
    if n < 0x80:
        return bytes([n])
    out = []
    while n:
        out.append(n & 0xFF)
        n >>= 8
    out.append(0x80 | len(out))
    out.reverse()
    return bytes(out)


def encode_tlv(tag, value):
    return bytes([tag]) + encode_length(len(value)) + value


def encode_uint(n):
    """INTEGER TLV for n >= 0 (minimal, with a 0x00 byte when the top bit is set)."""
    if n < 0:
        raise UsageError("encode_uint: negative")
    size = (len("%x" % n) + 1) // 2
    body = n.to_bytes(size, "big")
    if body[0] & 0x80:
        body = b"\x00" + body
    return encode_tlv(INTEGER, body)


def int_bytes_len(n):
    """Number of bytes of the big-endian unsigned form of n > 0 (no int.bit_length
    on MicroPython)."""
    return (len("%x" % n) + 1) // 2
