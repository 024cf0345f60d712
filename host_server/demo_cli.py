# host_server.demo_cli: the `airshake demo` command: its flags, their help, and the
# hand-over to host_server.demo.run (imported only when the command runs).
from __future__ import annotations

import argparse
from pathlib import Path

from host_server.errors import UserError

DESCRIPTION = """\
Run the whole airshake system on this machine and watch one handshake per device, frame
by frame:

  1. a CA (airshake ca init) and B's key and certificate C_B (airshake ca issue-server)
  2. the certificate store CS on SQLite (airshake cs serve)
  3. server B (airshake server), fragmenting at the link's MTU
  4. the link emulator's relay (python -m airshake_tools.linkemu) between the devices and B
  5. each device: the real firmware on the MicroPython unix binary, deployed and then
     provisioned by the code of `airshake device provision` through mpremote on a pty
     made in Python: the key is made on the device, only its public key is enrolled in
     the CS
  6. the firmware runs two wakes: first contact (a handshake, C_B by value, the reading
     in m3), then one record on the saved session; device 1 then wakes a third time
     with its session removed: a later handshake, C_B by reference

Every radio frame is printed as it happens (message, bytes, time on air, duty-cycle wait,
LoRaWAN window, lost), with B's certificate lookup in the CS by ID_A and the device's
steps, each stamped with the link's one clock. Then a summary, every airshake size
taken from the frames captured on the air: bytes per message and in total, frames, time
on air, the time to the first authenticated application byte, and what the same
exchanges (by value, and wake 3's by reference) cost on the same link by the link model
next to the patent's prior-art four-message flow (Fig. 1, C_A sent over the air), EDHOC
and TLS 1.3. A sequence diagram is written as SVG. The previous run's picture and
numbers in the output directory are removed first (the demo says so).

--via picks how the devices reach B: directly over UDP (default); through a LoRaWAN
network server's MQTT integration (chirpstack, tts: a mosquitto broker and a network-server
stand-in, link lorawan-eu868-dr0); or as raw LoRa (gateway): TTGO LoRa32 v1 firmware on
the link emulator's stand-in lora driver, its frames heard on a stand-in air by two
simulated GWMP gateways and forwarded by the bridge (airshake gateway), whose per-device
flows reach B through the link emulator.

Slow links (LoRa, LoRaWAN) run in virtual time: the relay forwards at once and reports
the modelled times, so minutes of duty-cycle waits take seconds. Every process is
stopped at the end, on an error and on Ctrl-C.

examples:
  airshake demo
  airshake demo --link lorawan-eu868-dr0 --loss 0.2
  airshake demo --via gateway --devices 2
  airshake demo --devices 5 --suite 2 --workdir /tmp/run1
"""


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return int(text)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from airshake_tools.linkemu import PROFILES
    p = subparsers.add_parser(
        "demo", help="run CA, CS, B, link emulator and firmware devices; show a handshake",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--link", default="lora-sf7", metavar="PROFILE",
                   help="link profile (default: %(default)s): " + ", ".join(PROFILES))
    p.add_argument("--loss", type=_probability, default=0.0, metavar="P",
                   help="probability that a radio frame is lost, e.g. 0.2 (default: 0)")
    p.add_argument("--via", choices=("udp", "chirpstack", "tts", "gateway"), default="udp",
                   help="how devices reach B: directly (udp), through a LoRaWAN network "
                        "server's MQTT integration (chirpstack, tts: needs mosquitto; picks "
                        "--link lorawan-eu868-dr0), or raw LoRa through GWMP gateways "
                        "(gateway)")
    p.add_argument("--devices", type=int, default=1, metavar="N",
                   help="devices handshaking at once (default: 1)")
    p.add_argument("--suite", type=int, default=0, choices=(0, 2),
                   help="0: X25519 with an Ed25519 CA (default); 2: P-256 with a P-256 CA")
    p.add_argument("--seed", type=int, default=1,
                   help="seed of the link's faults (default: 1): same seed, same losses")
    p.add_argument("--time", choices=("auto", "virtual", "real"), default="auto",
                   help="virtual: the relay does not sleep the modelled delays; real: it "
                        "does; auto (default): virtual when a handshake on the link would "
                        "take more than 10 s")
    p.add_argument("--workdir", type=Path, metavar="DIR",
                   help="keep everything here (CA, databases, device filesystems, logs, "
                        "pids.txt) instead of a temporary directory; must be empty")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary work directory and say where it is")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="where sequence.svg and summary.json go (default: --workdir, "
                        "else ./demo-out)")
    p.add_argument("--cs-port", type=_port, default=0, metavar="PORT",
                   help="TCP port of the certificate store (default 0: any free port)")
    p.add_argument("--b-port", type=_port, default=0, metavar="PORT",
                   help="UDP port of server B (default 0: any free port)")
    p.add_argument("--relay-port", type=_port, default=0, metavar="PORT",
                   help="UDP port of the link emulator (default 0: any free port)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="wall seconds the devices get for their two wakes, counted from "
                        "their start (set-up comes before it), before the demo gives up "
                        "(default: 45; in real time on a slow link, 4 times the modelled "
                        "handshake + 20)")
    p.add_argument("--micropython", metavar="PATH",
                   help="the MicroPython unix binary (default: .venv/bin/micropython, "
                        "else PATH)")
    p.add_argument("--full-deploy", action="store_true",
                   help="also copy device 1's files through mpremote as `airshake device "
                        "deploy` does (about 10 s more) instead of from the deploy's stage")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from host_server.demo.options import Options
    from host_server.demo.run import run_demo
    if args.workdir is not None and args.keep:
        raise UserError("--keep is for the temporary work directory; --workdir is always "
                        "kept")
    opts = Options(link=args.link, loss=args.loss, devices=args.devices, suite=args.suite,
                   seed=args.seed, time=args.time, workdir=args.workdir, keep=args.keep,
                   out=args.out, cs_port=args.cs_port, b_port=args.b_port,
                   relay_port=args.relay_port, timeout=args.timeout,
                   micropython=args.micropython, full_deploy=args.full_deploy,
                   via=args.via)
    return run_demo(opts)
