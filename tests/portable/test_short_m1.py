# The short m1 (PROTOCOL.md §3.1, §4.1, §8.4): its strict decoding, how B resolves its
# 16-bit timestamp, that the transcript hashes the long form (so short and long say the
# same thing, and a changed offer or a second reading of the time breaks MAC_2), and that
# a 0-RTT short m1 replayed 2^16 seconds later, when its low 16 bits match again, is
# refused: B resolves it to another time, so the 0-RTT keys differ.
from airshake import codec, events as ev
from airshake.errors import (AuthenticationFailed, DecodeError, UnsupportedSuite,
                             UsageError)
from airshake.initiator import CONFIRMED
from airshake.keys import ServerRef
from airshake.responder import Responder
from testkit.hs_support import Pair, cert, config, drain, initiator, now
from testkit.support import backends, raises_, refused_

SPAN = codec.SHORT_TIME_SPAN


def _ref(backend, suite=0):
    return ServerRef(backend, suite, cert(suite, "server_cert"))


def _short_m1(backend, early=False, t=None):
    ini = initiator(backend, 0, server=_ref(backend))
    ini.connect(now() if t is None else t, b"temp=4", early)
    return ini, ini.datagrams_to_send(now() if t is None else t)[0]


def test_short_m1_decodes_strictly():
    backend = backends()[0]
    ini, m1 = _short_m1(backend)
    assert len(m1) == 43 and codec.is_short_m1(m1)
    assert codec.message_type(m1) == codec.TYPE_M1 and codec.kind_name(m1) == "m1"
    m = codec.decode_m1(m1, 8)
    assert m.short and m.offered == 1 and m.flags == codec.M1_CB_KNOWN
    assert m.timestamp == now() % SPAN
    raises_(DecodeError, codec.decode_m1, m1[:-1], 8)
    raises_(DecodeError, codec.decode_m1, m1 + b"\x00", 8)
    for bit in (0x02, 0x04):                                   # reserved bits
        raises_(DecodeError, codec.decode_m1, bytes((m1[0] | bit,)) + m1[1:], 8)
    raises_(UnsupportedSuite, codec.decode_m1, bytes((m1[0] | 0x18,)) + m1[1:], 8)
    early = bytes((m1[0] | codec.M1_EARLY,)) + m1[1:]
    raises_(DecodeError, codec.decode_m1, early + bytes(7), 8)  # shorter than a tag
    assert codec.decode_m1(early + bytes(8), 8).early == bytes(8)


def test_the_short_form_is_only_for_what_it_can_say():
    backend = backends()[0]
    m = codec.M1(codec.M1_CB_KNOWN | codec.M1_WANT_TIME, 0, 1, bytes(8), 5, bytes(32),
                 short=True)
    raises_(UsageError, codec.encode_m1, m)                    # clock not confirmed
    m.flags, m.offered = codec.M1_CB_KNOWN, 0b101
    raises_(UsageError, codec.encode_m1, m)                    # two suites offered
    # A falls back to the long form by itself: no C_B held, or an unconfirmed clock
    for ini in (initiator(backend, 0), initiator(backend, 0, server=_ref(backend),
                                                 clock_trusted=False)):
        ini.connect(now())
        assert not codec.is_short_m1(ini.datagrams_to_send(now())[0])


def test_b_resolves_the_time_nearest_its_clock():
    t = 1_800_000_000
    for skew in (0, 1, -1, 119, -120, SPAN // 2 - 1, -(SPAN // 2)):
        assert codec.resolve_time((t + skew) % SPAN, t) == t + skew, skew
    assert codec.resolve_time((t + SPAN // 2) % SPAN, t) == t - SPAN // 2   # the far edge


def test_short_and_long_m1_hash_the_same_long_form():
    backend = backends()[0]
    t = now()
    short = initiator(backend, 0, server=_ref(backend))
    short.connect(t)
    s1 = short.datagrams_to_send(t)[0]
    m = codec.decode_m1(s1, 8)
    m.timestamp = codec.resolve_time(m.timestamp, t)
    canonical = codec.encode_m1(m, canonical=True)
    # the long form of the same fields: head 0x0C (m1, version 1, CB_KNOWN), {0} chosen 0
    assert canonical == bytes((0x0C, 0x01)) + s1[1:9] + t.to_bytes(4, "big") + s1[11:43]
    assert backend.sha256(canonical) == short._th1       # TH_1 (vectors: byte for byte)
    # both forms complete against the same B
    cfg = config(backend)
    for form in (True, False):
        pair = Pair(backend, 0, ini=initiator(backend, 0, server=_ref(backend), short_m1=form),
                    cfg=cfg, t=t)
        assert pair.run(b"x")[0] == (43 if form else 46)
        assert pair.ini.state == CONFIRMED


def test_a_stale_short_m1_gets_stale_time_a_can_match():
    """B's clock 10 minutes or 200 days apart from A's: B reads the short m1's time as a
    different second than A stamped, but its STALE_TIME names the m1 by its bytes as sent
    (§6), so A takes it and retries with the long form and WANT_TIME."""
    backend = backends()[0]
    t = now()
    for apart in (600, 200 * 86400, -3 * 86400 - 7):
        ini, m1 = _short_m1(backend, t=t - apart)
        res = Responder(config(backend), t)
        res.receive(m1, t)
        refused = [e for e in drain(res) if isinstance(e, ev.Refused)]
        assert refused and refused[0].code == codec.ERR_STALE_TIME, apart
        ini.receive(res.datagrams_to_send(t)[0], t - apart)
        again = ini.datagrams_to_send(t - apart)
        assert again and not codec.is_short_m1(again[0]), apart          # the long form
        assert codec.decode_m1(again[0], 8).flags & codec.M1_WANT_TIME


def test_a_0rtt_short_m1_replayed_2_16_seconds_later_is_refused():
    backend = backends()[0]
    t = now()
    ini, m1 = _short_m1(backend, early=True, t=t)
    cfg = config(backend, accept_early=True)
    first = Responder(cfg, t)
    first.receive(m1, t)
    first.next_event()
    first.provide_credential(cert(0, "device_cert"), t)
    assert [e.data for e in drain(first) if isinstance(e, ev.EarlyData)] == [b"temp=4"]
    # 2^16 s later the low 16 bits match again, and a B with an empty replay cache takes
    # the m1 as fresh: but it resolves the time to t + 2^16, so TH_1 and K_0 differ
    later = t + SPAN
    fresh = config(backend, accept_early=True)
    replay = Responder(fresh, later)
    replay.receive(m1, later)
    replay.next_event()
    refused_(AuthenticationFailed, replay, replay.provide_credential,
             cert(0, "device_cert"), later)


def test_five_byte_ids_make_a_40_byte_m1():
    """A deployment's choice (issue 16: the CS, B and the devices set id_len alike; the
    CS refuses an enrolment whose ID collides): 5-byte IDs, a 40-byte short m1, 90 bytes
    in all, and the SF12 frame of m1 costs no more than EDHOC's 37-byte message_1."""
    from airshake.initiator import Initiator
    from airshake.keys import DeviceKey
    from testkit.hs_support import SERVER_NAME, anchor, private
    backend = backends()[0]
    key = DeviceKey(backend, 0, private(0, "device_key"), 5)
    ini = Initiator(backend, [key], anchor(0), server=_ref(backend), id_len=5,
                    server_name=SERVER_NAME)
    pair = Pair(backend, 0, ini=ini, cfg=config(backend, id_len=5))
    assert pair.run() == [40, 41, 9]
    assert ini.state == CONFIRMED and len(key.id_a) == 5
