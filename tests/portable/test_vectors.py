# Handshake vectors: the core, run with the fixed randomness of
# tests/vectors/handshake/vectors.json, must reproduce every message byte and every
# intermediate value that make_vectors.py computed independently from docs/PROTOCOL.md;
# and the core's HKDF against the Wycheproof HKDF-SHA-256 file (RFC 5869's cases in it).
from testkit.support import backends, load_json, unhex, wycheproof_cases, raises_
from testkit.hs_support import Pair, config, initiator, private
from airshake import schedule, transcript, suites
from airshake.crypto.contract import RsaPublic
from airshake.keys import ServerRef
from testkit.hs_support import cert


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


def _randomness(v):
    """Every value the handshake draws, in order: e_a, e_b, then suite 1's PMS, OAEP seed
    and PSS salt."""
    names = ["e_a", "e_b"] + (["pms", "oaep_seed", "pss_salt"] if v["suite"] == 1 else [])
    return [unhex(v[n]) for n in names]


def _fixed(backend, v):
    """backend with the vector's randomness. The pure backend draws the OAEP seed and PSS
    salt from random() too, so a fresh instance of it replays all of them; pyca's RSA
    draws its own (OpenSSL), so there suite 1 gets e_a, e_b and the PMS only."""
    values = _randomness(v)
    if v["suite"] == 1 and backend.name == "pure":
        fresh = type(backend)()
        fresh.use_random(FixedRandom(backend, values).random)
        return fresh, True
    return FixedRandom(backend, values[:3]), v["suite"] != 1


def _run_case(backend, v):
    suite = v["suite"]
    fixed, exact = _fixed(backend, v)
    if not exact:
        return _run_rsa_randomized(fixed, v)
    ref = ServerRef(backend, suite, cert(suite, "server_cert")) if v["by_reference"] else None
    ini = initiator(fixed, suite, server=ref, short_m1=v["short_m1"])
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
    _check_session(a, v)
    return pair


def _rsa_public(which):
    key = private(1, which)
    return RsaPublic(key.n, key.e)


def _run_rsa_randomized(fixed, v):
    """Suite 1 on a backend whose RSA draws its own randomness: m1 and m2 up to C_PMS are
    the vector's; C_PMS decrypts to the vector's PMS; SIG_2 verifies over the TH_2 of the
    C_PMS actually sent; the handshake completes. Then A alone, given the vector's m2,
    must send the vector's m3 and derive its session byte for byte."""
    backend = fixed._inner
    ref = ServerRef(backend, 1, cert(1, "server_cert")) if v["by_reference"] else None
    ini = initiator(fixed, 1, server=ref, short_m1=False)
    ini.clock_trusted = not v["want_time"]
    pair = Pair(fixed, 1, ini=ini, t=v["now"])
    pair.run(unhex(v["data"]))
    wire = [d for who, d in pair.wire]
    m2, want = wire[1], unhex(v["m2"])
    assert wire[0] == unhex(v["m1"]) and len(m2) == len(want), v["name"]
    k = _rsa_public("device_key").size()
    fixed_part = len(want) - 2 * k
    assert m2[:fixed_part] == want[:fixed_part], v["name"] + " m2 before C_PMS"
    c_pms, sig2 = m2[fixed_part:fixed_part + k], m2[fixed_part + k:]
    assert c_pms != unhex(v["c_pms"])                     # randomized: drawn by OpenSSL
    assert backend.rsa_oaep_decrypt(private(1, "device_key"), c_pms) == unhex(v["pms"])
    th2 = transcript.th2(backend, unhex(v["m1_hash"]), want[:1], unhex(v["g_y"]),
                         want[33:33 + (4 if v["want_time"] else 0)], unhex(v["c_b_hash"]),
                         unhex(v["spki_a_hash"]), c_pms)
    assert backend.rsa_pss_verify(_rsa_public("server_key"), transcript.SIG2_CONTEXT + th2,
                                  sig2)
    assert pair.ini.session is not None and pair.res.session.sid == pair.ini.session.sid
    alone = initiator(FixedRandom(backend, [unhex(v["e_a"])]), 1, server=ref, short_m1=False)
    alone.clock_trusted = not v["want_time"]
    alone.connect(v["now"], unhex(v["data"]))
    assert alone.datagrams_to_send(v["now"]) == [unhex(v["m1"])]
    alone.receive(want, v["now"])
    assert alone.datagrams_to_send(v["now"]) == [unhex(v["m3"])], v["name"] + " m3"
    _check_session(alone.session, v)
    return pair


def _check_session(a, v):
    assert a.sid == unhex(v["sid"])
    assert a._send_secret == unhex(v["secret_ab"]) and a._recv_secret == unhex(v["secret_ba"])
    assert a.seal(b"after") == unhex(v["record_ab_0"])


def _check_rsa_intermediates(backend, v):
    """Suite 1 (PROTOCOL.md §4.2): the core's transcript and schedule from the vector's
    inputs; its RSA decrypts C_PMS and verifies SIG_2, and the pure RSA code, given the
    vector's seed and salt, produces C_PMS and SIG_2 byte for byte (RFC 8017 encodings)."""
    ee = suites.dh(backend, suites.ephemeral_curve(1), unhex(v["e_a"]), unhex(v["g_y"]))
    assert ee == unhex(v["ee"])
    assert transcript.th1(backend, unhex(v["m1"])) == unhex(v["th1"])
    m2 = unhex(v["m2"])
    th2 = transcript.th2(backend, unhex(v["m1_hash"]), m2[:1], unhex(v["g_y"]),
                         m2[33:33 + (4 if v["want_time"] else 0)], unhex(v["c_b_hash"]),
                         unhex(v["spki_a_hash"]), unhex(v["c_pms"]))
    assert th2 == unhex(v["th2"])
    device, server = private(1, "device_key"), private(1, "server_key")
    msg = transcript.SIG2_CONTEXT + th2
    assert backend.rsa_oaep_decrypt(device, unhex(v["c_pms"])) == unhex(v["pms"])
    assert backend.rsa_pss_verify(_rsa_public("server_key"), msg, unhex(v["sig_2"]))
    if backend.name == "pure":
        from airshake.crypto import rsa
        assert rsa.oaep_encrypt(_rsa_public("device_key"), unhex(v["pms"]),
                                unhex(v["oaep_seed"])) == unhex(v["c_pms"])
        assert rsa.pss_sign(server, msg, unhex(v["pss_salt"])) == unhex(v["sig_2"])
    assert schedule.prk_2e(backend, th2, ee) == unhex(v["prk_2e"])
    keys = transcript.after_sig2(backend, th2, ee, unhex(v["sig_2"]), unhex(v["pms"]))
    assert keys.th3 == unhex(v["th3"])
    prk4e3m = schedule.prk_4e3m(backend, unhex(v["prk_2e"]), unhex(v["pms"]))
    assert prk4e3m == unhex(v["prk_4e3m"])
    assert schedule.m3_keys(backend, prk4e3m, unhex(v["th3"])) == (unhex(v["k_3"]),
                                                                   unhex(v["iv_3"]))
    assert schedule.chain(backend, unhex(v["th3"]), unhex(v["m3"])) == unhex(v["th4"])
    assert schedule.prk_out(backend, prk4e3m, unhex(v["th4"])) == unhex(v["prk_out"])


def _check_intermediates(backend, v):
    """Recompute the chain with the core's schedule functions from the vector's inputs."""
    if v["suite"] == 1:
        return _check_rsa_intermediates(backend, v)
    curve = suites.ephemeral_curve(v["suite"])
    ee = suites.dh(backend, curve, unhex(v["e_a"]), unhex(v["g_y"]))
    assert ee == unhex(v["ee"])
    assert transcript.th1(backend, unhex(v["m1_long"])[:46]) == unhex(v["th1"])
    assert backend.sha256(unhex(v["m1_long"])) == unhex(v["m1_hash"])
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


def test_every_suite_has_handshake_vectors():
    cases = load_json("handshake/vectors.json")["cases"]
    assert sorted(set(v["suite"] for v in cases)) == [0, 1, 2]


def test_hkdf_matches_wycheproof_and_rfc5869():
    """Extract and Expand (the core's HKDF, PROTOCOL.md §4.2) on every Wycheproof
    HKDF-SHA-256 case; the three SHA-256 cases of RFC 5869 Appendix A are among them.
    Outputs over 255 * 32 bytes must be refused."""
    for backend in backends():
        rfc = valid = refused = 0
        for group, case in wycheproof_cases("hkdf_sha256_test.json"):
            ikm, salt, info = unhex(case["ikm"]), unhex(case["salt"]), unhex(case["info"])
            if case["result"] == "invalid":
                raises_(ValueError, schedule.expand, backend, b"\x00" * 32, info,
                        case["size"])
                refused += 1
                continue
            prk = schedule.extract(backend, salt, ikm)
            assert schedule.expand(backend, prk, info, case["size"]) == unhex(case["okm"]), \
                case["tcId"]
            valid += 1
            rfc += case["comment"] == "RFC 5869"
        assert rfc == 3 and refused >= 1 and valid + refused == 86, (rfc, valid, refused)
