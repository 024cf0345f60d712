"""tests/host/modem_emulator/__main__.py: the emulator standalone, on its own pty.
Run: PYTHONPATH=tests/host python -m modem_emulator --dialect rak3172 --upstream 127.0.0.1:PORT"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from . import DIALECTS, ModemEmulator, Timing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="AT modem emulator on a pty")
    ap.add_argument("--dialect", choices=DIALECTS, required=True)
    ap.add_argument("--upstream", help="host:port of B (LoRaWAN network server target; "
                    "for cellular it overrides the address in AT+CIPSTART/AT+CAOPEN)")
    ap.add_argument("--port", type=int, default=10, help="LoRaWAN application FPort")
    ap.add_argument("--real-timing", action="store_true",
                    help="air-like delays (join 6 s, RX1 1 s, ...)")
    args = ap.parse_args(argv)
    upstream = None
    if args.upstream:
        host, _, port = args.upstream.rpartition(":")
        upstream = (host or "127.0.0.1", int(port))
    emu = ModemEmulator(args.dialect, upstream, app_port=args.port,
                        timing=Timing.real() if args.real_timing else None)
    emu.start()
    print(emu.path, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
