# host_server.server_b.server: the lifecycle of server B. Loads keys and the CA, opens the
# sink, binds the UDP socket and the metrics endpoint, starts the revocation follower
# and the timer tick, logs `ready` with the bound ports, and on SIGTERM/SIGINT stops
# gracefully (no new datagrams, lookups and sink writes in flight finish, files closed).
# The UDP receive buffer is sized from rcvbuf (the size the kernel granted is logged and
# exported) and the kernel's drops on B's socket are counted (/proc/net/udp). The key
# files are re-read when a certificate or key file changes (polled every KEY_POLL s) or
# on SIGHUP: a renewed C_B is served without a restart. With --lorawan it also runs the
# MQTT integration with a network server (host_server.lorawan.bridge): datagrams from and
# to its pseudo addresses travel as uplinks and downlinks; the UDP socket stays.
# Setup problems (unreadable files, a port in use) are one UserError line.
from __future__ import annotations

import asyncio
import logging
import contextlib
import errno
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any, cast

from cryptography.exceptions import InvalidSignature

from airshake.responder import ResponderConfig
from host_server.server_b.backend import load_server_backend, pin_server_keys
from host_server.server_b.config import ServerConfig
from host_server.server_b.credentials import Credentials
from host_server.server_b.cs_client import CSClient
from host_server.server_b.dispatch import Dispatcher
from host_server.server_b.keyfiles import load_ca, load_server_keys, specs_in_dir
from host_server.server_b.logs import EventLog
from host_server.server_b.metrics import Metrics
from airshake.replay import ReplayCache
from host_server.server_b.revocations import RevocationFollower
from host_server.server_b.sink import Sink, SqliteSink
from host_server.server_b.verify import Verifier
from host_server.cert_store.pgsql import redact
from host_server.server_b import health
from host_server.server_b.pg_sink import PgSink
from host_server.server_b.store_source import StoreSource
from host_server.server_b.udp import DatagramSocket
from host_server.errors import UserError

TICK = 0.25
KEY_POLL = 2.0       # seconds between checks of the key files' modification times
DROPS_POLL = 1.0     # seconds between reads of the kernel's drop counter


class Server:
    def __init__(self, cfg: ServerConfig, sink: Sink | None = None) -> None:
        self.cfg = cfg
        # cheapest checks first: files, then the port, then the DB (a start that fails
        # leaves no new database file behind: see created_db)
        self.ca = load_ca(cfg.ca_cert)
        self.backend = load_server_backend()
        self.keys = load_server_keys(self.backend, cfg)
        pin_server_keys(self.backend, self.keys)
        self.sock = _bind_udp(cfg.host, cfg.port, cfg.reuse_port)
        self.created_db = None if sink is not None else _new_sqlite_file(cfg)
        try:
            self.sink: Sink = sink if sink is not None else _open_sink(cfg)
        except BaseException:
            self.sock.close()
            raise
        self.rcvbuf = _size_rcvbuf(self.sock, cfg.rcvbuf)
        self._drops = _DropCounter(self.sock)
        self._key_stamp = self._key_files_stamp()
        self.port = self.sock.getsockname()[1]
        if not cfg.instance:
            cfg.instance = f"{socket.gethostname()}:{self.port}"
        self.log = EventLog(cfg.instance, cfg.log_level)
        self.metrics = Metrics(cfg.instance)
        self.metrics.rcvbuf.set(self.rcvbuf)
        self.rcfg = ResponderConfig(self.backend, self.keys, id_len=cfg.id_len,
                                    window=cfg.window, replay=_core_replay(cfg),
                                    max_age=cfg.session_max_age,
                                    accept_early=cfg.accept_early)
        self.rcfg.started = int(time.time())   # 0-RTT stamped before a restart is refused
        # the CS over HTTP, or the store itself: the same interface (get_cert, ...)
        self.cs: Any = cast(Any, StoreSource(cfg.store, cfg.cs_timeout) if cfg.store
                            else CSClient(cfg.cs_url, cfg.cs_timeout, cfg.cs_token))
        self.creds = Credentials(cfg, Verifier(self.ca, cfg.id_len), self.cs, self.metrics)
        self.follower = RevocationFollower(self.cs, self.creds, self.metrics, self.log,
                                           cfg.revocation_poll, cfg.ids_sync)
        self.udp: DatagramSocket | None = None
        self.dispatcher = Dispatcher(self.rcfg, self.creds, self.sink, self.metrics, self.log,
                                     self._sendto, mtu=cfg.mtu,
                                     fragment_resend=cfg.fragment_resend,
                                     max_handshakes=cfg.max_handshakes,
                                     max_sessions=cfg.max_sessions,
                                     amplification=cfg.amplification,
                                     duplicate_answers=cfg.duplicate_answers)
        self.stopping = asyncio.Event()
        self.shared: Any = None
        self.relay: Any = None
        self._setup_scaleout()
        self.lorawan: Any = None
        if cfg.lorawan_config is not None:
            from host_server.lorawan.bridge import LorawanBridge
            self.lorawan = LorawanBridge(cfg.lorawan_config, self.dispatcher.datagram,
                                         self.log, "airshake-b-" + cfg.instance)
        self._metrics_server: Any = None
        self._check_server_certs()

    def _check_server_certs(self, keys: list[Any] | None = None) -> None:
        from cryptography import x509 as pyx509
        for key in keys or self.keys:
            cert = pyx509.load_der_x509_certificate(key.ref.der)
            try:
                cert.verify_directly_issued_by(self.ca)
            except (ValueError, TypeError, InvalidSignature):
                self.log.warning("server_cert_not_from_ca", suite=key.suite,
                                 why="devices trusting this CA will refuse C_B")

    # -- scale-out: shared state, sibling relay, health ---------------------------------
    @property
    def store_kind(self) -> str:
        return getattr(self.cs, "kind", None) or "cs-http"

    def _setup_scaleout(self) -> None:
        cfg = self.cfg
        if isinstance(self.cs, StoreSource):
            store = self.cs.store
            if hasattr(store, "app_name"):     # who is who in pg_stat_activity
                store.app_name = f"airshake-b {cfg.instance}"[:50]
            self.follower.backoff_max = 1.0    # reconnects to a database are cheap
        if isinstance(self.sink, PgSink):
            self.sink.instance = cfg.instance
        if cfg.reuse_port and cfg.workers > 1 and cfg.relay_group:
            from host_server.server_b.relay import Relay
            self.relay = Relay(cfg.relay_group, cfg.worker_index, cfg.workers, self.metrics,
                               lambda data, addr: self.dispatcher.datagram(data, addr, True))
            self.dispatcher.relay = self.relay
        if cfg.redis:
            from host_server.server_b.shared import SharedState
            owner = self.relay.owner_name if self.relay is not None else cfg.instance
            self.shared = SharedState(cfg.redis, owner, cfg.window, cfg.rate_per_source,
                                      cfg.rate_per_id, cfg.rate_per_id_all, cfg.negative_ttl,
                                      cfg.redis_timeout, self.metrics, self.log,
                                      cfg.replay_size)
            self.dispatcher.shared = self.shared
            self.creds.share_negative = self.shared.put_negative

    async def _close_scaleout(self) -> None:
        if self.relay is not None:
            self.relay.close()
        if self.shared is not None:
            await self.shared.close()

    def health(self) -> tuple[int, dict[str, Any]]:
        """GET /health (host_server.server_b.health); called from the endpoint's thread."""
        cfg = self.cfg
        stream = self.follower.connected
        store_ok = bool(stream) and getattr(self.cs, "connected", True) is not False
        sink_ok = getattr(self.sink, "connected", True) is not False
        redis = self.shared.status() if self.shared is not None else "off"
        mqtt = "off" if self.lorawan is None else "up" if self.lorawan.connected else "down"
        degraded = not store_ok or not sink_ok or redis == "down" or mqtt == "down"
        status = "stopping" if self.stopping.is_set() else ("degraded" if degraded else "ok")
        body = {"status": status, "instance": cfg.instance, "port": self.port,
                "worker": cfg.worker_index if cfg.reuse_port else None,
                "workers": cfg.workers, "store": self.store_kind,
                "store_connected": store_ok, "sink": getattr(self.sink, "kind", "sqlite"),
                "sink_connected": sink_ok, "redis": redis, "mqtt": mqtt,
                "early_data": ("off" if not cfg.accept_early else
                               "refused" if redis == "down" else "accepted"),
                "ids_synced": self.creds.ids.synced,
                "revocation_seq": self.follower.last_seq,
                "pending": len(self.dispatcher.handshakes),
                "sessions": self.dispatcher.sessions.count,
                "completed": self.dispatcher.completed}
        return (503 if status == "stopping" else 200), body

    def _sendto(self, data: bytes, addr: Any) -> None:
        if self.lorawan is not None and self.lorawan.owns(addr):
            self.lorawan.send(data, addr)
        elif self.udp is not None:
            self.udp.sendto(data, addr)

    def _datagram_error(self, e: Exception) -> None:
        self.log.error("internal_error", where="datagram", error=type(e).__name__,
                       detail=str(e)[:200])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.cfg
        udp = self.udp = DatagramSocket(self.sock, self.dispatcher.datagram,
                                        self._datagram_error)
        udp.start(loop)
        if cfg.metrics_port:
            try:
                self._metrics_server = health.serve(cfg.metrics_host, cfg.metrics_port,
                                                    self.metrics.registry, self.health)
            except OSError as e:
                udp.close()
                raise UserError(f"metrics port {cfg.metrics_port} on {cfg.metrics_host} cannot "
                                f"be used ({e.strerror or e}): choose another --metrics-port "
                                "or 0 to turn metrics off") from None
        for part in (self.sink, self.cs):
            if hasattr(part, "start"):
                await part.start()          # connect now if the database answers
        if self.shared is not None:
            await self.shared.start()
        if self.relay is not None:
            self.relay.start()
        self.follower.start()
        if self.lorawan is not None:
            self.lorawan.start()
        self._ticker = loop.create_task(self._tick())
        self.log.lifecycle("ready", port=self.port, host=cfg.host,
                      metrics_port=cfg.metrics_port or None, cs_url=cfg.cs_url,
                      suites=sorted(k.suite for k in self.keys), db=redact(str(cfg.db)),
                      window=cfg.window, cache_size=cfg.cache_size, started=self.rcfg.started,
                      store=self.store_kind, redis=self.shared.status() if self.shared else None,
                      accept_early=cfg.accept_early, rcvbuf=self.rcvbuf,
                      rcvbuf_asked=cfg.rcvbuf, amplification=cfg.amplification,
                      worker=f"{cfg.worker_index}/{cfg.workers}" if cfg.reuse_port else None,
                      lorawan=(f"{cfg.lorawan} {cfg.lorawan_config.url} application "
                               f"{cfg.application} fport {cfg.fport}") if self.lorawan
                      else None)

    async def _tick(self) -> None:
        next_keys = next_drops = 0.0
        while True:
            await asyncio.sleep(TICK)
            try:
                self.dispatcher.tick()
                now = time.monotonic()
                if now >= next_drops:
                    next_drops = now + DROPS_POLL
                    self._count_drops()
                if now >= next_keys:
                    next_keys = now + KEY_POLL
                    if self._key_files_stamp() != self._key_stamp:
                        self.reload_keys()
            except Exception as e:  # keep ticking whatever one expiry did
                self.log.error("internal_error", where="tick", error=type(e).__name__)

    def _count_drops(self) -> None:
        new = self._drops.read()
        if new:
            self.metrics.udp_drops.inc(new)
            self.log.warning("udp_drops", dropped=new, rcvbuf=self.rcvbuf,
                             hint="raise --rcvbuf (and net.core.rmem_max)")

    # -- key reload (issue 11 item 4) ---------------------------------------------------
    def _key_files(self) -> list[Path]:
        specs = list(self.cfg.keys)
        if self.cfg.key_dir is not None:
            try:
                specs += specs_in_dir(self.cfg.key_dir)
            except UserError:
                pass
        return [p for s in specs for p in (s.key, s.cert)]

    def _key_files_stamp(self) -> tuple[Any, ...]:
        out: list[tuple[Any, ...]] = []
        for path in self._key_files():
            try:
                st = path.stat()
                out.append((str(path), st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append((str(path), None))
        return tuple(out)

    def reload_keys(self) -> bool:
        """Re-read the key files; serve them if they all load (else keep the old ones)."""
        self._key_stamp = self._key_files_stamp()
        try:
            keys = load_server_keys(self.backend, self.cfg)
        except UserError as e:
            self.log.warning("server_keys_not_reloaded", why=str(e),
                             effect="the keys loaded before are still served")
            return False
        pin_server_keys(self.backend, keys)
        self._check_server_certs(keys)
        self.keys = keys
        self.rcfg.keys.clear()                  # in place: copies of rcfg share the dict
        self.rcfg.keys.update((k.suite, k) for k in keys)
        self.log.info("server_keys_reloaded", suites=sorted(k.suite for k in keys))
        return True

    async def stop(self) -> None:
        self.log.lifecycle("stopping", completed=self.dispatcher.completed)
        if self.udp is not None:
            self.udp.close()
        if self.lorawan is not None:
            await self.lorawan.stop()
        await self.follower.stop()
        self._ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._ticker
        await self.dispatcher.drain()
        await self.sink.close()
        await self.cs.close()
        await self._close_scaleout()
        if self._metrics_server is not None:
            server = self._metrics_server[0] if isinstance(self._metrics_server, tuple) \
                else self._metrics_server
            with contextlib.suppress(Exception):
                server.shutdown()
        self.log.lifecycle("stopped")


def _bind_udp(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as e:
        raise UserError(f"cannot resolve --host {host!r} ({e.strerror}): give an IP address "
                        "or a known host name") from None
    family, _type, _proto, _name, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if reuse_port:   # N workers on one port; the kernel spreads devices by 4-tuple hash
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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


def _size_rcvbuf(sock: socket.socket, size: int) -> int:
    """Ask for a receive buffer of size bytes (as root past net.core.rmem_max); the size
    the kernel granted (Linux reports twice what it reserves for data)."""
    if size:
        force = getattr(socket, "SO_RCVBUFFORCE", None)
        try:
            if force is None:
                raise PermissionError
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except (PermissionError, OSError):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


class _DropCounter:
    """The kernel's count of datagrams dropped on one UDP socket (Linux: the drops
    column of /proc/net/udp{,6} for the socket's inode); read() gives the increase."""

    def __init__(self, sock: socket.socket) -> None:
        self.inode = str(os.fstat(sock.fileno()).st_ino)
        self.table = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
        self.last = self._total()

    def _total(self) -> int | None:
        try:
            with open(self.table) as f:
                for line in f:
                    fields = line.split()
                    if len(fields) > 12 and fields[9] == self.inode:
                        return int(fields[12])
        except (OSError, ValueError):
            pass
        return None

    def read(self) -> int:
        total = self._total()
        if total is None or self.last is None:
            self.last = total
            return 0
        new, self.last = max(0, total - self.last), total
        return new


def _core_replay(cfg: ServerConfig) -> Any:
    """The core's replay cache of authenticated 0-RTT m1s: per process (never evicting:
    FULL refuses 0-RTT); with Redis a pass-through, as the dispatcher records them in
    the shared cache (host_server.server_b.shared)."""
    if cfg.redis:
        from host_server.server_b.shared import AcceptAll
        return AcceptAll()
    return ReplayCache(cfg.replay_size)


def _new_sqlite_file(cfg: ServerConfig) -> Path | None:
    """The SQLite file this start will create (None: a URL, or the file exists)."""
    if isinstance(cfg.db, str) and "://" in cfg.db:
        return None
    return None if Path(cfg.db).exists() else Path(cfg.db)


def _remove_db(path: Path | None) -> None:
    if path is not None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                Path(str(path) + suffix).unlink()


def _open_sink(cfg: ServerConfig) -> Sink:
    if isinstance(cfg.db, str) and "://" in cfg.db:
        return PgSink(cfg.db, cfg.reply)
    return SqliteSink(Path(cfg.db), cfg.reply)


async def serve(cfg: ServerConfig, on_ready: Any = None) -> int:
    for noisy in ("httpx", "httpcore"):      # one line per CS request is too much
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server = Server(cfg)
    try:
        await server.start()
    except BaseException:
        await server.sink.close()
        await server.cs.close()
        await server._close_scaleout()
        server.sock.close()
        _remove_db(server.created_db)   # e.g. the metrics port was taken
        raise
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stopping.set)
    loop.add_signal_handler(signal.SIGHUP, server.reload_keys)
    if on_ready is not None:
        on_ready()
    try:
        await server.stopping.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await server.stop()
    return 0
