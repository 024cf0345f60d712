# host_server.udp_link: owns UdpLink, device A's UDP transport on CPython for the one I/O
# loop of an Initiator, airshake.shell.drive: an asyncio datagram endpoint with
# send_message / recv_message(timeout), one datagram per message (no fragmentation on
# UDP), and counters. The load generator, the fleet, bench/bload.py and the host tests
# drive their Initiators through it.
# Rules: it never reads a datagram; what arrives while nobody waits stays queued for the
# next recv_message (drain() drops it). A subclass may override datagram_received and
# send_message (a lossy shim in the tests): the counters count what reached the inbox
# and what was put on the wire.
from __future__ import annotations

import asyncio
import socket
from typing import Any, cast

Address = tuple[str, int]


class UdpLink(asyncio.DatagramProtocol):
    """A's end of a UDP link to `peer`. Open it with `await UdpLink.open(...)`."""

    def __init__(self, peer: Address) -> None:
        self.peer = peer
        self.connected = False
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.sent_messages = 0
        self.sent_bytes = 0
        self.recv_messages = 0       # datagrams that reached the inbox
        self.recv_bytes = 0
        self.drained = 0             # datagrams drain() dropped unread

    @classmethod
    async def open(cls, peer: Address, *, connect: bool = False,
                   sock: socket.socket | None = None, local: Address | None = None,
                   **kwargs: Any) -> UdpLink:
        """A link on a new socket: connected to peer (connect=True: only peer's datagrams
        come in, and the kernel reports ICMP errors), else bound to local (default: an
        ephemeral port) and sending to peer. With sock, on that socket instead; the
        link owns it and closes it in close(). kwargs go to the subclass's __init__."""
        loop = asyncio.get_running_loop()
        link = cls(peer, **kwargs)
        if sock is not None:
            await loop.create_datagram_endpoint(lambda: link, sock=sock)
        elif connect:
            await loop.create_datagram_endpoint(lambda: link, remote_addr=peer)
            link.connected = True
        else:
            family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET
            await loop.create_datagram_endpoint(
                lambda: link, local_addr=local or (("::" if family == socket.AF_INET6
                                                   else "0.0.0.0"), 0), family=family)
        return link

    # -- asyncio.DatagramProtocol ------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.recv_messages += 1
        self.recv_bytes += len(data)
        self.inbox.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        pass                         # ICMP unreachable while B is down: a lost datagram

    # -- the link, as airshake.shell.drive calls it --------------------------------------
    async def send_message(self, message: bytes) -> None:
        assert self.transport is not None, "UdpLink used before open()"
        self.sent_messages += 1
        self.sent_bytes += len(message)
        if self.connected:
            self.transport.sendto(message)
        else:
            self.transport.sendto(message, self.peer)

    async def recv_message(self, timeout: float) -> bytes | None:
        """The next datagram, or None when timeout (seconds) passes first."""
        if not self.inbox.empty():
            return self.inbox.get_nowait()
        if timeout <= 0:
            return None
        try:
            return await asyncio.wait_for(self.inbox.get(), timeout)
        except asyncio.TimeoutError:
            return None

    def drain(self) -> int:
        """Drop what waits unread (late answers to a finished handshake); how many."""
        n = 0
        while not self.inbox.empty():
            self.inbox.get_nowait()
            n += 1
        self.drained += n
        return n

    @property
    def local(self) -> Address:
        assert self.transport is not None
        return self.transport.get_extra_info("sockname")[:2]

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
