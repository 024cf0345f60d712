# bench.bload: server B under load, for bench.server and bench.scaling. Owns a throw-away
# deployment (CA and B's key made with host_server.ca, `airshake cs serve` and
# `airshake server` as subprocesses, as host_server/server_b/loadgen.py sets them up), fast
# concurrent enrollment over the CS's POST /enroll, and the client side: spawned worker
# processes, each running C concurrent Initiators of the core over UDP (one socket per
# slot, C_B by reference, as a deployed device). What it measures of B: completed
# handshakes per CPU-second of B's process (loadgen.cpu_seconds: /proc/PID/stat, all
# threads) and per wall second, VmRSS / VmHWM, and B's Prometheus counters, which prove
# what each window was (cache hits, CS requests, handshakes completed on B's side).
#
# As in loadgen's own worker, slot g of S walks the devices g, g+S, g+2S, ...; unlike it,
# a handshake counts in a window when its confirmation (B's first record, which proves
# both sides hold the same session keys) arrives in it.
from __future__ import annotations

import asyncio
import base64
import multiprocessing
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from airshake.crypto import load_backend
from airshake.initiator import Initiator
from airshake.keys import DeviceKey, ServerRef
from bench.common import BenchFailure, check
from host_server.server_b import loadgen
from host_server.server_b.backend import load_server_backend
from host_server.udp_link import UdpLink
from testkit.metrics import Metrics, parse_metrics

RATE_OFF = "1000000:1000000"  # B's rate limits out of the way, as loadgen does


def metric(m: Metrics, name: str, **labels: str) -> float:
    """Sum of the series of name whose labels include the given ones."""
    want = set(labels.items())
    return sum(v for (n, ls), v in m.items() if n == name and want <= ls)


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in bytes."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[{"VmRSS": "rss_bytes", "VmHWM": "hwm_bytes"}[key]] = \
                    int(value.split()[0]) * 1024
    return out


class BServer:
    """`airshake server` with metrics on a free port, logs in the stack's directory."""

    def __init__(self, stack: Stack, name: str, flags: list[str]) -> None:
        self.name = name
        self.metrics_port = loadgen._free_tcp_port()
        self.log = stack.tmp / (name + ".log")
        args = [loadgen.AIRSHAKE, "server", "--ca-cert", str(stack.tmp / "ca" / "ca.crt"),
                "--key-dir", str(stack.tmp / "keys"), "--cs-url", stack.cs_url,
                "--port", "0", "--metrics-port", str(self.metrics_port),
                "--db", str(stack.tmp / (name + ".db")), "--instance", name,
                "--rate-per-source", RATE_OFF, "--rate-per-id", RATE_OFF,
                "--log-level", "warning", *flags]
        self._stderr = open(self.log, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                     env=stack.env)
        try:
            self.port = loadgen._wait_ready(self.log, self.proc)
        except SystemExit as e:
            self.stop()
            raise BenchFailure("server B %s did not start: %s" % (name, str(e)[:200]))

    def cpu(self) -> float:
        return loadgen.cpu_seconds(self.proc.pid)

    def memory(self) -> dict[str, int]:
        return memory(self.proc.pid)

    def metrics(self) -> Metrics:
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        return parse_metrics(httpx.get(url, timeout=10).text)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


class Stack:
    """CA, B's key and certificate, a running CS, and the enrolled device keys."""

    def __init__(self, suite: int = 0) -> None:
        from host_server.ca import CA
        self.suite = suite
        self.backend = load_backend("pyca")
        self.tmp = Path(tempfile.mkdtemp(prefix="airshake-bench-"))
        self.ca = CA.init(self.tmp / "ca", "p256" if suite == 2 else "ed25519", "bench CA")
        self.ca.issue_server(suite, "b.bench", self.tmp / "keys")
        self.ref_der = (self.tmp / "keys" / ("server-suite%d.der" % suite)).read_bytes()
        self.anchor = self.ca.cert_der
        port = loadgen._free_tcp_port()
        self.cs_url = "http://127.0.0.1:%d" % port
        self._cs_log = open(self.tmp / "cs.log", "w")
        self.admin_token, _, self.env = loadgen.cs_tokens()
        self.cs = subprocess.Popen([loadgen.AIRSHAKE, "cs", "serve", "--db",
                                    str(self.tmp / "cs.db"), "--ca-dir", str(self.tmp / "ca"),
                                    "--port", str(port)],
                                   stdout=subprocess.DEVNULL, stderr=self._cs_log, env=self.env)
        try:
            loadgen._wait_http(self.cs_url, self.cs)
        except SystemExit as e:
            self.close()
            raise BenchFailure("certificate store did not start: %s" % e)
        self.keys: list[DeviceKey] = []

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def enroll(self, total: int, concurrency: int = 16) -> dict[str, float]:
        """Generate and enroll devices until `total` are enrolled; returns the count added,
        the seconds it took and the rate. Every answer is checked (201, the right ID)."""
        new = [DeviceKey.generate(self.backend, self.suite)
               for _ in range(max(0, total - len(self.keys)))]
        t0 = time.perf_counter()
        asyncio.run(_enroll_all(self.cs_url, self.admin_token, new, concurrency))
        seconds = time.perf_counter() - t0
        self.keys.extend(new)
        return {"added": len(new), "seconds": round(seconds, 2),
                "per_s": round(len(new) / seconds, 1) if new and seconds else 0.0}

    def start_b(self, name: str, *flags: str) -> BServer:
        return BServer(self, name, list(flags))

    def cs_cpu(self) -> float:
        return loadgen.cpu_seconds(self.cs.pid)

    def close(self) -> None:
        if self.cs.poll() is None:
            self.cs.send_signal(signal.SIGTERM)
            try:
                self.cs.wait(10)
            except subprocess.TimeoutExpired:
                self.cs.kill()
                self.cs.wait()
        self._cs_log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


async def _enroll_all(url: str, admin_token: str, keys: list[DeviceKey],
                      concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits,
                                 headers={"Authorization": "Bearer " + admin_token}) as client:
        async def one(key: DeviceKey) -> None:
            async with gate:
                r = await client.post("/enroll", json={
                    "name": "bench-" + key.id_a.hex(),
                    "public_key": base64.b64encode(key.spki).decode()})
            if r.status_code != 201 or r.json().get("id") != key.id_a.hex():
                raise BenchFailure("enrollment refused: %d %s" % (r.status_code, r.text[:120]))
        await asyncio.gather(*(one(k) for k in keys))


# -- the client side ------------------------------------------------------------------

@dataclass
class Job:
    port: int
    suite: int
    privs: list[bytes]          # every enrolled device's private key
    ref_der: bytes              # C_B, held by reference
    anchor: bytes
    concurrency: int
    first_slot: int             # global index of this worker's slot 0
    slots: int                  # S: slots over all workers
    stop_at: float              # no handshake starts after this (time mode)
    once: bool = False          # each device exactly once, then stop (priming)


@dataclass
class WorkerResult:
    confirmed_at: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    failed: int = 0
    first_start: float = 0.0


async def _handshake(link: UdpLink, backend: Any, key: DeviceKey, ref: ServerRef,
                     anchor: bytes, out: WorkerResult) -> None:
    ini = Initiator(backend, [key], anchor, server=ref, rto=1.0, max_retries=3,
                    server_name=ref.subject)
    t0 = time.time()
    ini.connect(t0, b"")
    confirmed = await loadgen.run_handshake(link, ini)
    if confirmed is None:
        out.failed += 1
    else:
        out.confirmed_at.append(confirmed)
        out.latencies.append(confirmed - t0)


async def _slot_loop(job: Job, k: int, devices: list[DeviceKey], ref: ServerRef,
                     out: WorkerResult) -> None:
    backend = load_server_backend()   # keys kept loaded, as B keeps its own
    link = await UdpLink.open(("127.0.0.1", job.port), connect=True)
    g = job.first_slot + k
    n = len(devices)
    try:
        for step in range(n if job.once else 1 << 62):
            index = g + step * job.slots
            if job.once and index >= n:
                break
            if not job.once and time.time() >= job.stop_at:
                break
            out.first_start = out.first_start or time.time()
            await _handshake(link, backend, devices[index % n], ref, job.anchor, out)
    finally:
        link.close()


def worker(job: Job) -> WorkerResult:
    backend = load_backend("pyca")
    devices = [DeviceKey(backend, job.suite, p) for p in job.privs]
    ref = ServerRef(backend, job.suite, job.ref_der)
    out = WorkerResult()

    async def go() -> None:
        await asyncio.gather(*[_slot_loop(job, k, devices, ref, out)
                               for k in range(job.concurrency)])
    asyncio.run(go())
    return out


@dataclass
class Sample:
    at: float
    cpu: float
    cs_cpu: float
    memory: dict[str, int]
    metrics: Metrics


def _sample(b: BServer, stack: Stack) -> Sample:
    m = b.metrics()  # first: the scrape is the slow part (B's metrics thread)
    return Sample(time.time(), b.cpu(), stack.cs_cpu(), b.memory(), m)


def _jobs(stack: Stack, b: BServer, keys: list[DeviceKey], workers: int, concurrency: int,
          stop_at: float, once: bool) -> list[Job]:
    privs = [k.private for k in keys]
    return [Job(b.port, stack.suite, privs, stack.ref_der, stack.anchor, concurrency,
                w * concurrency, workers * concurrency, stop_at, once)
            for w in range(workers)]


def prime(stack: Stack, b: BServer, keys: list[DeviceKey], workers: int = 1,
          concurrency: int = 32) -> dict[str, Any]:
    """Every device handshakes exactly once (its first contact: B fetches C_A from the CS
    over HTTP and verifies it). Checks that all completed, on both sides."""
    before = _sample(b, stack)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers) as pool:
        results = pool.map(worker, _jobs(stack, b, keys, workers, concurrency, 0.0, True))
    after = _sample(b, stack)
    done = sum(len(r.confirmed_at) for r in results)
    failed = sum(r.failed for r in results)
    check(done == len(keys) and failed == 0,
          "priming: %d of %d first handshakes confirmed, %d failed"
          % (done, len(keys), failed))
    out = _window(before, after, done, failed)
    check(out["b_completed"] >= done, "priming: B completed %d of %d handshakes"
          % (out["b_completed"], done))
    return out


def _window(a: Sample, b: Sample, confirmed: int, failed: int) -> dict[str, Any]:
    wall = b.at - a.at
    cpu = b.cpu - a.cpu

    def delta(name: str, **labels: str) -> int:
        return int(metric(b.metrics, name, **labels) - metric(a.metrics, name, **labels))

    return {
        "seconds": round(wall, 2), "confirmed": confirmed, "failed": failed,
        "hs_per_s": round(confirmed / wall, 1) if wall else 0.0,
        "b_cpu_s": round(cpu, 3),
        "hs_per_b_cpu_s": round(confirmed / cpu, 1) if cpu else None,
        "b_cpu_utilisation": round(cpu / wall, 2) if wall else None,
        "cs_cpu_s": round(b.cs_cpu - a.cs_cpu, 3),
        "b_completed": delta("airshake_handshakes_total", outcome="ok"),
        "b_not_ok": (delta("airshake_handshakes_total")
                     - delta("airshake_handshakes_total", outcome="ok")),
        "mem_hits": delta("airshake_cache_total", cache="mem", result="hit"),
        "cs_requests": delta("airshake_cs_requests_total"),
        "cs_ok": delta("airshake_cs_requests_total", result="ok"),
        "rss_bytes": b.memory.get("rss_bytes"), "hwm_bytes": b.memory.get("hwm_bytes"),
        "sessions": int(metric(b.metrics, "airshake_sessions")),
    }


def load(stack: Stack, b: BServer, keys: list[DeviceKey], windows: int, seconds: float,
         warmup: float = 3.0, workers: int = 1,
         concurrency: int = 32) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Handshake after handshake from workers x concurrency slots over `keys` for
    warmup + windows x seconds: one result per window (see _window), and the latency
    percentiles of the whole run. Checks that the load ran through every window and that
    no handshake failed."""
    start = time.time() + warmup
    edges = [start + i * seconds for i in range(windows + 1)]
    ctx = multiprocessing.get_context("spawn")
    samples: list[Sample] = []
    with ctx.Pool(workers) as pool:
        pending = pool.map_async(worker, _jobs(stack, b, keys, workers, concurrency,
                                               edges[-1], False))
        for edge in edges:
            time.sleep(max(0.0, edge - time.time()))
            samples.append(_sample(b, stack))
        results = pending.get(timeout=warmup + windows * seconds + 120)
    failed = sum(r.failed for r in results)
    check(failed == 0, "B load: %d handshakes failed" % failed)
    check(all(0 < r.first_start < start for r in results),
          "B load: the clients were not running when the first window opened "
          "(warm-up too short)")
    confirmed = sorted(t for r in results for t in r.confirmed_at)
    out = []
    for a, z in zip(samples, samples[1:]):
        n = sum(1 for t in confirmed if a.at <= t < z.at)
        check(n > 0, "B load: no handshake completed in a window")
        out.append(_window(a, z, n, 0))
    lat = sorted(x for r in results for x in r.latencies)
    return out, {"latency_ms_p50": round(lat[len(lat) // 2] * 1000, 2),
                 "latency_ms_p99": round(lat[int(len(lat) * 0.99)] * 1000, 2)}
