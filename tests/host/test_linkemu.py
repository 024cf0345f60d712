"""Link emulator (tools/linkemu, package airshake_tools.linkemu): LoRa time on air against
published values, LoRaWAN limits, duty cycles and class A windows, cellular timing,
seeded faults, cost() of the airshake handshake, and the UDP relay process for real,
including an airshake handshake through it."""
import asyncio
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from airshake import events as ev
from airshake import fragments, shell
from airshake.crypto import load_backend
from airshake.initiator import CONFIRMED
from airshake.keys import ServerRef
from host_server.udp_link import UdpLink
from airshake_tools.linkemu import Faults, Link, cost, fragment_sizes, get_profile
from airshake_tools.linkemu import cellular, lora, lorawan
from airshake_tools.linkemu.model import HOLD_LIMIT
from airshake_tools.linkemu.profiles import PROFILES, lorawan_profile

from testkit import hs_support
from testkit.udp_responder import FixtureResponder
from testkit.udp_thread import UdpThread

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
US = 1e-6


# -- LoRa time on air (Semtech AN1200.13) ----------------------------------------------

def test_time_on_air_reproduces_an1200_13_values():
    # 10 bytes, BW125, CR4/5, 8-symbol preamble, explicit header, CRC on, LDRO auto
    assert abs(lora.time_on_air(10, 7) - 0.041216) < US
    assert abs(lora.time_on_air(10, 12) - 0.991232) < US
    assert lora.ldro_required(12) and lora.ldro_required(11) and not lora.ldro_required(10)


@pytest.mark.parametrize("sf,ms", [(7, 82.176), (8, 143.872), (9, 267.264), (10, 493.568),
                                   (11, 1069.056), (12, 1974.272)])
def test_time_on_air_matches_published_calculator(sf, ms):
    # A. van Bentem's LoRaWAN airtime spreadsheet ("Formulas taken from AN1200.13"):
    # 24 application bytes + 13 of LoRaWAN header, BW125, CR4/5, preamble 8, explicit
    # header, LDRO auto (on for SF11/12 at 125 kHz)
    assert abs(lora.time_on_air(37, sf) - ms / 1000) < US


def test_time_on_air_more_published_points():
    # same family of AN1200.13 calculators: 13 bytes, SF9, LDRO off -> 164.864 ms
    assert abs(lora.time_on_air(13, 9, ldro=False) - 0.164864) < US
    # symbol times: SF7 1.024 ms, SF12 32.768 ms at 125 kHz
    assert abs(lora.symbol_time(7) - 0.001024) < 1e-12
    assert abs(lora.symbol_time(12) - 0.032768) < 1e-12
    # the LDRO flag matters: forcing it off shortens a 37-byte SF12 frame by one block
    assert lora.payload_symbols(37, 12) == 8 + 8 * 5
    assert lora.payload_symbols(37, 12, ldro=False) == 8 + 7 * 5


def test_time_on_air_rejects_bad_input():
    for kwargs in ({"payload_len": 256, "sf": 7}, {"payload_len": -1, "sf": 7},
                   {"payload_len": 10, "sf": 13}, {"payload_len": 10, "sf": 7, "cr": 5},
                   {"payload_len": 10, "sf": 7, "bw_hz": 100000},
                   {"payload_len": 10, "sf": 6}):
        with pytest.raises(ValueError) as e:
            lora.time_on_air(**kwargs)
        assert "\n" not in str(e.value)


# -- LoRaWAN ---------------------------------------------------------------------------

def test_payload_limits_per_data_rate():
    assert [lorawan.max_payload("EU868", dr) for dr in range(6)] == [51, 51, 51, 115, 222, 222]
    assert [lorawan.max_payload("US915", dr) for dr in range(5)] == [11, 53, 125, 242, 242]
    assert lorawan.max_payload("EU868", 5, repeater=False) == 242
    assert lorawan.dr_params("EU868", 0) == (12, 125000)
    assert lorawan.dr_params("EU868", 5) == (7, 125000)
    assert lorawan.dr_params("US915", 0) == (10, 125000)
    assert lorawan.dr_params("US915", 4) == (8, 500000)
    assert lorawan.FRAME_OVERHEAD == 13
    for region, dr in (("EU868", 6), ("US915", 5), ("AS923", 0), ("EU868", -1)):
        with pytest.raises(ValueError):
            lorawan.max_payload(region, dr)


def test_lorawan_frame_airtime_counts_framing_and_no_downlink_crc():
    up = lorawan.frame_airtime(46, "EU868", 0)
    assert up == lora.time_on_air(46 + 13, 12)
    assert lorawan.frame_airtime(41, "EU868", 0, uplink=False) == \
        lora.time_on_air(41 + 13, 12, crc=False)
    with pytest.raises(ValueError):
        lorawan.frame_airtime(52, "EU868", 0)


def test_eu868_subbands():
    bands = lorawan.EU868_SUBBANDS
    assert (bands["g1"].low_mhz, bands["g1"].high_mhz, bands["g1"].duty) == (868.0, 868.6, 0.01)
    assert (bands["g2"].low_mhz, bands["g2"].high_mhz, bands["g2"].duty) == (868.7, 869.2, 0.001)
    assert (bands["g3"].low_mhz, bands["g3"].high_mhz, bands["g3"].duty) == (869.4, 869.65, 0.1)
    assert bands["g3"].low_mhz < 869.525 < bands["g3"].high_mhz     # RX2
    assert all(bands[b].duty == 0.01 for b in lorawan.UPLINK_SUBBANDS[3])


def test_duty_cycle_silence_after_a_frame():
    dc = lorawan.DutyCycle()
    dc.record(10.0, "g1", 1.0)                  # 1 s frame from t=10 to t=11
    assert dc.wait(11.0, "g1") == pytest.approx(99.0)      # silent 99 x airtime after it
    assert dc.wait(110.0, "g1") == 0.0
    assert dc.wait(11.0, "g") == 0.0            # other sub-bands are untouched
    dc.record(0.0, "g2", 1.0)
    assert dc.wait(1.0, "g2") == pytest.approx(999.0)      # 0.1 %
    assert lorawan.silence_after(1.0, 0.01) == pytest.approx(99.0)
    assert dc.earliest(11.0, ["g1", "g"]) == ("g", 0.0)


def test_link_duty_cycle_pushes_the_next_frame():
    link = Link("lora-sf12")
    toa = lora.time_on_air(10, 12)
    first = link.send("up", bytes(10), 0.0)[0]
    second = link.send("up", bytes(10), 0.0)[0]
    assert first.at == pytest.approx(toa) and first.duty_wait == 0.0
    assert second.duty_wait == pytest.approx(99 * toa, abs=US)
    assert second.at == pytest.approx(100 * toa + toa, abs=US)
    # three 1 % sub-bands: the second frame goes right after the first (half-duplex only)
    link3 = Link("lora-sf12", subbands=3)
    link3.send("up", bytes(10), 0.0)
    again = link3.send("up", bytes(10), 0.0)[0]
    assert again.duty_wait == 0.0 and again.at == pytest.approx(2 * toa)
    # B's radio has its own budget: the downlink right after is not delayed by the uplink's
    down = link.send("down", bytes(10), second.at)[0]
    assert down.duty_wait == 0.0


def test_other_transmitter_uses_the_gaps_of_a_duty_cycle_wait():
    # the device queues two uplinks; the second sits out 99 x airtime. B's radio answers
    # the first in the meantime instead of waiting behind the queued uplink.
    link = Link("lora-sf7")
    toa = lora.time_on_air(20, 7)
    first = link.send("up", bytes(20), 0.0)[0]
    second = link.send("up", bytes(20), 0.0)[0]
    answer = link.send("down", bytes(20), first.at)[0]
    assert answer.at == pytest.approx(first.at + toa)
    assert answer.at < second.at - 90 * toa
    # but nothing overlaps on the air: an answer that would collide waits for the frame
    late = link.send("down", bytes(20), second.at - toa / 2)[0]
    assert late.at == pytest.approx(second.at + toa)


def test_half_duplex_orders_frames():
    link = Link("lora-sf7", subbands=3)
    a = link.send("up", bytes(20), 0.0)[0]
    b = link.send("down", bytes(20), 0.0)[0]
    assert b.at == pytest.approx(a.at + lora.time_on_air(20, 7))


def test_mtu_is_enforced():
    for name, mtu in (("lorawan-eu868-dr0", 51), ("lora-sf7", 255), ("nbiot", 1200),
                      ("ideal", 1500)):
        link = Link(name)
        assert get_profile(name).mtu == mtu
        link.send("up", bytes(mtu), 0.0)
        with pytest.raises(ValueError, match="fragment"):
            link.send("up", bytes(mtu + 1), 0.0)
    with pytest.raises(ValueError):
        Link("ideal").send("sideways", b"x", 0.0)
    with pytest.raises(ValueError):
        Link("ideal", subbands=4)


def test_class_a_rx1_rx2_and_held_downlinks():
    p = get_profile("lorawan-eu868-dr0")
    up_toa = p.airtime(20, "up")
    down_toa = p.downlink_airtime(20, 0)
    # B answers at once: RX1, 1 s after the uplink ends
    link = Link(p)
    up = link.send("up", bytes(20), 0.0)[0]
    end = up.at - p.latency
    assert end == pytest.approx(up_toa)
    down = link.send("down", bytes(20), up.at)[0]
    assert down.at == pytest.approx(end + 1.0 + down_toa)
    assert link.log[-1]["window"] == "rx1"
    # one downlink per uplink: a second answer is held for the next uplink
    assert link.send("down", bytes(5), up.at + 0.1) == []
    assert link.pending_downlinks == 1
    out = link.send("up", bytes(20), 10.0)
    ups = [d for d in out if d.direction == "up"]
    downs = [d for d in out if d.direction == "down"]
    assert len(ups) == 1 and len(downs) == 1 and link.pending_downlinks == 0
    assert downs[0].at == pytest.approx(ups[0].at - p.latency + 1.0
                                        + p.downlink_airtime(5, 0))
    # B answers 1.5 s after the uplink ended: RX1 is missed, RX2 (869.525 MHz, g3) is used
    link = Link(p)
    up = link.send("up", bytes(20), 0.0)[0]
    end = up.at - p.latency
    down = link.send("down", bytes(20), end + 1.5 - p.latency)[0]
    assert down.at == pytest.approx(end + 2.0 + down_toa)
    assert link.log[-1]["window"] == "rx2" and link.log[-1]["band"] == "g3"
    # B answers after both windows: held until the device's next uplink
    link = Link(p)
    link.send("up", bytes(20), 0.0)
    assert link.send("down", bytes(20), 5.0) == []
    # nothing can go down before any uplink either
    assert Link(p).send("down", bytes(20), 0.0) == []


def test_class_a_lost_uplink_opens_no_window():
    p = get_profile("lorawan-eu868-dr0")
    link = Link(p, Faults(loss=1.0))
    assert link.send("up", bytes(20), 0.0) == []
    assert link.log[-1]["lost"] and link.log[-1]["airtime_s"] > 0
    link.faults = Faults()
    assert link.send("down", bytes(20), 0.1) == []
    assert link.pending_downlinks == 1


def test_cellular_wake_latency_and_overhead():
    p = get_profile("nbiot")
    c = cellular.NBIOT
    link = Link(p)
    d1 = link.send("up", bytes(46), 0.0)[0]
    air = (46 + 28) * 8 / c.uplink_bps
    assert d1.airtime == pytest.approx(air)
    assert d1.at == pytest.approx(c.wake_delay + air + c.latency)
    d2 = link.send("up", bytes(46), d1.at)[0]                   # still connected: no wake
    assert d2.at == pytest.approx(d1.at + air + c.latency)
    d3 = link.send("up", bytes(46), d2.at + c.idle_after + 1)[0]   # idle again
    assert d3.at - (d2.at + c.idle_after + 1) == pytest.approx(c.wake_delay + air + c.latency)
    ltem = Link("ltem").send("down", bytes(41), 0.0)[0]
    assert ltem.at < 0.5


def test_profiles_and_errors():
    assert set(PROFILES) >= {"lora-sf7", "lora-sf12", "lorawan-eu868-dr0", "nbiot", "ltem",
                             "ideal"}
    with pytest.raises(ValueError, match="unknown link profile nope; choose one of: "):
        get_profile("nope")
    assert lorawan_profile("EU868", 5).mtu == 222
    with pytest.raises(ValueError):
        lorawan_profile("US915", 0)
    ideal = Link("ideal").send("up", b"abc", 3.0)
    assert [(d.at, d.frame) for d in ideal] == [(3.0, b"abc")]


# -- faults ----------------------------------------------------------------------------

def _run(faults, n=200):
    return [faults.apply(bytes([i % 256]) * 12) for i in range(n)]


def test_faults_are_reproducible_per_seed():
    kw = dict(loss=0.2, duplicate=0.1, reorder=0.1, corrupt=0.1)
    assert _run(Faults(seed=7, **kw)) == _run(Faults(seed=7, **kw))
    assert _run(Faults(seed=7, **kw)) != _run(Faults(seed=8, **kw))
    assert _run(Faults()) == [[(0.0, bytes([i % 256]) * 12)] for i in range(200)]


def test_fault_draws_do_not_depend_on_other_rates():
    plain = _run(Faults(corrupt=0.3, seed=5))
    lossy = _run(Faults(corrupt=0.3, loss=0.5, seed=5))
    survivors = [(a, b) for a, b in zip(plain, lossy) if b]
    assert survivors and all(a == b for a, b in survivors)


def test_loss_rate_over_10000_frames():
    faults = Faults(loss=0.2, seed=11)
    lost = sum(not faults.apply(b"x" * 10) for _ in range(10_000))
    assert abs(lost - 2000) < 4 * (10_000 * 0.2 * 0.8) ** 0.5     # 4 sigma = 160


def test_duplicate_reorder_corrupt():
    frame = bytes(range(32))
    dup = Faults(duplicate=1.0, seed=1).apply(frame, spacing=2.0)
    assert len(dup) == 2 and dup[0] == (0.0, frame) and dup[1][1] == frame
    assert 0.0 <= dup[1][0] <= 2.0
    reo = Faults(reorder=1.0, seed=1).apply(frame, spacing=2.0)
    assert len(reo) == 1 and 2.0 <= reo[0][0] <= 6.0
    for seed in range(50):
        (delay, bad), = Faults(corrupt=1.0, seed=seed).apply(frame)
        assert len(bad) == len(frame) and bad != frame
        diff = int.from_bytes(bad, "big") ^ int.from_bytes(frame, "big")
        assert bin(diff).count("1") == 1
    for bad in ({"loss": 1.5}, {"corrupt": -0.1}, {"seed": "x"}):
        with pytest.raises(ValueError):
            Faults(**bad)


def test_link_log_records_faults():
    link = Link("lora-sf7", Faults(loss=0.5, seed=3))
    for i in range(40):
        link.send("up", bytes(10), i * 100.0)
    lost = [e for e in link.log if e["lost"]]
    assert 5 < len(lost) < 35
    assert all(e["arrive_s"] is None and not e["delivered"] for e in lost)
    assert {"t", "direction", "bytes", "airtime_s", "duty_wait_s", "lost", "dup",
            "corrupt"} <= set(link.log[0])


# -- cost() ----------------------------------------------------------------------------

def test_cost_of_suite0_by_reference_handshake_on_lorawan_dr0():
    p = get_profile("lorawan-eu868-dr0")
    sizes = [46, 41, 9]
    messages = list(zip(["up", "down", "up"], sizes))
    one = cost(messages, p)
    assert one["frames"] == 3 and all(s <= p.mtu for s in sizes)
    toa = [p.airtime(46, "up"), p.airtime(41, "down"), p.airtime(9, "up")]
    assert one["airtime_s"] == pytest.approx(sum(toa))
    assert one["pull_uplinks"] == 0
    # m3 waits for the device's sub-band: 100 x m1's airtime after m1 started
    assert one["wall_s"] == pytest.approx(100 * toa[0] + toa[2] + p.latency)
    assert 250 < one["wall_s"] < 280
    three = cost(messages, p, subbands=3)
    assert three["frames"] == 3 and three["duty_wait_s"] == 0.0
    # m1, RX1 1 s after it, m2, then m3 on another sub-band
    assert three["wall_s"] == pytest.approx(toa[0] + 1.0 + toa[1] + toa[2] + p.latency)
    assert 7 < three["wall_s"] < 8


def test_cost_fragments_like_airshake():
    for size, mtu in ((309, 51), (545, 51), (1064, 255), (51, 51), (52, 51)):
        assert fragment_sizes(size, mtu) == [len(f) for f in fragments.split(bytes(size), mtu)]
    with pytest.raises(ValueError):
        fragment_sizes(255 * 47 + 1, 51)
    by_value = cost([("up", 46), ("down", 309), ("up", 9)], "lorawan-eu868-dr0", subbands=3)
    # m2 is 7 fragments; class A pulls the 6 held ones with empty uplinks (some pulls find
    # the gateway's own duty cycle closed and pull nothing)
    assert by_value["pull_uplinks"] >= 6
    assert by_value["frames"] == 1 + 7 + by_value["pull_uplinks"] + 1
    # more fragments than the network holds (HOLD_LIMIT): none is dropped, each pulled
    big = 30 * 47
    assert len(fragment_sizes(big, 51)) == 30 > HOLD_LIMIT + 1
    long = cost([("up", 46), ("down", big), ("up", 9)], "lorawan-eu868-dr0")
    assert long["pull_uplinks"] >= 29
    assert long["frames"] == 1 + 30 + long["pull_uplinks"] + 1
    ideal = cost([("up", 46), ("down", 41), ("up", 9)], "ideal")
    assert ideal == {**ideal, "frames": 3, "airtime_s": 0.0, "wall_s": 0.0}
    assert cost([("up", 46), ("down", 41), ("up", 9)], "ltem")["wall_s"] < 1.0
    assert 2.0 < cost([("up", 46), ("down", 41), ("up", 9)], "nbiot")["wall_s"] < 10.0


# -- the relay process -----------------------------------------------------------------

class EchoServer(UdpThread):
    bufsize = 65535

    def __init__(self):
        UdpThread.__init__(self)
        self.peers = set()

    def handle(self, data, addr):
        self.peers.add(addr)
        self.sock.sendto(data, addr)


class RelayProc:
    def __init__(self, proc, port, events):
        self.proc, self.port, self.events_path = proc, port, events
        self.stderr = ""
        self.signalled = False

    def stop(self, sig=signal.SIGINT):
        self.signalled = True
        self.proc.send_signal(sig)

    def events(self):
        with open(self.events_path) as f:
            return [json.loads(line) for line in f]

    def summary(self):
        return [e["summary"] for e in self.events() if "summary" in e][-1]


@contextmanager
def relay(tmp_path, profile, upstream_port, *extra):
    events = str(tmp_path / ("events-%s-%d.jsonl" % (profile, time.monotonic_ns())))
    proc = subprocess.Popen(
        [sys.executable, "-m", "airshake_tools.linkemu", "--profile", profile,
         "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:%d" % upstream_port,
         "--events", events, *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready, _, _ = select.select([proc.stderr], [], [], 20)
    line = proc.stderr.readline() if ready else ""
    m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise AssertionError("relay did not start: %r %r" % (line, proc.communicate()))
    r = RelayProc(proc, int(m.group(1)), events)
    try:
        yield r
    finally:
        if not r.signalled:
            r.stop()
        _, err = proc.communicate(timeout=20)
        r.stderr = line + err
        r.returncode = proc.returncode


def _client():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def _collect(sock, timeout):
    got = []
    sock.settimeout(timeout)
    while True:
        try:
            got.append(sock.recv(65535))
        except socket.timeout:
            return got


def test_relay_delivers_on_ideal_and_exits_with_summary(tmp_path):
    with EchoServer() as echo, relay(tmp_path, "ideal", echo.port) as r:
        a, b = _client(), _client()
        for i in range(20):
            a.sendto(b"a%02d" % i, ("127.0.0.1", r.port))
            b.sendto(b"b%02d" % i, ("127.0.0.1", r.port))
        got_a, got_b = _collect(a, 1.0), _collect(b, 0.2)
        big = bytes(1501)
        a.sendto(big, ("127.0.0.1", r.port))
        assert _collect(a, 0.3) == []
        assert len(echo.peers) == 2              # one upstream socket per device
    assert sorted(got_a) == [b"a%02d" % i for i in range(20)]
    assert sorted(got_b) == [b"b%02d" % i for i in range(20)]
    assert r.returncode == 0
    assert re.search(r"linkemu: ideal, 2 device\(s\), 40 frames up, 40 down, 0 lost", r.stderr)
    s = r.summary()
    assert s["devices"] == 2 and s["delivered"] == 80 and s["oversize_dropped"] == 1
    dropped = [e for e in r.events() if e.get("dropped")]
    assert dropped and dropped[0]["bytes"] == 1501


def test_relay_loss_is_seeded(tmp_path):
    runs = []
    for _ in range(2):
        with EchoServer() as echo, relay(tmp_path, "ideal", echo.port,
                                          "--loss", "0.3", "--seed", "42") as r:
            c = _client()
            for i in range(100):
                c.sendto(b"%03d" % i, ("127.0.0.1", r.port))
                time.sleep(0.002)
            runs.append(sorted(_collect(c, 1.0)))
        s = r.summary()
        assert s["lost"] == (100 - len(runs[-1])) and s["frames_up"] == 100
    assert runs[0] == runs[1]
    # each echo survives two 30 % losses: about 49 of 100
    assert 30 < len(runs[0]) < 70


def test_relay_virtual_time_sf12_is_fast_but_reports_modelled_seconds(tmp_path, timing):
    """Over 400 modelled seconds of duty-cycle waits pass in a fraction of the real time
    (the soak variant bounds it: the three echoes within 3 s)."""
    with EchoServer() as echo, relay(tmp_path, "lora-sf12", echo.port, "--virtual") as r:
        c = _client()
        c.settimeout(60)
        timing.start()
        for i in range(3):
            c.sendto(bytes([i]) * 50, ("127.0.0.1", r.port))
            assert c.recv(100) == bytes([i]) * 50
        timing.within(3.0, "three echoes over 400 modelled seconds")
    toa = lora.time_on_air(50, 12)
    s = r.summary()
    assert s["real_s"] < s["modelled_s"] / 10         # the clock jumped the waits
    assert s["virtual"] and s["frames_up"] == 3 and s["frames_down"] == 3
    assert s["airtime_s"] == pytest.approx(6 * toa, abs=1e-5)
    # each later uplink waits out the 1 % duty cycle of the one before: > 2 x 99 x toa
    assert s["modelled_s"] > 2 * 99 * toa > 400
    assert "virtual time" in r.stderr and r.returncode == 0
    ups = [e for e in r.events() if e.get("direction") == "up"]
    assert ups[1]["duty_wait_s"] > 200


def test_relay_reorders_within_a_burst_in_virtual_time(tmp_path):
    with EchoServer() as echo, relay(tmp_path, "lora-sf7", echo.port, "--virtual",
                                     "--reorder", "0.3", "--seed", "1") as r:
        c = _client()
        sent = [b"%02d" % i for i in range(20)]
        for frame in sent:
            c.sendto(frame, ("127.0.0.1", r.port))
        got = _collect(c, 0.5)
    assert sorted(got) == sent and got != sent
    s = r.summary()
    assert s["reordered"] > 0 and s["modelled_s"] > 20 * lora.time_on_air(2, 7) * 99


def test_relay_virtual_clock_waits_for_answers_and_never_goes_back(tmp_path):
    """Two LoRaWAN class A devices in virtual time: device b has a later frame (after its
    duty-cycle wait) already due when device a's uplink reaches the echo server. The
    echo's answer to a still lands in a's receive window: the clock does not jump to b's
    frame before the answer is in (it did, and the answer was held for a's next uplink,
    which never came). Every event's "at" (the relay's clock) is non-decreasing."""
    with EchoServer() as echo, relay(tmp_path, "lorawan-eu868-dr0", echo.port,
                                     "--virtual") as r:
        a, b = _client(), _client()
        b.sendto(b"b1", ("127.0.0.1", r.port))
        b.sendto(b"b2", ("127.0.0.1", r.port))     # waits out b's 1 % duty cycle
        a.sendto(b"a1", ("127.0.0.1", r.port))
        got_a = _collect(a, 1.0)
        got_b = _collect(b, 0.2)
    assert got_a == [b"a1"]
    assert b"b1" in got_b
    events = [e for e in r.events() if "summary" not in e]
    downs = [e for e in events if e["direction"] == "down" and e["bytes"] == 2]
    a_up = [e for e in events if e["direction"] == "up"][2]      # a1, sent third
    (a_down,) = [e for e in downs if e["device"] == a_up["device"]]
    assert a_down["window"] in ("rx1", "rx2") and a_down["held_s"] < 2.0
    stamps = [e["at"] for e in events]
    assert stamps == sorted(stamps)


def test_relay_stops_on_sigterm_and_rejects_a_port_in_use(tmp_path):
    with EchoServer() as echo, relay(tmp_path, "lora-sf7", echo.port) as r:
        taken = r.port
        out = subprocess.run(
            [sys.executable, "-m", "airshake_tools.linkemu", "--profile", "ideal",
             "--listen", "127.0.0.1:%d" % taken, "--upstream", "127.0.0.1:%d" % echo.port],
            cwd=ROOT, capture_output=True, text=True, timeout=20)
        r.stop(signal.SIGTERM)
    assert out.returncode == 2
    assert out.stderr == "linkemu: cannot listen on 127.0.0.1:%d: address already in use\n" % taken
    assert r.returncode == 0 and "linkemu: lora-sf7, 0 device(s)" in r.stderr
    bad = subprocess.run([sys.executable, "-m", "airshake_tools.linkemu", "--profile", "x",
                          "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=20)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "unknown link profile x" in bad.stderr


# -- an airshake handshake through the relay ------------------------------------------

def _handshake(relay_port, backend, budget=60.0):
    """Device A (suite 0, C_B by reference) over UDP through the relay (airshake.shell
    over a UdpLink); returns A. Corrupted or stale frames are the core's Dropped events."""
    t0 = hs_support.now()
    start = time.monotonic()
    clock = lambda: t0 + (time.monotonic() - start)
    ref = ServerRef(backend, 0, hs_support.cert(0, "server_cert"))
    ini = hs_support.initiator(backend, 0, server=ref, rto=0.3, max_retries=8)
    ini.connect(clock(), b"reading=21.5")

    async def run():
        link = await UdpLink.open(("127.0.0.1", relay_port), sock=_client())
        try:
            await shell.drive(ini, link, clock, deadline=t0 + budget,
                              until=lambda e: isinstance(e, ev.HandshakeConfirmed))
        finally:
            link.close()
    asyncio.run(run())
    return ini


# seed 6: m1 lost once and m2 lost once, on every profile (fault streams are per direction
# and per frame index, so the same frames are hit whatever the timing)
@pytest.mark.parametrize("profile,extra", [("ideal", ()), ("lora-sf7", ("--virtual",)),
                                           ("lorawan-eu868-dr0", ("--virtual",))])
def test_airshake_handshake_through_the_relay_with_loss(tmp_path, profile, extra, timing):
    """The handshake completes through two losses; the soak variant bounds the relay's
    real time at 30 s."""
    backend = load_backend("pyca")
    with FixtureResponder(hs_support.now()) as b, \
            relay(tmp_path, profile, b.port, "--loss", "0.2", "--seed", "6", *extra) as r:
        ini = _handshake(r.port, backend)
    assert ini.state == CONFIRMED, r.stderr
    assert ("ok", ini.session.sid.hex()) in b.completed
    s = r.summary()
    assert s["lost"] == 2 and s["frames_up"] == 4 and s["frames_down"] == 3
    timing.within(30, "the handshake through %s (relay real time)" % profile,
                  took=s["real_s"])
    if profile == "lora-sf7":
        # every retransmission waits out the device's 1 % duty cycle: 100 x m1's airtime
        assert s["modelled_s"] > 2 * 100 * lora.time_on_air(46, 7)
    if profile == "lorawan-eu868-dr0":
        # three uplinks before m3, each closing sub-band g1 for 100 x its airtime
        assert s["modelled_s"] > 3 * 100 * lorawan.frame_airtime(46, "EU868", 0)
        downs = [e for e in r.events() if e.get("direction") == "down"]
        assert {e["window"] for e in downs} == {"rx1"}


def test_airshake_handshake_survives_every_fault_kind(tmp_path):
    # seed 16: a lost frame, duplicates, reordered frames, and a corrupted m3 that B
    # refuses (AuthenticationFailed) before the retransmitted m3 completes the handshake
    backend = load_backend("pyca")
    with FixtureResponder(hs_support.now()) as b, \
            relay(tmp_path, "ideal", b.port, "--loss", "0.1", "--duplicate", "0.2",
                  "--reorder", "0.2", "--corrupt", "0.15", "--seed", "16") as r:
        ini = _handshake(r.port, backend, budget=20)
    assert ini.state == CONFIRMED, r.stderr
    assert ("ok", ini.session.sid.hex()) in b.completed
    s = r.summary()
    assert s["lost"] and s["duplicated"] and s["reordered"] and s["corrupted"]
