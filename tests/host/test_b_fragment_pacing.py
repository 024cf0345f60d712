"""Server B's paced fragments (--fragment-resend N, LoRaWAN class A): a long m2 leaves N
fragments at a time, A pulls the rest with fragment acks, and once m3 is in B answers no
late ack for m2, so nothing stale queues ahead of its confirming record. The real
Dispatcher in one process (test_server_b_units' harness), driven by the core's Initiator
and the core's FragmentLink at a LoRaWAN DR0 MTU of 51 bytes."""
import asyncio
import time

import pytest
from test_server_b_units import BACKEND, Harness, settle

from airshake import codec
from airshake import events as ev
from airshake.fragments import FragmentLink, decode_fragment
from airshake.initiator import Initiator
from host_server.ca import CA

MTU = 51


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pacing-pki")
    ca = CA.init(tmp / "ca", "ed25519", "unit CA")
    ca.issue_server(0, "b.unit", tmp / "keys")
    return ca, tmp


def kinds(frames):
    return [f[0] >> 5 for f in frames]


def test_paced_m2_is_pulled_one_fragment_per_ack_and_late_acks_go_unanswered(pki):
    async def go():
        h = Harness(pki, mtu=MTU)
        h.d.fragment_resend = 1
        addr = ("10.0.0.9", 1700)
        ini = Initiator(BACKEND, [h.device()], h.anchor, server_name="b.unit")
        ini.connect(time.time(), b"reading")
        link = FragmentLink(MTU)
        for m in ini.datagrams_to_send(time.time()):
            h.d.datagram(m, addr)
        await settle()
        first = h.take(addr)
        assert kinds(first) == [codec.TYPE_FRAGMENT]        # one fragment, not all
        _tag, index, count, _ = decode_fragment(first[0])
        assert index == 0 and count >= 4       # m2 by value: C_B as C509, ~230 bytes
        m2, frame, stale_ack = None, first[0], None
        for _ in range(count):
            m2, _ = link.incoming(frame, time.time())
            if m2 is not None:
                break
            (ack,) = link.acks()
            stale_ack = ack
            h.d.datagram(ack, addr)
            got = h.take(addr)
            assert len(got) == 1, "B answered an ack with %d fragments" % len(got)
            frame = got[0]
        assert m2 is not None and m2[0] >> 5 == codec.TYPE_M2
        ini.receive(m2, time.time())
        for m in ini.datagrams_to_send(time.time()):
            assert m[0] >> 5 == codec.TYPE_M3
            h.d.datagram(m, addr)
        await settle()
        (record,) = h.take(addr)
        assert record[0] >> 5 == codec.TYPE_RECORD
        ini.receive(record, time.time())
        assert any(isinstance(e, ev.HandshakeConfirmed) for e in iter(ini.next_event, None))
        # an ack for m2 that arrives after m3 (it was delayed, or A started over on a
        # stale fragment) gets nothing: B has moved past m2
        h.d.datagram(stale_ack, addr)
        await settle()
        assert h.take(addr) == []
    asyncio.run(go())


def test_unpaced_m2_leaves_whole(pki):
    """Without the setting (every link but class A) B sends every fragment at once."""
    async def go():
        h = Harness(pki, mtu=MTU)
        addr = ("10.0.0.10", 1700)
        ini = Initiator(BACKEND, [h.device()], h.anchor, server_name="b.unit")
        ini.connect(time.time(), b"reading")
        for m in ini.datagrams_to_send(time.time()):
            h.d.datagram(m, addr)
        await settle()
        frames = h.take(addr)
        assert len(frames) == decode_fragment(frames[0])[2] >= 4
    asyncio.run(go())
