# Fuzzing with a deterministic corpus (tests/portable/fuzzcorpus.py), the same inputs on
# CPython and on the MicroPython binary: every decoder only ever returns a value or raises
# an AirshakeError; both roles' receive() never raise and report what they refuse as a
# typed event; and tampered bytes never establish a session. FUZZ_N inputs per target
# (environment; more under `make fuzz`).
import os
from testkit.support import backends, IS_MICROPYTHON
from testkit.hs_support import Pair, initiator, config, cert, now
from fuzzcorpus import corpus, check, check_role, decoder_targets, import_target
from airshake import c509_encoder, codec, events as ev, fragments
from airshake.keys import ServerRef
from airshake.responder import Responder, ReplayCache

FUZZ_N = int(os.getenv("FUZZ_N") or (1000 if IS_MICROPYTHON else 2000))
COUNTS = {}


def _seeds():
    backend = backends()[0]
    ref = ServerRef(backend, 0, cert(0, "server_cert"))
    by_ref = Pair(backend, 0, ini=initiator(backend, 0, server=ref))
    by_ref.run(b"reading")
    by_value = Pair(backend, 0)
    by_value.run()
    m1, m2, m3, rec = [d for who, d in by_ref.wire[:4]]
    m2v = by_value.wire[1][1]
    err = codec.encode_error(codec.ERR_STALE_TIME, b"ab", b"\x00\x00\x00\x01")
    frags = fragments.split(m2v, 51)
    c509s = [c509_encoder.encode(cert(suite, "server_cert")) for suite in (0, 1, 2)]
    return {"m1": m1, "m2": m2, "m2v": m2v, "m3": m3, "record": rec, "error": err,
            "frags": frags, "cert": cert(0, "server_cert"), "c509": c509s, "pair": by_ref,
            "session": by_ref.ini.session.export()}


_SEEDS = None


def seeds():
    global _SEEDS
    if _SEEDS is None:
        _SEEDS = _seeds()
    return _SEEDS


def _run(name, fn, seed_list, n=None, seed=1):
    accepted = 0
    for data in corpus(seed_list, n or FUZZ_N, seed):
        if check(fn, data):
            accepted += 1
    COUNTS[name] = COUNTS.get(name, 0) + (n or FUZZ_N)
    report()
    return accepted


def report():
    """Print the inputs fed so far per target (the last line printed is the total)."""
    print("fuzzed inputs per target: " + ", ".join(
        "%s=%d" % (k, COUNTS[k]) for k in sorted(COUNTS)))


def test_decoders_raise_only_typed_errors():
    s = seeds()
    every = [s["m1"], s["m2"], s["m2v"], s["m3"], s["record"], s["error"], s["cert"]] \
        + s["frags"] + s["c509"]
    for name, fn in decoder_targets().items():
        _run("decode_" + name, fn, every, seed=len(name))


def test_session_import_refuses_corrupt_exports():
    backend = backends()[0]
    blob = seeds()["session"]
    accepted = 0
    for data in corpus([blob], FUZZ_N, 7):
        if data != blob and check(import_target(backend), data):
            accepted += 1
    COUNTS["session_import"] = FUZZ_N
    report()
    assert accepted == 0


def test_responder_receive_path_raises_only_typed_errors():
    backend = backends()[0]
    s = seeds()
    cfg = config(backend, (0,))
    t = now()

    def fresh(data):
        cfg.replay = ReplayCache()
        res = Responder(cfg, t)
        res.receive(data, t)
        e = res.next_event()
        if isinstance(e, ev.NeedCredential) and e.id_a == s["pair"].ini.keys[0].id_a:
            res.provide_credential(cert(0, "device_cert"), t)
            e = res.next_event()
        if isinstance(e, (ev.Dropped, ev.Refused)):
            raise e.error             # check() counts it refused: it must be typed
    _run("responder_m1", fresh, [s["m1"]], n=FUZZ_N // 3)
    # m3 against a responder waiting for it: tampered m3 never completes
    pair = Pair(backend, 0)
    pair.ini.connect(pair.t)
    pair.a_to_b()
    pair.b_to_a()
    m3 = pair.ini.datagrams_to_send(pair.t)[0]
    for data in corpus([m3], FUZZ_N, 3):
        if data != m3 and check_role(pair.res, data, pair.t):
            assert pair.res.session is None, "tampered m3 established a session"
    COUNTS["responder_m3"] = FUZZ_N
    report()
    pair.res.receive(m3, pair.t)
    assert pair.res.session is not None


def test_initiator_receive_path_never_accepts_tampered_m2_or_records():
    backend = backends()[0]
    pair = Pair(backend, 0)
    pair.ini.connect(pair.t)
    pair.a_to_b()
    m2 = pair.res.datagrams_to_send(pair.t)[0]
    bad = 0
    n = FUZZ_N // 3 if IS_MICROPYTHON else FUZZ_N
    for data in corpus([m2, seeds()["error"]], n, 11):
        if data != m2 and check_role(pair.ini, data, pair.t):
            bad += pair.ini.session is not None
    COUNTS["initiator_m2"] = n
    report()
    assert bad == 0 and pair.ini.session is None
    pair.ini.receive(m2, pair.t)
    pair.a_to_b()
    pair.res.send(b"")                  # B's first record confirms m3
    ack = pair.res.datagrams_to_send(pair.t)[0]
    from airshake.initiator import WAIT_ACK
    for data in corpus([ack], FUZZ_N, 13):
        if data != ack:
            check_role(pair.ini, data, pair.t)
            assert pair.ini.state == WAIT_ACK, "a tampered record confirmed the session"
    pair.ini.receive(ack, pair.t)
    assert pair.ini.state != WAIT_ACK
    COUNTS["initiator_record"] = FUZZ_N
    report()


