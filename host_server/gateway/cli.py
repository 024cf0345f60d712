# host_server.gateway.cli: the `airshake gateway` command: run the GWMP bridge
# (host_server.gateway.bridge) between LoRa gateways' packet forwarders and server B.
# Logs are JSON lines on stderr; the first is `ready` with the bound UDP port; a `stats`
# line every --stats-interval seconds and at exit.
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from host_server.errors import UserError
from host_server.gateway.bridge import Bridge, BridgeConfig, RadioPlan
from host_server.jsonlog import JsonFormatter

DESCRIPTION = """\
Bridge raw-LoRa airshake devices to server B through LoRa gateways. Point each gateway's
packet forwarder (Semtech UDP protocol, global_conf.json "server_address",
"serv_port_up" and "serv_port_down") or the single-channel gateway firmware at --listen;
frames heard on the devices' channel go to B over UDP, B's answers go back through the
gateway that heard the device last. docs/LORA_GATEWAY.md has the radio settings.

example:
  airshake gateway --listen 0.0.0.0:1700 --server 127.0.0.1:8471 --freq 868.1 --datr SF7BW125
"""


def host_port(text: str, flag: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"{flag} {text!r} is not HOST:PORT (e.g. 127.0.0.1:8471)")
    return host, int(port)


def config_from(args: argparse.Namespace) -> BridgeConfig:
    plan = RadioPlan(freq_mhz=args.freq, datr=args.datr, codr=args.codr, powe=args.power,
                     ipol=not args.no_ipol, prea=args.preamble, tx_mode=args.tx_mode,
                     rx_delay_s=args.rx_delay)
    try:
        plan.check()
    except ValueError as e:
        raise UserError(f"{e}: see `airshake gateway --help`")
    if args.collect < 0:
        raise UserError("--collect must be 0 seconds or more")
    if args.tx_mode == "tmst" and args.rx_delay <= args.collect + 0.05:
        raise UserError(f"--rx-delay {args.rx_delay} s leaves no time to answer: make it "
                        f"more than --collect ({args.collect} s) plus B's round trip")
    if args.dedup <= 0:
        raise UserError("--dedup must be more than 0 seconds (below the devices' "
                        "retransmission timer, 3 s by default)")
    return BridgeConfig(server=host_port(args.server, "--server"),
                        listen=host_port(args.listen, "--listen"), plan=plan,
                        dedup_s=args.dedup, collect_s=args.collect, id_len=args.id_len,
                        max_flows=args.max_flows)


async def serve(cfg: BridgeConfig, log: logging.Logger, stats_interval: float) -> int:
    bridge = Bridge(cfg)
    try:
        bound = await bridge.start()
    except OSError as e:
        raise UserError(f"cannot listen on {cfg.listen[0]}:{cfg.listen[1]} (--listen): "
                        f"{e.strerror or e}")
    log.info("ready", extra={"event": "ready", "fields": {
        "host": bound[0], "port": bound[1], "server": "%s:%d" % cfg.server,
        "freq_mhz": cfg.plan.freq_mhz, "datr": cfg.plan.datr, "tx_mode": cfg.plan.tx_mode,
        "ipol": cfg.plan.ipol}})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), stats_interval)
            except asyncio.TimeoutError:
                log.info("stats", extra={"event": "stats", "fields": bridge.stats()})
    finally:
        log.info("stats", extra={"event": "stats", "fields": bridge.stats()})
        bridge.close()
    return 0


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    log = logging.getLogger("airshake.gateway")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    return asyncio.run(serve(cfg, log, args.stats_interval))


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("gateway", help="bridge LoRa gateways (Semtech UDP packet "
                              "forwarder) to server B", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", default="0.0.0.0:1700",
                   help="UDP HOST:PORT the gateways send to (default 0.0.0.0:1700)")
    p.add_argument("--server", required=True, help="server B's UDP HOST:PORT")
    p.add_argument("--freq", type=float, default=868.1,
                   help="the devices' channel in MHz, up and down (default 868.1)")
    p.add_argument("--datr", default="SF7BW125", help="LoRa data rate (default SF7BW125)")
    p.add_argument("--codr", default="4/5", help="coding rate of downlinks (default 4/5)")
    p.add_argument("--power", type=int, default=14, help="downlink TX power, dBm (default 14)")
    p.add_argument("--preamble", type=int, default=8, help="downlink preamble (default 8)")
    p.add_argument("--no-ipol", action="store_true",
                   help="send downlinks with normal IQ (devices without invert_iq_rx)")
    p.add_argument("--tx-mode", choices=("imme", "tmst"), default="imme",
                   help="imme: send B's answer at once (the firmware listens after each "
                        "send); tmst: at the uplink's timestamp + --rx-delay")
    p.add_argument("--rx-delay", type=float, default=1.0,
                   help="seconds after the uplink for --tx-mode tmst (default 1.0)")
    p.add_argument("--dedup", type=float, default=1.0,
                   help="seconds within which the same frame from several gateways is one "
                        "uplink (default 1.0)")
    p.add_argument("--collect", type=float, default=0.2,
                   help="seconds to wait for other gateways' copies of an uplink before "
                        "choosing the one to answer through (default 0.2)")
    p.add_argument("--id-len", type=int, default=8, help="bytes of ID_A, as B (default 8)")
    p.add_argument("--max-flows", type=int, default=256,
                   help="devices with their own socket to B (default 256)")
    p.add_argument("--stats-interval", type=float, default=60.0,
                   help="seconds between stats lines (default 60)")
    p.set_defaults(func=run)
