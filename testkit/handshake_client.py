# testkit/handshake_client.py: device A on the MicroPython unix binary.
# Runs the core's Initiator (pure backend) against a responder on CPython over the
# firmware's own I/O: airshake.shell.drive under asyncio, device.link.Link on
# radios.udp.UdpRadio; sends one record after the handshake, and prints one JSON line
# with the results (cpu_us: the time spent inside the core during the handshake).
# Usage: micropython handshake_client.py PORT CONFIG.json [early | prepare]
#   (AIRSHAKE_KATS=recorded in the environment: a later wake, self-tests not run again)
#   early    send the first data as 0-RTT data in m1
#   prepare  load and warm up everything a handshake uses, then stop
#   trace    collect garbage before and after every crypto call and report the largest
#            live heap seen above the level before the handshake (live_peak_bytes):
#            the handshake's own state; what one primitive needs while it runs is
#            measured apart (bench/device_cost.py)
# bench/device_cost.py finds the smallest -X heapsize for a full run and a prepare run.
# CONFIG.json: {"suite": n, "key": hex | {rsa ints as hex}, "anchor": hex,
#               "server_name": B's CN (the pin), "server_cert": hex or null, "now": int}
# Imports only what a device imports, so `-X heapsize=N` finds the device's peak heap.
import os
import sys
# AIRSHAKE_LIB points at a tree of .mpy files to measure the device's real footprint
sys.path.insert(0, os.getenv("AIRSHAKE_LIB") or "firmware/lib")
if ".frozen" not in sys.path:     # MICROPYPATH (bench/mp_headroom) replaces the default
    sys.path.append(".frozen")    # path: the binary's frozen asyncio stays importable
import gc
import json
import time

import asyncio


def _int(h):
    return int(h[2:] if h.startswith("0x") else h, 16)


def load_key(backend, suite, v):
    from airshake.keys import DeviceKey
    if suite == 1:
        from airshake.crypto.contract import RsaPrivate
        v = RsaPrivate(_int(v["n"]), v["e"], _int(v["d"]), _int(v["p"]), _int(v["q"]),
                       _int(v["dp"]), _int(v["dq"]), _int(v["qinv"]))
    else:
        v = bytes.fromhex(v)
    return DeviceKey(backend, suite, v)


class _Tracer:
    """Backend proxy: the live heap (after a collection) around every call."""

    def __init__(self, inner):
        self._inner = inner
        self.peak = 0

    def __getattr__(self, name):
        fn = getattr(self._inner, name)

        def call(*args):
            gc.collect()
            self.peak = max(self.peak, gc.mem_alloc())
            out = fn(*args)
            gc.collect()
            self.peak = max(self.peak, gc.mem_alloc())
            return out
        return call


def main():
    port = int(sys.argv[1])
    with open(sys.argv[2]) as f:
        cfg = json.load(f)
    mode = sys.argv[3] if len(sys.argv) > 3 else ""
    t0 = time.ticks_us()
    from airshake.crypto import load_backend, primitives_for
    prims = primitives_for((cfg["suite"],))
    # AIRSHAKE_KATS=recorded: a later wake, whose self-tests passed on an earlier boot
    # and were recorded (device.backend); default: a first boot, which runs them
    recorded = prims if os.getenv("AIRSHAKE_KATS") == "recorded" else ()
    backend = load_backend("pure", prims, trusted=recorded)
    selftest_us = time.ticks_diff(time.ticks_us(), t0)
    from airshake.initiator import Initiator  # noqa: F401
    from airshake.keys import ServerRef
    suite = cfg["suite"]
    anchor = bytes.fromhex(cfg["anchor"])
    ref = None
    if cfg.get("server_cert"):
        ref = ServerRef(backend, suite, bytes.fromhex(cfg["server_cert"]))
        ref.check_pin(cfg["server_name"])
        # as the firmware does: with C_B held, the certificate parser's RAM goes back
        # before anything else is loaded (X25519 and P-256 keys need none of it)
        from airshake.ram import release
        release("airshake.x509", "airshake.der")
    key = load_key(backend, suite, cfg["key"])
    # the device's I/O: loaded here, like the core, so that prepare covers it
    from airshake import shell  # noqa: F401
    from device.link import Link  # noqa: F401
    from radios.udp import UdpRadio  # noqa: F401
    # one-time costs (lazy imports, the Ed25519 comb table) are not the handshake's
    from airshake import suites
    suites.ephemeral(backend, suite)
    backend.aes_ccm_encrypt(bytes(16), bytes(13), b"", b"")
    if mode == "prepare":
        print(json.dumps({"ok": True, "prepared": True}))
        return
    tracer = None
    if mode == "trace":
        backend = tracer = _Tracer(backend)
    out = asyncio.run(handshake(backend, key, anchor, ref, cfg, port, mode, tracer))
    out["selftest_us"] = selftest_us
    print(json.dumps(out))


async def handshake(backend, key, anchor, ref, cfg, port, mode, tracer):
    from airshake import events as ev
    from airshake import shell
    from airshake.initiator import Initiator
    from device.link import Link
    from radios.udp import UdpRadio
    # by reference, m2 and records are small: receive no more than needed
    suite, now = cfg["suite"], cfg["now"]
    radio = UdpRadio("127.0.0.1", port, 96 if ref is not None and suite != 1 else 1200)
    await radio.open()
    link = Link(radio)
    start = time.ticks_ms()

    def clock():
        return now + time.ticks_diff(time.ticks_ms(), start) / 1000

    cpu = [0]
    sizes = []
    events = []

    def core(fn, *args):
        t = time.ticks_us()
        result = fn(*args)
        cpu[0] += time.ticks_diff(time.ticks_us(), t)
        return result

    gc.collect()
    base = gc.mem_alloc()
    ini = Initiator(backend, [key], anchor, server=ref, rto=5.0, max_retries=2,
                    server_name=cfg["server_name"])
    core(ini.connect, clock(), b"reading=21.5", mode == "early")
    await shell.drive(ini, link, clock, until=lambda e: isinstance(e, ev.HandshakeConfirmed),
                      on_event=lambda e: events.append(type(e).__name__),
                      on_send=lambda d: sizes.append(len(d)),
                      on_receive=lambda m: sizes.append(len(m)), core=core)
    reply = None
    if ini.confirmed:
        ini.send(b"ping")
        got = await shell.drive(ini, link, clock, until=lambda e: isinstance(e, ev.DataReceived),
                                idle=10)
        reply = got and got.data.decode()
    await radio.close()
    return {"ok": ini.confirmed, "sizes": sizes[:3], "cpu_us": cpu[0], "events": events,
            "live_peak_bytes": tracer.peak - base if tracer else None, "reply": reply,
            "sid": ini.session.sid.hex() if ini.confirmed else None}


main()
