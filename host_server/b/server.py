# host_server.b.server: the lifecycle of server B. Loads keys and the CA, opens the
# sink, binds the UDP socket and the metrics endpoint, starts the revocation follower
# and the timer tick, logs `ready` with the bound ports, and on SIGTERM/SIGINT stops
# gracefully (no new datagrams, lookups and sink writes in flight finish, files closed).
# Setup problems (unreadable files, a port in use) are one UserError line.
from __future__ import annotations

import asyncio
import logging
import contextlib
import errno
import signal
import socket
import time
from typing import Any

from cryptography.exceptions import InvalidSignature

from airshake.responder import ResponderConfig
from host_server.b.backend import load_server_backend, pin_server_keys
from host_server.b.config import ServerConfig
from host_server.b.credentials import Credentials
from host_server.b.cs_client import CSClient
from host_server.b.dispatch import Dispatcher
from host_server.b.keyfiles import load_ca, load_server_keys
from host_server.b.logs import EventLog
from host_server.b.metrics import Metrics
from airshake.replay import ReplayCache
from host_server.b.revocations import RevocationFollower
from host_server.b.sink import Sink, SqliteSink
from host_server.b.verify import Verifier
from host_server.errors import UserError

TICK = 0.25


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: Server) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self.server.dispatcher.datagram(data, addr)
        except Exception as e:  # one bad datagram must never stop the service
            self.server.log.error("internal_error", where="datagram", error=type(e).__name__,
                                  detail=str(e)[:200])

    def error_received(self, exc: Exception) -> None:
        pass  # ICMP errors for a device that went away: nothing to do


class Server:
    def __init__(self, cfg: ServerConfig, sink: Sink | None = None) -> None:
        self.cfg = cfg
        self.ca = load_ca(cfg.ca_cert)            # cheapest checks first: files, then DB
        self.sink: Sink = sink if sink is not None else SqliteSink(cfg.db, cfg.reply)
        self.backend = load_server_backend()
        self.keys = load_server_keys(self.backend, cfg)
        pin_server_keys(self.backend, self.keys)
        self.sock = _bind_udp(cfg.host, cfg.port)
        self.port = self.sock.getsockname()[1]
        if not cfg.instance:
            cfg.instance = f"{socket.gethostname()}:{self.port}"
        self.log = EventLog(cfg.instance, cfg.log_level)
        self.metrics = Metrics(cfg.instance)
        self.rcfg = ResponderConfig(self.backend, self.keys, id_len=cfg.id_len,
                                    window=cfg.window, replay=ReplayCache(cfg.replay_size))
        self.rcfg.started = int(time.time())   # 0-RTT stamped before a restart is refused
        self.cs = CSClient(cfg.cs_url, cfg.cs_timeout)
        self.creds = Credentials(cfg, Verifier(self.ca, cfg.id_len), self.cs, self.metrics)
        self.follower = RevocationFollower(self.cs, self.creds, self.metrics, self.log,
                                           cfg.revocation_poll)
        self.transport: asyncio.DatagramTransport | None = None
        self.dispatcher = Dispatcher(self.rcfg, self.creds, self.sink, self.metrics, self.log,
                                     self._sendto, mtu=cfg.mtu,
                                     max_handshakes=cfg.max_handshakes,
                                     max_sessions=cfg.max_sessions)
        self.stopping = asyncio.Event()
        self._metrics_server: Any = None
        self._check_server_certs()

    def _check_server_certs(self) -> None:
        from cryptography import x509 as pyx509
        for key in self.keys:
            cert = pyx509.load_der_x509_certificate(key.ref.der)
            try:
                cert.verify_directly_issued_by(self.ca)
            except (ValueError, TypeError, InvalidSignature):
                self.log.warning("server_cert_not_from_ca", suite=key.suite,
                                 why="devices trusting this CA will refuse C_B")

    def _sendto(self, data: bytes, addr: Any) -> None:
        if self.transport is not None:
            self.transport.sendto(data, addr)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.cfg
        transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self),
                                                           sock=self.sock)
        self.transport = transport  # type: ignore[assignment]
        if cfg.metrics_port:
            try:
                self._metrics_server = self.metrics.serve(cfg.metrics_host, cfg.metrics_port)
            except OSError as e:
                transport.close()
                raise UserError(f"metrics port {cfg.metrics_port} on {cfg.metrics_host} cannot "
                                f"be used ({e.strerror or e}): choose another --metrics-port "
                                "or 0 to turn metrics off") from None
        self.follower.start()
        self._ticker = loop.create_task(self._tick())
        self.log.lifecycle("ready", port=self.port, host=cfg.host,
                      metrics_port=cfg.metrics_port or None, cs_url=cfg.cs_url,
                      suites=sorted(k.suite for k in self.keys), db=str(cfg.db),
                      window=cfg.window, cache_size=cfg.cache_size, started=self.rcfg.started)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            try:
                self.dispatcher.tick()
            except Exception as e:  # keep ticking whatever one expiry did
                self.log.error("internal_error", where="tick", error=type(e).__name__)

    async def stop(self) -> None:
        self.log.lifecycle("stopping", completed=self.dispatcher.completed)
        if self.transport is not None:
            self.transport.close()
        await self.follower.stop()
        self._ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker
        await self.dispatcher.drain()
        await self.sink.close()
        await self.cs.close()
        if self._metrics_server is not None:
            server = self._metrics_server[0] if isinstance(self._metrics_server, tuple) \
                else self._metrics_server
            with contextlib.suppress(Exception):
                server.shutdown()
        self.log.lifecycle("stopped")


def _bind_udp(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as e:
        raise UserError(f"cannot resolve --host {host!r} ({e.strerror}): give an IP address "
                        "or a known host name") from None
    family, _type, _proto, _name, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"UDP port {port} on {host} is in use: stop the other server or "
                            "choose another --port") from None
        raise UserError(f"cannot listen on UDP {host}:{port} ({e.strerror or e}): check "
                        "--host and --port") from None
    sock.setblocking(False)
    return sock


async def serve(cfg: ServerConfig) -> int:
    for noisy in ("httpx", "httpcore"):      # one line per CS request is too much
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server = Server(cfg)
    try:
        await server.start()
    except BaseException:
        await server.sink.close()
        await server.cs.close()
        server.sock.close()
        raise
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stopping.set)
    try:
        await server.stopping.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await server.stop()
    return 0
