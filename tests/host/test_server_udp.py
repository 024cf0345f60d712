# tests/host/test_server_udp.py: B's datagram socket (host_server.server_b.udp) on real
# sockets: a burst larger than one read batch is delivered whole and answered, in order;
# an exception out of deliver() is reported and the next datagram still arrives; a full
# send buffer (a Unix datagram peer that does not read: the kernel says EAGAIN) queues
# the datagrams and flushes them in order once the peer reads; nothing is sent after close();
# the CLI picks uvloop's loop when it is installed, asyncio's on AIRSHAKE_LOOP=asyncio.
import asyncio
import socket

import pytest

from host_server.server_b import udp
from host_server.server_b.udp import DatagramSocket


def _udp_pair():
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b.bind(("127.0.0.1", 0))
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.settimeout(5)
    return b, client


async def _until(cond, timeout=5.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.005)


def test_a_burst_larger_than_a_batch_is_all_delivered_and_answered_in_order():
    async def main():
        b, client = _udp_pair()
        got = []

        def echo(data, addr):
            got.append(data)
            ds.sendto(b"re:" + data, addr)
        ds = DatagramSocket(b, echo, lambda e: pytest.fail(repr(e)))
        n = 3 * udp.BATCH + 7
        for i in range(n):                      # all queued in the kernel before a read
            client.sendto(b"%d" % i, b.getsockname())
        ds.start(asyncio.get_running_loop())
        await _until(lambda: len(got) == n)
        ds.close()
        assert got == [b"%d" % i for i in range(n)]
        answers = [client.recvfrom(100)[0] for _ in range(n)]
        assert answers == [b"re:%d" % i for i in range(n)]
        client.close()
    asyncio.run(main())


def test_an_exception_in_deliver_is_reported_and_the_next_datagram_still_arrives():
    async def main():
        b, client = _udp_pair()
        got, errors = [], []

        def deliver(data, addr):
            if data == b"bad":
                raise ValueError("boom")
            got.append(data)
        ds = DatagramSocket(b, deliver, errors.append)
        ds.start(asyncio.get_running_loop())
        for data in (b"one", b"bad", b"two"):
            client.sendto(data, b.getsockname())
        await _until(lambda: len(got) == 2)
        ds.close()
        client.close()
        assert got == [b"one", b"two"]
        assert [type(e) for e in errors] == [ValueError]
    asyncio.run(main())


def test_a_full_send_buffer_queues_in_order_and_flushes_when_writable(tmp_path):
    async def main():
        b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        b.bind(str(tmp_path / "b"))
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        peer.bind(str(tmp_path / "peer"))
        ds = DatagramSocket(b, lambda d, a: None, lambda e: None)
        ds.start(asyncio.get_running_loop())
        n = 400                      # far past the peer's receive queue: EAGAIN on the way
        for i in range(n):
            ds.sendto(b"%d" % i, str(tmp_path / "peer"))
        assert ds._queue, "the kernel never said EAGAIN: the test proves nothing"
        peer.setblocking(False)
        got = []

        def read_all():
            while True:
                try:
                    got.append(peer.recv(100))
                except BlockingIOError:
                    return len(got) == n
        await _until(read_all)
        assert got == [b"%d" % i for i in range(n)] and ds.dropped == 0
        ds.close()
        peer.close()
    asyncio.run(main())


def test_nothing_is_sent_after_close():
    async def main():
        b, client = _udp_pair()
        ds = DatagramSocket(b, lambda d, a: None, lambda e: None)
        ds.start(asyncio.get_running_loop())
        ds.close()
        ds.sendto(b"late", client.getsockname())       # no error, nothing sent
        client.settimeout(0.2)
        with pytest.raises(socket.timeout):
            client.recvfrom(100)
        client.close()
    asyncio.run(main())


def test_the_cli_runs_b_on_uvloop_when_installed_and_asyncio_on_request(monkeypatch):
    from host_server.server_b.cli import event_loop_factory
    monkeypatch.setenv("AIRSHAKE_LOOP", "asyncio")
    assert event_loop_factory() is None
    monkeypatch.delenv("AIRSHAKE_LOOP")
    try:
        import uvloop
    except ImportError:
        assert event_loop_factory() is None
    else:
        assert event_loop_factory() is uvloop.new_event_loop
