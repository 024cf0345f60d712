# bench.air: bytes on the air, measured by running every protocol's real implementation
# in this process, then each exchange's frames, time on air and duty-cycle-bound wall time
# on the project's link model (bench.linkcost over airshake_tools.linkemu), under each
# duty-cycle policy (links: per-frame off-time; links_by_policy: all of them).
#   airshake  the core (firmware/lib/airshake), both roles, pyca backend, with the
#             fixtures of tests/vectors/handshake (the C_B of PROTOCOL.md §9), through
#             testkit/hs_support.Pair; each case checks that both sides hold the
#             same session (same SID, a record each way) and that data arrived once.
#   others    host_server/competitors: EDHOC (lakers-python), TLS 1.3 (CPython ssl), prior art.
# No application data anywhere unless a case says so (then it is measured twice, empty
# and with a 12-byte reading, to show that the overhead does not depend on the data).
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.common import BenchFailure, check

from testkit import hs_support
from airshake import events as ev
from airshake.crypto import load_backend
from airshake.initiator import CONFIRMED, Initiator
from airshake.keys import DeviceKey, ServerRef
from bench.linkcost import all_links, by_policy
from host_server.competitors import edhoc, priorart, tls13

READING = b"reading=21.5"
UP, DOWN = "up", "down"


def server_ref(backend: Any, suite: int) -> Any:
    return ServerRef.verified(backend, suite, hs_support.cert(suite, "server_cert"),
                              hs_support.anchor(suite), hs_support.now(),
                              hs_support.SERVER_NAME)


def _pair(backend: Any, suite: int, by_ref: bool, early: bool, id_len: int = 8) -> Any:
    ref = server_ref(backend, suite) if by_ref else None
    # id_len: a deployment setting, the same at the CS, B and every device (PROTOCOL.md §2)
    key = DeviceKey(backend, suite, hs_support.private(suite, "device_key"), id_len)
    ini = Initiator(backend, [key], hs_support.anchor(suite), server=ref, id_len=id_len,
                    server_name=hs_support.SERVER_NAME)
    # 0-RTT is off in B unless the operator turns it on (PROTOCOL.md §8)
    cfg = hs_support.config(backend, (suite,), accept_early=early, id_len=id_len)
    return hs_support.Pair(backend, suite, ini=ini, cfg=cfg)


def _check_session(pair: Any, what: str) -> None:
    a, b = pair.ini.session, pair.res.session if pair.res else None
    check(pair.ini.state == CONFIRMED, "%s: A did not reach CONFIRMED" % what)
    if a is None or b is None or a.sid != b.sid:
        raise BenchFailure("%s: no common session" % what)
    check(b.open(a.seal(b"ping"))[1] == b"ping", "%s: A->B record failed" % what)
    check(a.open(b.seal(b"pong"))[1] == b"pong", "%s: B->A record failed" % what)


def _airshake_handshake(backend: Any, suite: int, by_ref: bool, early: bool,
                        data: bytes, id_len: int = 8) -> tuple[list[int], int, Any]:
    """One checked handshake; (sizes of m1, m2, m3), size of B's first record, pair."""
    what = "airshake suite %d %s%s, %d-byte ID_A" % (
        suite, "by reference" if by_ref else "by value", " 0-RTT" if early else "", id_len)
    pair = _pair(backend, suite, by_ref, early, id_len)
    sizes = pair.run(data, early=early)
    _check_session(pair, what)
    check(len(pair.wire) == 4 and [w for w, _ in pair.wire] == ["A", "B", "A", "B"],
          "%s: expected m1, m2, m3 and B's first record, got %d datagrams"
          % (what, len(pair.wire)))
    if early:
        got = [e.data for e in pair.b_events if isinstance(e, ev.EarlyData)]
        done = [e for e in pair.a_events if isinstance(e, ev.HandshakeComplete)]
        check(got == [data] and done and done[0].early_accepted,
              "%s: the 0-RTT data was not accepted on arrival" % what)
    else:
        got = [e.data for e in pair.b_events if isinstance(e, ev.DataReceived)]
        expected = [[data]] if data else [[], [b""]]  # empty m3 data: an event or none
        check(got in expected, "%s: m3 data not delivered once" % what)
    return sizes, len(pair.wire[3][1]), pair


def airshake_case(backend: Any, suite: int, by_ref: bool, early: bool = False,
                  id_len: int = 8) -> dict:
    sizes, confirm, pair = _airshake_handshake(backend, suite, by_ref, early, b"", id_len)
    check(len(pair.ini.keys[suite].id_a) == id_len, "ID_A is not %d bytes" % id_len)
    out: dict[str, Any] = {
        "protocol": "airshake", "messages": sizes, "directions": [UP, DOWN, UP],
        "completed": True, "suite": suite, "c_b": "reference" if by_ref else "value",
        "id_len": id_len,
        "c_b_der_bytes": len(hs_support.cert(suite, "server_cert")),
        "b_first_record_bytes": confirm,
        "check": "both roles in-process: same SID, a record each way, m3/0-RTT data "
                 "delivered once",
    }
    if early:
        with_data, _, _ = _airshake_handshake(backend, suite, by_ref, True, READING, id_len)
        check(with_data[0] - len(READING) == sizes[0], "0-RTT overhead depends on the data")
        out["m1_overhead_bytes"] = sizes[0]
        out["data_after_message"] = 1
    else:
        with_data, _, _ = _airshake_handshake(backend, suite, by_ref, False, READING, id_len)
        check(with_data[2] - len(READING) == sizes[2], "m3 overhead depends on the data")
    return out


def session_record_case(backend: Any) -> dict:
    """The one-record uplink of a saved session (after deep sleep): export, import, seal."""
    from airshake.session import Session
    _, _, pair = _airshake_handshake(backend, 0, True, False, b"")
    a = Session.from_bytes(backend, pair.ini.session.export())
    empty = a.seal(b"")
    full = a.seal(READING)
    b = pair.res.session
    check(b.open(empty)[1] == b"" and b.open(full)[1] == READING,
          "session record: B did not open the records")
    check(len(full) - len(READING) == len(empty), "session record overhead depends on data")
    return {"protocol": "airshake", "messages": [len(empty)], "directions": [UP],
            "completed": True, "overhead_bytes": len(empty),
            "check": "a record sealed by an imported session export opens at B"}


def edhoc_case(variant: str) -> dict:
    initiator, responder = edhoc.new_parties()
    result = edhoc.run_handshake(initiator, responder, variant)  # asserts PRK_out
    return {"protocol": "EDHOC method 3, suite 2 (lakers-python)",
            "messages": [len(m) for m in result["messages"]], "directions": [UP, DOWN, UP],
            "completed": True, "id_cred": variant,
            "check": "lakers: both sides derived the same PRK_out and exporter output"}


def tls_case(profile: str) -> dict:
    result = tls13.tls13_handshake(profile)  # asserts: verified peers, data both ways
    return {"protocol": "TLS 1.3 mutual (CPython ssl)", "messages": result["flights"],
            "directions": [UP, DOWN, UP], "completed": True, "certs": profile,
            "cipher": result["cipher"], "client_cert_der_bytes": result["client_cert_der"],
            "server_cert_der_bytes": result["server_cert_der"],
            "records": result["records"],
            "check": "OpenSSL: both ends verified the peer certificate, data went both ways"}


def priorart_case() -> dict:
    result = priorart.run_prior_art()  # raises on any failed check
    return {"protocol": "WO 99/25093 Fig. 1 prior art (model)",
            "messages": [len(m) for m in result["messages"]],
            "directions": [UP, DOWN, UP, DOWN], "completed": True,
            "c_a_der_bytes": result["c_a_der"], "c_b_der_bytes": result["c_b_der"],
            "check": "certificates, SIG_B, MAC_A and MAC_B verified"}


def cases() -> dict[str, Callable[[], dict]]:
    backend = load_backend("pyca")
    return {
        "airshake-s0-ref": lambda: airshake_case(backend, 0, True),
        # the same with 5-byte IDs (`--id-len 5`: the CS refuses a colliding enrolment)
        "airshake-s0-ref-id5": lambda: airshake_case(backend, 0, True, id_len=5),
        "airshake-s0-value": lambda: airshake_case(backend, 0, False),
        "airshake-s2-ref": lambda: airshake_case(backend, 2, True),
        "airshake-s2-value": lambda: airshake_case(backend, 2, False),
        "airshake-s0-0rtt": lambda: airshake_case(backend, 0, True, early=True),
        "airshake-session-record": lambda: session_record_case(backend),
        "edhoc-m3-kid": lambda: edhoc_case("kid"),
        "edhoc-m3-value": lambda: edhoc_case("value"),
        "tls13-mutual-minimal": lambda: tls_case("minimal"),
        "tls13-mutual-typical": lambda: tls_case("typical"),
        "priorart-fig1": priorart_case,
    }


def measure() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name, fn in cases().items():
        try:
            case = fn()
        except BenchFailure:
            raise
        except Exception as e:  # a competitor's own check failed
            raise BenchFailure("air %s: %s: %s" % (name, type(e).__name__, e))
        exchange = list(zip(case["directions"], case["messages"]))
        case["total"] = sum(case["messages"])
        case["links"] = all_links(exchange)
        # the same exchange under every duty-cycle policy (per-frame repeats "links")
        case["links_by_policy"] = by_policy(exchange)
        case["sf12_wall_s"] = case["links"]["lora-sf12/1sb"]["wall_s"]
        case["sf12_wall_s_by_policy"] = {
            policy: links["lora-sf12/1sb"]["wall_s"]
            for policy, links in case["links_by_policy"].items()}
        if "b_first_record_bytes" in case:
            # A retransmits m3 until B's first record arrives: the full exchange
            confirmed = exchange + [(DOWN, case["b_first_record_bytes"])]
            case["total_with_confirmation"] = case["total"] + case["b_first_record_bytes"]
            case["links_with_confirmation"] = all_links(confirmed)
        out[name] = case
    return out
