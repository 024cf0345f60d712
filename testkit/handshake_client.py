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
#            measured apart (bench/device_cost.py); the proxy is testkit/heap_trace.py
# bench/device_cost.py finds the smallest -X heapsize for a full run and a prepare run.
# CONFIG.json: {"suite": n, "key": hex | {rsa ints as hex}, "anchor": hex,
#               "server_name": B's CN (the pin), "server_cert": hex or null, "now": int}
# Imports only what a device imports, so `-X heapsize=N` finds the device's peak heap.
# The twin freezes this file (boards/twin/manifest.py), as a board freezes its main.py with
# the firmware: bench's frozen rows run it as `twin -m handshake_client PORT CONFIG`, its
# code in ROM (bench/device_cost.py run); the .mpy rows and the 64-bit binary run it from
# source, compiled into RAM at start, so it stays short.
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


def load_key(backend, suite, v):
    from airshake.keys import DeviceKey
    if suite == 1:
        from airshake.crypto.contract import RsaPrivate
        v = RsaPrivate(*[x if type(x) is int else int(x, 16) for x in
                         (v["n"], v["e"], v["d"], v["p"], v["q"], v["dp"], v["dq"], v["qinv"])])
    else:
        v = bytes.fromhex(v)
    return DeviceKey(backend, suite, v)


def main():
    port = int(sys.argv[1])
    with open(sys.argv[2]) as f:
        cfg = json.load(f)
    mode = sys.argv[3] if len(sys.argv) > 3 else ""
    from airshake import ram
    ram.loading()           # as firmware/main.py: compact loading until the handshake
    suite = cfg["suite"]
    # the certificates as bytes, as a device holds them in flash (not the JSON's hex)
    anchor = bytes.fromhex(cfg.pop("anchor"))
    cert = cfg.pop("server_cert", None)
    cert = cert and bytes.fromhex(cert)
    # in the firmware's order (device.app Cycle._handshake): backend and its self-tests,
    # the held C_B, the key, then the Initiator and the I/O
    t0 = time.ticks_us()
    from airshake.crypto import load_backend, handshake_primitives
    prims = handshake_primitives(suite, cert is not None)
    # AIRSHAKE_KATS=recorded: a later wake, whose self-tests passed on an earlier boot
    # and were recorded (device.backend); default: a first boot, which runs them
    recorded = prims if os.getenv("AIRSHAKE_KATS") == "recorded" else ()
    backend = load_backend("pure", prims, trusted=recorded)
    selftest_us = time.ticks_diff(time.ticks_us(), t0)
    ref = None
    if cert:
        from airshake.keys import ServerRef
        ref = ServerRef(backend, suite, cert)
        ref.check_pin(cfg["server_name"])
        # as the firmware does: with C_B held, the certificate parser's RAM goes back
        # before anything else is loaded (X25519 and P-256 keys need none of it)
        from airshake.ram import release
        release("airshake.x509", "airshake.der")
    cert = None
    key = load_key(backend, suite, cfg.pop("key"))
    from airshake.initiator import Initiator  # noqa: F401
    # the device's I/O: loaded here, like the core, so that prepare covers it
    from airshake import shell  # noqa: F401
    from device.link import Link  # noqa: F401
    from radios.udp import UdpRadio  # noqa: F401
    # one-time costs (lazy imports, the AES tables) are not the handshake's
    from airshake import suites
    suites.ephemeral(backend, suite)
    backend.aes_ccm_encrypt(bytes(16), bytes(13), b"", b"")
    if mode == "prepare":
        print(json.dumps({"ok": True, "prepared": True}))
        return
    tracer = None
    if mode == "trace":
        from heap_trace import Tracer    # testkit/, the script's folder (or frozen)
        backend = tracer = Tracer(backend)
    out = asyncio.run(handshake(backend, key, anchor, ref, cfg, port, mode == "early", tracer))
    out["selftest_us"] = selftest_us
    print(json.dumps(out))


async def handshake(backend, key, anchor, ref, cfg, port, early, tracer):
    from airshake import events as ev
    from airshake import ram, shell
    from airshake.initiator import Initiator
    from device.link import Link
    from radios.udp import UdpRadio
    # by reference, m2 and records are small: receive no more than needed
    radio = UdpRadio("127.0.0.1", port, 96 if ref is not None and key.suite != 1 else 1200)
    await radio.open()
    link = Link(radio)
    start = time.ticks_ms()
    now = cfg["now"]

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
    ram.loaded()            # as device.app before connect
    core(ini.connect, clock(), b"reading=21.5", early)
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
    return {"ok": ini.confirmed, "sizes": sizes[:3], "cpu_us": cpu[0],
            "events": events, "reply": reply,
            "live_peak_bytes": tracer.peak - base if tracer else None,
            "sid": ini.session.sid.hex() if ini.confirmed else None}


main()
