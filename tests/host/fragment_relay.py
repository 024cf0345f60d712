"""tests/host/fragment_relay.py: B's end of the adaptation layer for the radio tests. A
radio link carries frames of at most its MTU; the test responder (udp_responder) speaks
whole messages. FragmentRelay sits between them with the core's FragmentLink: link frames
(from the modem emulator's network side, or the LoRa air relay) are reassembled and
forwarded as whole messages; the responder's answers are cut back into frames for the link
(m2 by value, 309 bytes, becomes 7 fragments on a 51-byte LoRaWAN link). Fragment acks from
the device are answered with the missing fragments."""
from __future__ import annotations

import socket
import threading
import time

from airshake.errors import AirshakeError
from airshake.fragments import FragmentLink


class FragmentRelay:
    def __init__(self, mtu: int, responder: tuple[str, int]) -> None:
        self.mtu = mtu
        self.link = FragmentLink(mtu)
        self.responder = responder
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.front.settimeout(0.05)
        self.port = self.front.getsockname()[1]
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.back.settimeout(0.05)
        self.peer: tuple[str, int] | None = None
        self.frames_in: list[bytes] = []
        self.frames_out: list[bytes] = []
        self.messages_in: list[bytes] = []
        self.messages_out: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._front_loop, daemon=True),
                         threading.Thread(target=self._back_loop, daemon=True)]

    def __enter__(self) -> "FragmentRelay":
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()
        self.front.close()
        self.back.close()

    def _front_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame, addr = self.front.recvfrom(4096)
            except socket.timeout:
                continue
            with self._lock:
                self.peer = addr
                self.frames_in.append(frame)
                try:
                    message, back = self.link.incoming(frame, int(time.time()))
                except AirshakeError:
                    continue
                for f in back:
                    self._to_link(f)
            if message is not None:
                self.messages_in.append(message)
                self.back.sendto(message, self.responder)

    def _back_loop(self) -> None:
        while not self._stop.is_set():
            try:
                message, _ = self.back.recvfrom(65536)
            except socket.timeout:
                continue
            with self._lock:
                self.messages_out.append(message)
                for f in self.link.outgoing(message):
                    self._to_link(f)

    def _to_link(self, frame: bytes) -> None:
        if self.peer is not None:
            self.frames_out.append(frame)
            self.front.sendto(frame, self.peer)
