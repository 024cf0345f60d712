# The competitors of the benchmark, run for real: EDHOC (lakers-python), TLS 1.3 (CPython ssl)
# and the patent's prior-art flow. Checks that every handshake completes and is verified, and
# the size relations the benchmark relies on; never timings.
import os
import ssl
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import lakers  # noqa: E402

from host_server.competitors.edhoc import (  # noqa: E402
    edhoc_handshakes_per_second, edhoc_messages)
from host_server.competitors.priorart import prior_art_messages  # noqa: E402
from host_server.competitors.tls13 import (  # noqa: E402
    tls13_handshakes_per_second, tls13_messages)
from host_server.competitors import edhoc, priorart, tls13  # noqa: E402

# RFC 9529 §3 (trace 2, method 3, suite 2): CRED_R and the coordinates of its key.
RFC9529_CRED_R = bytes.fromhex(
    "a2026b6578616d706c652e65647508a101a501020241322001215820"
    "bbc34960526ea4d32e940cad2a234148ddc21791a12afbcbac93622046dd44f0"
    "225820"
    "4519e257236b2a0ce2023f0931f1f386ca7afda64fcde0108c224c51eabf6072")


def test_ccs_builder_reproduces_rfc9529_trace2_cred_r():
    x, y = RFC9529_CRED_R[28:60], RFC9529_CRED_R[63:95]
    assert edhoc.make_ccs("example.edu", b"\x32", x, y) == RFC9529_CRED_R


def test_edhoc_kid_handshake_completes_in_three_messages_of_rfc9529_sizes():
    result = edhoc.run_handshake(*edhoc.new_parties(), variant="kid")
    m1, m2, m3 = result["messages"]
    assert result["suite"] == 2 and m1[:2] == b"\x03\x02"  # METHOD 3, SUITES_I 2
    assert len(result["prk_out"]) == 32 and len(result["exporter"]) == 16
    assert result["id_cred_r"] == b"\xa1\x04\x41\x32"  # {4: h'32'}, sent as 1 byte
    # 1-byte C_I, C_R and kids give the sizes of RFC 9529 trace 2: 37 + 45 + 19 = 101
    assert edhoc_messages("kid") == [37, 45, 19]


def test_edhoc_by_value_is_larger_than_by_kid():
    kid, value = edhoc_messages("kid"), edhoc_messages("value")
    assert len(value) == 3 and all(n > 0 for n in value)
    assert value[0] == kid[0] and value[1] > kid[1] and value[2] > kid[2]
    assert sum(value) > sum(kid)


def test_edhoc_rejects_a_wrong_initiator_key_under_the_right_kid():
    initiator, responder = edhoc.new_parties()
    impostor = edhoc.Party(edhoc.SUBJECT_I, edhoc.KID_I)  # same kid, another key
    ini = lakers.EdhocInitiator()
    res = lakers.EdhocResponder(responder.private, responder.cred)
    res.process_message_1(ini.prepare_message_1(c_i=edhoc.C_I))
    m2 = res.prepare_message_2(lakers.CredentialTransfer.ByReference, edhoc.C_R)
    _, id_cred_r, _ = ini.parse_message_2(m2)
    ini.verify_message_2(impostor.private, impostor.cred,
                         lakers.credential_check_or_fetch(id_cred_r, responder.cred))
    m3, _ = ini.prepare_message_3(lakers.CredentialTransfer.ByReference)
    id_cred_i, _ = res.parse_message_3(m3)
    with pytest.raises(ValueError):
        res.verify_message_3(lakers.credential_check_or_fetch(id_cred_i, initiator.cred))


@pytest.mark.parametrize("certs", ["minimal", "typical"])
def test_tls13_mutual_handshake_has_three_flights_of_records(certs):
    result = tls13.tls13_handshake(certs)  # asserts TLS 1.3 and both peers' certificates
    assert len(result["flights"]) == 3 and all(n > 0 for n in result["flights"])
    assert result["post_handshake"] == 0  # tickets off
    for flight, records in zip(result["flights"], result["records"]):
        assert sum(n for _, n in records) == flight
    assert result["records"][0] == [("handshake", result["flights"][0])]  # ClientHello
    # each Certificate message carries the leaf alone, not the CA
    assert result["flights"][1] > result["server_cert_der"]
    assert result["flights"][2] > result["client_cert_der"]
    assert result["flights"][2] < result["client_cert_der"] + result["client_ca_der"]


def test_tls13_minimal_certificates_are_smaller_than_typical():
    minimal, typical = tls13_messages("minimal"), tls13_messages("typical")
    assert sum(minimal) < sum(typical)
    assert minimal[1] < typical[1] and minimal[2] < typical[2]
    assert sum(tls13_messages("minimal", middlebox_compat=False)) < sum(minimal)


def test_tls13_tickets_are_counted_apart_from_the_flights():
    with_tickets = tls13.tls13_handshake("minimal", tickets=True)
    assert with_tickets["flights"] == tls13_messages("minimal")
    assert with_tickets["post_handshake"] > 0


def test_tls13_server_refuses_a_client_certificate_from_another_ca():
    mat = tls13.material("minimal")
    stranger = tls13.material("minimal-p256")
    _, server_ctx = tls13.contexts(mat=mat)
    client_ctx, _ = tls13.contexts(mat=dict(mat, client_cert=stranger["client_cert"],
                                            client_key=stranger["client_key"]))
    with pytest.raises(ssl.SSLError):
        tls13.handshake_in_memory(client_ctx, server_ctx, mat["host"])


def test_prior_art_flow_has_four_messages_with_c_a_on_the_air():
    result = priorart.run_prior_art()  # verifies certificates, SIG_B, MAC_A and MAC_B
    sizes = [len(m) for m in result["messages"]]
    assert len(sizes) == 4 and sizes == prior_art_messages()
    assert 240 <= result["c_a_der"] <= 300
    assert sizes[2] == 43 + result["c_a_der"] and sizes[1] == 131 + result["c_b_der"]


def test_handshake_rates_are_positive_over_a_short_run():
    assert edhoc_handshakes_per_second(0.2) > 0
    assert edhoc_handshakes_per_second(0.2, variant="value", side="responder") > 0
    assert tls13_handshakes_per_second(0.2, "minimal", "memory") > 0
    assert tls13_handshakes_per_second(0.2, "minimal", "memory", side="server") > 0


def test_tls13_loopback_server_process_completes_handshakes():
    run = tls13.loopback_run(0.2, "minimal")  # raises on any client or server failure
    assert run["handshakes"] > 0 and run["errors"] == 0
    assert run["per_server_cpu_second"] > 0
