# Handshake tests of the protocol core: both roles in one process, every suite, on
# every backend of the runtime (pure on MicroPython; pure and pyca on CPython).
# They prove: keys agree, sizes meet PROTOCOL.md §9, retransmission and duplicates
# behave as §7 says, 0-RTT, the clock recovery, suite negotiation and sessions.
from testkit.support import refused_, backends, raises_, IS_MICROPYTHON
from testkit.hs_support import (refused_in, Pair, initiator, config, now, cert, anchor,
                                SERVER_NAME, drain)
from airshake import codec, events as ev
from airshake.errors import (AuthenticationFailed, DecodeError, ReplayError,
                             StaleTimestamp, UnsupportedSuite)
from airshake.initiator import CONFIRMED, FAILED, WAIT_M2, Initiator
from airshake.keys import ServerRef
from airshake.session import Session

SUITES = (0, 2) if IS_MICROPYTHON else (0, 1, 2)




def _both_hold_same_keys(pair):
    a, b = pair.ini.session, pair.res.session
    assert a is not None and b is not None
    assert a.sid == b.sid
    rec = a.seal(b"ping")
    assert b.open(rec) == (0, b"ping")
    rec = b.seal(b"pong")
    assert a.open(rec)[1] == b"pong"


def test_every_suite_completes_with_matching_keys():
    for backend in backends():
        for suite in SUITES:
            pair = Pair(backend, suite)
            pair.run(b"reading=21.5")
            assert pair.ini.state == CONFIRMED, (backend.name, suite)
            data = [e.data for e in pair.b_events if isinstance(e, ev.DataReceived)]
            assert data == [b"reading=21.5"]
            _both_hold_same_keys(pair)


def test_rsa_suite_completes_on_micropython_too():
    backend = backends()[0]
    pair = Pair(backend, 1)
    pair.run(b"x")
    assert pair.ini.state == CONFIRMED
    _both_hold_same_keys(pair)


def _ref(backend, suite):
    return ServerRef.verified(backend, suite, cert(suite, "server_cert"), anchor(suite), now(),
                              SERVER_NAME)


def test_by_reference_is_93_bytes_with_the_short_m1_and_96_with_the_long():
    backend = backends()[0]
    for suite in (0, 2):
        pair = Pair(backend, suite, ini=initiator(backend, suite, server=_ref(backend, suite)))
        sizes = pair.run()
        assert sizes == [43, 41, 9], sizes          # short m1: 1 + 8 + 2 + 32
        assert codec.is_short_m1(pair.wire[0][1])
        long = Pair(backend, suite, ini=initiator(backend, suite, server=_ref(backend, suite),
                                                  short_m1=False))
        assert long.run() == [46, 41, 9]
        assert not codec.is_short_m1(long.wire[0][1])


def test_by_value_then_by_reference():
    backend = backends()[0]
    pair = Pair(backend, 0)
    sizes = pair.run()
    assert sizes[1] > 41 + 100        # C_B travelled by value
    ref = pair.ini.server
    assert ref is not None and ref.cert_hash == backend.sha256(cert(0, "server_cert"))
    again = Pair(backend, 0, ini=initiator(backend, 0, server=ref), cfg=pair.cfg)
    again.t += 10
    assert again.run() == [43, 41, 9]      # now by reference: the short m1


def test_duplicate_m1_gets_identical_m2():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.ini.connect(pair.t)
    m1 = pair.a_to_b()[0]
    first = pair.res.datagrams_to_send(pair.t)
    pair.res.receive(m1, pair.t + 1)
    second = pair.res.datagrams_to_send(pair.t + 1)
    assert first == second and len(first) == 1


def test_lost_m2_is_recovered_by_retransmitted_m1():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.ini.connect(pair.t)
    m1 = pair.a_to_b()[0]
    pair.b_to_a(drop=lambda d: True)         # m2 lost
    assert pair.ini.state == WAIT_M2
    pair.t = pair.ini.timer()
    pair.ini.handle_timer(pair.t)
    assert pair.a_to_b() == [m1]             # the identical m1 again
    pair.b_to_a()
    pair.a_to_b()
    pair.b_to_a()
    assert pair.ini.state == CONFIRMED
    _both_hold_same_keys(pair)


def test_lost_m3_is_retransmitted_and_acknowledged_once():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.ini.connect(pair.t, b"hello")
    pair.a_to_b()
    pair.b_to_a()
    m3 = pair.a_to_b(drop=lambda d: True)[0]
    assert pair.res.state != 3
    pair.t = pair.ini.timer()
    pair.ini.handle_timer(pair.t)
    assert pair.a_to_b() == [m3]
    ack = pair.res.datagrams_to_send(pair.t)
    pair.res.receive(m3, pair.t)             # duplicate m3: same ack, data not repeated
    assert pair.res.datagrams_to_send(pair.t) == ack
    received = [e for e in pair.b_events if isinstance(e, ev.DataReceived)]
    assert [e.data for e in received] == [b"hello"]


def test_initiator_gives_up_after_its_retry_budget():
    backend = backends()[0]
    ini = initiator(backend, 0, rto=1.0, max_retries=2)
    t = now()
    ini.connect(t)
    sent = len(ini.datagrams_to_send(t))
    while ini.timer() is not None:
        t = ini.timer()
        ini.handle_timer(t)
        sent += len(ini.datagrams_to_send(t))
    assert sent == 3 and ini.state == FAILED
    failed = [e for e in drain(ini) if isinstance(e, ev.HandshakeFailed)]
    assert len(failed) == 1


def test_zero_rtt_data_is_delivered_once_on_arrival():
    backend = backends()[0]
    for suite in (0, 2):
        ini = initiator(backend, suite, server=_ref(backend, suite))
        pair = Pair(backend, suite, ini=ini, cfg=config(backend, accept_early=True))
        sizes = pair.run(b"temp=4", early=True)
        assert sizes[0] == 43 + 6 + 8           # short m1, 6 bytes of data, the tag
        early = [e for e in pair.b_events if isinstance(e, ev.EarlyData)]
        assert [e.data for e in early] == [b"temp=4"]
        done = [e for e in pair.a_events if isinstance(e, ev.HandshakeComplete)][0]
        assert done.early_accepted
        assert not [e for e in pair.b_events if isinstance(e, ev.DataReceived)]
        # the same m1 replayed to a new responder of the same B is refused
        from airshake.responder import Responder
        replay = Responder(pair.cfg, pair.t + 5)
        replay.receive(pair.wire[0][1], pair.t + 5)
        replay.next_event()
        refused_(ReplayError, replay, replay.provide_credential, cert(suite, "device_cert"),
                pair.t + 5)


def test_zero_rtt_is_off_unless_the_operator_turns_it_on():
    backend = backends()[0]
    pair = Pair(backend, 0, ini=initiator(backend, 0, server=_ref(backend, 0)))
    pair.run(b"temp=4", early=True)
    assert not [e for e in pair.b_events if isinstance(e, ev.EarlyData)]
    assert [e.data for e in pair.b_events if isinstance(e, ev.DataReceived)] == [b"temp=4"]


def test_zero_rtt_refused_after_restart_goes_into_m3():
    backend = backends()[0]
    ini = initiator(backend, 0, server=_ref(backend, 0))
    cfg = config(backend, (0,), accept_early=True)
    cfg.started = now() + 1                  # B restarted after A stamped m1
    pair = Pair(backend, 0, ini=ini, cfg=cfg)
    pair.run(b"temp=4", early=True)
    assert not [e for e in pair.b_events if isinstance(e, ev.EarlyData)]
    data = [e.data for e in pair.b_events if isinstance(e, ev.DataReceived)]
    assert data == [b"temp=4"]


def test_stale_clock_recovers_and_adopts_authenticated_time():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.ini = initiator(backend, 0)
    pair.t = now()
    pair.ini.clock_offset = -86400 * 365     # the device believes it is a year ago
    pair.ini.connect(pair.t)
    pair.a_to_b()
    refused_in(pair.b_events, StaleTimestamp)
    pair.b_to_a()                            # STALE_TIME error -> A retries with B's time
    pair.res = None
    pair.a_to_b()
    pair.b_to_a()
    pair.a_to_b()
    pair.b_to_a()
    assert pair.ini.state == CONFIRMED
    clock = [e for e in pair.a_events if isinstance(e, ev.ClockSet)]
    assert len(clock) == 1 and clock[0].server_time == now()


def test_suite_negotiation_and_downgrade_refusal():
    backend = backends()[0]
    from testkit.hs_support import device_key
    keys = [device_key(backend, 0), device_key(backend, 2)]
    from airshake.initiator import Initiator
    ini = Initiator(backend, keys, anchor(2), server_name=SERVER_NAME)
    cfg = config(backend, (2,))
    pair = Pair(backend, 2, ini=ini, cfg=cfg)
    ini.connect(pair.t)
    pair.a_to_b()                            # A chose 0, B only has 2
    refused = [e for e in pair.b_events if isinstance(e, ev.Refused)]
    assert len(refused) == 1 and isinstance(refused[0].error, UnsupportedSuite)
    pair.b_to_a()
    pair.res = None
    pair.a_to_b()
    pair.b_to_a()
    pair.a_to_b()
    pair.b_to_a()
    assert ini.state == CONFIRMED and ini.session.suite == 2
    # a downgraded m1 (A offers 0 and 2 but picks 2) is refused by a B that has 0
    both = config(backend, (0, 2))
    ini2 = Initiator(backend, keys, anchor(2), server_name=SERVER_NAME)
    ini2.connect(now())
    m1 = bytearray(ini2.datagrams_to_send(now())[0])
    assert m1[1] == 0x05                     # suite 0 chosen, {0, 2} offered
    m1[1] = 0x25                             # ... rewritten on the air: suite 2 chosen
    from airshake.responder import Responder
    res = Responder(both, now())
    refused_(UnsupportedSuite, res, res.receive, bytes(m1), now())


def test_session_records_replay_window_and_key_update():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.run()
    a, b = pair.ini.session, pair.res.session
    recs = [a.seal(b"r%d" % i) for i in range(5)]
    assert b.open(recs[3])[1] == b"r3"
    assert b.open(recs[1])[1] == b"r1"      # reordering inside the window is fine
    raises_(ReplayError, b.open, recs[3])
    raises_(ReplayError, b.open, recs[1])
    upd = a.seal(b"with new key", key_update=True)
    assert b.open(upd)[1] == b"with new key" and b.recv_epoch == 1
    assert b.open(a.seal(b"after"))[1] == b"after"
    tampered = bytearray(a.seal(b"x"))
    tampered[-1] ^= 1
    raises_(AuthenticationFailed, b.open, bytes(tampered))
    assert len(a.seal(b"")) <= 20           # a session uplink costs <= 20 bytes


def test_session_survives_export_and_import():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.run()
    a = pair.ini.session
    a.seal(b"one")
    blob = a.export()
    a2 = Session.from_bytes(backend, blob)
    rec = a2.seal(b"after sleep")
    assert pair.res.session.open(rec) == (1, b"after sleep")
    bad = bytearray(blob)
    bad[10] ^= 0x40
    raises_(DecodeError, Session.from_bytes, backend, bytes(bad))
    raises_(DecodeError, Session.from_bytes, backend, blob[:-1])


def test_api_misuse_raises_usage_error_not_a_protocol_error():
    from airshake.errors import UsageError
    from airshake.responder import Responder
    backend = backends()[0]
    ini = initiator(backend, 0)
    raises_(UsageError, ini.send, b"too early")
    ini.connect(now())
    raises_(UsageError, ini.connect, now())
    res = Responder(config(backend, (0,)), now())
    raises_(UsageError, res.provide_credential, cert(0, "device_cert"), now())
    raises_(UsageError, res.reject_credential, codec.ERR_UNKNOWN_ID)
    raises_(UsageError, res.send, b"x")
    raises_(UsageError, Initiator, backend, [], anchor(0))
    assert not issubclass(UsageError, AuthenticationFailed.__bases__[0])
