"""The GWMP bridge (host_server/gateway) on its own: the protocol codec against malformed
datagrams (typed errors, counted, never a crash, never an answer), uplink filtering and
de-duplication, how B's answers find the gateway that heard their device (one flow per
device: ID_A, m3 hint, SID, fragment tag), downlink timing (imme, tmst + delay), TX_ACK
errors, and the CLI's one-line errors. The bridge runs in-process on its own event loop;
gateways and B are plain UDP sockets here (tests/host/test_gateway_e2e.py has the real
ones)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airshake import codec
from airshake import fragments
from host_server.gateway import gwmp
from host_server.gateway.bridge import Bridge, BridgeConfig, RadioPlan
from host_server.gateway.routes import Flow, Routes
from testkit.cs_support import AIRSHAKE, ROOT

EUI1 = bytes.fromhex("aa55000000000001")
EUI2 = bytes.fromhex("aa55000000000002")


def head(kind: int, token: int = 0x1234) -> bytes:
    return bytes((2,)) + token.to_bytes(2, "big") + bytes((kind,))


def rx(payload: bytes, tmst: int = 1000, lsnr: float = 5.0, **over) -> dict:
    p = {"tmst": tmst, "freq": 868.1, "datr": "SF7BW125", "codr": "4/5", "stat": 1,
         "modu": "LORA", "rssi": -80, "lsnr": lsnr, "size": len(payload),
         "data": base64.b64encode(payload).decode()}
    p.update(over)
    return p


def push(eui: bytes, *packets: dict, token: int = 1) -> bytes:
    return head(0, token) + eui + json.dumps({"rxpk": list(packets)}).encode()


def m1(id_a: bytes) -> bytes:
    return codec.encode_m1(codec.M1(0, 0, 1, id_a, 1000, bytes(32)))


def m2(g_y: bytes) -> bytes:
    return codec.encode_m2(codec.M2(0, g_y, proof=bytes(8)))


def record(sid: bytes, seq: int = 0) -> bytes:
    return codec.encode_record_head(0, sid, seq) + bytes(8)


# -- the codec: malformed datagrams ------------------------------------------------------

MALFORMED = [
    (b"\x02\x00", gwmp.BadHeader),
    (b"\x01" + bytes(11), gwmp.BadVersion),
    (head(3) + EUI1, gwmp.UnknownIdentifier),           # PULL_RESP comes from servers
    (head(0x7F) + EUI1, gwmp.UnknownIdentifier),
    (head(2) + EUI1 + b"x", gwmp.BadHeader),             # PULL_DATA with trailing bytes
    (head(0) + EUI1 + b"{not json", gwmp.BadJson),
    (head(0) + EUI1 + b"\xff\xfe", gwmp.BadJson),
    (head(0) + EUI1 + b"[1, 2]", gwmp.BadJson),
    (head(0) + EUI1 + b"[" * 60000, gwmp.BadJson),          # nesting past the recursion limit
    (head(0) + EUI1 + b'{"rxpk": {}}', gwmp.BadJson),
    (head(0) + EUI1 + b'{"stat": 3}', gwmp.BadJson),
    (head(0) + EUI1 + b'{"rxpk": [7]}', gwmp.BadPacket),
    (push(EUI1, {"tmst": 1, "freq": 868.1, "datr": "SF7BW125"}), gwmp.BadPacket),
    (push(EUI1, rx(b"ab", data="!!!")), gwmp.BadPacket),
    (push(EUI1, rx(b"ab", size=3)), gwmp.BadPacket),
    (push(EUI1, rx(b"ab", tmst="soon")), gwmp.BadPacket),
    (push(EUI1, rx(b"ab", freq=True)), gwmp.BadPacket),
    (head(5) + EUI1 + b'{"txpk_ack": 1}', gwmp.BadJson),
    (head(5) + EUI1 + b'{"txpk_ack": {"error": 5}}', gwmp.BadJson),
]


@pytest.mark.parametrize("data,error", MALFORMED, ids=[e.__name__ + str(i) for i, (_, e)
                                                        in enumerate(MALFORMED)])
def test_malformed_datagram_raises_its_typed_error(data, error):
    with pytest.raises(error):
        gwmp.parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120) | st.builds(lambda k, b: head(k) + EUI1 + b,
                                          st.sampled_from([0, 2, 5]), st.binary(max_size=80)))
def test_any_bytes_parse_or_raise_only_gwmp_errors(data):
    try:
        gwmp.parse(data)
    except gwmp.GwmpError:
        pass


def test_valid_datagrams_parse():
    d = gwmp.parse(push(EUI1, rx(b"\x01\x02", tmst=2**32 + 5)))
    assert d.kind == gwmp.PUSH_DATA and d.eui == EUI1 and d.token == 1
    assert d.rxpk[0].data == b"\x01\x02" and d.rxpk[0].tmst == 5
    assert gwmp.parse(head(2) + EUI1).kind == gwmp.PULL_DATA
    assert gwmp.parse(head(5) + EUI1).tx_error == "NONE"          # v2: JSON optional
    assert gwmp.parse(head(5) + EUI1 + b'{"txpk_ack":{"error":"TOO_LATE"}}').tx_error \
        == "TOO_LATE"
    # unpadded base64, as some forwarders send
    d = gwmp.parse(head(0) + EUI1 + json.dumps({"rxpk": [rx(b"abcd", data="YWJjZA")]}).encode())
    assert d.rxpk[0].data == b"abcd"


# -- the bridge, in-process ----------------------------------------------------------------

class BridgeThread:
    """A Bridge on its own event loop in a thread; a fake B socket; gateway sockets."""

    def __init__(self, **cfg) -> None:
        self.b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.b.bind(("127.0.0.1", 0))
        self.b.settimeout(2.0)
        plan = cfg.pop("plan", RadioPlan())
        self.bridge = Bridge(BridgeConfig(server=self.b.getsockname(),
                                          listen=("127.0.0.1", 0), plan=plan, **cfg))
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.gws: dict[bytes, socket.socket] = {}

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.addr = self.loop.run_until_complete(self.bridge.start())
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> "BridgeThread":
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.bridge.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.b.close()
        for s in self.gws.values():
            s.close()

    def gateway(self, eui: bytes, pull: bool = True) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.settimeout(2.0)
        self.gws[eui] = s
        if pull:
            s.sendto(head(2, 77) + eui, self.addr)
            assert s.recv(100) == head(4, 77)             # PULL_ACK, same token
        return s

    def push(self, eui: bytes, *packets: dict) -> None:
        s = self.gws[eui]
        s.sendto(push(eui, *packets, token=9), self.addr)
        assert s.recv(100) == head(1, 9)                  # PUSH_ACK

    def at_b(self) -> tuple[bytes, tuple[str, int]]:
        return self.b.recvfrom(4096)

    def txpk(self, eui: bytes, timeout: float = 2.0) -> tuple[int, dict]:
        s = self.gws[eui]
        s.settimeout(timeout)
        data = s.recv(4096)
        assert data[0] == 2 and data[3] == 3, data
        return int.from_bytes(data[1:3], "big"), json.loads(data[4:])["txpk"]

    def nothing_for(self, sock: socket.socket, wait: float = 0.3) -> bool:
        sock.settimeout(wait)
        try:
            sock.recv(4096)
        except socket.timeout:
            return True
        return False

    def counters(self) -> dict:
        return dict(self.bridge.counters)


def test_malformed_datagrams_are_counted_unanswered_and_the_bridge_keeps_serving():
    with BridgeThread() as t:
        gw = t.gateway(EUI1, pull=False)
        for data, _error in MALFORMED:
            gw.sendto(data, t.addr)
        assert t.nothing_for(gw, 0.5)
        gw.sendto(head(2, 5) + EUI1, t.addr)              # still answers a good one
        assert gw.recv(100) == head(4, 5)
        c = t.counters()
    assert c["rejected"] == len(MALFORMED)
    for cls in (gwmp.BadHeader, gwmp.BadVersion, gwmp.UnknownIdentifier, gwmp.BadJson,
                gwmp.BadPacket):
        assert c["rejected:" + cls.__name__] == sum(1 for _, e in MALFORMED if e is cls)


def test_only_good_crc_frames_on_the_channel_reach_b():
    with BridgeThread() as t:
        t.gateway(EUI1)
        t.push(EUI1, rx(b"\x10bad-crc", stat=-1), rx(b"\x10no-crc", stat=0),
               rx(b"\x10other-freq", freq=868.3), rx(b"\x10other-sf", datr="SF9BW125"),
               rx(b"\x10fsk", modu="FSK"), rx(b"", size=0), rx(b"\x10good"))
        data, _ = t.at_b()
        assert data == b"\x10good"
        assert t.nothing_for(t.b)
        c = t.counters()
    assert (c["rx_crc_bad"], c["rx_no_crc"], c["rx_off_channel"], c["rx_empty"],
            c["uplinks"]) == (1, 1, 3, 1, 1)


def test_frame_heard_by_two_gateways_goes_to_b_once_and_back_through_the_better_one():
    with BridgeThread() as t:
        t.gateway(EUI1)
        t.gateway(EUI2)
        frame = m1(b"\x01" * 8)
        t.push(EUI1, rx(frame, tmst=500, lsnr=-4.0))
        t.push(EUI2, rx(frame, tmst=900, lsnr=8.5))      # better, a little later
        data, flow_addr = t.at_b()
        assert data == frame and t.nothing_for(t.b)
        t.b.sendto(m2(bytes(32)), flow_addr)             # B's answer on the device's flow
        _token, txpk = t.txpk(EUI2)
        assert base64.b64decode(txpk["data"]) == m2(bytes(32))
        assert txpk["imme"] is True and txpk["ipol"] is True and txpk["freq"] == 868.1
        assert txpk["datr"] == "SF7BW125" and txpk["codr"] == "4/5" and txpk["powe"] == 14
        assert t.nothing_for(t.gws[EUI1])
        assert t.counters()["rx_duplicate"] == 1


def test_answer_waits_for_every_gateway_s_copy_before_choosing_one():
    """B answers before the better gateway's copy reaches the bridge: the answer is held
    for the collection window (collect_s) and still goes through the better gateway."""
    with BridgeThread(collect_s=0.3) as t:
        t.gateway(EUI1)
        t.gateway(EUI2)
        frame = m1(b"\x0c" * 8)
        t.push(EUI1, rx(frame, lsnr=-4.0))
        _, flow = t.at_b()
        t.b.sendto(b"\xa0first", flow)
        t.b.sendto(b"\xa0second", flow)
        time.sleep(0.1)                                  # the bridge has B's answers
        t.push(EUI2, rx(frame, lsnr=8.5))
        got = [base64.b64decode(t.txpk(EUI2)[1]["data"]) for _ in range(2)]
        assert got == [b"\xa0first", b"\xa0second"]             # in B's order
        assert t.nothing_for(t.gws[EUI1])


def test_same_frame_after_the_dedup_window_is_a_new_uplink():
    """A device's identical retransmission (m1 again after its timer) must reach B."""
    with BridgeThread(dedup_s=0.2) as t:
        t.gateway(EUI1)
        frame = m1(b"\x02" * 8)
        t.push(EUI1, rx(frame))
        t.at_b()
        time.sleep(0.3)
        t.push(EUI1, rx(frame))
        assert t.at_b()[0] == frame


def test_each_device_gets_its_own_flow_and_its_answers_go_through_its_gateway():
    """Two devices under two gateways: B sees two source ports; what B sends on each goes
    through the gateway that heard that device, m3 follows its m2's hint, records their
    SID."""
    with BridgeThread() as t:
        t.gateway(EUI1)
        t.gateway(EUI2)
        t.push(EUI1, rx(m1(b"\xa1" * 8)))
        _, flow_a = t.at_b()
        t.push(EUI2, rx(m1(b"\xb2" * 8)))
        _, flow_b = t.at_b()
        assert flow_a != flow_b
        gy_a, gy_b = b"\x03" + bytes(31), b"\x07" + bytes(31)
        t.b.sendto(m2(gy_a), flow_a)
        t.b.sendto(m2(gy_b), flow_b)
        assert base64.b64decode(t.txpk(EUI1)[1]["data"]) == m2(gy_a)
        assert base64.b64decode(t.txpk(EUI2)[1]["data"]) == m2(gy_b)
        # device B's m3 is now heard by gateway 1 only: it goes on B's flow, and B's
        # answer (its first record) goes out through gateway 1
        m3_b = codec.encode_m3_head(codec.hint_of(gy_b)) + bytes(8)
        t.push(EUI1, rx(m3_b))
        data, addr = t.at_b()
        assert (data, addr) == (m3_b, flow_b)
        t.b.sendto(record(b"SIDb"), flow_b)
        assert base64.b64decode(t.txpk(EUI1)[1]["data"]) == record(b"SIDb")
        # a later record of device B, heard by gateway 2, goes on its flow by SID
        t.push(EUI2, rx(record(b"SIDb", 1)))
        assert t.at_b() == (record(b"SIDb", 1), flow_b)
        # a record with a SID the bridge never saw: the shared flow
        t.push(EUI2, rx(record(b"????", 1)))
        _, shared = t.at_b()
        assert shared not in (flow_a, flow_b)


def test_tmst_mode_schedules_answers_after_the_uplink():
    plan = RadioPlan(tx_mode="tmst", rx_delay_s=1.0, ipol=False, powe=20, freq_mhz=869.525,
                     datr="SF9BW125")
    with BridgeThread(plan=plan) as t:
        t.gateway(EUI1)
        t.push(EUI1, rx(m1(b"\x04" * 8), tmst=2**32 - 500_000, freq=869.525, datr="SF9BW125"))
        _, flow = t.at_b()
        t.b.sendto(b"\xa0" + bytes(30), flow)             # two answers to one uplink
        t.b.sendto(b"\xa0" + bytes(30), flow)
        first, second = t.txpk(EUI1)[1], t.txpk(EUI1)[1]
    assert not first["imme"] and first["tmst"] == 500_000         # wrapped past 2**32
    toa = plan.airtime_s(31)
    assert second["tmst"] == 500_000 + round((toa + 0.01) * 1e6)
    assert (first["ipol"], first["powe"], first["freq"], first["datr"]) == \
        (False, 20, 869.525, "SF9BW125")


def test_tx_ack_error_retries_through_the_next_gateway_that_heard_the_device():
    with BridgeThread() as t:
        t.gateway(EUI1)
        t.gateway(EUI2)
        frame = m1(b"\x05" * 8)
        t.push(EUI1, rx(frame, lsnr=9.0))
        t.push(EUI2, rx(frame, lsnr=1.0))
        _, flow = t.at_b()
        t.b.sendto(b"\xa0answer", flow)
        token, _ = t.txpk(EUI1)
        t.gws[EUI1].sendto(head(5, token) + EUI1 + b'{"txpk_ack":{"error":"COLLISION_PACKET"}}',
                           t.addr)
        token2, txpk = t.txpk(EUI2)
        assert base64.b64decode(txpk["data"]) == b"\xa0answer"
        t.gws[EUI2].sendto(head(5, token2) + EUI2, t.addr)    # v2 TX_ACK without JSON: ok
        time.sleep(0.2)
        c = t.counters()
    assert c["tx_error:COLLISION_PACKET"] == 1 and c["tx_retry_other_gateway"] == 1
    assert c["tx_ok"] == 1


def test_no_downlink_through_a_gateway_that_never_pulled():
    """A gateway that sent PUSH_DATA but no PULL_DATA has no downlink route (NAT)."""
    with BridgeThread() as t:
        t.gateway(EUI1, pull=False)
        t.push(EUI1, rx(m1(b"\x06" * 8)))
        _, flow = t.at_b()
        t.b.sendto(b"\xa0x", flow)
        assert t.nothing_for(t.gws[EUI1])
        time.sleep(0.1)
        assert t.counters()["tx_no_gateway"] == 1


# -- routes on their own -------------------------------------------------------------------

def make_routes(max_flows: int = 256) -> tuple[Routes, list[Flow]]:
    opened: list[Flow] = []

    def open_flow(name: str) -> Flow:
        f = Flow(name, lambda d: None, lambda: None)
        opened.append(f)
        return f
    return Routes(open_flow, max_flows=max_flows), opened


def test_fragment_ack_follows_the_flow_of_the_fragments_it_acknowledges():
    routes, _ = make_routes()
    dev = routes.for_uplink(m1(b"\x09" * 8), 0)[0]
    big_m2 = codec.encode_m2(codec.M2(codec.M2_CB_VALUE, b"\x11" + bytes(31), cert=bytes(300),
                                      proof=bytes(8)))
    frames = fragments.split(big_m2, 255)
    for f in frames:
        routes.learn(dev, f, 0)
    tag = fragments.decode_fragment(frames[0])[0]
    assert routes.for_uplink(fragments.encode_ack(tag, len(frames), {0}), 1) == [dev]
    # the first fragment taught the m2's hint: the device's m3 follows it
    m3 = codec.encode_m3_head(codec.hint_of(b"\x11")) + bytes(8)
    assert routes.for_uplink(m3, 2) == [dev]
    assert routes.for_uplink(fragments.encode_ack((tag + 1) % 256, 2, {0}), 1) == \
        [routes.shared]


def test_m3_on_a_hint_collision_goes_to_every_candidate_flow():
    routes, _ = make_routes()
    a = routes.for_uplink(m1(b"\x0a" * 8), 0)[0]
    b = routes.for_uplink(m1(b"\x0b" * 8), 0)[0]
    routes.learn(a, m2(b"\x21" + bytes(31)), 0)
    routes.learn(b, m2(b"\x41" + bytes(31)), 0)            # same 5-bit hint (1)
    m3 = codec.encode_m3_head(1) + bytes(8)
    assert set(routes.for_uplink(m3, 1)) == {a, b}
    assert routes.for_uplink(m3, 10_000) == [routes.shared]     # learnt hints expire


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=12))
def test_routes_take_any_frames_from_either_side_without_raising(frames):
    """Whatever a radio or B sends, placing and learning it never raises."""
    routes, _ = make_routes(max_flows=3)
    for i, (from_b, frame) in enumerate(frames):
        if from_b:
            routes.learn(routes.flows()[i % len(routes.flows())], frame, i)
        else:
            assert routes.for_uplink(frame, i)


def test_flows_are_bounded_oldest_closed_first():
    routes, opened = make_routes(max_flows=2)
    flows = [routes.for_uplink(m1(bytes([i]) * 8), 0)[0] for i in range(3)]
    assert flows[0].closed and not flows[1].closed and not flows[2].closed
    assert routes.for_uplink(m1(b"\x00" * 8), 0)[0] is not flows[0]   # a new one
    assert len(opened) == 5                                  # shared + 4


# -- the command line ------------------------------------------------------------------------

@pytest.mark.parametrize("args,needle", [
    (["--server", "nowhere"], "--server 'nowhere' is not HOST:PORT"),
    (["--server", "127.0.0.1:1", "--listen", "127.0.0.1:99999"], "is not HOST:PORT"),
    (["--server", "127.0.0.1:1", "--datr", "SF7"], "is not of the form SF7BW125"),
    (["--server", "127.0.0.1:1", "--codr", "5/4"], "coding rate '5/4'"),
    (["--server", "127.0.0.1:1", "--dedup", "0"], "--dedup must be more than 0")])
def test_bad_flags_are_one_line_errors(args, needle):
    out = subprocess.run([AIRSHAKE, "gateway", *args], capture_output=True, text=True,
                         timeout=30, cwd=ROOT)
    assert out.returncode == 2
    assert needle in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_port_in_use_is_a_one_line_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        out = subprocess.run([AIRSHAKE, "gateway", "--server", "127.0.0.1:1", "--listen",
                              "127.0.0.1:%d" % port], capture_output=True, text=True,
                             timeout=30, cwd=ROOT, env=dict(os.environ))
    assert out.returncode == 2
    assert "cannot listen on 127.0.0.1:%d (--listen)" % port in out.stderr
    assert "Traceback" not in out.stderr
