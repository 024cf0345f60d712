# host_server.server_b.loadgen: measures server B's handshake throughput with a warm cache.
# Sets up a throw-away PKI, runs `airshake cs serve` and `airshake server` as
# subprocesses, enrolls N devices, then W worker processes each run C concurrent
# Initiators from the core over UDP (one socket each), handshake after handshake, with
# C_B held by reference as a deployed device would. After a warm-up (every device's
# certificate in B's cache) it counts completed (confirmed) handshakes over the
# measured window and B's own CPU time (/proc/PID/stat, all its threads), and reports
# handshakes per wall second and per CPU-second of B (= per core).
#   .venv/bin/python -m host_server.server_b.loadgen --devices 200 --workers 1 --duration 10
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from airshake import events as ev
from airshake import shell
from airshake.crypto import load_backend
from airshake.initiator import Initiator
from airshake.keys import DeviceKey, ServerRef
from host_server.server_b.backend import load_server_backend
from host_server.udp_link import UdpLink

AIRSHAKE = str(Path(sys.executable).with_name("airshake"))


def cs_tokens() -> tuple[str, str, dict[str, str]]:
    """Fresh admin and reader tokens for a CS this tool starts, and the environment
    that hands them to the CS and to B (the CS is closed: docs/CS_API.md)."""
    import secrets
    admin, reader = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    env = dict(os.environ, AIRSHAKE_ADMIN_TOKEN=admin, AIRSHAKE_READER_TOKEN=reader,
               AIRSHAKE_CS_TOKEN=reader)
    return admin, reader, env


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class WorkerResult:
    completed: int
    failed: int
    latencies: list[float]


async def run_handshake(link: UdpLink, ini: Initiator) -> float | None:
    """Drive a connected Initiator over the link (airshake.shell) to its end: the time
    of HandshakeConfirmed (B's first record arrived), or None if it failed. Datagrams
    that arrive late for it are dropped from the inbox afterwards."""
    try:
        got = await shell.drive(ini, link, time.time, idle=1.0,
                                until=lambda e: isinstance(e, ev.HandshakeConfirmed))
        return None if got is None else time.time()
    finally:
        link.drain()


async def _slot_loop(port: int, devices: list[DeviceKey], ref: ServerRef, anchor: bytes,
                     data: bytes, start_count: float, stop_at: float, out: WorkerResult,
                     offset: int, stride: int) -> None:
    """One concurrent device slot: handshakes back to back with devices offset,
    offset + stride, ... (stride = all slots of all workers, so together they walk every
    device in turn and the warm-up reaches each one)."""
    backend = load_server_backend()   # keys kept loaded, as B keeps its own
    link = await UdpLink.open(("127.0.0.1", port), connect=True)
    i = offset
    try:
        while time.time() < stop_at:
            key = devices[i % len(devices)]
            i += stride
            ini = Initiator(backend, [key], anchor, server=ref, rto=1.0, max_retries=3,
                            server_name=ref.subject)
            t0 = time.time()
            ini.connect(t0, data)
            confirmed = await run_handshake(link, ini)
            if t0 < start_count:
                continue
            if confirmed is None:
                out.failed += 1
            else:
                out.completed += 1
                out.latencies.append(confirmed - t0)
    finally:
        link.close()


def _worker(args: tuple) -> WorkerResult:
    port, suite, privs, ref_der, anchor, data, conc, start_count, stop_at, wid, nworkers = args
    backend = load_backend("pyca")
    devices = [DeviceKey(backend, suite, p) for p in privs]
    ref = ServerRef(backend, suite, ref_der)
    out = WorkerResult(0, 0, [])

    async def go() -> None:
        await asyncio.gather(*[_slot_loop(port, devices, ref, anchor, data, start_count,
                                          stop_at, out, wid * conc + k, nworkers * conc)
                             for k in range(conc)])
    asyncio.run(go())
    return out


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("cs serve exited")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit("cs serve did not start")


def _wait_ready(log: Path, proc: subprocess.Popen, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("event") == "ready":
                return int(obj["port"])
        if proc.poll() is not None:
            raise SystemExit("server B exited: " + log.read_text())
        time.sleep(0.05)
    raise SystemExit("server B did not start")


def run(args: argparse.Namespace) -> dict:
    from host_server.ca import CA   # the CA tools only here: workers do not need them
    backend = load_backend("pyca")
    tmp = Path(tempfile.mkdtemp(prefix="airshake-loadgen-"))
    procs: list[subprocess.Popen] = []
    try:
        ca = CA.init(tmp / "ca", "p256" if args.suite == 2 else "ed25519", "loadgen CA")
        ca.issue_server(args.suite, "b.loadgen", tmp / "keys")
        cs_port = _free_tcp_port()
        cs_url = f"http://127.0.0.1:{cs_port}"
        admin, _, env = cs_tokens()
        cs = subprocess.Popen([AIRSHAKE, "cs", "serve", "--db", str(tmp / "cs.db"),
                               "--ca-dir", str(tmp / "ca"), "--port", str(cs_port)],
                              stdout=subprocess.DEVNULL, stderr=open(tmp / "cs.log", "w"),
                              env=env)
        procs.append(cs)
        _wait_http(cs_url, cs)
        keys = [DeviceKey.generate(backend, args.suite) for _ in range(args.devices)]
        with httpx.Client(base_url=cs_url, timeout=10,
                          headers={"Authorization": "Bearer " + admin}) as client:
            for k in keys:
                r = client.post("/enroll", json={"name": "load-" + k.id_a.hex(),
                                                 "public_key": base64.b64encode(k.spki).decode()})
                r.raise_for_status()
        b_log = tmp / "b.log"
        b = subprocess.Popen([AIRSHAKE, "server", "--ca-cert", str(tmp / "ca" / "ca.crt"),
                              "--key-dir", str(tmp / "keys"), "--cs-url", cs_url, "--port", "0",
                              "--metrics-port", "0", "--db", str(tmp / "b.db"),
                              "--rate-per-source", "1000000:1000000",
                              "--rate-per-id", "1000000:1000000",
                              "--log-level", args.log_level, *args.b_arg],
                             stdout=subprocess.DEVNULL, stderr=open(b_log, "w"), env=env)
        procs.append(b)
        port = _wait_ready(b_log, b)
        ref_der = (tmp / "keys" / f"server-suite{args.suite}.der").read_bytes()
        anchor = ca.cert_der
        privs = [k.private for k in keys]
        start_count = time.time() + args.warmup + 1.0
        stop_at = start_count + args.duration
        jobs = [(port, args.suite, privs, ref_der, anchor, args.data.encode(),
                 args.concurrency, start_count, stop_at, w, args.workers)
                for w in range(args.workers)]
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(args.workers) as pool:
            pending = pool.map_async(_worker, jobs)
            time.sleep(max(0.0, start_count - time.time()))
            cpu0, t0 = cpu_seconds(b.pid), time.time()
            time.sleep(max(0.0, stop_at - time.time()))
            cpu1, t1 = cpu_seconds(b.pid), time.time()
            results = pending.get(timeout=args.duration + args.warmup + 60)
        completed = sum(r.completed for r in results)
        failed = sum(r.failed for r in results)
        lat = sorted(x for r in results for x in r.latencies)
        b_cpu = cpu1 - cpu0
        return {
            "suite": args.suite, "devices": args.devices, "workers": args.workers,
            "concurrency": args.concurrency, "data_bytes": len(args.data),
            "log_level": args.log_level, "seconds": round(t1 - t0, 2),
            "completed": completed, "failed": failed,
            "handshakes_per_s": round(completed / (t1 - t0), 1),
            "b_cpu_s": round(b_cpu, 2),
            "b_cpu_utilisation": round(b_cpu / (t1 - t0), 2),
            "handshakes_per_b_cpu_s": round(completed / b_cpu, 1) if b_cpu else None,
            "latency_ms_p50": round(lat[len(lat) // 2] * 1000, 2) if lat else None,
            "latency_ms_p99": round(lat[int(len(lat) * 0.99)] * 1000, 2) if lat else None,
        }
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        if not args.keep:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m host_server.server_b.loadgen",
                                description="Handshakes/s of server B with a warm cache: "
                                "N devices, W client processes x C concurrent Initiators.")
    p.add_argument("--devices", type=int, default=200, help="enrolled devices (default 200)")
    p.add_argument("--workers", type=int, default=1, help="client processes (default 1)")
    p.add_argument("--concurrency", type=int, default=32,
                   help="concurrent handshakes per client process (default 32)")
    p.add_argument("--duration", type=float, default=10, help="measured seconds (default 10)")
    p.add_argument("--warmup", type=float, default=3, help="seconds before measuring "
                   "(every device handshakes at least once; default 3)")
    p.add_argument("--suite", type=int, choices=(0, 2), default=0)
    p.add_argument("--data", default="", help="application data in each m3 (default none)")
    p.add_argument("--log-level", default="warning", choices=("info", "warning"),
                   help="B's log level (info = one line per handshake; default warning)")
    p.add_argument("--b-arg", action="append", default=[], help="extra flag for B (repeat)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    args = p.parse_args(argv)
    print(json.dumps(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
