# host_server.demo.probe: owns the two UDP taps that let the demo name every radio frame.
# The relay's events say how long a frame was on the air and whether it arrived, but not
# what it carried; the probe records the bytes. Device i sends to its own probe port,
# which forwards to the relay from one socket per (device, wake) -- so the relay sees one
# peer per wake, as it would without the probe -- and B's side of the relay sends to a
# second tap that forwards to B from one socket per relay peer. Every datagram is
# recorded before it is forwarded, so by the time the relay logs a frame its bytes are
# here: take(peer, direction, size) hands them out in order. Plain sockets and one
# selector thread; nothing is changed, delayed (beyond a loopback hop) or dropped.
# Behind a gateway bridge (--via gateway) every device reaches the probe through one
# port, on a flow (source address) of its own: open_device_side(shared=) names the device
# of a new flow from its first datagram (an m1 carries ID_A).
from __future__ import annotations

import selectors
import socket
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"
MAX_DATAGRAM = 65535
REGISTRY = 4096           # recent uplinks remembered to pair B-side sockets with devices


@dataclass
class Datagram:
    peer: str             # the relay's name for the sender: "127.0.0.1:PORT"
    device: int           # 1-based
    wake: int             # 1-based: a device opens a new socket on every wake
    direction: str        # "up" (device -> B) or "down"
    data: bytes
    t: float              # time.monotonic() when the probe saw it


@dataclass
class _DevConn:
    device: int
    wake: int
    addr: tuple[Any, ...]          # the device's address (answers go back there)
    sock: socket.socket            # to the relay
    peer: str
    listen: socket.socket


@dataclass
class _BConn:
    relay_addr: tuple[Any, ...]    # the relay's upstream socket for one peer
    sock: socket.socket            # to B
    peer: str | None = None


@dataclass
class Arrival:
    peer: str
    data: bytes
    t: float


class Probe:
    def __init__(self, devices: int, on_arrival: Callable[[Arrival], None] | None = None
                 ) -> None:
        self.sel = selectors.DefaultSelector()
        self.devices = devices
        self.on_arrival = on_arrival
        self.relay: tuple[str, int] | None = None
        self.b: tuple[str, int] | None = None
        self.device_ports: list[int] = []
        self.b_port = 0
        self.peers: dict[str, tuple[int, int]] = {}      # peer -> (device, wake)
        self._listen: list[socket.socket] = []
        self._dev: dict[tuple[int, tuple[Any, ...]], _DevConn] = {}
        self._wakes: dict[int, int] = {}
        self._bconns: dict[tuple[Any, ...], _BConn] = {}
        self._recent: OrderedDict[bytes, str] = OrderedDict()
        self._queues: dict[tuple[str, str], deque[Datagram]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._b_listen: socket.socket | None = None
        self.shared: Callable[[bytes], int] | None = None

    # -- lifecycle --------------------------------------------------------------------
    def open_b_side(self, b_port: int) -> int:
        """The port the relay must use as its upstream (forwarded to B at b_port)."""
        self.b = (HOST, b_port)
        s = self._udp()
        self._b_listen = s
        self.sel.register(s, selectors.EVENT_READ, ("b-listen", None))
        self.b_port = s.getsockname()[1]
        return self.b_port

    def open_device_side(self, relay_port: int,
                         shared: Callable[[bytes], int] | None = None) -> list[int]:
        """One port per device, each forwarded to the relay at relay_port; with `shared`,
        one port for all of them, shared(first datagram of a new sender) naming its
        device (1-based)."""
        self.relay = (HOST, relay_port)
        self.shared = shared
        for i in ([0] if shared is not None else range(1, self.devices + 1)):
            s = self._udp()
            self._listen.append(s)
            self.sel.register(s, selectors.EVENT_READ, ("dev-listen", i))
            self.device_ports.append(s.getsockname()[1])
        return self.device_ports

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="probe", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        for key in list(self.sel.get_map().values()):
            try:
                key.fileobj.close()     # type: ignore[union-attr]
            except OSError:
                pass
        self.sel.close()

    @staticmethod
    def _udp() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST, 0))
        s.setblocking(False)
        return s

    # -- what the monitor asks --------------------------------------------------------
    def take(self, peer: str, direction: str, size: int) -> Datagram | None:
        """The oldest recorded datagram of this peer and direction with this size (the
        relay logs frames in the order it got them)."""
        with self._lock:
            q = self._queues.get((peer, direction))
            if not q:
                return None
            for n, d in enumerate(q):
                if len(d.data) == size:
                    del q[n]
                    return d
            return None

    def who(self, peer: str) -> tuple[int, int] | None:
        with self._lock:
            return self.peers.get(peer)

    # -- the loop ---------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self.sel.select(0.1):
                kind, arg = key.data
                sock: socket.socket = key.fileobj     # type: ignore[assignment]
                while True:
                    try:
                        data, addr = sock.recvfrom(MAX_DATAGRAM)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:      # ICMP port unreachable from a stopped peer
                        break
                    try:
                        self._dispatch(kind, arg, sock, data, addr)
                    except OSError:
                        pass

    def _dispatch(self, kind: str, arg: Any, sock: socket.socket, data: bytes,
                  addr: tuple[Any, ...]) -> None:
        now = time.monotonic()
        if kind == "dev-listen":              # device -> relay
            conn = self._dev.get((arg, addr))
            if conn is None:
                device = arg or (self.shared(data) if self.shared is not None else 1)
                conn = self._new_dev_conn(device, addr, sock)
                self._dev[(arg, addr)] = conn
            self._record(Datagram(conn.peer, conn.device, conn.wake, "up", data, now))
            with self._lock:
                self._recent[data] = conn.peer
                while len(self._recent) > REGISTRY:
                    self._recent.popitem(last=False)
            conn.sock.send(data)
        elif kind == "dev-relay":             # relay -> device
            conn = arg
            conn.listen.sendto(data, conn.addr)
        elif kind == "b-listen":              # relay -> B
            bconn = self._bconns.get(addr)
            if bconn is None:
                bconn = self._new_b_conn(addr)
            if bconn.peer is None:
                with self._lock:
                    bconn.peer = self._recent.get(data)
            if bconn.peer is not None and self.on_arrival is not None:
                self.on_arrival(Arrival(bconn.peer, data, now))
            bconn.sock.send(data)
        elif kind == "b-server":              # B -> relay
            bconn = arg
            if bconn.peer is not None:
                who = self.peers.get(bconn.peer, (0, 0))
                self._record(Datagram(bconn.peer, who[0], who[1], "down", data, now))
            assert self._b_listen is not None
            self._b_listen.sendto(data, bconn.relay_addr)

    def _new_dev_conn(self, device: int, addr: tuple[Any, ...],
                      listen: socket.socket) -> _DevConn:
        assert self.relay is not None
        s = self._udp()
        s.connect(self.relay)
        wake = self._wakes.get(device, 0) + 1
        self._wakes[device] = wake
        peer = "%s:%d" % (HOST, s.getsockname()[1])
        conn = _DevConn(device, wake, addr, s, peer, listen)
        with self._lock:
            self.peers[peer] = (device, wake)
        self.sel.register(s, selectors.EVENT_READ, ("dev-relay", conn))
        return conn

    def _new_b_conn(self, relay_addr: tuple[Any, ...]) -> _BConn:
        assert self.b is not None
        s = self._udp()
        s.connect(self.b)
        bconn = _BConn(relay_addr, s)
        self._bconns[relay_addr] = bconn
        self.sel.register(s, selectors.EVENT_READ, ("b-server", bconn))
        return bconn

    def _record(self, d: Datagram) -> None:
        with self._lock:
            self._queues.setdefault((d.peer, d.direction), deque()).append(d)
