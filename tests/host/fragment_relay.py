"""tests/host/fragment_relay.py: B's end of the adaptation layer for the radio tests. A
radio link carries frames of at most its MTU; the test responder (udp_responder) speaks
whole messages. FragmentRelay sits between them with the core's FragmentLink: link frames
(from the modem emulator's network side, or the LoRa air relay) are reassembled and
forwarded as whole messages; the responder's answers are cut back into frames for the link
(m2 by value, 230 bytes, becomes 5 fragments on a 51-byte LoRaWAN link). Fragment acks from
the device are answered with the missing fragments."""
from __future__ import annotations

import threading
import time

from airshake.errors import AirshakeError
from airshake.fragments import FragmentLink
from testkit.udp_thread import UdpPair


class FragmentRelay(UdpPair):
    """front: the link's frames (the peer is whoever sent the last one); back: whole
    messages to and from the responder."""

    def __init__(self, mtu: int, responder: tuple[str, int]) -> None:
        UdpPair.__init__(self)
        self.mtu = mtu
        self.link = FragmentLink(mtu)
        self.responder = responder
        self.peer: tuple[str, int] | None = None
        self.frames_in: list[bytes] = []
        self.frames_out: list[bytes] = []
        self.messages_in: list[bytes] = []
        self.messages_out: list[bytes] = []
        self._lock = threading.Lock()

    def from_front(self, frame: bytes, addr: tuple[str, int]) -> None:
        with self._lock:
            self.peer = addr
            self.frames_in.append(frame)
            try:
                message, back = self.link.incoming(frame, int(time.time()))
            except AirshakeError:
                return
            for f in back:
                self._to_link(f)
        if message is not None:
            self.messages_in.append(message)
            self.back.sendto(message, self.responder)

    def from_back(self, message: bytes, _addr: object) -> None:
        with self._lock:
            self.messages_out.append(message)
            for f in self.link.outgoing(message):
                self._to_link(f)

    def _to_link(self, frame: bytes) -> None:
        if self.peer is not None:
            self.frames_out.append(frame)
            self.front.sendto(frame, self.peer)
