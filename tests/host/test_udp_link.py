"""host_server.udp_link.UdpLink, the CPython UDP link airshake.shell.drive runs device A
over: a whole handshake against a real responder on a socket, timeouts, late datagrams
dropped by drain(), a link on a given socket that leaves a duplicate's original open."""
import asyncio
import socket
import time

from airshake import events as ev
from airshake import shell
from airshake.crypto import load_backend
from host_server.udp_link import UdpLink
from testkit import hs_support
from testkit.udp_responder import FixtureResponder


def test_a_handshake_on_the_shell_over_a_connected_link_counts_what_crossed():
    backend = load_backend("pyca")
    ini = hs_support.initiator(backend, 0, rto=0.5)
    t0 = hs_support.now()
    start = time.monotonic()

    def clock():
        return t0 + time.monotonic() - start

    async def run(port):
        link = await UdpLink.open(("127.0.0.1", port), connect=True)
        try:
            ini.connect(clock(), b"reading=21.5")
            got = await shell.drive(ini, link, clock, deadline=t0 + 10,
                                    until=lambda e: isinstance(e, ev.HandshakeConfirmed))
            return got, link
        finally:
            link.close()
    with FixtureResponder(t0) as b:
        got, link = asyncio.run(run(b.port))
    assert isinstance(got, ev.HandshakeConfirmed) and ini.confirmed
    assert ("ok", ini.session.sid.hex()) in b.completed
    assert link.sent_messages == 2 and link.recv_messages == 2          # m1, m3 / m2, record
    assert link.sent_bytes > 46 and link.recv_bytes > 0


def test_recv_times_out_and_drain_drops_what_came_late():
    async def run():
        a = await UdpLink.open(("127.0.0.1", 9), local=("127.0.0.1", 0))
        b = await UdpLink.open(a.local, local=("127.0.0.1", 0))
        try:
            t = time.monotonic()
            assert await a.recv_message(0.1) is None and time.monotonic() - t >= 0.09
            assert await a.recv_message(0) is None
            await b.send_message(b"one")
            assert await a.recv_message(1.0) == b"one"
            await b.send_message(b"two")
            await b.send_message(b"three")
            await asyncio.sleep(0.1)
            assert a.drain() == 2 and await a.recv_message(0.05) is None
            return a.recv_messages, a.drained, b.sent_messages
        finally:
            a.close()
            b.close()
    assert asyncio.run(run()) == (3, 2, 3)


def test_a_link_on_a_duplicate_socket_leaves_the_original_open_and_bound():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.settimeout(2)

    async def run():
        link = await UdpLink.open(peer.getsockname(), sock=sock.dup())
        await link.send_message(b"via the link")
        link.close()
    try:
        asyncio.run(run())
        data, addr = peer.recvfrom(100)
        assert data == b"via the link" and addr == sock.getsockname()
        peer.sendto(b"after", addr)                  # the same address still receives
        sock.settimeout(2)
        assert sock.recvfrom(100)[0] == b"after"
    finally:
        sock.close()
        peer.close()
