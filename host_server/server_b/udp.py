# host_server.server_b.udp: B's UDP socket on the event loop, without an asyncio transport.
# A reader callback takes every datagram waiting, up to BATCH per wake-up (one epoll
# wake-up and one loop turn for a burst, where a transport takes one datagram per turn),
# and hands each to deliver(data, addr). sendto() writes straight to the socket; only
# when the kernel's send buffer is full does a datagram wait in a queue, flushed when
# the socket is writable (at most MAX_QUEUED, the oldest dropped first: it is UDP, and
# A retransmits). An ICMP error that surfaces on the socket (ECONNREFUSED for an earlier
# datagram, ...) is ignored, as asyncio's error_received is; an exception out of
# deliver() goes to on_error() and the next datagram is read.
from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

BATCH = 64            # datagrams read per wake-up before the loop runs its other work
MAX_DATAGRAM = 65536  # larger than any UDP payload: nothing is truncated
MAX_QUEUED = 4096     # datagrams waiting for room in the send buffer

Deliver = Callable[[bytes, Any], None]


class DatagramSocket:
    def __init__(self, sock: socket.socket, deliver: Deliver,
                 on_error: Callable[[Exception], None]) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.deliver = deliver
        self.on_error = on_error
        self.dropped = 0                  # datagrams dropped from a full send queue
        self._queue: deque[tuple[bytes, Any]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        loop.add_reader(self.sock.fileno(), self._readable)

    def close(self) -> None:
        """No more datagrams in or out; the socket is closed."""
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.remove_reader(self.sock.fileno())
            loop.remove_writer(self.sock.fileno())
        self._queue.clear()
        self.sock.close()

    def _readable(self) -> None:
        recvfrom, deliver = self.sock.recvfrom, self.deliver
        for _ in range(BATCH):
            try:
                data, addr = recvfrom(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:         # an ICMP error for an earlier datagram: read on
                continue
            try:
                deliver(data, addr)
            except Exception as e:  # one bad datagram must never stop the service
                self.on_error(e)

    def sendto(self, data: bytes, addr: Any) -> None:
        if self._loop is None:
            return                  # closed: B is stopping
        if self._queue:             # keep the order behind what already waits
            self._enqueue(data, addr)
            return
        try:
            self.sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._enqueue(data, addr)
            self._loop.add_writer(self.sock.fileno(), self._writable)
        except OSError:             # an ICMP error surfacing here, or an address refused
            pass

    def _enqueue(self, data: bytes, addr: Any) -> None:
        self._queue.append((data, addr))
        if len(self._queue) > MAX_QUEUED:
            self._queue.popleft()
            self.dropped += 1

    def _writable(self) -> None:
        queue = self._queue
        while queue:
            data, addr = queue[0]
            try:
                self.sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                pass
            queue.popleft()
        if self._loop is not None:
            self._loop.remove_writer(self.sock.fileno())
