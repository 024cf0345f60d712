# airshake_tools.linkemu.__main__: the relay's command line,
#   python -m airshake_tools.linkemu --profile P --listen HOST:PORT --upstream HOST:PORT
# Bad arguments and an address in use are one line on stderr and exit status 2; SIGINT
# or SIGTERM stops the relay cleanly with a summary line (exit status 0).
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import socket
import sys
from typing import NoReturn, TextIO

from airshake_tools.linkemu.dutycycle import POLICIES
from airshake_tools.linkemu.faults import Faults
from airshake_tools.linkemu.lorawan import UPLINK_SUBBANDS
from airshake_tools.linkemu.profiles import PROFILES, get_profile
from airshake_tools.linkemu.relay import Relay, install_stop_signals


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print("linkemu: error: %s" % message, file=sys.stderr)
        raise SystemExit(2)


def parse_address(text: str, allow_zero: bool = False) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit():
        raise ValueError("address %r is not HOST:PORT" % text)
    number = int(port)
    if not (0 if allow_zero else 1) <= number <= 65535:
        raise ValueError("port %s of %r is out of range" % (port, text))
    return host, number


def _probability(text: str) -> float:
    try:
        p = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a number" % text) from None
    if not 0.0 <= p <= 1.0:
        raise argparse.ArgumentTypeError("%s is not a probability between 0 and 1" % text)
    return p


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m airshake_tools.linkemu",
                description="UDP relay that emulates a LoRa, LoRaWAN, NB-IoT or LTE-M link "
                            "between devices and server B.")
    p.add_argument("--profile", required=True, metavar="P",
                   help="link profile: " + ", ".join(PROFILES))
    p.add_argument("--listen", required=True, metavar="HOST:PORT",
                   help="where devices send (port 0: any free port, printed at start)")
    p.add_argument("--upstream", required=True, metavar="HOST:PORT", help="server B")
    p.add_argument("--loss", type=_probability, default=0.0, help="frame loss probability")
    p.add_argument("--duplicate", type=_probability, default=0.0,
                   help="frame duplication probability")
    p.add_argument("--reorder", type=_probability, default=0.0,
                   help="probability that a frame is delayed past later ones")
    p.add_argument("--corrupt", type=_probability, default=0.0,
                   help="probability that one bit of a frame is flipped")
    p.add_argument("--seed", type=int, default=0, help="fault seed (default 0)")
    p.add_argument("--subbands", type=int, default=1, choices=sorted(UPLINK_SUBBANDS),
                   help="EU868 1%% sub-bands the device spreads uplinks over (default 1)")
    p.add_argument("--duty-policy", choices=POLICIES, default=None,
                   help="how the duty cycle binds each transmitter (default: the "
                   "profile's, per-frame): %s" % ", ".join(POLICIES))
    p.add_argument("--virtual", action="store_true",
                   help="virtual time: forward at once, account the modelled time")
    p.add_argument("--events", metavar="FILE|-",
                   help="write one JSON line per frame (and a final summary) to FILE or stdout")
    return p


async def _serve(relay: Relay) -> None:
    stop = asyncio.Event()
    install_stop_signals(asyncio.get_running_loop(), stop)
    await relay.run(stop)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile)
        if args.duty_policy:
            profile = dataclasses.replace(profile, duty_policy=args.duty_policy)
        listen = parse_address(args.listen, allow_zero=True)
        upstream = parse_address(args.upstream)
        faults = Faults(args.loss, args.duplicate, args.reorder, args.corrupt, args.seed)
    except ValueError as e:
        parser.error(str(e))
    events: TextIO | None = None
    if args.events == "-":
        events = sys.stdout
    elif args.events:
        try:
            events = open(args.events, "w", encoding="utf-8")
        except OSError as e:
            parser.error("cannot write events to %s: %s" % (args.events, e.strerror))
    relay = Relay(profile, listen, upstream, faults, args.subbands, args.virtual, events)
    try:
        asyncio.run(_serve(relay))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            reason = "address already in use"
        elif isinstance(e, socket.gaierror):
            reason = "unknown host"
        else:
            reason = (e.strerror or str(e)).lower()
        print("linkemu: cannot listen on %s:%d: %s" % (listen[0], listen[1], reason),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:   # a signal before the handlers were set, or after they went
        return 0 if relay.finished else 130
    finally:
        if events is not None and events is not sys.stdout:
            events.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
