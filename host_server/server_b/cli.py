# host_server.server_b.cli: the `airshake server` command (server B). register() adds the
# subcommand with its flags (host_server.server_b.config.add_flags); run() builds the
# ServerConfig and serves until SIGTERM/SIGINT, on uvloop's event loop when uvloop is
# installed (AIRSHAKE_LOOP=asyncio: asyncio's own), with what start-up made frozen out of
# the cyclic GC once B is ready.
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from host_server.server_b import config

DESCRIPTION = """\
Run server B: answer device handshakes over UDP, fetch device certificates from the
certificate store (CS) by ID, verify them against the CA, and store the devices'
application data in SQLite. Settings come from flags, else from the [server] table of
--config FILE, else defaults. Logs are JSON lines on stderr; the first is `ready` with
the bound UDP port. Metrics (Prometheus) are at http://METRICS_HOST:METRICS_PORT/.

example:
  airshake server --ca-cert ca/ca.crt --key-dir server-keys --cs-url http://127.0.0.1:8470

LoRaWAN devices through a network server's MQTT integration (docs/LORAWAN.md), besides UDP:
  airshake server ... --lorawan chirpstack --mqtt mqtt://HOST:1883 --application APP-ID
"""


def run(args: argparse.Namespace) -> int:
    cfg = config.from_sources(args)
    if not cfg.store:
        from host_server.cert_store.cli import check_url_port
        check_url_port(cfg.cs_url, "--cs-url")
    if getattr(args, "verbose", False):
        cfg.log_level = "debug"
    from host_server.server_b import workers
    worker = os.environ.get(workers.ENV)
    ready_fd = None
    if worker:                                 # one of `--workers N`
        ready_fd = workers.apply_worker_env(cfg, worker)
    elif cfg.workers > 1:                      # the supervisor of N workers
        return workers.supervise(cfg, sys.argv[1:])
    from host_server.server_b.server import serve   # heavy imports only when serving

    def ready() -> None:
        # what start-up made (modules, keys, the CA, the loop) lives as long as the
        # process: out of the cyclic GC's sight, so its collections scan only B's tables
        gc.collect()
        gc.freeze()
        workers.signal_ready(ready_fd)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(serve(cfg, on_ready=ready))


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (B's datagram path costs less CPU on it),
    else None: asyncio's default loop. AIRSHAKE_LOOP=asyncio picks the default anyway."""
    if os.environ.get("AIRSHAKE_LOOP") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("server", help="run server B (UDP handshakes with devices)",
                              description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    config.add_flags(p)
    p.set_defaults(func=run)

    def one_line_error(message: str) -> NoReturn:   # no usage block: one line, exit 2
        print(f"airshake: error: {message}: see `airshake server --help`", file=sys.stderr)
        sys.exit(2)
    p.error = one_line_error  # type: ignore[method-assign]
