# Protocol attacks on the core, each a named test (the server-side ones — unknown,
# revoked and expired IDs, ID collisions, CS down — are in tests/host/test_server_b.py;
# downgrade, other-CA C_B and invalid points in test_negative.py).
from testkit.support import refused_, backends, raises_
from testkit.hs_support import refused_in, Pair, initiator, config, cert, now
from airshake import codec, events as ev
from airshake.errors import (AuthenticationFailed, CertificateError, DecodeError,
                             ReplayError, StaleTimestamp, UnexpectedMessage)
from airshake.fragments import FragmentLink, split
from airshake.keys import ServerRef
from airshake.responder import Responder, ResponderConfig


def _ref(backend):
    return ServerRef(backend, 0, cert(0, "server_cert"))


def test_a_full_m1_replayed_inside_the_window_gives_no_session():
    """Full-handshake m1s are not in the replay cache (only authenticated 0-RTT m1s
    are): a replay gets an m2, which is useless without A's ephemeral key."""
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.run(b"x")
    replayed = Responder(pair.cfg, pair.t + 10)
    replayed.receive(pair.wire[0][1], pair.t + 10)
    assert isinstance(replayed.next_event(), ev.NeedCredential)
    replayed.provide_credential(cert(0, "device_cert"), pair.t + 10)
    assert replayed.datagrams_to_send(pair.t + 10)        # an m2 for nobody
    refused_((AuthenticationFailed, UnexpectedMessage), replayed, replayed.receive, pair.wire[2][1],
            pair.t + 10)
    assert replayed.session is None and len(pair.cfg.replay) == 0


def test_0rtt_data_replayed_inside_the_window_is_delivered_once():
    backend = backends()[0]
    pair = Pair(backend, 0, ini=initiator(backend, 0, server=_ref(backend)),
                cfg=config(backend, (0,), accept_early=True))
    pair.run(b"open door", early=True)
    early = [e.data for e in pair.b_events if isinstance(e, ev.EarlyData)]
    assert early == [b"open door"] and len(pair.cfg.replay) == 1
    replayed = Responder(pair.cfg, pair.t + 10)
    replayed.receive(pair.wire[0][1], pair.t + 10)
    assert isinstance(replayed.next_event(), ev.NeedCredential)
    refused_(ReplayError, replayed, replayed.provide_credential, cert(0, "device_cert"),
             pair.t + 10)
    assert replayed.next_event() is None and replayed.datagrams_to_send(pair.t) == []


def test_junk_m1s_cannot_fill_the_replay_cache_and_reopen_0rtt():
    """Only m1s whose 0-RTT data authenticated take a place in the cache; when it is
    full, 0-RTT data is refused (it goes in m3), never an older entry evicted."""
    backend = backends()[0]
    cfg = config(backend, (0,), accept_early=True)
    cfg.replay.capacity = 1
    pair = Pair(backend, 0, ini=initiator(backend, 0, server=_ref(backend)), cfg=cfg)
    pair.run(b"first", early=True)
    for i in range(50):                       # junk: well-formed m1s nobody can answer
        junk = bytearray(pair.wire[0][1])
        junk[-1] ^= 1 + (i % 200)
        res = Responder(cfg, pair.t + 1)
        res.receive(bytes(junk), pair.t + 1)
        if isinstance(res.next_event(), ev.NeedCredential):
            refused_(AuthenticationFailed, res, res.provide_credential, cert(0, "device_cert"),
                    pair.t + 1)
    assert len(cfg.replay) == 1               # the junk took no place
    replayed = Responder(cfg, pair.t + 70)
    replayed.receive(pair.wire[0][1], pair.t + 70)
    replayed.next_event()
    refused_(ReplayError, replayed, replayed.provide_credential, cert(0, "device_cert"),
             pair.t + 70)
    second = Pair(backend, 0, ini=initiator(backend, 0, server=_ref(backend)), cfg=cfg)
    second.run(b"second", early=True)         # cache full: 0-RTT refused, data in m3
    assert cfg.replay_full == 1
    assert not [e for e in second.b_events if isinstance(e, ev.EarlyData)]
    assert [e.data for e in second.b_events if isinstance(e, ev.DataReceived)] == [b"second"]


def test_m1_replayed_outside_the_window_is_refused_before_any_lookup():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.run(b"x")
    late = pair.t + pair.cfg.window + 1
    replayed = Responder(pair.cfg, late)
    refused_(StaleTimestamp, replayed, replayed.receive, pair.wire[0][1], late)
    assert replayed.next_event() is None          # no NeedCredential: no CS lookup


def test_m1_replayed_after_a_b_restart_delivers_no_0rtt_data_and_no_session():
    backend = backends()[0]
    pair = Pair(backend, 0, ini=initiator(backend, 0, server=_ref(backend)),
                cfg=config(backend, (0,), accept_early=True))
    pair.run(b"open door", early=True)
    m1 = pair.wire[0][1]
    restarted = config(backend, (0,), accept_early=True)   # empty replay cache (restart)
    restarted.started = pair.t + 5
    res = Responder(restarted, pair.t + 6)
    res.receive(m1, pair.t + 6)
    assert isinstance(res.next_event(), ev.NeedCredential)
    res.provide_credential(cert(0, "device_cert"), pair.t + 6)
    assert res.next_event() is None                 # no EarlyData: 0-RTT refused
    m2 = res.datagrams_to_send(pair.t + 6)[0]
    assert not m2[0] & codec.M2_EARLY_OK
    # the attacker cannot produce m3 without A's ephemeral and static keys: the
    # recorded m3 of the original run does not fit the new m2
    refused_((AuthenticationFailed, UnexpectedMessage), res, res.receive, pair.wire[2][1], pair.t)
    assert res.session is None


def test_m3_replayed_is_answered_identically_and_delivered_once():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.run(b"pay 5")
    m3 = pair.wire[2][1]
    ack = pair.wire[3][1]
    pair.res.receive(m3, pair.t)
    assert pair.res.datagrams_to_send(pair.t) == [ack]
    data = [e.data for e in pair.b_events if isinstance(e, ev.DataReceived)]
    assert data == [b"pay 5"]


def test_records_replayed_are_refused():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.run()
    rec = pair.ini.session.seal(b"pay 5")
    assert pair.res.session.open(rec)[1] == b"pay 5"
    raises_(ReplayError, pair.res.session.open, rec)


def test_reflection_of_each_message_is_refused():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.run()
    m1, m2, m3, ack = [d for who, d in pair.wire[:4]]
    refused_(UnexpectedMessage, pair.ini, pair.ini.receive, m1, pair.t)      # A's m1 back to A
    refused_(UnexpectedMessage, pair.ini, pair.ini.receive, m3, pair.t)      # A's m3 back to A
    fresh = Responder(pair.cfg, pair.t)
    refused_(UnexpectedMessage, fresh, fresh.receive, m2, pair.t)         # B's m2 back to B
    for _ in range(3):                                            # past B's seq 0 ack
        own = pair.ini.session.seal(b"to B")
    raises_(AuthenticationFailed, pair.ini.session.open, own)     # A's record back to A
    for _ in range(3):
        theirs = pair.res.session.seal(b"to A")
    raises_(AuthenticationFailed, pair.res.session.open, theirs)  # B's record back to B
    assert ack


def test_m2_from_the_wrong_server_is_refused():
    """Another server B2 holds a valid certificate from the same CA: by reference its
    MAC_2 fails (es uses B1's key); by value A refuses it when it pins B's name."""
    backend = backends()[0]
    wrong_b2 = Pair(backend, 0, ini=initiator(backend, 0, server=_ref(backend)),
                    cfg=ResponderConfig(backend, [_impostor_key(backend)]))
    wrong_b2.ini.connect(wrong_b2.t)
    wrong_b2.a_to_b()
    wrong_b2.b_to_a()
    refused_in(wrong_b2.a_events, AuthenticationFailed)
    assert wrong_b2.ini.session is None
    pinned = initiator(backend, 0, server_name="not B's name")
    by_value = Pair(backend, 0, ini=pinned)
    by_value.ini.connect(by_value.t)
    by_value.a_to_b()
    by_value.b_to_a()
    refused_in(by_value.a_events, CertificateError)


def _impostor_key(backend):
    """B2: the same certificate as B (an attacker can copy it) but not B's private key
    (ServerKey would refuse the mismatch, so B2 is assembled by hand)."""
    class Impostor:
        suite = 0
        private = bytes(31) + b"\x01"
        ref = ServerRef(backend, 0, cert(0, "server_cert"))
    return Impostor()


def test_oversize_fragments_and_fragment_floods_are_bounded():
    link = FragmentLink(51, max_message=1024, max_pending=4)
    raises_(DecodeError, link.incoming, split(bytes(5000), 51)[0], now())
    for i in range(1000):                           # a flood of distinct partials
        frame = bytes((0xA0, i & 0xFF, 0, 3)) + bytes(47)
        link.incoming(frame, i)
    assert len(link._pending) <= 4
    whole = bytes(range(120))
    result = None
    for frame in split(whole, 51):
        result, _ = link.incoming(frame, 2000)
    assert result == whole                          # legitimate traffic still passes


def test_stale_time_error_for_another_handshake_is_ignored():
    backend = backends()[0]
    ini = initiator(backend, 0)
    ini.connect(now())
    forged = codec.encode_error(codec.ERR_STALE_TIME, b"\x00\x00", b"\x00\x00\x00\x01")
    refused_(DecodeError, ini, ini.receive, forged, now())
    assert ini.clock_offset == 0
