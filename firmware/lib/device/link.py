# device.link: owns Link, a Radio plus the core's fragmentation layer
# (airshake.fragments.FragmentLink sized to the radio's MTU): whole messages in and
# out. A message longer than the MTU goes out as FRAGMENT frames; inbound fragments are
# reassembled, and a FRAGMENT_ACK from the peer is answered with the missing fragments.
# On a retransmission timer, if an inbound message is partial, the caller sends
# acks() instead of letting the core resend a whole message (PROTOCOL.md §3.6).
import time
from airshake.fragments import FragmentLink
from airshake.errors import AirshakeError


class Link:
    def __init__(self, radio):
        self.radio = radio
        self.frag = FragmentLink(radio.mtu)
        self.sent_frames = 0
        self.sent_bytes = 0
        self.recv_frames = 0

    async def send_message(self, message):
        for frame in self.frag.outgoing(message):
            await self._send(frame)

    async def _send(self, frame):
        self.sent_frames += 1
        self.sent_bytes += len(frame)
        await self.radio.send(frame)

    async def recv_message(self, timeout):
        """The next whole message, or None when timeout (seconds) passes first.
        Malformed frames are dropped."""
        t0 = time.ticks_ms()
        ms = int(timeout * 1000)
        while True:
            left = ms - time.ticks_diff(time.ticks_ms(), t0)
            if left <= 0:
                return None
            frame = await self.radio.recv(left / 1000)
            if frame is None:
                return None
            self.recv_frames += 1
            try:
                message, back = self.frag.incoming(frame, time.time())
            except AirshakeError:
                continue
            for f in back:
                await self._send(f)
            if message is not None:
                return message

    def partial(self):
        return self.frag.has_partial()

    async def send_acks(self):
        """Send a FRAGMENT_ACK for every partial inbound message; returns how many."""
        acks = self.frag.acks()
        for a in acks:
            await self._send(a)
        return len(acks)
