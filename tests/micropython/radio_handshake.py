# tests/micropython/radio_handshake.py: device A's handshake through a real radio driver:
# radios.open_radio(board, config) from a real board file, the core's FragmentLink sized to
# radio.mtu (m2 by value, 379 bytes, crosses a 51-byte LoRaWAN link as 9 fragments), the
# Initiator (pure backend) against a responder behind the modem emulator or the LoRa air.
# Class A radios (a poll() method) send an empty uplink whenever nothing came, so B's
# queued frames can come down. After the handshake: one record "ping", B answers "pong".
# Prints one RESULT line: ok, events, frames and polls, the reply, wall time.
# CONFIG: radio_common's keys plus {"suite", "key", "anchor", "server_name" (the pin),
#         "server_cert", "now", "timeout", "recv_wait"}
import time

import asyncio
from radio_common import setup, emit


async def main():
    cfg, board = setup()
    from airshake.crypto import load_backend, primitives_for
    from airshake.errors import AirshakeError
    from airshake.fragments import FragmentLink
    from airshake.initiator import Initiator, CONFIRMED, FAILED
    from airshake.keys import DeviceKey, ServerRef
    from airshake import events as ev
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
    link = FragmentLink(radio.mtu)
    ini = Initiator(backend, [key], bytes.fromhex(cfg["anchor"]), server=ref,
                    rto=cfg.get("rto", 20.0), max_retries=3, server_name=cfg["server_name"])

    def now():
        return cfg["now"] + time.ticks_diff(time.ticks_ms(), t0) // 1000

    stats = {"frames_out": 0, "frames_in": 0, "polls": 0, "sizes_out": []}

    async def send(message):
        for f in link.outgoing(message):
            stats["frames_out"] += 1
            stats["sizes_out"].append(len(f))
            await radio.send(f)

    events = []
    reply = None
    pinged = False
    ini.connect(now(), b"reading=21.5")
    deadline = time.ticks_add(t0, int(cfg.get("timeout", 60) * 1000))
    wait = cfg.get("recv_wait", 0.5)
    while time.ticks_diff(deadline, time.ticks_ms()) > 0:
        for d in ini.datagrams_to_send(now()):
            await send(d)
        while True:
            e = ini.next_event()
            if e is None:
                break
            events.append(type(e).__name__)
            if isinstance(e, ev.DataReceived) and e.data:
                reply = e.data.decode()
        if ini.state == FAILED or reply is not None:
            break
        if ini.state == CONFIRMED and not pinged:
            ini.send(b"ping")
            pinged = True
            continue
        frame = await radio.recv(wait)
        if frame is None:
            t = ini.timer()
            if t is not None and now() >= t:
                ini.handle_timer(now())
            elif hasattr(radio, "poll"):
                stats["polls"] += 1
                await radio.poll()
            continue
        stats["frames_in"] += 1
        try:
            message, back = link.incoming(frame, now())
        except AirshakeError:
            continue
        for f in back:
            await radio.send(f)
        if message is not None:
            try:
                ini.receive(message, now())
            except AirshakeError as e:
                events.append("drop:" + type(e).__name__)
    await radio.close()
    emit("handshake", ok=ini.state == CONFIRMED and reply == "pong", state=ini.state,
         events=events, reply=reply, mtu=radio.mtu, open_ms=opened_ms,
         wall_ms=time.ticks_diff(time.ticks_ms(), t0),
         sid=ini.session.sid.hex() if ini.session else None, **stats)


asyncio.run(main())
