"""Hypothesis fuzzing of every decoder and both roles' receive paths (CPython side).
The invariants: a decoder only ever yields a value or raises an AirshakeError; a role's
receive() never raises and reports what it refuses as a typed event (fuzzcorpus.
check_role); tampered bytes never establish a session. `make fuzz` runs the "fuzz"
profile (many more examples); `make test` runs the default one."""
import os

from hypothesis import HealthCheck, given, settings, strategies as st

from testkit import hs_support
from airshake.crypto import load_backend
from airshake.errors import AirshakeError
from airshake.initiator import FAILED, WAIT_M2
from airshake.responder import Responder
from airshake import events as ev
from fuzzcorpus import check_role, decoder_targets

settings.register_profile("default", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=20000, deadline=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

BACKEND = load_backend("pyca")
_pair = hs_support.Pair(BACKEND, 0)
_pair.run(b"seed")
VALID = [d for _, d in _pair.wire]
TARGETS = decoder_targets()


@st.composite
def mutated(draw):
    """A valid message with bytes replaced, inserted or cut — or arbitrary bytes."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=600))
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        kind = draw(st.integers(0, 2))
        if kind == 0:
            data[i] = draw(st.integers(0, 255))
        elif kind == 1:
            data = data[:i]
        else:
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


def only_typed_errors(fn, data):
    try:
        fn(data)
    except AirshakeError:
        pass


@given(name=st.sampled_from(sorted(TARGETS)), data=mutated())
def test_decoders_yield_values_or_typed_errors(name, data):
    only_typed_errors(TARGETS[name], data)


@given(data=mutated())
@settings(suppress_health_check=list(HealthCheck))
def test_initiator_waiting_for_m2_never_accepts_a_tampered_one(data):
    pair = hs_support.Pair(BACKEND, 0)
    pair.ini.connect(pair.t)
    pair.a_to_b()
    m2 = pair.res.datagrams_to_send(pair.t)[0]
    if data == m2:
        return
    check_role(pair.ini, data, pair.t)
    # a forged error message with a matching reference may end the attempt (FAILED)
    assert pair.ini.session is None and pair.ini.state in (WAIT_M2, FAILED)


@given(data=mutated())
def test_responder_never_raises_and_reports_typed_refusals(data):
    cfg = hs_support.config(BACKEND, (0,))
    res = Responder(cfg, hs_support.now())
    res.receive(data, hs_support.now())
    event = res.next_event()
    if isinstance(event, ev.NeedCredential):
        res.provide_credential(hs_support.cert(0, "device_cert"), hs_support.now())
        event = res.next_event()
    if isinstance(event, (ev.Dropped, ev.Refused)):
        assert isinstance(event.error, AirshakeError), event
    assert res.session is None
