# Negative tests: every byte of every message truncated, extended and bit-flipped; wrong
# MACs; downgrades; invalid and low-order points; bad certificates. Each must be refused
# with a typed AirshakeError (a decoder raises it; a role reports it in a Dropped or
# Refused event and raises nothing) and never establish a session.
from testkit.support import refusal, refused_, backends, IS_MICROPYTHON, unhex, raises_
from testkit.hs_support import (refused_in, Pair, initiator, config, cert, anchor, now, device_key,
                                drain, SERVER_NAME)
from airshake import codec, events as ev, fragments
from airshake.errors import (AirshakeError, AuthenticationFailed, CertificateError,
                             DecodeError, InvalidPoint, StaleTimestamp)
from airshake.initiator import CONFIRMED, FAILED, MAX_UNAUTH_RETRY_S, WAIT_M2, Initiator
from airshake.keys import ServerRef
from airshake.responder import Responder, WAIT_M3, DONE

# X25519 points of small order (RFC 7748 §7; Wycheproof x25519 "low order" cases)
LOW_ORDER_X25519 = [
    bytes(32),
    b"\x01" + bytes(31),
    unhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    unhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    unhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]
# an x-coordinate that is not on P-256 (x^3 - 3x + b is not a square for x = 1)
NOT_ON_P256 = (1).to_bytes(32, "big")


def _variants(data):
    """Every truncation, a one-byte extension, and two bit flips of every byte."""
    for n in range(len(data)):
        yield data[:n]
    yield data + b"\x00"
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            m = bytearray(data)
            m[i] ^= bit
            yield bytes(m)


def _typed(fn, *args):
    """Call fn (a decoder, or a session's open); return the AirshakeError it raised or
    None. Other exceptions propagate and fail the test."""
    try:
        fn(*args)
    except AirshakeError as e:
        return e
    return None


def _refused(role, fn, *args):
    """Call fn, a role's method taking remote input: any exception propagates and fails
    the test (the roles never raise for remote input). Returns the AirshakeError of the
    Dropped or Refused event it reported, or None."""
    fn(*args)
    error = refusal(role)
    assert error is None or isinstance(error, AirshakeError), error
    return error


def _until_m2(backend, suite=0, ref=True):
    server = None
    if ref:
        server = ServerRef(backend, suite, cert(suite, "server_cert"))
    pair = Pair(backend, suite, ini=initiator(backend, suite, server=server))
    pair.ini.connect(pair.t)
    m1 = pair.a_to_b()[0]
    m2 = pair.res.datagrams_to_send(pair.t)[0]
    return pair, m1, m2


def test_every_m1_variant_is_refused_or_cannot_complete():
    backend = backends()[0]
    pair, m1, m2 = _until_m2(backend)
    cfg = pair.cfg
    genuine_id = pair.ini.keys[0].id_a
    for bad in _variants(m1):
        res = Responder(cfg, pair.t)
        cfg.replay = type(cfg.replay)()          # each variant is a fresh m1
        res.receive(bad, pair.t)
        need = res.next_event()
        if not isinstance(need, ev.NeedCredential):
            assert isinstance(need.error, AirshakeError), bad    # refused, typed
            continue
        if need.id_a != genuine_id:
            continue                             # CS would not know this ID
        if _refused(res, res.provide_credential, cert(0, "device_cert"), pair.t) is not None:
            continue
        forged_m2 = res.datagrams_to_send(pair.t)[0]
        e = _refused(pair.ini, pair.ini.receive, forged_m2, pair.t)
        assert isinstance(e, AirshakeError), bad
        assert pair.ini.state == WAIT_M2


def _check_m2_variants(backend, suite, ref, step=1):
    pair, m1, m2 = _until_m2(backend, suite, ref)
    variants = list(_variants(m2))
    for bad in variants[::step]:
        e = _refused(pair.ini, pair.ini.receive, bad, pair.t)
        assert isinstance(e, AirshakeError), (suite, bad)
        assert pair.ini.state == WAIT_M2 and pair.ini.session is None
    pair.ini.receive(m2, pair.t)                 # the genuine m2 still completes
    assert pair.ini.session is not None


def test_every_m2_variant_raises_typed_error_suite0_by_reference():
    _check_m2_variants(backends()[0], 0, True)


def test_m2_variants_by_value_and_suite2():
    backend = backends()[0]
    _check_m2_variants(backend, 0, False, 7 if IS_MICROPYTHON else 1)
    _check_m2_variants(backend, 2, True, 5 if IS_MICROPYTHON else 1)
    if not IS_MICROPYTHON:
        _check_m2_variants(backend, 1, True, 11)


def test_every_m3_variant_is_refused_and_genuine_m3_still_completes():
    backend = backends()[0]
    pair, m1, m2 = _until_m2(backend)
    pair.ini.receive(m2, pair.t)
    m3 = pair.ini.datagrams_to_send(pair.t)[0]
    for bad in _variants(m3):
        e = _refused(pair.res, pair.res.receive, bad, pair.t)
        assert isinstance(e, AirshakeError), bad
        assert pair.res.state == WAIT_M3 and pair.res.session is None
    pair.res.receive(m3, pair.t)
    assert pair.res.state == DONE


def test_record_variants_raise_typed_errors():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.run()
    record = pair.ini.session.seal(b"reading")
    for bad in _variants(record):
        assert isinstance(_typed(pair.res.session.open, bad), AirshakeError)
    assert pair.res.session.open(record)[1] == b"reading"


def _waiting_initiator(backend, t):
    """An A that sent its m1 and waits for m2; returns it and a try-later error for it."""
    ini = initiator(backend, 0)
    ini.connect(t)
    m1 = ini.datagrams_to_send(t)[0]
    ref = backend.sha256(m1)[:codec.REF_LEN]
    return ini, codec.encode_error(codec.ERR_TRY_LATER, ref, b"\x00\x05")


def test_error_message_variants_for_the_waiting_m1_are_refused_or_only_reject():
    """Each variant of a try-later error goes to the A whose m1 it answers (errors are
    unauthenticated, PROTOCOL.md §6): the genuine one makes A give up with a bounded retry;
    a variant either raises a typed error and leaves A waiting for m2, or is itself a
    well-formed rejection; truncations, the extension and every flip of the reference
    must be refused."""
    backend = backends()[0]
    t = now()
    ini, err = _waiting_initiator(backend, t)
    ini.receive(err, t)
    rejected = [e for e in drain(ini) if isinstance(e, ev.ServerRejected)]
    assert ini.state == FAILED and [(e.code, e.retry_after) for e in rejected] == \
        [(codec.ERR_TRY_LATER, 5)]
    refused = set()
    for k in range(len(list(_variants(err)))):
        ini, err = _waiting_initiator(backend, t)
        bad = list(_variants(err))[k]
        ini.receive(bad, t)
        events = drain(ini)
        errors = [x.error for x in events if isinstance(x, ev.Dropped)]
        if errors:
            assert isinstance(errors[0], AirshakeError) and ini.state == WAIT_M2, bad
            refused.add(k)
        else:
            rejected = [x for x in events if isinstance(x, ev.ServerRejected)]
            assert ini.state == FAILED and len(rejected) == 1, bad
            assert rejected[0].retry_after is None or \
                rejected[0].retry_after <= MAX_UNAUTH_RETRY_S, bad
    n = len(err)
    ref_flips = [n + 1 + 2 * i + j for i in range(1, 1 + codec.REF_LEN) for j in (0, 1)]
    assert set(range(n + 1)) | set(ref_flips) <= refused, sorted(refused)


def test_fragment_decoders_raise_typed_errors():
    frames = fragments.split(bytes(range(200)), 51)
    link = fragments.FragmentLink(51)
    for frame in frames:
        for bad in _variants(frame):
            e = _typed(link.incoming, bad, 0)
            assert e is None or isinstance(e, AirshakeError)
    ack = fragments.encode_ack(7, 5, {0, 2})
    for bad in _variants(ack):
        e = _typed(link.incoming, bad, 0)
        assert e is None or isinstance(e, AirshakeError)


def test_wrong_mac_2_is_authentication_failed():
    backend = backends()[0]
    pair, m1, m2 = _until_m2(backend)
    bad = m2[:-1] + bytes((m2[-1] ^ 0x55,))
    refused_(AuthenticationFailed, pair.ini, pair.ini.receive, bad, pair.t)


def test_tampered_suite_list_in_m1_breaks_mac_2():
    """A MITM removes suite 2 from A's offer: B accepts, but A's MAC_2 check fails."""
    backend = backends()[0]
    keys = [device_key(backend, 0), device_key(backend, 2)]
    ini = Initiator(backend, keys, anchor(0), server_name=SERVER_NAME,
                    server=ServerRef(backend, 0, cert(0, "server_cert")))
    t = now()
    ini.connect(t)
    m1 = bytearray(ini.datagrams_to_send(t)[0])
    assert m1[1] == 0x05                         # suite 0 chosen, {0, 2} offered
    m1[1] = 0x01                                 # ... rewritten to "only suite 0"
    res = Responder(config(backend, (0, 2)), t)
    res.receive(bytes(m1), t)
    res.next_event()
    res.provide_credential(cert(0, "device_cert"), t)
    refused_(AuthenticationFailed, ini, ini.receive, res.datagrams_to_send(t)[0], t)


def _m1_with_key(backend, suite, g_x):
    pair, m1, m2 = _until_m2(backend, suite)
    prefix = codec.m1_prefix_len(8, short=codec.is_short_m1(m1))
    return pair, m1[:prefix - 32] + g_x


def test_low_order_and_invalid_points_in_m1_are_refused():
    backend = backends()[0]
    for point in LOW_ORDER_X25519:
        pair, bad = _m1_with_key(backend, 0, point)
        res = Responder(config(backend, (0,)), pair.t)
        res.receive(bad, pair.t)
        res.next_event()
        refused_(InvalidPoint, res, res.provide_credential, cert(0, "device_cert"), pair.t)
        assert res.datagrams_to_send(pair.t) == []
    pair, bad = _m1_with_key(backend, 2, NOT_ON_P256)
    res = Responder(config(backend, (2,)), pair.t)
    res.receive(bad, pair.t)
    res.next_event()
    refused_(InvalidPoint, res, res.provide_credential, cert(2, "device_cert"), pair.t)


def test_low_order_and_invalid_points_in_m2_are_refused():
    backend = backends()[0]
    for suite, points in ((0, LOW_ORDER_X25519), (2, [NOT_ON_P256, bytes(32)])):
        pair, m1, m2 = _until_m2(backend, suite)
        for point in points:
            bad = m2[:1] + point + m2[33:]
            e = _refused(pair.ini, pair.ini.receive, bad, pair.t)
            assert isinstance(e, (InvalidPoint, AuthenticationFailed)), (suite, point)
            assert pair.ini.session is None


def test_expired_or_wrong_ca_c_b_is_refused_by_value():
    backend = backends()[0]
    for name in ("server_cert_expired", "server_cert_other_ca"):
        from testkit.hs_support import server_key
        from airshake.responder import ResponderConfig
        cfg = ResponderConfig(backend, [server_key(backend, 0, name)])
        pair = Pair(backend, 0, cfg=cfg)
        pair.ini.connect(pair.t)
        pair.a_to_b()
        pair.b_to_a()
        refused_in(pair.a_events, CertificateError)
        assert pair.ini.session is None and pair.ini.state == WAIT_M2


def test_device_certificate_for_another_key_is_rejected():
    backend = backends()[0]
    pair = Pair(backend, 0, device_cert=cert(0, "device_cert_wrong_key"))
    pair.ini.connect(pair.t)
    pair.a_to_b()
    refused_in(pair.b_events, CertificateError)
    out = pair.res.datagrams_to_send(pair.t)
    assert len(out) == 1 and codec.decode_error(out[0]).code == codec.ERR_REJECTED
    assert pair.res.session is None


def test_a_parsed_certificate_gets_the_same_checks_as_der():
    """provide_credential() also takes C_A as x509.parse_certificate() made it (B's
    cache hands the core parsed certificates): the key-type and ID checks still run."""
    from airshake import x509
    backend = backends()[0]
    pair = Pair(backend, 0, device_cert=x509.parse_certificate(cert(0, "device_cert")))
    pair.run(b"parsed")
    assert pair.ini.state == CONFIRMED
    pair = Pair(backend, 0,
                device_cert=x509.parse_certificate(cert(0, "device_cert_wrong_key")))
    pair.ini.connect(pair.t)
    pair.a_to_b()
    refused_in(pair.b_events, CertificateError)
    out = pair.res.datagrams_to_send(pair.t)
    assert len(out) == 1 and codec.decode_error(out[0]).code == codec.ERR_REJECTED
    pair = Pair(backend, 2, device_cert=x509.parse_certificate(cert(0, "device_cert")))
    pair.ini.connect(pair.t)
    pair.a_to_b()
    refused_in(pair.b_events, CertificateError)        # an X25519 key offered for suite 2


def test_garbage_before_authentication_queues_no_reply():
    backend = backends()[0]
    cfg = config(backend, (0,))
    for junk in (b"", b"\x00", b"\xff" * 60, bytes(46), b"\x08\x01" + bytes(45)):
        res = Responder(cfg, now())
        e = _refused(res, res.receive, junk, now())
        assert isinstance(e, AirshakeError)
        assert res.datagrams_to_send(now()) == []
    assert isinstance(_typed(codec.message_type, b""), DecodeError)
    # a well-formed m1 with a stale clock is not garbage: it gets the short STALE_TIME
    # answer (7 bytes for 46: no amplification), PROTOCOL.md §6
    res = Responder(cfg, now())
    refused_(StaleTimestamp, res, res.receive, b"\x08\x01" + bytes(44), now())
    out = res.datagrams_to_send(now())
    assert len(out) == 1 and len(out[0]) == 7


def test_later_version_gets_unsupported_version_and_duplicates_the_same_error():
    backend = backends()[0]
    cfg = config(backend, (0,))
    m1 = b"\x10\x01" + bytes(44)                 # version 2
    res = Responder(cfg, now())
    e = _refused(res, res.receive, m1, now())
    assert e is not None and e.code == codec.ERR_UNSUPPORTED_VERSION
    (err,) = res.datagrams_to_send(now())
    assert codec.decode_error(err).ref == backend.sha256(m1)[:2]
    res.receive(m1, now())                       # the retransmission: identical answer
    assert res.datagrams_to_send(now()) == [err]


def test_error_classes_made_on_first_use_are_one_typed_class_each():
    # airshake.errors makes these on first use (a device holds none until it meets bad
    # input): each is one class whatever the way it is reached, with its base and code
    from airshake import errors
    from airshake.errors import InvalidPoint, StaleTimestamp
    table = (("DecodeError", AirshakeError, 16), ("UnsupportedVersion", AirshakeError, 6),
             ("UnsupportedSuite", AirshakeError, 2), ("AuthenticationFailed", AirshakeError, 17),
             ("InvalidPoint", errors.AuthenticationFailed, 18),
             ("CertificateError", AirshakeError, 7), ("ReplayError", AirshakeError, 19),
             ("UnexpectedMessage", AirshakeError, 20), ("StaleTimestamp", AirshakeError, 1),
             ("UnknownIdentity", AirshakeError, 3), ("RevokedIdentity", AirshakeError, 4),
             ("TryLater", AirshakeError, 5))
    for name, base, code in table:
        cls = getattr(errors, name)
        assert cls is getattr(errors, name) and cls.__name__ == name
        assert issubclass(cls, base) and cls.code == code
        assert isinstance(cls("x"), AirshakeError) and not issubclass(cls, errors.UsageError)
    assert InvalidPoint is errors.InvalidPoint and StaleTimestamp is errors.StaleTimestamp
    assert errors.WIRE_NAMES[errors.ERR_TRY_LATER] == "try_later"
    assert errors.WIRE_NAMES is errors.WIRE_NAMES
    assert raises_attribute_error(lambda: errors.NoSuchError)


def test_events_made_on_first_use_are_one_event_class_each():
    for name in ("ClockSet", "ServerRejected", "HandshakeFailed", "Dropped", "NeedCredential",
                 "EarlyData", "Refused"):
        cls = getattr(ev, name)
        assert cls is getattr(ev, name) and cls.__name__ == name and issubclass(cls, ev.Event)
    assert ev.Dropped(DecodeError("x"), "m2").kind == "m2"
    assert ev.HandshakeFailed("r").code == 0 and ev.ServerRejected(5).retry_after is None
    assert raises_attribute_error(lambda: ev.NoSuchEvent)


def raises_attribute_error(fn):
    try:
        fn()
    except AttributeError:
        return True
    return False


def test_error_message_body_length_is_fixed_per_code_and_unknown_codes_are_refused():
    # codec's table of body lengths by wire code (PROTOCOL.md §6)
    for code, size in ((1, 4), (2, 1), (3, 0), (4, 0), (5, 2), (6, 1), (7, 0)):
        err = codec.decode_error(codec.encode_error(code, b"ab", bytes(size)))
        assert (err.code, err.ref, err.body) == (code, b"ab", bytes(size))
        raises_(ValueError, codec.encode_error, code, b"ab", bytes(size + 1))
    for code in (0, 8, 31, -1):
        raises_(ValueError, codec.encode_error, code, b"ab")
    for code in (0, 8, 31):
        raises_(DecodeError, codec.decode_error, bytes(((codec.TYPE_ERROR << 5) | code,)) + b"ab")
