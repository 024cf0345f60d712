# tests/micropython/radio_handshake.py: device A's handshake through a real radio driver:
# radios.open_radio(board, config) from a real board file, the firmware's device.link.Link
# (the core's FragmentLink sized to radio.mtu: m2 by value, 230 bytes, crosses a 51-byte
# LoRaWAN link as 5 fragments) and its one I/O loop, airshake.shell.drive, running the
# Initiator (pure backend) against a responder behind the modem emulator or the LoRa air.
# Class A radios (a poll() method) send an empty uplink whenever nothing came for
# recv_wait seconds, so B's queued frames can come down (PollingLink). After the
# handshake: one record "ping", B answers "pong".
# Prints one RESULT line: ok, events, frames and polls, the reply, wall time.
# CONFIG: radio_common's keys plus {"suite", "key", "anchor", "server_name" (the pin),
#         "server_cert", "now", "timeout", "recv_wait"}
import time

import asyncio
from radio_common import setup, emit

CFG, BOARD = setup()
from device.link import Link  # noqa: E402 - firmware/lib is on sys.path after setup()


class PollingLink(Link):
    """device.link.Link that polls a class A radio while nothing comes, and records the
    size of every frame it sends."""

    def __init__(self, radio, wait):
        Link.__init__(self, radio)
        self.wait = wait
        self.polls = 0
        self.sizes_out = []

    async def _send(self, frame):
        self.sizes_out.append(len(frame))
        await Link._send(self, frame)

    async def recv_message(self, timeout):
        end = time.ticks_add(time.ticks_ms(), int(timeout * 1000))
        while True:
            left = time.ticks_diff(end, time.ticks_ms()) / 1000
            if left <= 0:
                return None
            message = await Link.recv_message(self, min(self.wait, left))
            if message is not None:
                return message
            if hasattr(self.radio, "poll") and time.ticks_diff(end, time.ticks_ms()) > 0:
                self.polls += 1
                await self.radio.poll()


async def main(cfg, board):
    from airshake.crypto import load_backend, primitives_for
    from airshake.initiator import Initiator
    from airshake.keys import DeviceKey, ServerRef
    from airshake import events as ev
    from airshake import shell
    from radios import open_radio
    suite = cfg["suite"]
    backend = load_backend("pure", primitives_for((suite,)))
    key = DeviceKey(backend, suite, bytes.fromhex(cfg["key"]))
    ref = None
    if cfg.get("server_cert"):
        ref = ServerRef(backend, suite, bytes.fromhex(cfg["server_cert"]))
    radio = open_radio(board, cfg["config"])
    t0 = time.ticks_ms()
    await radio.open()
    opened_ms = time.ticks_diff(time.ticks_ms(), t0)
    link = PollingLink(radio, cfg.get("recv_wait", 0.5))
    ini = Initiator(backend, [key], bytes.fromhex(cfg["anchor"]), server=ref,
                    rto=cfg.get("rto", 20.0), max_retries=3, server_name=cfg["server_name"])

    def now():
        return cfg["now"] + time.ticks_diff(time.ticks_ms(), t0) / 1000

    events = []

    def on_event(e):
        if isinstance(e, ev.Dropped):
            events.append("drop:" + type(e.error).__name__)
            return
        events.append(type(e).__name__)
        if isinstance(e, ev.HandshakeConfirmed):
            ini.send(b"ping")

    timeout = cfg.get("timeout", 60)
    ini.connect(now(), b"reading=21.5")
    got = await shell.drive(ini, link, now, until=lambda e: isinstance(e, ev.DataReceived)
                            and e.data, idle=timeout, deadline=cfg["now"] + timeout,
                            on_event=on_event)
    reply = got.data.decode() if got is not None else None
    await radio.close()
    emit("handshake", ok=ini.confirmed and reply == "pong", state=ini.state,
         events=events, reply=reply, mtu=radio.mtu, open_ms=opened_ms,
         wall_ms=time.ticks_diff(time.ticks_ms(), t0),
         sid=ini.session.sid.hex() if ini.session else None, frames_out=link.sent_frames,
         frames_in=link.recv_frames, polls=link.polls, sizes_out=link.sizes_out)


asyncio.run(main(CFG, BOARD))
