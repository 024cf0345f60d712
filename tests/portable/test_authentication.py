# Mutual authentication against an enrolled attacker, and what an unauthenticated error
# may make A do (docs/PROTOCOL.md §2.3, §6.1, §8): A accepts as C_B only a server
# certificate of the name it is pinned to; forged errors cannot narrow A's offer, silence
# it for long, or move a clock an authenticated m2 confirmed.
import struct

from testkit.support import refused_, backends, raises_
from testkit.hs_support import (refused_in, Pair, SERVER_NAME, anchor, cert, config, device_key,
                                drain, initiator, now, private)
from airshake import codec, events as ev, transcript, x509
from airshake.errors import AirshakeError, CertificateError, UsageError
from airshake.initiator import CONFIRMED, FAILED, MAX_UNAUTH_RETRY_S, Initiator
from airshake.keys import ServerKey, ServerRef
from airshake.responder import Responder, ResponderConfig

DAY = 86400


def _rogue_config(backend, suite, which):
    """A B run by an attacker who holds a certificate of the fleet CA (an enrolled device's,
    or a server certificate of another name) and its key."""
    key = ServerKey(backend, suite, private(suite, "rogue_key"), cert(suite, which))
    return ResponderConfig(backend, [key])


def test_certificate_roles_tell_servers_from_devices():
    for suite in (0, 1, 2):
        server = x509.parse_certificate(cert(suite, "server_cert"))
        device = x509.parse_certificate(cert(suite, "device_cert"))
        x509.check_role(server, x509.ROLE_SERVER)
        x509.check_role(device, x509.ROLE_DEVICE)
        raises_(CertificateError, x509.check_role, server, x509.ROLE_DEVICE)
        raises_(CertificateError, x509.check_role, device, x509.ROLE_SERVER)
        swapped = x509.parse_certificate(cert(suite, "device_cert_server_role"))
        raises_(CertificateError, x509.check_role, swapped, x509.ROLE_DEVICE)
        assert server.aki is not None and server.eku == (x509.OID_SERVER_AUTH,)
    ca = x509.parse_certificate(anchor(0))
    raises_(CertificateError, x509.check_role, ca, x509.ROLE_SERVER)


def test_a_refuses_as_c_b_an_enrolled_device_certificate_under_b_s_name():
    backend = backends()[0]
    for suite in (0, 2):
        pair = Pair(backend, suite, cfg=_rogue_config(backend, suite, "rogue_cert_device_role"))
        pair.ini.connect(pair.t, b"reading")
        pair.a_to_b()
        pair.b_to_a()
        refused_in(pair.a_events, CertificateError)
        assert pair.ini.session is None and pair.ini.server is None


def test_a_refuses_a_server_certificate_of_another_name():
    backend = backends()[0]
    pair = Pair(backend, 0, cfg=_rogue_config(backend, 0, "rogue_cert_other_name"))
    pair.ini.connect(pair.t, b"reading")
    pair.a_to_b()
    pair.b_to_a()
    refused_in(pair.a_events, CertificateError)
    assert pair.ini.session is None and pair.ini.server is None


def test_a_has_no_mode_without_a_server_name_pin():
    backend = backends()[0]
    raises_(UsageError, Initiator, backend, [device_key(backend, 0)], anchor(0))


def test_a_drops_a_held_c_b_that_fails_the_role_or_name_check():
    backend = backends()[0]
    held = ServerRef(backend, 0, cert(0, "rogue_cert_device_role"))
    ini = initiator(backend, 0, server=held)
    assert ini.server is None
    ini.connect(now())
    m1 = ini.datagrams_to_send(now())[0]
    assert not m1[0] & codec.M1_CB_KNOWN           # asks for C_B by value


def test_a_replaces_its_c_b_only_with_one_that_passes_every_check():
    backend = backends()[0]
    good = ServerRef(backend, 0, cert(0, "server_cert"))
    # A holds B's C_B and says so; an attacker answers with its own C_B by value
    # (the long m1, short_m1=False, whose head says CB_KNOWN: the attacker clears it)
    pair = Pair(backend, 0, ini=initiator(backend, 0, server=good, short_m1=False),
                cfg=_rogue_config(backend, 0, "rogue_cert_device_role"))
    pair.ini.connect(pair.t)
    m1 = pair.ini.datagrams_to_send(pair.t)[0]
    assert m1[0] & codec.M1_CB_KNOWN
    forged = bytes((m1[0] & ~codec.M1_CB_KNOWN,)) + m1[1:]   # so the rogue sends by value
    pair.wire.append(("A", forged))
    res = pair.responder_for(forged)
    res.receive(forged, pair.t)
    pair.b_drain()
    pair.b_to_a()
    refused_in(pair.a_events, CertificateError)
    assert pair.ini.server is good


def _forge_error(ini, code, body, t):
    m1 = ini.datagrams_to_send(t)[0]
    ref = _th1_of(ini, m1)          # an eavesdropper computes it itself
    return m1, codec.encode_error(code, ref, body)


def _th1_of(ini, m1, t=None):
    """What an eavesdropper computes to name an m1 in an error: H(m1 as sent, up to G_X)
    (PROTOCOL.md §6; TH_1 itself for the long form)."""
    th1 = transcript.th1(ini.backend, m1[:codec.m1_prefix_len(ini.id_len)])   # long form
    return transcript.error_ref(ini.backend, m1, th1, ini.id_len)


def test_a_forged_unsupported_suite_cannot_narrow_a_s_offer():
    backend = backends()[0]
    keys = [device_key(backend, 0), device_key(backend, 2)]
    ref = ServerRef(backend, 0, cert(0, "server_cert"))
    ini = Initiator(backend, keys, anchor(0), server=ref, server_name=SERVER_NAME)
    pair = Pair(backend, 0, ini=ini, cfg=config(backend, (0, 2), accept_early=True))
    ini.connect(pair.t, b"reading", early=True)
    m1 = ini.datagrams_to_send(pair.t)[0]
    forged = codec.encode_error(codec.ERR_UNSUPPORTED_SUITE, _th1_of(ini, m1), b"\x04")
    ini.receive(forged, pair.t)                 # "B only has suite 2"
    for _ in range(4):
        for d in ini.datagrams_to_send(pair.t):
            pair.wire.append(("A", d))
            if codec.message_type(d) == codec.TYPE_M1:
                pair.res = Responder(pair.cfg, pair.t)   # B: one responder per m1
            try:
                pair.res.receive(d, pair.t)
            except AirshakeError:
                pass                            # refused: the error is queued
            pair.b_drain()
        pair.b_to_a()
    assert ini.state == CONFIRMED
    assert ini.session.suite == 0               # both prefer 0: that is where they end
    offered = [d[1] & 0x0F for who, d in pair.wire if who == "A" and d[0] >> 5 == 0]
    assert all(mask == 0x05 for mask in offered)   # every later m1 offers 0 and 2


def test_a_forged_try_later_cannot_silence_a_for_long():
    backend = backends()[0]
    ini = initiator(backend, 0)
    t = now()
    ini.connect(t)
    m1 = ini.datagrams_to_send(t)[0]
    ini.receive(codec.encode_error(codec.ERR_TRY_LATER, _th1_of(ini, m1),
                                   struct.pack(">H", 65535)), t)
    rejected = [e for e in drain(ini) if isinstance(e, ev.ServerRejected)]
    assert rejected[0].retry_after == MAX_UNAUTH_RETRY_S and ini.state == FAILED


def test_a_forged_stale_time_does_not_move_a_confirmed_clock():
    """An attacker who holds the key of a C_B that expired 544 days ago sends a forged
    STALE_TIME with a time from before the expiry: A, whose clock an m2 confirmed, keeps
    its clock, asks for time, and refuses the expired C_B."""
    backend = backends()[0]
    t = now()
    back_then = t - 600 * DAY
    assert x509.parse_certificate(cert(0, "server_cert_expired")).not_after > back_then
    ini = initiator(backend, 0, clock_trusted=True)
    attacker = Pair(backend, 0, ini=ini, t=back_then,
                    cfg=config(backend, (0,)))
    attacker.cfg.keys[0] = ServerKey(backend, 0, private(0, "server_key"),
                                     cert(0, "server_cert_expired"))
    ini.connect(t, b"reading")
    m1 = ini.datagrams_to_send(t)[0]
    ini.receive(codec.encode_error(codec.ERR_STALE_TIME, _th1_of(ini, m1),
                                   struct.pack(">I", back_then)), t)
    assert ini.clock_offset == 0 and ini.clock_trusted
    m1b = ini.datagrams_to_send(t)[0]
    assert m1b[0] & codec.M1_WANT_TIME
    res = attacker.responder_for(m1b)
    res.receive(m1b, back_then)
    attacker.b_drain()
    m2 = res.datagrams_to_send(back_then)[0]
    refused_(CertificateError, ini, ini.receive, m2, t)
    assert ini.session is None and ini.clock_offset == 0


def test_an_unconfirmed_clock_still_learns_from_stale_time():
    backend = backends()[0]
    t = now()
    ini = initiator(backend, 0, clock_trusted=False)
    pair = Pair(backend, 0, ini=ini, t=t)
    ini.connect(t - 1000, b"x")           # A thinks it is 1000 s earlier
    m1 = ini.datagrams_to_send(t - 1000)[0]
    ini.receive(codec.encode_error(codec.ERR_STALE_TIME, _th1_of(ini, m1),
                                   struct.pack(">I", t)), t - 1000)
    assert ini.clock_offset == 1000
    pair.t = t - 1000
    pair.res = None
    for _ in range(2):
        out = ini.datagrams_to_send(pair.t)
        for d in out:
            res = pair.responder_for(d)
            res.receive(d, t)
            pair.b_drain()
        if pair.res.confirm_due:
            pair.res.send(b"")          # B's first record confirms m3
        for d in pair.res.datagrams_to_send(t):
            ini.receive(d, pair.t)
    assert ini.state == CONFIRMED and ini.clock_trusted


def test_a_trusted_clock_that_is_wrong_is_corrected_only_by_the_authenticated_m2():
    """A's clock is trusted but a year behind: B's STALE_TIME only stamps the next m1;
    the m2 brings B's time under MAC_2, and the session is dated by it."""
    backend = backends()[0]
    t = now()
    ini = initiator(backend, 0, clock_trusted=True)
    ini.clock_offset = -365 * DAY
    cfg = config(backend, (0,))
    responders = {}
    ini.connect(t, b"x")
    for _ in range(3):
        for d in ini.datagrams_to_send(t):
            if codec.message_type(d) == codec.TYPE_M1:
                responders[d] = Responder(cfg, t)
                res = responders[d]
            res.receive(d, t)                        # the first: STALE_TIME queued
            e = res.next_event()
            if isinstance(e, ev.NeedCredential):
                res.provide_credential(cert(0, "device_cert"), t)
        if res.confirm_due:
            res.send(b"")                            # B's first record confirms m3
        for d in res.datagrams_to_send(t):
            ini.receive(d, t)
    assert ini.state == CONFIRMED and ini.clock_offset == 0
    assert abs(ini.session.created - t) <= 1
