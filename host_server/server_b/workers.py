# host_server.server_b.workers: `airshake server --workers N`: a supervisor that starts N B
# processes serving one UDP address with SO_REUSEPORT, and the worker side of it.
#   - The supervisor picks the port (port = 0: a free one, held with a SO_REUSEPORT
#     socket of its own until the workers are up), starts worker 0 alone (a bad setting
#     is then one error line, not N), then the others, and logs `ready` once all are.
#   - Each worker is `python -m host_server.cli <the same arguments>` with
#     $AIRSHAKE_B_WORKER = "INDEX/COUNT/GROUP/PORT/READY_FD": it binds with SO_REUSEPORT,
#     names itself INSTANCE/wINDEX, serves metrics and /health on metrics_port + INDEX,
#     and joins the relay group GROUP (host_server.server_b.relay) of its siblings.
#   - SIGTERM / SIGINT are forwarded to every worker; the supervisor exits when all have,
#     0 if they all stopped cleanly. A worker that dies is logged and not restarted
#     (the kernel sends its devices to the others); when none is left the supervisor
#     exits 1.
# Linux hashes each datagram's 4-tuple to a socket, so a device's handshake stays on
# one worker; docs/DEPLOY.md says why, and what happens when a worker dies.
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from host_server.server_b.config import ServerConfig
from host_server.server_b.logs import EventLog
from host_server.errors import UserError

ENV = "AIRSHAKE_B_WORKER"
READY_TIMEOUT = 30.0


def apply_worker_env(cfg: ServerConfig, value: str) -> int | None:
    """Turn cfg into worker INDEX's settings; returns the readiness pipe's fd."""
    try:
        index, count, group, port, fd = value.split("/")
        cfg.worker_index, cfg.workers = int(index), int(count)
        cfg.relay_group, cfg.port = group, int(port)
        ready_fd = int(fd) if fd else None
    except ValueError:
        raise UserError(f"${ENV} = {value!r} is not INDEX/COUNT/GROUP/PORT/FD: it is set by "
                        "`airshake server --workers`, not by hand")
    cfg.reuse_port = True
    if cfg.metrics_port:
        cfg.metrics_port += cfg.worker_index
    base = cfg.instance or f"{socket.gethostname()}:{cfg.port}"
    cfg.instance = f"{base}/w{cfg.worker_index}"
    return ready_fd


def signal_ready(fd: int | None) -> None:
    if fd is None:
        return
    try:
        os.write(fd, b"r")
        os.close(fd)
    except OSError:
        pass


def _reserve(host: str, port: int) -> socket.socket:
    try:
        family, _t, _p, _n, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except socket.gaierror as e:
        raise UserError(f"cannot resolve --host {host!r} ({e.strerror}): give an IP address")
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        raise UserError(f"cannot listen on UDP {host}:{port} ({e.strerror or e}): check "
                        "--host and --port")
    return sock


class Supervisor:
    def __init__(self, cfg: ServerConfig, argv: list[str]) -> None:
        self.cfg = cfg
        self.argv = argv
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * cfg.workers
        self.stopping = False
        self.log = EventLog((cfg.instance or socket.gethostname()) + "/supervisor",
                            cfg.log_level)

    def _start(self, index: int, port: int, group: str) -> tuple[subprocess.Popen[bytes], int]:
        r, w = os.pipe()
        env = dict(os.environ)
        env[ENV] = f"{index}/{self.cfg.workers}/{group}/{port}/{w}"
        proc = subprocess.Popen([sys.executable, "-m", "host_server.cli", *self.argv],
                                env=env, pass_fds=(w,), stdin=subprocess.DEVNULL)
        os.close(w)
        return proc, r

    def _wait_ready(self, started: list[tuple[int, subprocess.Popen[bytes], int]]) -> bool:
        pending = {r: (i, p) for i, p, r in started}
        deadline = time.monotonic() + READY_TIMEOUT
        while pending and time.monotonic() < deadline:
            ready, _, _ = select.select(list(pending), [], [], 0.1)
            for r in ready:
                got = os.read(r, 1)
                os.close(r)
                i, p = pending.pop(r)
                if not got:          # the worker exited before it was ready
                    p.wait()
                    return False
            for r, (i, p) in list(pending.items()):
                if p.poll() is not None:
                    os.close(r)
                    return False
        for r in pending:
            os.close(r)
        return not pending

    def run(self) -> int:
        cfg = self.cfg
        hold = _reserve(cfg.host, cfg.port)     # SO_REUSEPORT: the workers can join it
        port = hold.getsockname()[1]
        group = f"{port}-{os.getpid()}"
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        try:
            proc, r = self._start(0, port, group)
            self.procs[0] = proc
            if not self._wait_ready([(0, proc, r)]):
                self._terminate()
                return proc.wait() or 2        # it printed its one error line
            started = []
            for i in range(1, cfg.workers):
                proc, r = self._start(i, port, group)
                self.procs[i] = proc
                started.append((i, proc, r))
            if not self._wait_ready(started):
                self.log.error("workers_failed", why="a worker exited while starting")
                self._terminate()
                self._reap_all()
                return 1
        finally:
            hold.close()        # datagrams now reach the workers only
        self.log.lifecycle("ready", port=port, host=cfg.host, workers=cfg.workers,
                           pids=[p.pid for p in self.procs if p],
                           metrics_ports=[cfg.metrics_port + i for i in range(cfg.workers)]
                           if cfg.metrics_port else None)
        return self._supervise()

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stopping = True
        self._terminate(signal.SIGTERM)

    def _terminate(self, sig: int = signal.SIGTERM) -> None:
        for p in self.procs:
            if p is not None and p.poll() is None:
                try:
                    p.send_signal(sig)
                except ProcessLookupError:
                    pass

    def _reap_all(self) -> None:
        for p in self.procs:
            if p is not None:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    def _supervise(self) -> int:
        codes: dict[int, int] = {}
        while len(codes) < len([p for p in self.procs if p]):
            for i, p in enumerate(self.procs):
                if p is None or i in codes:
                    continue
                code = p.poll()
                if code is None:
                    continue
                codes[i] = code
                if not self.stopping:
                    self.log.error("worker_exited", worker=i, pid=p.pid, code=code,
                                   left=sum(1 for j, q in enumerate(self.procs)
                                            if q and j not in codes))
            time.sleep(0.05)
        if self.stopping:
            self.log.lifecycle("stopped", workers=len(codes))
            return 0 if all(c == 0 for c in codes.values()) else 1
        self.log.error("no_workers_left")
        return 1


def supervise(cfg: ServerConfig, argv: list[str]) -> int:
    return Supervisor(cfg, argv).run()
