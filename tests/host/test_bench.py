# tests/host/test_bench.py: `python -m bench.run --quick` end to end: it must finish,
# write latest.json with the keys the benchmark issue lists (sane types, every
# measurement recording that its handshakes completed), latest.md with the goals, and
# the PNG plots, and the 32-bit twin's rows where the twin is built. Never asserts a
# timing. Plus bench/linkcost.py against linkemu.cost().
# The --quick run takes minutes: its tests are marked soak (`make soak`, not `make test`).
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.linkcost import LINKS, all_links, exchange_cost, link_key  # noqa: E402

AIR_CASES = ("airshake-s0-ref", "airshake-s0-ref-id5", "airshake-s0-value", "airshake-s2-ref",
             "airshake-s2-value", "airshake-s0-0rtt", "airshake-session-record", "edhoc-m3-kid",
             "edhoc-m3-value",
             "tls13-mutual-minimal", "tls13-mutual-typical", "priorart-fig1")
PNGS = ("bytes_per_protocol.png", "sf12_wall.png", "server_throughput.png", "scaling.png")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    run = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(run.stdout.strip().splitlines()) == 1, run.stdout  # one summary line
    with open(out / "latest.json") as f:
        return out, json.load(f)


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0


@pytest.mark.soak
def test_air_cases_are_measured_and_complete(quick):
    _, res = quick
    assert set(AIR_CASES) <= set(res["air"])
    for name in AIR_CASES:
        case = res["air"][name]
        assert case["completed"] is True, name
        assert case["messages"] and all(isinstance(n, int) and n > 0
                                        for n in case["messages"]), name
        assert case["total"] == sum(case["messages"])
        assert _number(case["sf12_wall_s"])
        for profile, subbands in LINKS:
            link = case["links"]["%s/%dsb" % (profile, subbands)]
            assert link["frames"] >= len(case["messages"]) and _number(link["wall_s"])
    # what the protocol document states, measured (sizes are exact, not timings)
    assert res["air"]["airshake-s0-ref"]["messages"] == [43, 41, 9]     # the short m1
    assert res["air"]["airshake-s0-ref-id5"]["messages"] == [40, 41, 9]  # with --id-len 5
    assert res["air"]["edhoc-m3-kid"]["messages"] == [37, 45, 19]
    assert res["air"]["airshake-session-record"]["messages"] == [17]


@pytest.mark.soak
def test_server_numbers_and_checks(quick):
    _, res = quick
    s = res["server"]
    for key in ("airshake_hs_per_s", "tls13_hs_per_s", "ratio"):
        assert _number(s[key]), key
    assert s["ratio"] == round(s["airshake_hs_per_s"] / s["tls13_hs_per_s"], 2)
    for section in ("airshake_warm", "airshake_cold", "tls13_minimal", "tls13_typical"):
        assert s[section]["completed"] is True, section
    for w in s["airshake_warm"]["windows"]:
        assert w["confirmed"] > 0 and w["failed"] == 0 and w["cs_requests"] == 0
    for w in s["airshake_cold"]["windows"]:
        assert w["confirmed"] > 0 and w["mem_hits"] == 0 and w["cs_ok"] > 0


@pytest.mark.soak
def test_device_suites(quick):
    _, res = quick
    d = res["device"]
    suites = [k for k in d if k.isdigit()]
    assert {"0", "2"} <= set(suites)
    for s in suites:
        assert d[s]["completed"] is True
        assert _number(d[s]["cpu_ms"]) and isinstance(d[s]["peak_heap_bytes"], int)
        assert 0 < d[s]["handshake_heap_bytes"] < d[s]["peak_heap_bytes"]
        assert len(d[s]["esp32_estimate_ms"]) == 2
    assert d["firmware_mpy_bytes"]["total"] > d["firmware_mpy_bytes"]["lib/airshake"] > 0
    assert "derivation" in d["esp32"]


@pytest.mark.soak
def test_twin_rows(quick):
    _, res = quick
    t = res["twin"]
    if "pure" in t["skipped"]:   # no twin built here: said in one line, rows not measured
        assert "build_firmware.py twin" in t["skipped"]["pure"] and "memory" not in t
        return
    rows = {(r["build"], r["suite"], r["wake"]): r for r in t["memory"]}
    assert set(rows) == {(b, s, w) for b in ("frozen", "mpy") for s in (0, 2)
                         for w in ("first", "later")}
    for r in rows.values():
        assert r["completed"] is True and 4096 < r["heap_bytes"] <= 1 << 20
        assert r["bisections"] and all(isinstance(b, int) for b in r["bisections"])
    # the frozen code stays out of the heap: the .mpy build must need more
    assert rows[("mpy", 0, "first")]["heap_bytes"] > rows[("frozen", 0, "first")]["heap_bytes"]
    assert rows[("frozen", 0, "first")]["target_bytes"] == 24 * 1024
    assert rows[("frozen", 2, "first")]["target_bytes"] == 32 * 1024
    assert rows[("mpy", 0, "later")]["target_bytes"] == 64 * 1024
    backends = {(r["suite"], r["backend"]) for r in t["backends"]}
    assert {(0, "pure"), (2, "pure")} <= backends
    for r in t["backends"]:
        assert _number(r["cpu_ms"]) and abs(r["native_ms"] + r["python_ms"] - r["cpu_ms"]) < 0.02
        assert len(r["esp32_estimate_ms"]) == 2 and isinstance(r["heap_total"], int)
        if r["backend"] == "pure":
            assert r["native_ms"] == 0 and r["native_primitives"] == []
        elif r["suite"] == 2:   # the self-tests give P-256 to ucryptography
            assert "p256" in r["native_primitives"] and r["native_ms"] > 0


@pytest.mark.soak
def test_scaling_rows(quick):
    _, res = quick
    rows = res["scaling"]["rows"]
    assert [r["devices"] for r in rows] == sorted(r["devices"] for r in rows)
    for r in rows:
        assert r["completed"] is True
        assert r["first_contact"]["confirmed"] == r["devices"]
        assert _number(r["hs_per_b_cpu_s"]) and r["rss_end_bytes"] > 0
    assert "growth" in res["scaling"]


@pytest.mark.soak
def test_goals_report_and_plots(quick):
    out, res = quick
    assert res["completed"] is True and _number(res["run"]["wall_s"])
    names = " ".join(g["goal"] for g in res["goals"])
    for word in ("Bytes: suite 0, C_B by reference", "Bytes: suite 0, C_B by value",
                 "Time on air vs EDHOC, SF12", "Time on air vs EDHOC, LoRaWAN DR0",
                 "Wall time vs EDHOC, SF12", "Server: B warm vs TLS 1.3",
                 "Server: B cold vs TLS 1.3", "B memory per held session",
                 "Device CPU per handshake, suite 2 (64-bit", "Device peak heap, twin, frozen",
                 "Twin CPU per handshake, suite 2, ucryptography", "Session"):
        assert word in names, word
    for g in res["goals"]:   # met or not; not measured only with the reason
        assert isinstance(g["met"], bool) or (g["met"] is None and g["note"]), g
    md = (out / "latest.md").read_text()
    assert "## Goals" in md and ("met**" in md)
    for policy in ("per-frame", "etsi-hour", "lmn-credits"):
        assert "SF12 %s" % policy in md and "DR0 %s" % policy in md
    for name in PNGS:
        with open(out / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", name


def test_unknown_section_is_one_line_usage_error():
    run = subprocess.run([sys.executable, "-m", "bench.run", "--only", "nothing"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "unknown section nothing" in run.stderr


def test_linkcost_delivers_every_fragment_of_a_long_lorawan_downlink():
    exchange = [("up", 257), ("down", 1598), ("up", 1386)]  # TLS 1.3, typical certificates
    for subbands in (1, 3):
        # 6 + 34 + 30 fragments of 47 bytes, each on the air once, plus the pulls
        dr0 = exchange_cost(exchange, "lorawan-eu868-dr0", subbands)
        assert dr0["pull_uplinks"] >= 33
        assert dr0["frames"] == 6 + 34 + dr0["pull_uplinks"] + 30
    assert set(all_links(exchange)) == {link_key(p, s) for p, s in LINKS}
