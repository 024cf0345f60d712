# host_server.cert_store.service: runs the certificate store as a service process. Owns the
# [cs] settings (flags over environment over the TOML file over defaults), opening the
# CA and the store, binding the port (a port in use is one UserError line, not a uvicorn
# traceback), and uvicorn with a graceful stop on SIGTERM/SIGINT: the SSE streams are
# ended first so open subscriptions never hold the shutdown. The CS is never open: its
# admin and reader tokens come from the settings or from the state directory
# (host_server.cert_store.tokens), made there at first start.
from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from host_server.ca import CA
from host_server.config import load_section
from host_server.cert_store import DEFAULT_PORT, logs, tokens
from host_server.cert_store.app import CSApp, Settings
from host_server.cert_store.logs import log
from host_server.cert_store.pgsql import redact
from host_server.cert_store.backends import open_store
from host_server.cert_store.store import CertStore, Enrolled, StoreUnavailable
from host_server.errors import UserError

_KIND = {int: "an integer", str: "a string"}
KEYS = ("db", "ca_dir", "host", "port", "id_len", "admin_token", "reader_token", "state_dir",
        "cert_days", "instance")


@dataclass
class ServeConfig:
    db: str
    ca_dir: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    id_len: int = 8
    admin_token: str | None = None   # None: state_dir/admin.token (made if absent)
    reader_token: str | None = None  # None: state_dir/reader.token (made if absent)
    state_dir: str = "."
    cert_days: int = 3650
    instance: str = ""

    def __repr__(self) -> str:  # never show a token
        admin = "set" if self.admin_token else "file"
        reader = "set" if self.reader_token else "file"
        return (f"ServeConfig(db={redact(str(self.db))!r}, ca_dir={self.ca_dir!r}, "
                f"host={self.host!r}, port={self.port}, id_len={self.id_len}, "
                f"admin_token={admin}, reader_token={reader}, state_dir={self.state_dir!r}, "
                f"cert_days={self.cert_days}, instance={self.instance!r})")


def resolve(args: argparse.Namespace) -> ServeConfig:
    """Settings from flags, $AIRSHAKE_ADMIN_TOKEN / $AIRSHAKE_READER_TOKEN and the
    [cs] table of --config. Relative paths in the file are relative to the file."""
    path = getattr(args, "config", None)
    section = load_section(path, "cs")
    where = f"config file {path}" if path else "settings"
    unknown = sorted(set(section) - set(KEYS))
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} in [cs] (known: "
                        f"{', '.join(KEYS)})")
    base = Path(path).parent if path else Path(".")

    def get(name: str, default: Any, kind: type, env: str | None = None) -> Any:
        # flag > environment > config file > default, as host_server.config.pick
        value: Any = getattr(args, name, None)
        if value is None and env:
            value = os.environ.get(env) or None
        from_file = value is None and name in section
        if value is None:
            value = section.get(name, default)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise UserError(f"{where}: {name} must be {_KIND[kind]}, not {value!r}")
        if from_file and name in ("db", "ca_dir", "state_dir") and "://" not in str(value):
            value = str(base / str(value))
        return value

    def bounded(name: str, default: int, low: int, high: int) -> int:
        value = get(name, default, int)
        if not low <= value <= high:
            raise UserError(f"{where}: {name} must be between {low} and {high}, not {value}")
        return value

    db = get("db", "cs.db", str)
    host = get("host", "127.0.0.1", str)
    port = bounded("port", DEFAULT_PORT, 1, 65535)
    id_len = bounded("id_len", 8, 1, 32)
    cert_days = bounded("cert_days", 3650, 1, 36500)
    instance = get("instance", socket.gethostname(), str)
    admin = get("admin_token", None, str, env=tokens.ADMIN_ENV) or None
    reader = get("reader_token", None, str, env=tokens.READER_ENV) or None
    admin = admin and tokens.check(admin, "admin_token")
    reader = reader and tokens.check(reader, "reader_token")
    if admin and admin == reader:
        raise UserError(f"{where}: the admin and reader tokens are the same: give them "
                        "different values")
    state_dir = get("state_dir", None, str) or str(tokens.default_state_dir(db))
    ca_dir = get("ca_dir", None, str)
    if not ca_dir:
        raise UserError("no CA directory: pass --ca-dir DIR or set ca_dir in the [cs] table "
                        "of --config (make one with `airshake ca init --dir DIR`)")
    return ServeConfig(db=db, ca_dir=ca_dir, host=host, port=port, id_len=id_len,
                       admin_token=admin, reader_token=reader, state_dir=state_dir,
                       cert_days=cert_days, instance=instance)


def _tokens(cfg: ServeConfig) -> tuple[str, str, list[str]]:
    """(admin token, reader token, names of the token files made now)."""
    made, found = [], []
    for configured, name in ((cfg.admin_token, tokens.ADMIN_FILE),
                             (cfg.reader_token, tokens.READER_FILE)):
        if configured:
            found.append(configured)
            continue
        token, new = tokens.load_or_make(Path(cfg.state_dir), name)
        found.append(token)
        if new:
            made.append(str(Path(cfg.state_dir) / name))
    if found[0] == found[1]:
        raise UserError("the admin and reader tokens are the same: give them different "
                        "values")
    return found[0], found[1], made


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket on host:port, or one UserError line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise UserError(f"cannot listen on host {host!r}: it does not resolve; check host")
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use: stop the other process or "
                            "choose another --port")
        if e.errno == errno.EACCES:
            raise UserError(f"not allowed to listen on port {port}: choose a port above 1023")
        raise UserError(f"cannot listen on {host}:{port} ({e.strerror}): check host and port")
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn, with SIGTERM/SIGINT ending the SSE streams before it drains connections,
    and without re-raising the signal afterwards (a stop on request exits 0)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]):
        super().__init__(config)
        self._on_exit = on_exit
        self.stopped_by: str | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        sigs = (signal.SIGINT, signal.SIGTERM)
        for sig in sigs:
            loop.add_signal_handler(sig, self._stop, sig)
        try:
            yield
        finally:
            for sig in sigs:
                loop.remove_signal_handler(sig)

    def _stop(self, sig: int) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
        self.stopped_by = signal.Signals(sig).name
        self._on_exit()


def serve(cfg: ServeConfig, verbose: bool = False) -> int:
    logs.setup(verbose)
    ca = CA.load(cfg.ca_dir)
    sock = bind(cfg.host, cfg.port)
    try:
        store = open_store(cfg.db)
        if store.kind == "sqlite":
            _check_sqlite(store.path)  # type: ignore[attr-defined]
    except BaseException:
        sock.close()
        raise
    settings = Settings(id_len=cfg.id_len, cert_days=cfg.cert_days, instance=cfg.instance)
    try:
        return asyncio.run(_run(CSApp(store, ca, settings), sock, cfg))
    finally:
        sock.close()


def _check_sqlite(path: str) -> None:
    """Refuse a SQLite file whose header is intact but whose pages are not: the CS would
    start, then answer 500 to every request that reads them."""
    import sqlite3
    db = sqlite3.connect(path)
    try:
        result = db.execute("PRAGMA quick_check(1)").fetchone()[0]
    except sqlite3.DatabaseError as e:
        result = str(e)
    finally:
        db.close()
    if result != "ok":
        result = " ".join(str(result).replace("*** in database main ***", "").split())
        raise UserError(f"the certificate database {path} is corrupt ({result}): restore it "
                        f"from a backup (`sqlite3 {path} .recover` may save what is left)")


async def _run(app: CSApp, sock: socket.socket, cfg: ServeConfig) -> int:
    try:
        await app.store.connect()
        # only a CS that can start writes token files (a failed start leaves none)
        app.settings.admin_token, app.settings.reader_token, made = _tokens(cfg)
    except StoreUnavailable as e:
        await app.store.close()
        raise UserError(str(e)) from None
    except BaseException:
        await app.store.close()
        raise
    config = uvicorn.Config(app.asgi(), log_config=None, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=5, server_header=False)
    server = _Server(config, on_exit=app.bus.close)
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    log("start", url=f"http://{host}:{cfg.port}", db=redact(str(cfg.db)), store=app.store.kind,
        ca_dir=cfg.ca_dir, ca_alg=app.ca.alg, id_len=cfg.id_len, instance=cfg.instance,
        admin_token="set" if cfg.admin_token else str(Path(cfg.state_dir) / tokens.ADMIN_FILE),
        reader_token=("set" if cfg.reader_token
                      else str(Path(cfg.state_dir) / tokens.READER_FILE)), pid=os.getpid())
    if made:
        log("tokens_made", files=made, mode="0600",
            why="first start: give reader.token to B (--cs-token-file), keep admin.token "
                "for enroll and revoke")
    feed = None
    if app.store.push:
        feed = asyncio.get_running_loop().create_task(_feed(app))
    elif app.store.read_only:    # a directory: revocations appear in its CRLs
        feed = asyncio.get_running_loop().create_task(_poll_feed(app))
    try:
        await server.serve(sockets=[sock])
    finally:
        if feed is not None:
            feed.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feed
        await app.store.close()
        log("stop", signal=server.stopped_by)
    return 0


async def _feed(app: CSApp, backoff_max: float = 2.0) -> None:
    """Publish every revocation the shared store records (by any CS instance) on the
    local bus (the bus ignores the ones this instance published itself), and the
    enrollments other instances record."""
    store: CertStore = app.store
    last = await _last_seq(store)
    backoff = 0.2
    while True:
        try:
            async for item in store.follow(last, enrollments=True):
                if isinstance(item, Enrolled):   # enrolled through another instance
                    app.bus.publish_enrolled(item)
                    continue
                app.bus.publish(item)
                last = max(last, item.seq)
                backoff = 0.2
        except StoreUnavailable as e:
            log("store_feed", logging.WARNING, result="lost", error=str(e), last_seq=last)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, backoff_max)


async def _poll_feed(app: CSApp, every: float = 5.0) -> None:
    """Publish the revocations a read-only store (LDAP) reveals, polling it."""
    last = await _last_seq(app.store)
    while True:
        await asyncio.sleep(every)
        try:
            for rev in await app.store.revocations_since(last):
                app.bus.publish(rev)
                last = max(last, rev.seq)
        except StoreUnavailable as e:
            log("store_feed", logging.WARNING, result="lost", error=str(e), last_seq=last)


async def _last_seq(store: CertStore) -> int:
    while True:
        try:
            return await store.last_seq()
        except StoreUnavailable:
            await asyncio.sleep(1)
