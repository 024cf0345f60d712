# Handshake vectors: the core, run with the fixed randomness of
# tests/vectors/handshake/vectors.json, must reproduce every message byte and every
# intermediate value that make_vectors.py computed independently from docs/PROTOCOL.md.
from support import backends, load_json, unhex
from hs_support import Pair, config, initiator
from airshake import schedule, transcript, suites
from airshake.keys import ServerRef
from hs_support import cert


class FixedRandom:
    """A backend whose random() returns the given values in order (test-only)."""

    def __init__(self, inner, values):
        self._inner = inner
        self._values = list(values)
        self.name = inner.name + "+fixed"

    def random(self, n):
        v = self._values.pop(0)
        assert len(v) == n
        return v

    def __getattr__(self, name):
        return getattr(self._inner, name)


def _run_case(backend, v):
    suite = v["suite"]
    fixed = FixedRandom(backend, [unhex(v["e_a"]), unhex(v["e_b"])])
    ref = ServerRef(backend, suite, cert(suite, "server_cert")) if v["by_reference"] else None
    ini = initiator(fixed, suite, server=ref)
    ini.clock_offset = v["clock_skew"]
    ini.clock_trusted = not v["want_time"]
    pair = Pair(fixed, suite, ini=ini, t=v["now"],
                cfg=config(fixed, accept_early=True) if v["early"] else None)
    pair.run(unhex(v["data"]), v["early"])
    wire = [d for who, d in pair.wire]
    assert wire[0] == unhex(v["m1"]), v["name"] + " m1"
    assert wire[1] == unhex(v["m2"]), v["name"] + " m2"
    assert wire[2] == unhex(v["m3"]), v["name"] + " m3"
    a = pair.ini.session
    assert a.sid == unhex(v["sid"])
    assert a._send_secret == unhex(v["secret_ab"]) and a._recv_secret == unhex(v["secret_ba"])
    assert a.seal(b"after") == unhex(v["record_ab_0"])
    return pair


def _check_intermediates(backend, v):
    """Recompute the chain with the core's schedule functions from the vector's inputs."""
    curve = suites.ephemeral_curve(v["suite"])
    ee = suites.dh(backend, curve, unhex(v["e_a"]), unhex(v["g_y"]))
    assert ee == unhex(v["ee"])
    assert transcript.th1(backend, unhex(v["m1"])[:46]) == unhex(v["th1"])
    prk2e = schedule.prk_2e(backend, unhex(v["th2"]), ee)
    assert prk2e == unhex(v["prk_2e"])
    prk3e2m = schedule.prk_3e2m(backend, prk2e, unhex(v["es"]))
    assert prk3e2m == unhex(v["prk_3e2m"])
    assert schedule.mac_2(backend, prk3e2m, unhex(v["th2"]), 8) == unhex(v["mac_2"])
    assert schedule.chain(backend, unhex(v["th2"]), unhex(v["mac_2"])) == unhex(v["th3"])
    prk4e3m = schedule.prk_4e3m(backend, prk3e2m, unhex(v["se"]))
    assert prk4e3m == unhex(v["prk_4e3m"])
    assert schedule.m3_keys(backend, prk4e3m, unhex(v["th3"])) == (unhex(v["k_3"]),
                                                                   unhex(v["iv_3"]))
    assert schedule.chain(backend, unhex(v["th3"]), unhex(v["m3"])) == unhex(v["th4"])
    assert schedule.prk_out(backend, prk4e3m, unhex(v["th4"])) == unhex(v["prk_out"])
    if v["early"]:
        k0, iv0 = schedule.early_keys(backend, unhex(v["th1"]), unhex(v["es"]), unhex(v["ss"]))
        assert (k0, iv0) == (unhex(v["k_0"]), unhex(v["iv_0"]))


def test_core_reproduces_every_vector_byte_for_byte():
    for backend in backends():
        for v in load_json("handshake/vectors.json")["cases"]:
            _run_case(backend, v)


def test_core_schedule_reproduces_every_intermediate_value():
    for backend in backends():
        for v in load_json("handshake/vectors.json")["cases"]:
            _check_intermediates(backend, v)
